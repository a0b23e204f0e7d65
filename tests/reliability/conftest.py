"""Fixtures of the reliability suite: `other_spans` stands in for another OpenTelemetry instrumentation
(complaints 4, 15, 17). The `test_*_complaints.py` modules also use `no_error_logs` (tests/conftest.py):
none of their tests may log at ERROR, where OpenTelemetry's "Failed to detach context" (complaint 6)
would show up."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

_OTHER_EXPORTER = InMemorySpanExporter()
_other_installed: list[bool] = []


@pytest.fixture
def other_spans() -> InMemorySpanExporter:
    """Spans of `trace.get_tracer("other-lib")`: an SDK provider set as the GLOBAL one (our pipeline
    uses its own per-directory provider). Reuses a global SDK provider another test may have set."""
    if not _other_installed:
        if not isinstance(trace.get_tracer_provider(), SdkTracerProvider):
            trace.set_tracer_provider(SdkTracerProvider())
        provider = trace.get_tracer_provider()
        assert isinstance(provider, SdkTracerProvider), "a non-SDK global tracer provider is set"
        provider.add_span_processor(SimpleSpanProcessor(_OTHER_EXPORTER))
        _other_installed.append(True)
    _OTHER_EXPORTER.clear()
    return _OTHER_EXPORTER
