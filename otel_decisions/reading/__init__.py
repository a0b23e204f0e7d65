"""Reading: span files -> span records -> `Run` models, through the span contract."""
