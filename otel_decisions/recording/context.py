"""Which run and node the code is in, and how that follows the work across threads and processes.

The current run and node live in context variables, next to OpenTelemetry's own context, so concurrent
runs in threads and asyncio tasks never mix. Python does not copy context variables into
`ThreadPoolExecutor` workers, `threading.Thread`s or `loop.run_in_executor`; `propagate_context()`
(switched on when the first decorated run starts, unless `OTEL_DECISIONS_PROPAGATE_CONTEXT=false`) patches
those three so a decision made there belongs to the calling run, and `ProcessPoolExecutor.submit` so a
decision made in a worker process joins the run's trace. `inject()`/`extract()` do the same by hand
through a W3C `traceparent` carrier, for any other way work crosses a process boundary.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import functools
import logging
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import propagate, trace

from otel_decisions.export.pipeline import current_settings, pipeline_for
from otel_decisions.models import Decision, Run

if TYPE_CHECKING:
    from otel_decisions.recording.recorder import RunRecorder
    from otel_decisions.recording.scopes import DecisionHandle

__all__ = ["RunState", "extract", "inject", "propagate_context"]

_logger = logging.getLogger("otel_decisions")

OTEL_DECISIONS_PROPAGATE_CONTEXT: Final = "OTEL_DECISIONS_PROPAGATE_CONTEXT"
"""`false` keeps otel_decisions from patching thread and process pools (default `true`)."""

_CARRIER_KEY: Final = "otel-decisions-run"
"""Carrier entry holding `execution_id;run_id;goal_id;node_id;directory` next to `traceparent`."""


@dataclass(slots=True, eq=False)
class RunState:
    """A run being recorded by decorated code: shared by every thread and task working for it."""

    recorder: RunRecorder
    run: Run | None  # None for a run joined from another process (its model lives there)
    directory: Path
    # re-entrant: a SIGTERM handler ending the run may run while this thread holds it
    lock: threading.RLock = field(default_factory=threading.RLock)
    sequence: int = 0
    prefix: str = "dec_"

    def count_decision(self, node_id: str) -> None:
        """Count a decision into the run's metrics, as `Run.add_decision` does (thread-safe)."""
        run = self.run
        if run is None:
            return
        with self.lock:
            metrics = run.metrics
            metrics.total_decisions += 1
            if node_id not in metrics.nodes_executed:
                metrics.nodes_executed.append(node_id)

    def count_outcome(self, success: bool, tokens: int, latency_ms: int, intent: str, node_id: str) -> None:
        """Count an outcome, as `Run.record_outcome` does. Decorated runs keep counts, not models; a
        failed decision is kept as a stub so the run's narrative can name it."""
        run = self.run
        if run is None:
            return
        with self.lock:
            metrics = run.metrics
            if success:
                metrics.successful_decisions += 1
            else:
                metrics.failed_decisions += 1
                if len(run.decisions) < 3:
                    run.decisions.append(Decision.model_construct(id="", node_id=node_id, intent=intent))
            metrics.total_tokens += tokens
            metrics.total_latency_ms += latency_ms

    def next_decision(self) -> tuple[str, int]:
        """The next decision id and sequence number (thread-safe)."""
        with self.lock:
            n = self.sequence
            self.sequence = n + 1
        return f"{self.prefix}{n}", n


CURRENT_RUN: contextvars.ContextVar[RunState | None] = contextvars.ContextVar(
    "otel_decisions_run", default=None
)
CURRENT_NODE: contextvars.ContextVar[str | None] = contextvars.ContextVar("otel_decisions_node", default=None)
CURRENT_DECISION: contextvars.ContextVar[DecisionHandle | None] = contextvars.ContextVar(
    "otel_decisions_decision", default=None
)
RUNTIME_FOCUS: contextvars.ContextVar[tuple[Any, str] | None] = contextvars.ContextVar(
    "otel_decisions_runtime", default=None
)
"""(Runtime, id of its latest decision still waiting for an outcome, or "") in the code calling it: where
LLM calls made between `decide` and `record_outcome` belong (see `integrations.anthropic`)."""


# --- carriers ------------------------------------------------------------------------------------
def inject(carrier: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Put the current run (and OpenTelemetry context) into `carrier` for another process.

    Usage::

        headers = otel_decisions.inject()          # {"traceparent": "00-…", "otel-decisions-run": …}
        # in the other process:
        with otel_decisions.extract(headers):
            ...                                    # decisions here belong to the same run
    """
    if carrier is not None and not isinstance(carrier, MutableMapping):
        _logger.warning("otel_decisions: inject() needs a dict-like carrier, got %s", type(carrier).__name__)
        carrier = None
    try:
        out: dict[str, str] = dict(carrier or {})
        propagate.inject(out)
        state = CURRENT_RUN.get()
        if state is not None:
            common = state.recorder.common
            fields = (
                state.recorder.execution_id,
                str(common.get("otel_decisions.run.id", "")),
                str(common.get("otel_decisions.goal.id", "")),
                CURRENT_NODE.get() or "",
                str(state.directory),
            )
            out[_CARRIER_KEY] = ";".join(f.replace(";", ",") for f in fields)
        if carrier is not None:
            carrier.update(out)
        return out
    except Exception:  # a carrier that cannot be read or written: the agent's call goes on
        _logger.warning("otel_decisions: could not inject the run into the carrier", exc_info=True)
        return {}


_EXECUTION_ID = re.compile(r"[0-9a-f]{32}")


def _joined_state(carrier: object) -> tuple[RunState, str | None] | None:
    """The state joining the run `inject` put into `carrier`, or None (nothing, or nothing valid: a
    carrier comes from the network, so malformed ones are expected)."""
    if not isinstance(carrier, Mapping):
        return None
    raw = carrier.get(_CARRIER_KEY, "")
    parts = raw.split(";") if isinstance(raw, str) and raw else []
    if len(parts) != 5 or not _EXECUTION_ID.fullmatch(parts[0]):
        return None
    execution_id, run_id, goal_id, node_id, directory = parts
    from otel_decisions.recording.recorder import RunRecorder

    parent = propagate.extract(carrier)
    if not trace.get_current_span(parent).get_span_context().is_valid:
        return None
    recorder = RunRecorder.joined(pipeline_for(directory), execution_id, run_id, goal_id, parent)
    # ids unique across processes and across calls in one (pool) process
    state = RunState(recorder, None, Path(directory), prefix=f"dec_{os.getpid()}_{secrets.token_hex(3)}_")
    return state, node_id or None


@contextmanager
def extract(carrier: MutableMapping[str, str]) -> Iterator[None]:
    """Within the block, decisions belong to the run `inject` put into `carrier` (same execution id)."""
    try:
        joined = _joined_state(carrier)
    except Exception:  # never break the block for a bad carrier; its decisions are just not joined
        _logger.warning("otel_decisions: cannot join the run in this carrier", exc_info=True)
        joined = None
    if joined is None:
        yield  # nothing to join: decisions outside a run are not recorded (with a warning)
        return
    state, node_id = joined
    run_token = CURRENT_RUN.set(state)
    node_token = CURRENT_NODE.set(node_id)
    try:
        yield
    finally:
        CURRENT_NODE.reset(node_token)
        CURRENT_RUN.reset(run_token)
        try:
            state.recorder.pipeline.flush()  # a pool worker may never exit normally
        except Exception:
            _logger.exception("otel_decisions: could not flush a joined run")


# --- automatic propagation -----------------------------------------------------------------------
_patched = False
_opted_out = False
_patch_lock = threading.Lock()
_originals: dict[str, Any] = {}


def propagate_context(enabled: bool = True) -> None:
    """Patch (or unpatch) thread pools, threads, `run_in_executor` and process pools so decisions made
    there belong to the calling run. Idempotent; only what we patched is restored."""
    global _patched, _opted_out
    with _patch_lock:
        _opted_out = not enabled  # an explicit choice outlives later runs
        if enabled and not _patched:
            _patch()
            _patched = True
        elif not enabled and _patched:
            for name, original in _originals.items():
                owner, attr = _OWNERS[name]
                setattr(owner, attr, original)
            _originals.clear()
            _patched = False


def ensure_propagation() -> None:
    """Switch propagation on unless `OTEL_DECISIONS_PROPAGATE_CONTEXT` or `propagate_context(False)` said
    not to (called when a decorated run starts)."""
    if (
        not _patched
        and not _opted_out
        and os.environ.get(OTEL_DECISIONS_PROPAGATE_CONTEXT, "").strip().lower()
        not in {
            "0",
            "false",
            "no",
            "off",
        }
    ):
        propagate_context(True)


_OWNERS: Final[dict[str, tuple[Any, str]]] = {
    "thread_pool_submit": (concurrent.futures.ThreadPoolExecutor, "submit"),
    "thread_start": (threading.Thread, "start"),
    "process_pool_submit": (concurrent.futures.ProcessPoolExecutor, "submit"),
}


def _patch() -> None:
    thread_submit: Any = concurrent.futures.ThreadPoolExecutor.submit
    thread_start = threading.Thread.start
    process_submit: Any = concurrent.futures.ProcessPoolExecutor.submit
    _originals.update(
        thread_pool_submit=thread_submit, thread_start=thread_start, process_pool_submit=process_submit
    )

    @functools.wraps(thread_submit)
    def submit(
        self: concurrent.futures.ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Any:
        # `run_in_executor` and `asyncio.to_thread` come through here too.
        return thread_submit(self, contextvars.copy_context().run, fn, *args, **kwargs)

    @functools.wraps(thread_start)
    def start(self: threading.Thread) -> None:
        if CURRENT_RUN.get() is not None and not getattr(self, "_otel_decisions_context", False):
            self._otel_decisions_context = True  # type: ignore[attr-defined]
            self.run = functools.partial(contextvars.copy_context().run, self.run)  # type: ignore[method-assign]
        thread_start(self)

    @functools.wraps(process_submit)
    def process_pool_submit(
        self: concurrent.futures.ProcessPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Any:
        if CURRENT_RUN.get() is None:
            return process_submit(self, fn, *args, **kwargs)
        return process_submit(self, _CarriedCall(fn, inject()), *args, **kwargs)

    concurrent.futures.ThreadPoolExecutor.submit = submit  # type: ignore[method-assign,assignment]
    threading.Thread.start = start  # type: ignore[method-assign]
    concurrent.futures.ProcessPoolExecutor.submit = process_pool_submit  # type: ignore[method-assign,assignment]


class _CarriedCall:
    """A picklable call that joins the submitting run in the worker process."""

    __slots__ = ("carrier", "fn")

    def __init__(self, fn: Callable[..., Any], carrier: dict[str, str]) -> None:
        self.fn = fn
        self.carrier = carrier

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with extract(self.carrier):
            return self.fn(*args, **kwargs)


def default_directory() -> Path:
    """Where decorated runs write when no directory is given (`configure(directory=…)` or the env)."""
    return current_settings().directory
