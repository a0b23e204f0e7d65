"""The recording core: turns run, decision, outcome and problem models into spans.

Everything that records (the seed-compatible `Runtime`, and later the decorators) goes through
`RunRecorder`, so there is one way a model becomes a span: the attributes come from
`otel_decisions.contract`, the spans go to a `Pipeline`.

A run's root span is started at once (its trace id is the run's execution id), and a snapshot of it
is written to the file, so a run whose process dies is still found. Decisions and outcomes recorded
through the seed API are finished spans with explicit start and end times, made directly
(`recording._spans`) and written to the file before the call returns; they are handed to the other
span processors (OTLP, the user's provider) in order when the run ends, when 4096 are queued, or when
the pipeline's periodic flush drains open runs (every second by default). The agent's call costs a
model, its encoding and one `write(2)`, not two tracer-made spans.

Spans are started with an explicit parent context rather than made current, so recording never
attaches or detaches the caller's OpenTelemetry context (no "Failed to detach context" errors, no
attributes leaking onto the caller's spans). A run always starts a new trace; if a span was current,
the run's root span links to it.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode

from otel_decisions import contract as c
from otel_decisions._privacy import ContentPolicy
from otel_decisions.export.pipeline import Pipeline
from otel_decisions.export.sigterm import critical
from otel_decisions.models import Decision, Outcome, Problem, Run, RunStatus
from otel_decisions.recording import _coerce
from otel_decisions.recording._spans import finished_span, snapshot

__all__ = ["RunRecorder", "record_run"]

_logger = logging.getLogger("otel_decisions")

_STATUS_MESSAGE_CHARS: Final = 1024
_EMPTY_CONTEXT: Final = Context()
_MAX_QUEUED: Final = 4096  # bounds memory in very long runs; the periodic flush drains sooner

_this_process = os.getpid()
"""This process's id, kept current in forked children: `os.getpid()` is a system call, and where
system calls are slow (gVisor, seccomp) it cost as much as encoding a span on the hot path."""


def _forked() -> None:
    global _this_process
    _this_process = os.getpid()


os.register_at_fork(after_in_child=_forked)


class RunRecorder:
    """The open root span of one run and the decisions and outcomes queued for it."""

    __slots__ = (
        "__weakref__",
        "_common",
        "_decisions",
        "_drain_lock",
        "_ended",
        "_pid",
        "_pipeline",
        "_policy",
        "_queue",
        "_recording",
        "_run_context",
        "_run_name",
        "_run_span",
        "_start_attributes",
        "_start_ns",
        "_tracer",
        "execution_id",
        "on_interrupt",
        "trace_id",
    )

    def __init__(
        self,
        pipeline: Pipeline,
        run: Run,
        start_ns: int,
        link_attributes: dict[str, Any] | None = None,
        on_interrupt: Callable[[str, bool], None] | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._tracer = pipeline.tracer
        self._policy = pipeline.policy
        links = []
        current = trace.get_current_span().get_span_context()
        if current.is_valid:  # e.g. the delegating decision; `link_attributes` say which
            links.append(Link(current, link_attributes))
        self._run_name = c.run_span_name(run.goal_id)
        attributes = c.run_start_attributes(run, self._policy)
        span = self._tracer.start_span(
            self._run_name,
            context=_EMPTY_CONTEXT,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            links=links,
            start_time=start_ns,
        )
        ctx = span.get_span_context()
        # A disabled SDK gives an invalid context; the run still needs an id of the same shape.
        self.execution_id = f"{ctx.trace_id:032x}" if ctx.is_valid else secrets.token_hex(16)
        self.trace_id = int(self.execution_id, 16)  # cheap to compare with a span context's
        span.set_attribute(c.EXECUTION_ID, self.execution_id)
        self._run_span = span
        self._run_context = trace.set_span_in_context(span)
        self._start_attributes = {**attributes, c.EXECUTION_ID: self.execution_id}
        self._start_ns = start_ns
        self._common = c.common_attributes(self.execution_id, run.id, run.goal_id)
        self._decisions: dict[str, tuple[SpanContext, int]] = {}  # decision id -> (its span, time)
        self._pid = _this_process
        self._queue: deque[ReadableSpan] = deque()  # appended by the agent, drained by any thread
        self._drain_lock = threading.RLock()  # re-entrant: a SIGTERM handler may drain mid-drain
        self._recording = ctx.is_valid  # False when the SDK is disabled: nothing is written
        self._ended = False
        self.on_interrupt = on_interrupt
        """Ends the run when the process exits or is terminated first: (narrative, failed)."""
        pipeline.watch(self)  # before the snapshot: a run in the file can always be interrupted
        if self._recording and pipeline.snapshots:
            self._snapshot(start_ns)

    def _snapshot(self, at_ns: int) -> None:
        """Write the open root span as it stands (crash safety: the run and its problems are found)."""
        span = self._run_span
        self._pipeline.journal(
            snapshot(
                self._pipeline,
                self._run_name,
                span.get_span_context(),
                None,
                self._start_attributes,
                self._start_ns,
                at_ns,
                getattr(span, "events", ()),
                getattr(span, "links", ()),
            ),
            snapshot=True,
        )

    def decision(
        self, decision: Decision, sequence: int, at_ns: int, option_dicts: list[dict[str, Any]] | None = None
    ) -> None:
        """Record `decision` as a zero-duration `plan` span at `at_ns`, in the file when this returns.

        Its attributes are encoded now, so later changes to the caller's objects are not recorded."""
        attributes = c.decision_attributes(self._common, decision, sequence, self._policy, option_dicts)
        parent = self._run_span.get_span_context()
        span = finished_span(self._pipeline, c.SPAN_NAME_PLAN, parent, attributes, at_ns, at_ns)
        self._decisions[decision.id] = (span.get_span_context() or parent, at_ns)
        self._record(span)

    def outcome(
        self, decision: Decision, outcome: Outcome, at_ns: int, error_type: str | None = None
    ) -> None:
        """Record `outcome` as a span from its decision's time to `at_ns`, a child of the decision."""
        attributes = c.outcome_attributes(self._common, decision, outcome, error_type, self._policy)
        error = None if outcome.success else self._policy.message(outcome.error, _STATUS_MESSAGE_CHARS)
        found = self._decisions.get(decision.id)
        parent, start_ns = found if found is not None else (self._run_span.get_span_context(), at_ns)
        span = finished_span(
            self._pipeline,
            c.outcome_span_name(decision, self._policy),
            parent,
            attributes,
            start_ns,
            max(at_ns, start_ns),
            error,
            failed=not outcome.success,
        )
        self._record(span)

    def _record(self, span: ReadableSpan) -> None:
        if not self._recording or _this_process != self._pid:  # disabled, or a forked child's copy
            return
        self._pipeline.journal(span)
        self._queue.append(span)
        if len(self._queue) >= _MAX_QUEUED:
            self.drain()

    def drain(self) -> None:
        """Hand the finished spans queued so far to the other processors, in order (any thread)."""
        if _this_process != self._pid:  # a forked child: the parent forwards these, not us
            return
        with self._drain_lock:
            queue = self._queue
            spans = []
            while queue:
                spans.append(queue.popleft())
            if spans:
                self._pipeline.forward(spans)

    # --- live spans, for decorated code: the decision span is current while the work runs ---------
    @classmethod
    def joined(
        cls, pipeline: Pipeline, execution_id: str, run_id: str, goal_id: str, parent: Context
    ) -> RunRecorder:
        """A recorder for decisions made on behalf of a run that lives elsewhere (another process),
        under `parent` (the remote span that handed the work over). It owns no root span."""
        self = cls.__new__(cls)
        self._pipeline = pipeline
        self._tracer = pipeline.tracer
        self._policy = pipeline.policy
        self.execution_id = execution_id
        self.trace_id = int(execution_id, 16)
        self._run_span = trace.get_current_span(parent)
        self._run_context = parent
        self._common = {**c.common_attributes(execution_id, run_id, goal_id), c.DECISION_REMOTE: True}
        self._decisions = {}
        self._pid = _this_process
        self._queue = deque()
        self._drain_lock = threading.RLock()
        self._recording = trace.get_current_span(parent).get_span_context().is_valid
        self._run_name, self._start_attributes, self._start_ns = "", {}, 0
        self._ended = False
        self.on_interrupt = None
        return self

    @property
    def pipeline(self) -> Pipeline:
        """Where this run's spans go (other instrumentations' spans of the run may join them)."""
        return self._pipeline

    @property
    def policy(self) -> ContentPolicy:
        """What of the agent's values is recorded (caps, scrubbing, content capture)."""
        return self._policy

    @property
    def common(self) -> dict[str, Any]:
        """The attributes every span of this run carries."""
        return self._common

    @property
    def run_context(self) -> Context:
        """The context whose current span is the run's root (or the remote parent)."""
        return self._run_context

    def start_decision(self, attributes: dict[str, Any], at_ns: int, parent: Context | None) -> Span:
        """Start a `plan` span that stays open while the decided work runs (ended by `end_decision`);
        its snapshot is in the file when this returns (a crash mid-work still shows the decision)."""
        context = parent or self._run_context
        span = self._tracer.start_span(
            c.SPAN_NAME_PLAN, context=context, attributes=attributes, start_time=at_ns
        )
        if self._recording and self._pipeline.snapshots:
            own = span.get_span_context()
            parent_span = trace.get_current_span(context).get_span_context()
            self._pipeline.journal(
                snapshot(self._pipeline, c.SPAN_NAME_PLAN, own, parent_span, attributes, at_ns, at_ns),
                snapshot=True,
            )
        return span

    @critical
    def end_decision(
        self,
        span: Span,
        name: str,
        outcome_attributes: dict[str, Any],
        error: str | None,
        start_ns: int,
        at_ns: int,
        late_attributes: dict[str, Any] | None,
    ) -> None:
        """Record the outcome (`outcome_attributes`, from the contract) as a child span of the
        decision span, then end the decision span (both written as one line). `error` set means the
        outcome failed. A SIGTERM waits until both are written: its handler's own spans would
        otherwise join this thread's batch, which is never written once the process ends."""
        with self._pipeline.processor.batch():
            try:
                child = self._tracer.start_span(
                    name,
                    context=trace.set_span_in_context(span),
                    attributes=outcome_attributes,
                    start_time=start_ns,
                )
                if outcome_attributes.get(c.OUTCOME_SUCCESS) is False:
                    child.set_status(
                        Status(StatusCode.ERROR, self._policy.message(error, _STATUS_MESSAGE_CHARS))
                    )
                child.end(end_time=at_ns)
                if late_attributes:
                    span.set_attributes(late_attributes)
            finally:
                span.end(end_time=at_ns)

    @critical  # the SDK span's lock is not re-entrant: a SIGTERM ending this run waits
    def problem(self, problem: Problem, at_ns: int) -> None:
        """Record `problem` as an `otel_decisions.problem` event on the run span (in the file at once)."""
        if self._ended:
            _logger.warning(
                "otel_decisions: problem %s reported after run %s ended: not recorded",
                problem.id,
                self.execution_id,
            )
            return
        self._run_span.add_event(c.PROBLEM_EVENT, c.problem_attributes(problem, self._policy), at_ns)
        # a joined recorder has no root of its own; an ended run's root is written already
        if (
            self._recording
            and self._pipeline.snapshots
            and self._start_attributes
            and not self._ended
            and _this_process == self._pid
        ):
            self._snapshot(at_ns)

    def report_problem(self, run: Run, args: tuple[Any, ...], lock: threading.RLock | None = None) -> str:
        """Add a problem to `run` from the seed's `report_problem` arguments (coerced to text) and
        record it; returns `prob_N`, or "" if that failed (logged, never raised)."""
        try:
            severity, description, decision_id, root_cause, suggested_fix = args
            fields = (
                _coerce.text(severity),
                _coerce.text(description),
                None if decision_id is None else _coerce.ident(decision_id),
                _coerce.optional_text(root_cause),
                _coerce.optional_text(suggested_fix),
            )
            if lock is None:
                problem_id = run.add_problem(*fields)
                problem = run.problems[-1]
            else:
                with lock:
                    problem_id = run.add_problem(*fields)
                    problem = run.problems[-1]
            self.problem(problem, c.datetime_to_ns(problem.timestamp))
            return problem_id
        except Exception:
            _logger.exception("otel_decisions: report_problem failed")
            return ""

    @property
    def ended(self) -> bool:
        """Whether `end` was called (a run ends once)."""
        return self._ended

    def end(self, run: Run, at_ns: int) -> None:
        """Create the queued spans, then close the run span with the run's final state (this writes
        the run to the file before it returns). The span is ended whatever goes wrong before; a run
        ends once (a later call, e.g. after the process interrupted the run at exit, does nothing)."""
        if self._ended or _this_process != self._pid:  # once; and a forked child's copy is not ours
            return
        # Encoded first (the output's __repr__ may run): interrupted here (Ctrl-C, a SystemExit from a
        # signal handler), the run is not ended yet, and exit or SIGTERM still ends it.
        try:
            attributes = c.run_end_attributes(run, self._policy)
        except Exception:
            _logger.exception("otel_decisions: cannot encode the end of run %s", self.execution_id)
            attributes = {c.RUN_STATUS: run.status.value}
        self._ended = True
        try:
            self.drain()
            self._run_span.set_attributes(attributes)
            if run.status == RunStatus.FAILED:
                message = self._policy.message(run.narrative, _STATUS_MESSAGE_CHARS)
                self._run_span.set_status(Status(StatusCode.ERROR, message))
        finally:
            self._run_span.end(end_time=at_ns)
            self._pipeline.open_recorders.discard(self)  # only now: until written, exit may end it
        self._pipeline.run_ended()


def record_run(pipeline: Pipeline, run: Run) -> str:
    """Write an existing `Run` model as spans (e.g. one loaded from the seed's storage).

    Returns the execution id of the new trace. Runs with status `running` keep no completion time.
    """
    recorder = RunRecorder(pipeline, run, c.datetime_to_ns(run.started_at))
    for sequence, decision in enumerate(run.decisions):
        recorder.decision(decision, sequence, c.datetime_to_ns(decision.timestamp))
        if decision.outcome is not None:
            recorder.outcome(decision, decision.outcome, c.datetime_to_ns(decision.outcome.timestamp))
    for problem in run.problems:
        recorder.problem(problem, c.datetime_to_ns(problem.timestamp))
    end = run.completed_at if run.completed_at is not None else run.started_at
    recorder.end(run, max(c.datetime_to_ns(end), c.datetime_to_ns(run.started_at)))
    return recorder.execution_id
