"""Demo agents that ship with the package, so `otel-decisions demo` works from any install."""
