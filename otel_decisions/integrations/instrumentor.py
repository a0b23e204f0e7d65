"""`DecisionsInstrumentor`: otel_decisions under `opentelemetry-instrument`.

`opentelemetry-instrument python agent.py` finds this class through the `opentelemetry_instrumentor`
entry point and calls `instrument()` after it has set up its own TracerProvider from the `OTEL_*`
variables. Instrumenting switches on context propagation into thread and process pools and makes our
pipelines join that provider, so runs reach the same exporter as every other span; the local file
stays on. This module needs `opentelemetry-instrumentation`, which `opentelemetry-instrument` brings.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from otel_decisions.export.pipeline import configure
from otel_decisions.recording.context import propagate_context

__all__ = ["DecisionsInstrumentor"]


class DecisionsInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instrument agent code recorded with otel_decisions (a singleton, as every instrumentor)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        propagate_context(True)
        configure(join_global_provider=True)  # pipelines built from now on join the global provider

    def _uninstrument(self, **kwargs: Any) -> None:
        propagate_context(False)
