"""Sending our spans beyond the local file: to an OTLP endpoint, or to the user's own TracerProvider.

* OTLP (`grpc` or `http/protobuf`) goes through the official exporters behind a `BatchSpanProcessor`,
  so export runs on its own thread: a slow, failing or unreachable endpoint costs the agent nothing
  while it runs, and costs the local file nothing ever (the file has its own processor). When a run
  ends, `RunEndNudge` wakes a daemon thread that flushes the batch processor, so a run shows up in the
  trace viewer within moments without the agent waiting. At interpreter exit `shutdown_all` shuts
  every pipeline's OTLP processor down in parallel and waits at most the OTLP timeout
  (`OTEL_EXPORTER_OTLP_TIMEOUT`, 10 s by default) for all of them together, whatever the backlog
  (the SDK's own shutdown sends each queued batch in turn, each with a full timeout).
* A user who already set an SDK TracerProvider keeps it: `ForwardToProvider` hands each of our ended
  spans to that provider's processors (their exporters, their Collector), and we add no exporter of
  our own. Their provider is never replaced and its other spans never reach our file.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from otel_decisions.export.settings import Settings

__all__ = ["ForwardToProvider", "RunEndNudge", "otlp_processor", "shutdown_all"]

_logger = logging.getLogger(__name__)


def _exporter(settings: Settings) -> SpanExporter:
    endpoint = settings.otlp_endpoint
    assert endpoint is not None
    headers = settings.otlp_headers or None
    if settings.otlp_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter(
            endpoint=endpoint,
            insecure=endpoint.startswith("http://"),
            headers=headers,
            timeout=settings.otlp_timeout,
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    if settings.otlp_endpoint_is_base and not endpoint.rstrip("/").endswith("/v1/traces"):  # per the spec
        endpoint = endpoint.rstrip("/") + "/v1/traces"
    return HttpExporter(endpoint=endpoint, headers=headers, timeout=settings.otlp_timeout)


def otlp_processor(settings: Settings) -> BatchSpanProcessor | None:
    """A batch processor exporting to the configured OTLP endpoint, or None (logged) if it can't be built."""
    try:
        return BatchSpanProcessor(
            _exporter(settings),
            schedule_delay_millis=1000,
            export_timeout_millis=int(settings.otlp_timeout * 1000),
        )
    except Exception:
        _logger.exception(
            "otel_decisions: cannot set up OTLP export to %s; the local file goes on", settings.otlp_endpoint
        )
        return None


class ForwardToProvider(SpanProcessor):
    """Hands our spans to the span processors of a TracerProvider the user set (joining it)."""

    def __init__(self, provider: TracerProvider) -> None:
        self._provider = weakref.ref(provider)

    def _target(self) -> Any:
        provider = self._provider()
        return getattr(provider, "_active_span_processor", None) if provider is not None else None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        target = self._target()
        if target is not None:
            try:
                target.on_start(span, parent_context)
            except Exception:
                _logger.exception("otel_decisions: the user's span processor failed on_start")

    def on_end(self, span: ReadableSpan) -> None:
        target = self._target()
        if target is not None:
            try:
                target.on_end(span)
            except Exception:
                _logger.exception("otel_decisions: the user's span processor failed on_end")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # the user's provider flushes on its own schedule; never block on it

    def shutdown(self) -> None:
        return None  # not ours to shut down


class RunEndNudge:
    """Flushes a processor on a daemon thread when asked (at the end of each run); never blocks."""

    def __init__(self, processor: SpanProcessor) -> None:
        self._processor = processor
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()  # re-entrant: a SIGTERM handler ending a run nudges too

    def __call__(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._loop, name="otel_decisions-otlp-flush", daemon=True
                    )
                    self._thread.start()
        self._wake.set()

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            try:
                self._processor.force_flush()
            except Exception:
                _logger.exception("otel_decisions: OTLP flush failed")


def shutdown_all(processors: list[SpanProcessor], timeout: float) -> None:
    """Shut `processors` down in parallel, waiting at most `timeout` seconds in all (at exit)."""
    threads = [
        threading.Thread(target=_quiet_shutdown, args=(p,), name="otel_decisions-otlp-shutdown", daemon=True)
        for p in processors
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def _quiet_shutdown(processor: SpanProcessor) -> None:
    try:
        processor.shutdown()
    except Exception:
        _logger.exception("otel_decisions: OTLP shutdown failed")
