"""`Runtime`: the seed framework's recording API, with every run written as an OpenTelemetry trace.

Code written for the seed (`from framework import Runtime`) works by changing the import. Where we
differ from the seed, it is on purpose: a run started while another is open ends the open one as
`cancelled` instead of silently dropping it; an outcome for an unknown decision logs a warning;
`execution_id` is the run's trace id.

Nothing here raises into the agent: bad input is coerced with a warning, and an internal error is
logged and answered with the same value the seed returns when no run is open. `decide_and_execute`
re-raises the executor's own exception, unchanged.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from otel_decisions import contract as c
from otel_decisions._values import short_repr
from otel_decisions.export.pipeline import pipeline_for
from otel_decisions.export.sigterm import critical
from otel_decisions.models import Decision, DecisionType, Run, RunStatus
from otel_decisions.recording import _coerce
from otel_decisions.recording.context import RUNTIME_FOCUS
from otel_decisions.recording.recorder import RunRecorder

if TYPE_CHECKING:
    from otel_decisions.reading.run_store import RunStore

__all__ = ["Runtime"]

_logger = logging.getLogger("otel_decisions")
T = TypeVar("T")

_CANCELLED_NARRATIVE = "Run cancelled: a new run was started before this one ended."


class Runtime:
    """The runtime an agent records its behaviour through.

    Usage::

        runtime = Runtime(".otel-decisions")
        run_id = runtime.start_run("qualify_leads", "Qualify sales leads")
        decision_id = runtime.decide(
            intent="Determine if lead has budget",
            options=[{"id": "ask", "description": "Ask the lead"},
                     {"id": "infer", "description": "Infer from company size"}],
            chosen="infer",
            reasoning="Company data is available",
        )
        runtime.record_outcome(decision_id, success=True, result={"has_budget": True})
        runtime.end_run(success=True)   # the run is on disk when this returns

    `storage_path` (str or Path) is the directory the run's spans are written to (created if
    missing); `runtime.storage` reads them back. One `Runtime` records one run at a time; use one per
    thread for concurrent runs (they may share a directory).
    """

    def __init__(self, storage_path: str | Path) -> None:
        self.storage_path = Path(storage_path)
        self._pipeline = pipeline_for(self.storage_path)
        self._store: RunStore | None = None
        self._run: Run | None = None
        self._recorder: RunRecorder | None = None
        self._decisions: dict[str, Decision] = {}
        self._current_node = "unknown"
        self._llm_tokens: dict[str, int] = {}  # tokens of LLM calls made for decisions awaiting outcomes

    # --- reading ---------------------------------------------------------------------------------
    @property
    def storage(self) -> RunStore:
        """Read access to the runs recorded under `storage_path` (`load_run`, `get_runs_by_goal`, …)."""
        if self._store is None:
            from otel_decisions.reading.run_store import RunStore

            self._store = RunStore(self.storage_path)
        return self._store

    @property
    def current_run(self) -> Run | None:
        """The run in progress, or None."""
        return self._run

    @property
    def execution_id(self) -> str:
        """The current run's 32-hex W3C trace id; "" when no run is open."""
        return self._recorder.execution_id if self._recorder is not None else ""

    # --- run lifecycle ---------------------------------------------------------------------------
    def start_run(
        self, goal_id: str, goal_description: str = "", input_data: dict[str, Any] | None = None
    ) -> str:
        """Start a run (a new trace) and return its id, `run_YYYYMMDD_HHMMSS_<8 hex>`."""
        return self._start_run(goal_id, goal_description, input_data)

    @critical  # a SIGTERM waits until the run is known to the pipeline (see export/sigterm.py)
    def _start_run(self, goal_id: Any, goal_description: Any, input_data: Any) -> str:
        try:
            if self._run is not None:
                _logger.warning("start_run: run %s was still open; ending it as cancelled", self._run.id)
                self._finish(RunStatus.CANCELLED, _CANCELLED_NARRATIVE, None)
            started_at, start_ns = c.now()
            run = _coerce.run(goal_id, goal_description, input_data, started_at)
            self._recorder = RunRecorder(
                self._pipeline, run, start_ns, on_interrupt=functools.partial(self._interrupted, run.id)
            )
            self._run = run
            self._decisions = {}
            self._llm_tokens = {}
            RUNTIME_FOCUS.set((self, ""))
            return run.id
        except Exception:
            _logger.exception("otel_decisions: start_run failed; recording is off for this run")
            self._run = self._recorder = None
            return ""

    def end_run(self, success: bool, narrative: str = "", output_data: dict[str, Any] | None = None) -> None:
        """End the current run as completed or failed; its spans are on disk when this returns."""
        if self._run is None:
            _logger.warning("end_run called but no run in progress (already ended or never started)")
            return
        status = RunStatus.COMPLETED if _coerce.truthy(success, False) else RunStatus.FAILED
        try:
            self._finish(status, narrative, output_data)
        except Exception:
            _logger.exception("otel_decisions: end_run failed")
            self._run = self._recorder = None

    @critical  # a SIGTERM waits until the run's end is written
    def _finish(self, status: RunStatus, narrative: str, output_data: dict[str, Any] | None) -> None:
        run, recorder = self._run, self._recorder
        interrupted = False
        try:
            if run is None or recorder is None:
                return
            run.output_data = _coerce.mapping(output_data, "output_data")
            run.complete(status, _coerce.text(narrative))
            assert run.completed_at is not None
            recorder.end(run, c.datetime_to_ns(run.completed_at))  # in the file before it returns
        except Exception:
            raise
        except BaseException:  # Ctrl-C, SystemExit from a signal handler: keep the run for exit to end
            interrupted = recorder is not None and not recorder.ended
            raise
        finally:  # the run is this Runtime's until its end is written: exit or SIGTERM may end it
            if self._recorder is recorder and not interrupted:
                self._run = self._recorder = None
                self._decisions = {}
            focus = RUNTIME_FOCUS.get()
            if focus is not None and focus[0] is self:
                RUNTIME_FOCUS.set(None)

    def _interrupted(self, run_id: str, narrative: str, failed: bool) -> None:
        """The process is exiting (or was sent SIGTERM) with run `run_id` still open: end it."""
        if self._run is not None and self._run.id == run_id:
            self._finish(RunStatus.FAILED if failed else RunStatus.CANCELLED, narrative, None)

    def _shown(self, value: Any) -> str:
        """`value` for a log message: a short, scrubbed repr, or only its type without content capture."""
        policy = self._pipeline.policy
        if not policy.capture:
            return f"<{type(value).__qualname__}>"
        return policy.redactor.text(short_repr(value)) if policy.scrub else short_repr(value)

    def set_node(self, node_id: str) -> None:
        """Set the node for later decisions (sticky)."""
        self._current_node = _coerce.text(node_id) or "unknown"

    # --- decisions -------------------------------------------------------------------------------
    def decide(
        self,
        intent: str,
        options: list[dict[str, Any]],
        chosen: str,
        reasoning: str,
        node_id: str | None = None,
        decision_type: DecisionType = DecisionType.CUSTOM,
        constraints: list[str] | None = None,
        context: dict[str, Any] | None = None,
    ) -> str:
        """Record a decision and return its id, `dec_N`; "" (with a warning) when no run is open."""
        run, recorder = self._run, self._recorder
        if run is None or recorder is None:
            _logger.warning("decide called but no run in progress: %s", self._shown(intent))
            return ""
        try:
            timestamp, at_ns = c.now()
            decision, option_dicts = _coerce.decision(
                f"dec_{len(run.decisions)}",
                timestamp,
                node_id if _coerce.truthy(node_id, True) else self._current_node,
                intent,
                options,
                chosen,
                reasoning,
                decision_type,
                constraints,
                context,
            )
            run.add_decision(decision)
            self._decisions[decision.id] = decision
            recorder.decision(decision, len(run.decisions) - 1, at_ns, option_dicts)
            RUNTIME_FOCUS.set((self, decision.id))
            return decision.id
        except Exception:
            _logger.exception("otel_decisions: decide failed")
            return ""

    def record_outcome(
        self,
        decision_id: str,
        success: bool,
        result: Any = None,
        error: str | None = None,
        summary: str = "",
        state_changes: dict[str, Any] | None = None,
        tokens_used: int = 0,
        latency_ms: int = 0,
    ) -> None:
        """Record what happened when decision `decision_id` was carried out."""
        self._record_outcome(
            decision_id, success, result, error, summary, state_changes, tokens_used, latency_ms, None
        )

    def _record_outcome(
        self,
        decision_id: str,
        success: bool,
        result: Any,
        error: Any,
        summary: str,
        state_changes: Mapping[str, Any] | None,
        tokens_used: int,
        latency_ms: int,
        error_type: str | None,
    ) -> None:
        run, recorder = self._run, self._recorder
        if run is None or recorder is None:
            _logger.warning(
                "record_outcome called but no run in progress (decision_id=%s)", self._shown(decision_id)
            )
            return
        try:
            # a plain copy of a str subclass: its own __hash__/__eq__ may raise
            key = str.__str__(decision_id) if isinstance(decision_id, str) else None
            decision = self._decisions.get(key) if key is not None else None
            if decision is None:
                _logger.warning(
                    "record_outcome: unknown decision id %s in run %s; ignored",
                    self._shown(decision_id),
                    run.id,
                )
                return
            timestamp, at_ns = c.now()
            llm_tokens = self._llm_tokens.pop(decision.id, 0)
            if not _coerce.truthy(tokens_used, True):  # tokens the agent reports itself win over counted ones
                tokens_used = llm_tokens
            outcome = _coerce.outcome(
                success, result, error, summary, state_changes, tokens_used, latency_ms, timestamp
            )
            if RUNTIME_FOCUS.get() == (self, decision.id):
                RUNTIME_FOCUS.set((self, ""))
            run.apply_outcome(decision, outcome)
            recorder.outcome(decision, outcome, at_ns, error_type)
        except Exception:
            _logger.exception("otel_decisions: record_outcome failed")

    def _add_llm_tokens(self, decision_id: str, tokens: int) -> None:
        """Tokens of an LLM call made for `decision_id` (or for the run itself, when "")."""
        run = self._run
        if run is None or tokens <= 0:
            return
        if decision_id and decision_id in self._decisions and self._decisions[decision_id].outcome is None:
            self._llm_tokens[decision_id] = self._llm_tokens.get(decision_id, 0) + tokens
        else:
            run.metrics.total_tokens += tokens

    # --- problems --------------------------------------------------------------------------------
    def report_problem(
        self,
        severity: str,
        description: str,
        decision_id: str | None = None,
        root_cause: str | None = None,
        suggested_fix: str | None = None,
    ) -> str:
        """Record a problem on the current run; returns `prob_N`, or "" when no run is open."""
        run, recorder = self._run, self._recorder
        if run is None or recorder is None:
            _logger.warning(
                "report_problem called but no run in progress: [%s] %s",
                self._shown(severity),
                self._shown(description),
            )
            return ""
        return recorder.report_problem(run, (severity, description, decision_id, root_cause, suggested_fix))

    # --- conveniences ----------------------------------------------------------------------------
    def decide_and_execute(
        self,
        intent: str,
        options: list[dict[str, Any]],
        chosen: str,
        reasoning: str,
        executor: Callable[[], T],
        **decide_kwargs: Any,
    ) -> tuple[str, T]:
        """Record a decision, run `executor()`, record its outcome; re-raises the executor's error."""
        decision_id = self.decide(
            intent=intent, options=options, chosen=chosen, reasoning=reasoning, **decide_kwargs
        )
        start = time.perf_counter()
        try:
            result = executor()
        except Exception as exc:
            latency_ms = int((time.perf_counter() - start) * 1000)
            self._record_outcome(
                decision_id, False, None, _coerce.text(exc), "", None, 0, latency_ms, type(exc).__qualname__
            )
            raise
        latency_ms = int((time.perf_counter() - start) * 1000)
        self._record_outcome(decision_id, True, result, None, "", None, 0, latency_ms, None)
        return decision_id, result

    def quick_decision(self, intent: str, action: str, reasoning: str, node_id: str | None = None) -> str:
        """Record a decision with a single option, `action`, chosen."""
        return self.decide(
            intent=intent,
            options=[{"id": "action", "description": action, "action_type": "execute"}],
            chosen="action",
            reasoning=reasoning,
            node_id=node_id,
        )
