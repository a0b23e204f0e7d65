"""Integrations: entry points for OpenTelemetry's tooling (and, later, LLM SDKs and agent frameworks)."""
