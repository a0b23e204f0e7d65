"""`BuilderQuery`: the seed's analysis API, answered from exported spans alone.

Usage::

    query = BuilderQuery(".otel-decisions")          # a directory, a file, or a glob
    print(query.find_patterns("calculator"))
    print(query.analyze_failure(query.get_recent_failures()[0].run_id))

Every call first reads what was appended to the span files since the previous call, so a query object
can be kept open while agents run. Run lists are newest first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from otel_decisions.analysis.failures import FailureAnalysis, analyze_failure
from otel_decisions.analysis.patterns import (
    PatternAnalysis,
    compare_runs,
    find_patterns,
    node_performance,
    suggest_improvements,
)
from otel_decisions.contract import DECISION_DELEGATED_RUN_IDS, RUN_DELEGATED_FROM
from otel_decisions.models import Run, RunStatus, RunSummary
from otel_decisions.reading.run_store import RunStore

__all__ = ["BuilderQuery"]


class BuilderQuery:
    """Questions the Builder asks about recorded runs."""

    def __init__(self, storage_path: str | Path) -> None:
        self.storage = RunStore(storage_path)

    # --- single runs -----------------------------------------------------------------------------
    def get_run_summary(self, run_id: str) -> RunSummary | None:
        """Summary of run `run_id`, or None."""
        return self.storage.load_summary(run_id)

    def get_full_run(self, run_id: str) -> Run | None:
        """Run `run_id` with all its decisions, or None."""
        return self.storage.load_run(run_id)

    def execution_id(self, run_id: str) -> str | None:
        """The trace id of run `run_id` (to find it in Jaeger), or None."""
        return self.storage.execution_id(run_id)

    def get_delegations(self, run_id: str) -> list[dict[str, str]]:
        """Sub-runs started by delegation decisions of run `run_id`: `{"decision_id", "run_id"}` each."""
        run = self.storage.load_run(run_id)
        if run is None:
            return []
        return [
            {"decision_id": d.id, "run_id": sub}
            for d in run.decisions
            for sub in (d.model_extra or {}).get(DECISION_DELEGATED_RUN_IDS, [])
        ]

    def get_delegating_decision(self, run_id: str) -> dict[str, str] | None:
        """For a sub-run: the run and decision that delegated to it (`run_id`, `decision_id`,
        `execution_id`), or None."""
        run = self.storage.load_run(run_id)
        origin = (run.model_extra or {}).get(RUN_DELEGATED_FROM) if run is not None else None
        return dict(origin) if isinstance(origin, dict) else None

    def get_decision_trace(self, run_id: str) -> list[str]:
        """`summary_for_builder()` of each decision of run `run_id`; [] when unknown."""
        run = self.storage.load_run(run_id)
        return [d.summary_for_builder() for d in run.decisions] if run is not None else []

    def analyze_failure(self, run_id: str) -> FailureAnalysis | None:
        """Why run `run_id` failed; None unless it exists and failed."""
        run = self.storage.load_run(run_id)
        return analyze_failure(run) if run is not None else None

    # --- across runs -----------------------------------------------------------------------------
    def list_runs_for_goal(self, goal_id: str) -> list[RunSummary]:
        """Summaries of the runs of `goal_id`, newest first."""
        return [RunSummary.from_run(r) for r in self._goal_runs(goal_id)]

    def get_recent_failures(self, limit: int = 10) -> list[RunSummary]:
        """Summaries of the newest failed runs, at most `limit`."""
        failed = [r for r in self.storage.runs() if r.status == RunStatus.FAILED]
        return [RunSummary.from_run(r) for r in failed[: max(0, limit)]]

    def find_patterns(self, goal_id: str) -> PatternAnalysis | None:
        """Success rate, common failures, problematic nodes and choices of `goal_id`; None without runs."""
        return find_patterns(goal_id, self._goal_runs(goal_id))

    def compare_runs(self, run_id_1: str, run_id_2: str) -> dict[str, Any]:
        """Differences between two runs, or `{"error": ...}` when either is missing."""
        return compare_runs(self.storage.load_run(run_id_1), self.storage.load_run(run_id_2))

    def suggest_improvements(self, goal_id: str) -> list[dict[str, Any]]:
        """Prioritised improvement suggestions for `goal_id`."""
        return suggest_improvements(goal_id, self._goal_runs(goal_id))

    def get_node_performance(self, node_id: str) -> dict[str, Any]:
        """Decision count, success rate, latency and tokens of `node_id` across all runs."""
        return node_performance(node_id, self.storage.runs())

    def _goal_runs(self, goal_id: str) -> list[Run]:
        return [r for r in self.storage.runs() if r.goal_id == goal_id]
