"""`run`, `decision` and `node`: decorators and context managers over the same recorder as `Runtime`.

Usage::

    import otel_decisions as od

    @od.run("support_ticket")
    def handle(ticket): ...

    @od.node("router")
    @od.decision("Pick a tool", options=[{"id": "search"}, {"id": "answer"}])
    def route(question):
        od.current_decision().choose("search", reasoning="the question names a product")
        return search(question)          # success, latency and a capped result are recorded

    with od.decision("Escalate?") as d:  # sync or `async with`
        d.set_outcome(success=False, error="no agent available")

A `decision` span is current while its work runs, so spans of other OpenTelemetry instrumentations
nest under it; its outcome becomes a child span when the work ends. Exceptions are recorded and
re-raised unchanged; return values are never touched. Generators and async generators are covered for
their whole iteration, with the context attached only while their code runs (never across a `yield`).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from asyncio import CancelledError
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace

from otel_decisions import _config
from otel_decisions import contract as c
from otel_decisions._privacy import ContentPolicy
from otel_decisions.export.pipeline import pipeline_for
from otel_decisions.export.sigterm import critical
from otel_decisions.models import Decision, DecisionType, Option, RunStatus
from otel_decisions.recording import _coerce
from otel_decisions.recording._wrapping import Activation, wrap
from otel_decisions.recording.context import (
    CURRENT_DECISION,
    CURRENT_NODE,
    CURRENT_RUN,
    RunState,
    default_directory,
    ensure_propagation,
)
from otel_decisions.recording.recorder import RunRecorder

__all__ = ["DecisionHandle", "RunHandle", "current_decision", "current_run", "decision", "node", "run"]

_logger = logging.getLogger("otel_decisions")
F = TypeVar("F", bound=Callable[..., Any])


_ENTERED: contextvars.ContextVar[tuple[tuple[_Scope, Activation, object], ...]] = contextvars.ContextVar(
    "otel_decisions_entered", default=()
)
"""Scopes entered with `with` in this context (thread or task), innermost last: one scope object may be
entered by several threads or tasks at once, and each must leave its own entry."""


class _Scope:
    """Decorator and (async) context manager around `_begin()`, which returns an Activation."""

    _kind = "scope"

    def __init__(self) -> None:
        self._open: list[Activation] = []  # entered with `with` and not left yet, in any context

    def _begin(self) -> Activation | None:
        raise NotImplementedError

    def __call__(self, fn: F) -> F:
        return wrap(fn, self._begin, self._kind)

    def __enter__(self) -> Any:
        activation = self._begin()
        if activation is None:
            return _NULL_HANDLES.get(self._kind)
        tokens = activation.activate()
        _ENTERED.set((*_ENTERED.get(), (self, activation, tokens)))
        self._open.append(activation)
        return activation.handle

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        stack = _ENTERED.get()
        for i in range(len(stack) - 1, -1, -1):
            if stack[i][0] is self:
                _, activation, tokens = stack[i]
                _ENTERED.set(stack[:i] + stack[i + 1 :])
                self._close(activation, tokens, exc)
                return
        # Left in another context than entered (a generator holding the block, finalised elsewhere):
        # the context cannot be restored there, but the record is still ended.
        if self._open:
            self._close(self._open[-1], None, exc)

    def _close(self, activation: Activation, tokens: object, exc: BaseException | None) -> None:
        with contextlib.suppress(ValueError):
            self._open.remove(activation)
        try:
            if tokens is not None:
                activation.deactivate(tokens)
        except (ValueError, RuntimeError):  # tokens of another context: nothing to restore here
            pass
        finally:
            activation.finish(exc, None)

    async def __aenter__(self) -> Any:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        self.__exit__(exc_type, exc, tb)


# --- run ------------------------------------------------------------------------------------------
class RunHandle:
    """The run a `run` scope records: its ids, and ways to mark failure, output and problems."""

    __slots__ = ("_failed", "_narrative", "_output", "state")

    def __init__(self, state: RunState) -> None:
        self.state = state
        self._failed = False
        self._narrative = ""
        self._output: dict[str, Any] | None = None

    @property
    def run_id(self) -> str:
        return self.state.run.id if self.state.run is not None else ""

    @property
    def execution_id(self) -> str:
        return self.state.recorder.execution_id

    def fail(self, narrative: str = "") -> None:
        """End the run as failed even though no exception escapes."""
        self._failed = True
        self._narrative = _coerce.text(narrative)

    def set_output(self, output_data: dict[str, Any]) -> None:
        self._output = _coerce.mapping(output_data, "output_data")

    def report_problem(
        self,
        severity: str,
        description: str,
        decision_id: str | None = None,
        root_cause: str | None = None,
        suggested_fix: str | None = None,
    ) -> str:
        """Record a problem on the run; returns `prob_N`."""
        run = self.state.run
        if run is None:
            return ""
        return self.state.recorder.report_problem(
            run, (severity, description, decision_id, root_cause, suggested_fix), self.state.lock
        )


class _RunActivation(Activation):
    __slots__ = ("handle", "run_context")

    def __init__(self, handle: RunHandle) -> None:
        self.handle = handle
        self.run_context = handle.state.recorder.run_context

    def activate(self) -> object:
        return (
            otel_context.attach(self.run_context),
            CURRENT_RUN.set(self.handle.state),
            CURRENT_NODE.set(None),
            CURRENT_DECISION.set(None),
        )

    def deactivate(self, tokens: Any) -> None:
        otel_token, run_token, node_token, decision_token = tokens
        CURRENT_DECISION.reset(decision_token)
        CURRENT_NODE.reset(node_token)
        CURRENT_RUN.reset(run_token)
        otel_context.detach(otel_token)

    def interrupted(self, narrative: str, failed: bool) -> None:
        """The process is exiting (or was sent SIGTERM) inside the run: end it as `cancelled` (as
        `failed` on an uncaught exception) with `narrative`."""
        handle = self.handle
        handle._narrative = handle._narrative or narrative
        self.finish(None if not failed else RuntimeError(narrative), None, interrupted=True)

    def finish(self, error: BaseException | None, result: Any, interrupted: bool = False) -> None:
        self._finish(error, interrupted)

    @critical  # a SIGTERM waits until the run's end is written (see export/sigterm.py)
    def _finish(self, error: BaseException | None, interrupted: bool) -> None:
        try:
            handle, state = self.handle, self.handle.state
            run = state.run
            if run is None:
                return
            if interrupted and error is None:
                status = RunStatus.CANCELLED
            elif handle._failed or (
                error is not None and not isinstance(error, GeneratorExit | CancelledError)
            ):
                status = RunStatus.FAILED
            elif isinstance(error, CancelledError):  # the task was cancelled, e.g. a client hung up
                status = RunStatus.CANCELLED
            else:  # finished, or a generator holding the run was closed early by its consumer
                status = RunStatus.COMPLETED
            narrative = handle._narrative or (
                "Run cancelled: its task was cancelled." if status == RunStatus.CANCELLED else ""
            )
            with state.lock:
                if handle._output is not None:
                    run.output_data = handle._output
                run.complete(status, narrative)
            assert run.completed_at is not None
            state.recorder.end(run, c.datetime_to_ns(run.completed_at))
        except Exception:
            _logger.exception("otel_decisions: could not end run")


class run(_Scope):  # lowercase: used like a function, `@otel_decisions.run(...)`
    """Record a run: its own trace, ended when the block or call ends (failed if an exception escapes).

    `goal_id` names the goal; `directory` overrides where spans are written (default
    `OTEL_DECISIONS_DIR` or `.otel-decisions`). A run started inside a decision (typically of type
    `delegation`) is a sub-run, linked to that decision in both directions.
    """

    _kind = "run"

    def __init__(
        self,
        goal_id: str,
        goal_description: str = "",
        input_data: dict[str, Any] | None = None,
        *,
        directory: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.goal_id = goal_id
        self.goal_description = goal_description
        self.input_data = input_data
        self.directory = Path(directory) if directory is not None else None

    def _begin(self) -> Activation | None:
        return self._start()

    @critical  # a SIGTERM waits until the run is known to the pipeline
    def _start(self) -> Activation | None:
        try:
            ensure_propagation()
            directory = self.directory or default_directory()
            pipeline = pipeline_for(directory)
            if not pipeline.enabled:  # OTEL_SDK_DISABLED: the block runs, nothing is recorded
                return None
            started_at, start_ns = c.now()
            model = _coerce.run(self.goal_id, self.goal_description, self.input_data, started_at)
            delegating = CURRENT_DECISION.get()
            link = None
            if delegating is not None:  # a sub-run: linked to the decision, which lists it in turn
                delegating.delegated_run_ids.append(model.id)
                parent = CURRENT_RUN.get()
                link = c.delegation_link_attributes(
                    parent.run.id if parent is not None and parent.run is not None else "",
                    delegating.decision_id,
                )
            made: list[_RunActivation] = []  # the activation, once made (exit may come first)

            def interrupt(narrative: str, failed: bool) -> None:
                for activation in made:
                    activation.interrupted(narrative, failed)

            recorder = RunRecorder(pipeline, model, start_ns, link, on_interrupt=interrupt)
            made.append(_RunActivation(RunHandle(RunState(recorder, model, directory))))
            return made[0]
        except Exception:
            _logger.exception("otel_decisions: could not start run %r; not recorded", self.goal_id)
            return None


# --- decision -------------------------------------------------------------------------------------
class DecisionHandle:
    """The decision being carried out: lets the code choose, explain and set the outcome."""

    __slots__ = (
        "_outcome",
        "_scope",
        "chosen",
        "decision_id",
        "delegated_run_ids",
        "node_id",
        "reasoning",
        "tokens_used",
    )

    def __init__(self, scope: decision | None, decision_id: str, node_id: str) -> None:
        self._scope = scope
        self.decision_id = decision_id
        self.node_id = node_id
        self.chosen: str | None = None  # None: the scope's default
        self.reasoning: str | None = None
        self._outcome: tuple[bool, Any, str | None, str, dict[str, Any], int] | None = None
        self.delegated_run_ids: list[str] = []
        self.tokens_used = 0

    def choose(self, option_id: str, reasoning: str | None = None) -> None:
        """Record which option was chosen (and why)."""
        self.chosen = _coerce.ident(option_id)
        if reasoning is not None:
            self.explain(reasoning)

    def explain(self, reasoning: str) -> None:
        """Record the reasoning behind the choice."""
        self.reasoning = _coerce.text(reasoning)

    def add_tokens(self, tokens: int) -> None:
        """Add LLM tokens spent on this decision (rolled into its outcome)."""
        self.tokens_used += _coerce.integer(tokens, "tokens")

    def set_outcome(
        self,
        success: bool,
        result: Any = None,
        error: str | None = None,
        summary: str = "",
        state_changes: dict[str, Any] | None = None,
        tokens_used: int = 0,
    ) -> None:
        """Set the outcome instead of the automatic one (the call's result or exception)."""
        self._outcome = (
            _coerce.truthy(success, False),
            result,
            _coerce.optional_text(error),
            _coerce.text(summary),
            _coerce.mapping(state_changes, "state_changes"),
            _coerce.integer(tokens_used, "tokens_used"),
        )

    @property
    def decision(self) -> Decision:
        """The decision as a seed `Decision` model (built on demand)."""
        scope = self._scope
        if scope is None:
            return Decision.model_construct(id=self.decision_id, node_id=self.node_id, intent="")
        t = scope._template
        return t.model_copy(
            update={
                "id": self.decision_id,
                "node_id": self.node_id,
                "chosen_option_id": self.chosen if self.chosen is not None else t.chosen_option_id,
                "reasoning": self.reasoning if self.reasoning is not None else t.reasoning,
            }
        )


class _DecisionActivation(Activation):
    __slots__ = ("context", "handle", "span", "start_ns", "state")

    def __init__(self, state: RunState, handle: DecisionHandle, span: Any, start_ns: int) -> None:
        self.state = state
        self.handle = handle
        self.span = span
        self.start_ns = start_ns
        self.context = trace.set_span_in_context(span)

    def activate(self) -> object:
        return otel_context.attach(self.context), CURRENT_DECISION.set(self.handle)

    def deactivate(self, tokens: Any) -> None:
        otel_token, decision_token = tokens
        CURRENT_DECISION.reset(decision_token)
        otel_context.detach(otel_token)

    def finish(self, error: BaseException | None, result: Any) -> None:
        try:
            handle, state = self.handle, self.state
            scope = handle._scope
            assert scope is not None
            end_ns = time.time_ns()
            latency_ms = (end_ns - self.start_ns) // 1_000_000
            error_type = None
            summary = ""
            state_changes: dict[str, Any] | None = None
            if handle._outcome is not None:
                success, result, message, summary, state_changes, tokens = handle._outcome
                tokens += handle.tokens_used
            elif error is None or isinstance(error, GeneratorExit):  # closed early: not a failure
                success, message, tokens = True, None, handle.tokens_used
            else:
                error_type = type(error).__qualname__
                success, result, message, tokens = (
                    False,
                    None,
                    _coerce.text(error) or error_type,
                    handle.tokens_used,
                )
            recorder = state.recorder
            tool = scope._tool if handle.chosen is None else c.tool_of(scope._options, handle.chosen)
            name = c.outcome_span_name_for(tool, recorder.policy)
            attributes = c.outcome_fields(
                recorder.common,
                handle.decision_id,
                handle.node_id,
                tool,
                success,
                result,
                message,
                summary,
                state_changes,
                tokens,
                latency_ms,
                None,
                error_type,
                recorder.policy,
            )
            late = _late_attributes(handle, recorder.policy)
            state.count_outcome(success, tokens, latency_ms, scope._template.intent, handle.node_id)
            recorder.end_decision(self.span, name, attributes, message, self.start_ns, end_ns, late)
        except Exception:
            _logger.exception("otel_decisions: could not record the outcome of a decision")


def _late_attributes(handle: DecisionHandle, policy: ContentPolicy) -> dict[str, Any] | None:
    """What the code decided while the decision's span was open: the choice, the reasoning, sub-runs."""
    late: dict[str, Any] = {}
    if handle.chosen is not None:
        late[c.DECISION_CHOSEN] = policy.ident(handle.chosen)
    if handle.reasoning is not None:
        reasoning = policy.text(handle.reasoning)
        if reasoning is not None:
            late[c.DECISION_REASONING] = reasoning
    if handle.delegated_run_ids:
        late[c.DECISION_DELEGATED_RUNS] = list(handle.delegated_run_ids)
    return late or None


class decision(_Scope):  # lowercase: used like a function
    """Record a decision around the work that carries it out.

    Options, the chosen id and reasoning are optional: without options it is a single-action decision
    (like `Runtime.quick_decision`). Inside, `current_decision()` (or the `with` target) can `choose()`,
    `explain()` and `set_outcome()`. Otherwise the outcome is the call's: success with latency and a
    capped result, or failure with the exception (which is re-raised unchanged).
    """

    _kind = "decision"

    def __init__(
        self,
        intent: str,
        *,
        options: list[dict[str, Any]] | None = None,
        chosen: str | None = None,
        reasoning: str = "",
        decision_type: DecisionType | str = DecisionType.CUSTOM,
        node_id: str | None = None,
        constraints: list[str] | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        node_id = _coerce.ident(node_id) if node_id is not None and _coerce.truthy(node_id, True) else None
        self.node_id = node_id
        # Validation and encoding happen once, here, not on every call.
        if options is None:
            options = [{"id": "action", "description": _coerce.text(intent), "action_type": "execute"}]
            chosen = "action" if chosen is None else chosen
        template, option_dicts = _coerce.decision(
            "",
            c.now()[0],
            node_id or "unknown",
            intent,
            options,
            chosen if chosen is not None else "",
            reasoning,
            decision_type,
            constraints,
            context,
        )
        self._template = template
        self._options: list[Option] = template.options
        self._tool = c.tool_name(template)
        self._option_dicts = option_dicts
        self._static: tuple[ContentPolicy, dict[str, Any]] | None = None
        self._warned = False

    def _static_attributes(self, policy: ContentPolicy) -> dict[str, Any]:
        """The attributes every call shares, encoded once per policy (in practice: once)."""
        static = self._static
        if static is None or static[0] is not policy:
            attributes = c.decision_attributes({}, self._template, 0, policy, self._option_dicts)
            for key in (c.DECISION_ID, c.DECISION_SEQUENCE, c.DECISION_NODE):
                attributes.pop(key, None)
            static = self._static = (policy, attributes)
        return static[1]

    def _begin(self) -> Activation | None:
        state = CURRENT_RUN.get()
        if state is None:
            if not self._warned:
                self._warned = True
                if not _config.sdk_disabled():
                    _logger.warning("decision %r outside a run: not recorded", self._template.intent)
            return None
        try:
            decision_id, sequence = state.next_decision()
            node_id = self.node_id or CURRENT_NODE.get() or "unknown"
            start_ns = time.time_ns()
            recorder = state.recorder
            attributes = {
                **recorder.common,
                **self._static_attributes(recorder.policy),
                c.DECISION_ID: decision_id,
                c.DECISION_SEQUENCE: sequence,
                c.DECISION_NODE: node_id,
            }
            current = otel_context.get_current()  # nest under a span of this run, else under the root
            in_run = trace.get_current_span(current).get_span_context().trace_id == recorder.trace_id
            span = recorder.start_decision(attributes, start_ns, current if in_run else None)
            state.count_decision(node_id)
            return _DecisionActivation(state, DecisionHandle(self, decision_id, node_id), span, start_ns)
        except Exception:
            _logger.exception("otel_decisions: could not start decision %r", self._template.intent)
            return None


# --- node -----------------------------------------------------------------------------------------
class _NodeActivation(Activation):
    __slots__ = ("handle", "node_id")

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.handle = node_id

    def activate(self) -> object:
        return CURRENT_NODE.set(self.node_id)

    def deactivate(self, tokens: Any) -> None:
        CURRENT_NODE.reset(tokens)

    def finish(self, error: BaseException | None, result: Any) -> None:
        return None


class node(_Scope):  # lowercase: used like a function
    """Set the node for the decisions made inside."""

    _kind = "node"

    def __init__(self, node_id: str) -> None:
        super().__init__()
        self.node_id = _coerce.ident(node_id) or "unknown"

    def _begin(self) -> Activation | None:
        return _NodeActivation(self.node_id)


class _NullRun(RunHandle):
    """Handed out when a run is not recorded (tracing disabled): every method works, records nothing."""

    def __init__(self) -> None:
        self._failed = False
        self._narrative = ""
        self._output = None

    @property
    def run_id(self) -> str:
        return ""

    @property
    def execution_id(self) -> str:
        return ""

    def report_problem(self, *args: Any, **kwargs: Any) -> str:
        return ""


class _NullDecision(DecisionHandle):
    """Handed out outside any run (one shared object): every method works and changes nothing."""

    __slots__ = ()

    def choose(self, option_id: str, reasoning: str | None = None) -> None:
        return None

    def explain(self, reasoning: str) -> None:
        return None

    def add_tokens(self, tokens: int) -> None:
        return None

    def set_outcome(self, *args: Any, **kwargs: Any) -> None:
        return None


_NULL_HANDLES: dict[str, Any] = {
    "decision": _NullDecision(None, "", "unknown"),
    "node": None,
    "run": _NullRun(),
}


def current_decision() -> DecisionHandle:
    """The decision being carried out here (a do-nothing handle outside any decision)."""
    handle = CURRENT_DECISION.get()
    return handle if handle is not None else _NULL_HANDLES["decision"]


def current_run() -> str:
    """The execution id (trace id) of the run the code is in; "" outside a run."""
    state = CURRENT_RUN.get()
    return state.recorder.execution_id if state is not None else ""
