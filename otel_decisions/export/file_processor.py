"""The span processor behind the local file: every ended span is on disk when it ends.

Why not `BatchSpanProcessor`? A process killed with SIGKILL loses whatever a batch still holds, and the
seed promises that a run is readable the moment `end_run` returns. This processor writes each ended
span in the thread that ends it: encoded as one OTLP/JSON line and appended with one `write(2)`
(`JsonLinesWriter`), a few microseconds. `journal()` writes a span that never went through a tracer the
same way: the recorder's decisions and outcomes (made as finished spans), and snapshots of spans still
open (a run's root, a decision whose work is running), so that a crash leaves the run, and the
decisions it had made, in the file. Within `batch()` the spans a thread ends are written together.

A write that fails (a full disk, too many open files) keeps its spans, up to a bound, for the next
write or the periodic flush (`flush_interval` seconds, default 1 s, on a daemon thread that also runs
`before_flush`: the recorder hands the decisions of open runs to the other processors there). Only
spans of our instrumentation scope, and spans of other instrumentations joined to a run (carrying its
run id: LLM calls), are kept unless `only_ours` is False.

Never raises into the caller: encoding and I/O errors are logged, and the spans are counted as dropped.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from otel_decisions.contract import INSTRUMENTATION_NAME, RUN_ID
from otel_decisions.export.file_writer import JsonLinesWriter
from otel_decisions.export.otlp_json import LineBuilder, encode_one

__all__ = ["RunFileProcessor"]

_logger = logging.getLogger(__name__)

DEFAULT_FLUSH_INTERVAL: Final = 1.0
_MAX_RETAINED: Final = 100_000  # spans kept across failed writes before the oldest are dropped
_MAX_HELD: Final = 2048  # with per-run durability, spans held before they are written anyway


class RunFileProcessor(SpanProcessor):
    """Writes each ended span to a `JsonLinesWriter` as it ends; retries failed writes periodically."""

    def __init__(
        self,
        writer: JsonLinesWriter,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        only_ours: bool = True,
        before_flush: Callable[[], None] | None = None,
        per_span: bool = True,
    ) -> None:
        self.writer = writer
        self.per_span = per_span
        """False (`OTEL_DECISIONS_DURABILITY=run`): spans wait for their run's end or the periodic
        flush, written as one line per run, and snapshots of open spans are not written: the agent's
        calls cost less, and a crash loses what the last interval held."""
        self.before_flush = before_flush
        self.flush_interval = flush_interval
        self.only_ours = only_ours
        self.dropped = 0
        self._pending: list[ReadableSpan] = []  # spans of failed writes, written before the next ones
        self._lock = threading.RLock()  # re-entrant: a SIGTERM handler may flush mid-write
        self._flush_lock = threading.RLock()
        self._batch = threading.local()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.RLock()
        self._flush_lock = threading.RLock()
        self._batch = threading.local()
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
        self.journal(span)

    def journal(self, span: ReadableSpan, snapshot: bool = False) -> None:
        """Write `span` now (or at the end of this thread's `batch()`), whatever its scope;
        `snapshot`: a copy of a span still open."""
        if self._closed:
            return
        if not self.per_span:
            if not snapshot:
                self._hold(span)
            return
        held: list[ReadableSpan] | None = getattr(self._batch, "spans", None)
        if held is not None:
            held.append(span)
            return
        self._write([span])

    def _hold(self, span: ReadableSpan) -> None:
        with self._lock:
            self._pending.append(span)
            count = len(self._pending)
        # A run's root is the only parentless span we end: its end is the end of the run.
        if span.parent is None or count >= _MAX_HELD:
            self._flush()
        else:
            self.start_background_flush()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Write the spans this thread ends inside the block as one line, when the block ends."""
        if getattr(self._batch, "spans", None) is not None:  # nested: the outer block writes
            yield
            return
        held: list[ReadableSpan] = []
        self._batch.spans = held
        try:
            yield
        finally:
            self._batch.spans = None
            if held:
                self._write(held)

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

    def _write(self, spans: list[ReadableSpan]) -> bool:
        """Encode `spans` (after any left by failed writes) as one line and append it."""
        if self._pending:
            with self._lock:
                spans, self._pending = self._pending + spans, []
        if len(spans) == 1:  # the common case: one span as it ends
            try:
                line = encode_one(spans[0])
            except Exception:
                _logger.exception("otel_decisions: cannot encode span %r; it is left out", spans[0].name)
                self.dropped += 1
                return True
        else:
            builder = LineBuilder()
            for span in spans:
                builder.add(span)  # logs and leaves out a span it cannot encode; never raises
            self.dropped += builder.skipped
            line = builder.line()
        if self.writer.write(line):
            return True
        # A transient error (too many open files, a full disk): keep the spans for the next write or
        # flush, up to a bound; past it, the oldest are dropped (and counted).
        with self._lock:
            kept = spans + self._pending
            overflow = max(0, len(kept) - _MAX_RETAINED)
            self._pending = kept[overflow:]
        self.dropped += overflow
        self.start_background_flush()
        return False

    def _flush(self, background: bool = False) -> bool:
        if background and self.before_flush is not None:
            try:
                self.before_flush()
            except Exception:
                _logger.exception("otel_decisions: could not record pending decisions")
        with self._flush_lock:
            if not self._pending:
                return True
            return self._write([])

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
