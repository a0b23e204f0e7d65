"""Export: OTLP/JSON encoding, the run-flushing file processor, and per-directory pipelines."""
