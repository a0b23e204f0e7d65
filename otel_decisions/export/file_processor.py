"""The span processor behind the local file: durable at run end, cheap on the agent's thread.

Why not `BatchSpanProcessor`? Its `force_flush` hops to a worker thread and back, and the seed promises
that a run is readable the moment `end_run` returns. This processor appends ended spans to a list (one
lock, no encoding) and writes them, encoded as one OTLP/JSON line, in the thread that ends a run's root
span. Spans of runs still open are written by a daemon thread every `flush_interval` seconds (default
1 s), when `max_buffer` spans are pending, on `force_flush`, and at shutdown, so a crash loses at most
the last interval. `before_flush` (if given) runs first on every flush: the recorder uses it to turn
the decisions of runs still open into spans. Only spans of our instrumentation scope, and spans of other
instrumentations joined to a run (carrying its run id: LLM calls), are kept unless `only_ours` is False.

Never raises into the caller: encoding and I/O errors are logged, and the spans are counted as dropped.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Final

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from otel_decisions.contract import INSTRUMENTATION_NAME, RUN_ID
from otel_decisions.export.file_writer import JsonLinesWriter
from otel_decisions.export.otlp_json import LineBuilder

__all__ = ["RunFileProcessor"]

_logger = logging.getLogger(__name__)

DEFAULT_FLUSH_INTERVAL: Final = 1.0
DEFAULT_MAX_BUFFER: Final = 2048
_MAX_RETAINED: Final = 100_000  # spans kept across failed writes before the oldest are dropped


class RunFileProcessor(SpanProcessor):
    """Buffers ended spans; writes them to a `JsonLinesWriter` when a run ends, and periodically."""

    def __init__(
        self,
        writer: JsonLinesWriter,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        max_buffer: int = DEFAULT_MAX_BUFFER,
        only_ours: bool = True,
        before_flush: Callable[[], None] | None = None,
    ) -> None:
        self.writer = writer
        self.before_flush = before_flush
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        self.only_ours = only_ours
        self.dropped = 0
        self._pending: list[ReadableSpan] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None
        self._pending = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if self._closed:
            return
        if self.only_ours:
            scope = span.instrumentation_scope
            if (scope is None or scope.name != INSTRUMENTATION_NAME) and RUN_ID not in (
                span.attributes or {}
            ):
                return  # neither ours nor another instrumentation's span joined to a run (LLM calls)
        with self._lock:
            self._pending.append(span)
            count = len(self._pending)
        # A run's root is the only parentless span we create: its end is the end of the run.
        if span.parent is None or count >= self.max_buffer:
            self._flush()
        else:
            self.start_background_flush()

    def start_background_flush(self) -> None:
        """Start the periodic flush thread if it is not running (and an interval is set)."""
        if self._thread is not None or self.flush_interval <= 0 or self._closed:
            return
        with self._lock:
            if self._thread is not None:
                return
            ref = weakref.ref(self)
            self._thread = threading.Thread(
                target=_flush_loop,
                args=(ref, self._wake, self.flush_interval),
                daemon=True,
                name="otel_decisions-file-flush",
            )
            self._thread.start()

    def _flush(self, background: bool = False) -> bool:
        if background and self.before_flush is not None:
            try:
                self.before_flush()
            except Exception:
                _logger.exception("otel_decisions: could not record pending decisions")
        # One flush at a time: a run's end must not return while an earlier flush holding some of
        # the run's spans is still writing them.
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, []
            if not pending:
                return True
            builder = LineBuilder()
            for span in pending:
                builder.add(span)  # logs and leaves out a span it cannot encode; never raises
            self.dropped += builder.skipped
            if self.writer.write(builder.line()):
                return True
            # A transient error (too many open files, a full disk): keep the spans for the next
            # flush, up to a bound; past it, the oldest are dropped (and counted).
            with self._lock:
                kept = pending + self._pending
                overflow = max(0, len(kept) - _MAX_RETAINED)
                self._pending = kept[overflow:]
            self.dropped += overflow
            return False

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._flush(background=True)

    def shutdown(self) -> None:
        self._flush(background=True)
        self._closed = True
        self._wake.set()
        self.writer.close()


def _flush_loop(ref: weakref.ref[RunFileProcessor], wake: threading.Event, interval: float) -> None:
    """Daemon loop: flush every `interval` seconds until the processor is gone or shut down."""
    while not wake.wait(interval):
        processor = ref()
        if processor is None or processor._closed:
            return
        processor._flush(background=True)
        del processor
