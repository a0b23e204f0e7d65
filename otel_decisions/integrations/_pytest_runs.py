"""The in-memory side of the pytest plugin: span capture, runs rebuilt from it, assertion helpers.

Spans reach `SpanCapture` through `otel_decisions.export.pipeline.add_span_observer`, from every span
directory, in the thread that ends them. A run's spans are rebuilt into a `Run` exactly as the Builder
reads them from a file (encoded as one OTLP/JSON line, parsed, `contract.run_from_spans`), so what a test
asserts is what `otel-decisions` would show.

Runs still open: `Runtime` queues decisions and outcomes and the run span itself ends with the run, so
every read first flushes the pipelines (`flush_open_runs`), which turns queued decisions of open runs
into spans. An open run therefore appears with status `running`, its decisions and outcomes so far,
metrics recounted from them, and no problems, narrative or output (those are on the run span, recorded
when the run ends). Decisions of decorated code still in progress appear once their block ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from otel_decisions import contract
from otel_decisions.export import pipeline as _pipeline
from otel_decisions.export.otlp_json import encode_line
from otel_decisions.models import Decision, Problem, Run, RunStatus
from otel_decisions.reading.otlp_files import parse_line

__all__ = ["DecisionRuns", "SpanCapture", "flush_open_runs", "runs_from_spans"]

_MAX_LINES: Final = 20  # lines listed in one failure message


def flush_open_runs() -> None:
    """Turn the queued decisions and outcomes of every open run, in every span directory, into spans
    (they reach the span observers and are written to their files, as the periodic flush would)."""
    for pipeline in list(_pipeline._every_pipeline):  # no public "every pipeline" API yet
        pipeline.flush()


class SpanCapture(SpanProcessor):
    """A span observer keeping our ended spans in memory (thread-safe)."""

    def __init__(self) -> None:
        self._spans: list[ReadableSpan] = []
        self._lock = threading.Lock()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if contract.record_kind(span.attributes or {}) is None:
            return  # another instrumentation's span (an LLM call): not part of a Run
        with self._lock:
            self._spans.append(span)

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def spans(self) -> list[ReadableSpan]:
        with self._lock:
            return list(self._spans)

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()


def runs_from_spans(spans: Sequence[ReadableSpan]) -> list[Run]:
    """The runs `spans` record, oldest first, rebuilt as the Builder reads them from a file."""
    if not spans:
        return []
    by_trace: dict[str, list[contract.SpanRecord]] = {}
    for record in parse_line(encode_line(spans)):
        by_trace.setdefault(record.trace_id, []).append(record)
    runs = [run for group in by_trace.values() if (run := contract.run_from_spans(group)) is not None]
    runs.sort(key=lambda run: run.started_at)
    return runs


# --- message formatting ----------------------------------------------------------------------------
def _run_label(run: Run) -> str:
    return f"run {run.id} (goal {run.goal_id!r}, {run.status.value})"


def _decision_line(run: Run, decision: Decision) -> str:
    outcome = decision.outcome
    mark = "…" if outcome is None else ("✓" if outcome.success else "✗")
    return (
        f"{mark} {decision.id} [{decision.node_id}] {decision.intent!r} chose "
        f"{decision.chosen_option_id!r} (run {run.id}, goal {run.goal_id!r})"
    )


def _problem_line(run: Run, problem: Problem) -> str:
    details = [f"run {run.id}, goal {run.goal_id!r}"]
    if problem.decision_id:
        details.append(f"decision {problem.decision_id}")
    if problem.root_cause:
        details.append(f"root cause: {problem.root_cause}")
    if problem.suggested_fix:
        details.append(f"suggested fix: {problem.suggested_fix}")
    return f"[{problem.severity}] {problem.description} ({'; '.join(details)})"


def _listing(lines: Iterable[str]) -> str:
    items = list(lines)
    shown = [f"  {line}" for line in items[:_MAX_LINES]]
    if len(items) > _MAX_LINES:
        shown.append(f"  … and {len(items) - _MAX_LINES} more")
    return "\n".join(shown)


def _filters(**given: str | None) -> str:
    parts = [f"{key}={value!r}" for key, value in given.items() if value is not None]
    return ", ".join(parts) if parts else "no filter"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _is_critical(problem: Problem) -> bool:
    return problem.severity.strip().lower() == "critical"


class DecisionRuns:
    """The runs recorded while a test runs, read back from their spans, with assertion helpers.

    Every read flushes the queued decisions of runs still open first (see the module docstring); runs
    are listed oldest first. Filters: `goal_id` and `node_id` match exactly, `intent` matches the
    decisions whose intent contains it.
    """

    def __init__(self, capture: SpanCapture, flush: Callable[[], None] = flush_open_runs) -> None:
        self._capture = capture
        self._flush = flush

    # --- reading -----------------------------------------------------------------------------------
    @property
    def runs(self) -> list[Run]:
        """Every run recorded during the test, oldest first (rebuilt on each access)."""
        self._flush()
        return runs_from_spans(self._capture.spans())

    def runs_for(self, goal_id: str | None = None) -> list[Run]:
        """The runs of `goal_id` (every run when None), oldest first."""
        return [run for run in self.runs if goal_id is None or run.goal_id == goal_id]

    def run(self, goal_id: str | None = None) -> Run:
        """The one run recorded (of `goal_id`); AssertionError when there are none or several."""
        __tracebackhide__ = True
        runs = self.runs
        found = [run for run in runs if goal_id is None or run.goal_id == goal_id]
        if len(found) == 1:
            return found[0]
        wanted = "one run" if goal_id is None else f"one run of goal {goal_id!r}"
        message = f"expected {wanted}, {_plural(len(found), 'run')} recorded"
        if runs:
            message += ":\n" + _listing(_run_label(run) for run in runs)
        raise AssertionError(message)

    def decisions(
        self, node_id: str | None = None, intent: str | None = None, *, goal_id: str | None = None
    ) -> list[Decision]:
        """The decisions matching the filters, run by run (oldest first), in the order they were made."""
        return [decision for _, decision in self._matching(self.runs, node_id, intent, goal_id)]

    def problems(self, severity: str | None = None, *, goal_id: str | None = None) -> list[Problem]:
        """The problems reported by ended runs (of `goal_id`), optionally of one `severity` (any case)."""
        wanted = None if severity is None else severity.strip().lower()
        return [
            problem
            for run in self.runs_for(goal_id)
            for problem in run.problems
            if wanted is None or problem.severity.strip().lower() == wanted
        ]

    def total_tokens(self, goal_id: str | None = None) -> int:
        """Tokens used by the runs (of `goal_id`) together."""
        return sum(run.metrics.total_tokens for run in self.runs_for(goal_id))

    def clear(self) -> None:
        """Forget the runs recorded so far (e.g. after a warm-up)."""
        self._flush()
        self._capture.clear()

    # --- assertions ----------------------------------------------------------------------------------
    def assert_chose(
        self,
        option_id: str,
        *,
        intent: str | None = None,
        node_id: str | None = None,
        goal_id: str | None = None,
    ) -> Decision:
        """Some decision matching the filters chose `option_id`; returns the first that did.

        Fails listing what the matching decisions chose instead (or every decision recorded when
        none matches)."""
        __tracebackhide__ = True
        runs = self.runs
        matching = self._matching(runs, node_id, intent, goal_id)
        for _, decision in matching:
            if decision.chosen_option_id == option_id:
                return decision
        filters = _filters(intent=intent, node_id=node_id, goal_id=goal_id)
        if matching:
            raise AssertionError(
                f"no decision ({filters}) chose {option_id!r}; "
                f"{_plural(len(matching), 'matching decision')} chose instead:\n"
                + _listing(_decision_line(run, decision) for run, decision in matching)
            )
        recorded = self._matching(runs, None, None, None)
        message = f"no decision matches {filters}, so none chose {option_id!r}; "
        if not recorded:
            raise AssertionError(message + f"{_plural(len(runs), 'run')} recorded, with no decisions")
        raise AssertionError(
            message
            + f"{_plural(len(recorded), 'decision')} recorded:\n"
            + _listing(_decision_line(run, decision) for run, decision in recorded)
        )

    def assert_no_critical_problems(self, goal_id: str | None = None) -> None:
        """No run (of `goal_id`) reported a `critical` problem.

        Problems are recorded on the run span when a run ends, so a run still open fails this
        assertion (end the run first) rather than passing for want of evidence."""
        __tracebackhide__ = True
        runs = self.runs_for(goal_id)
        still_open = [run for run in runs if run.status == RunStatus.RUNNING]
        if still_open:
            raise AssertionError(
                f"cannot check problems: {_plural(len(still_open), 'run')} still open (a run's problems "
                "are recorded when it ends):\n" + _listing(_run_label(run) for run in still_open)
            )
        critical = [(run, problem) for run in runs for problem in run.problems if _is_critical(problem)]
        if critical:
            affected = len({run.id for run, _ in critical})
            raise AssertionError(
                f"{_plural(len(critical), 'critical problem')} in {_plural(affected, 'run')}:\n"
                + _listing(_problem_line(run, problem) for run, problem in critical)
            )

    def assert_tokens_within(self, budget: int, goal_id: str | None = None) -> None:
        """Every run (of `goal_id`) used at most `budget` tokens; at least one run was recorded.

        Fails naming each run over budget, its total and the decisions that used the most tokens. A run
        still open counts the tokens of the outcomes recorded so far."""
        __tracebackhide__ = True
        runs = self.runs_for(goal_id)
        if not runs:
            where = "" if goal_id is None else f" of goal {goal_id!r}"
            raise AssertionError(f"no run{where} recorded: nothing to check against the budget of {budget}")
        over = [run for run in runs if run.metrics.total_tokens > budget]
        if over:
            lines = []
            for run in over:
                spenders = sorted(
                    (d for d in run.decisions if d.outcome is not None and d.outcome.tokens_used > 0),
                    key=lambda d: -(d.outcome.tokens_used if d.outcome is not None else 0),
                )[:3]
                top = ", ".join(
                    f"{d.id} [{d.node_id}] {d.intent!r}: {d.outcome.tokens_used}"
                    for d in spenders
                    if d.outcome is not None
                )
                lines.append(
                    f"{_run_label(run)} used {run.metrics.total_tokens} tokens"
                    + (f"; most in {top}" if top else "")
                )
            raise AssertionError(
                f"{_plural(len(over), 'run')} over the budget of {budget} tokens:\n" + _listing(lines)
            )

    def assert_succeeded(self, goal_id: str | None = None) -> None:
        """Every run (of `goal_id`) ended `completed`; at least one run was recorded."""
        __tracebackhide__ = True
        runs = self.runs_for(goal_id)
        if not runs:
            where = "" if goal_id is None else f" of goal {goal_id!r}"
            raise AssertionError(f"no run{where} recorded")
        unsuccessful = [run for run in runs if run.status != RunStatus.COMPLETED]
        if unsuccessful:
            lines = []
            for run in unsuccessful:
                line = _run_label(run)
                failed = next(
                    (d for d in run.decisions if d.outcome is not None and not d.outcome.success), None
                )
                if failed is not None and failed.outcome is not None:
                    line += f"; first failed decision {failed.id} {failed.intent!r}: {failed.outcome.error}"
                if run.narrative:
                    line += f"; {run.narrative}"
                lines.append(line)
            raise AssertionError(f"{_plural(len(unsuccessful), 'run')} did not complete:\n" + _listing(lines))

    @staticmethod
    def _matching(
        runs: list[Run], node_id: str | None, intent: str | None, goal_id: str | None
    ) -> list[tuple[Run, Decision]]:
        return [
            (run, decision)
            for run in runs
            if goal_id is None or run.goal_id == goal_id
            for decision in run.decisions
            if (node_id is None or decision.node_id == node_id)
            and (intent is None or intent in decision.intent)
        ]
