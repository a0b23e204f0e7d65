"""`BuilderQuery`: the seed's analysis API, answered from exported spans alone.

Usage::

    query = BuilderQuery(".otel-decisions")          # a directory, a file, or a glob
    print(query.find_patterns("calculator"))
    print(query.analyze_failure(query.get_recent_failures()[0].run_id))

Every call first reads what was appended to the span files since the previous call, so a query object
can be kept open while agents run. Run lists are newest first.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from otel_decisions.analysis.decision_stats import OptionStat, RiskyOption, UnexploredOption
from otel_decisions.analysis.facts import RunFacts
from otel_decisions.analysis.failures import FailureAnalysis, analyze_failure
from otel_decisions.analysis.insights import GoalInsights, analyze_goal
from otel_decisions.analysis.patterns import PatternAnalysis, compare_runs, find_patterns, node_performance
from otel_decisions.analysis.run_shapes import LoopPattern, NodeHotspot
from otel_decisions.contract import DECISION_DELEGATED_RUN_IDS, RUN_DELEGATED_FROM
from otel_decisions.models import Run, RunSummary
from otel_decisions.reading.run_store import Progress, RunStore

if TYPE_CHECKING:
    from anthropic import Anthropic

    from otel_decisions.analysis.llm import LLMSuggestionReport

__all__ = ["BuilderQuery"]


class BuilderQuery:
    """Questions the Builder asks about recorded runs."""

    def __init__(self, storage_path: str | Path, *, progress: Progress | None = None) -> None:
        """`progress(bytes_read, bytes_total)` is called while span files are read (for a progress bar)."""
        self.storage = RunStore(storage_path, progress=progress)

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
    # Cross-run questions read the store's compact run facts, never full runs: they stay fast and small
    # over millions of spans. Full runs are loaded only for the runs a result returns.
    def list_runs_for_goal(self, goal_id: str) -> list[RunSummary]:
        """Summaries of the runs of `goal_id`, newest first."""
        return self._summaries(f.run_id for f in self.storage.facts() if f.goal_id == goal_id)

    def get_recent_failures(self, limit: int = 10) -> list[RunSummary]:
        """Summaries of the newest failed runs, at most `limit`."""
        if type(limit) is not int:
            try:
                limit = int(limit)
            except (TypeError, ValueError):
                limit = 10  # the default, for a limit that is no number
        failed = [f.run_id for f in self.storage.facts() if f.failed]
        return self._summaries(failed[: max(0, limit)])

    def find_patterns(self, goal_id: str) -> PatternAnalysis | None:
        """Success rate, common failures, problematic nodes and choices of `goal_id`; None without runs."""
        return find_patterns(goal_id, self._goal_facts(goal_id))

    def compare_runs(self, run_id_1: str, run_id_2: str) -> dict[str, Any]:
        """Differences between two runs, or `{"error": ...}` when either is missing."""
        return compare_runs(self.storage.load_run(run_id_1), self.storage.load_run(run_id_2))

    def suggest_improvements(self, goal_id: str) -> list[dict[str, Any]]:
        """Prioritised, evidence-backed improvement suggestions for `goal_id` (see `analysis.insights`)."""
        insights = self.insights(goal_id)
        return insights.suggestions if insights is not None else []

    def get_node_performance(self, node_id: str) -> dict[str, Any]:
        """Decision count, success rate, latency and tokens of `node_id` across all runs."""
        return node_performance(node_id, self.storage.facts())

    # --- deeper analyses (beyond the seed) ---------------------------------------------------------
    def insights(self, goal_id: str) -> GoalInsights | None:
        """Every analysis of `goal_id` in one pass (patterns, options, loops, hot spots, suggestions)."""
        return analyze_goal(goal_id, self._goal_facts(goal_id))

    def option_stats(self, goal_id: str) -> list[OptionStat]:
        """Counts and success rates per (node, intent, chosen option)."""
        insights = self.insights(goal_id)
        return insights.options if insights is not None else []

    def risky_options(self, goal_id: str) -> list[RiskyOption]:
        """Options over-represented in failed runs, with the statistic and the runs that show it."""
        insights = self.insights(goal_id)
        return insights.risky_options if insights is not None else []

    def unexplored_options(self, goal_id: str) -> list[UnexploredOption]:
        """Options offered but never chosen."""
        insights = self.insights(goal_id)
        return insights.unexplored_options if insights is not None else []

    def loops(self, goal_id: str) -> list[LoopPattern]:
        """Retry loops and flip-flops per decision point."""
        insights = self.insights(goal_id)
        return insights.loops if insights is not None else []

    def hotspots(self, goal_id: str | None = None) -> list[NodeHotspot]:
        """Latency and token totals per node (of `goal_id`, or of every run), the slowest first."""
        facts = self.storage.facts() if goal_id is None else self._goal_facts(goal_id)
        insights = analyze_goal(goal_id or "*", facts)
        return insights.hotspots if insights is not None else []

    def suggest_with_llm(
        self, goal_id: str, *, model: str | None = None, client: Anthropic | None = None
    ) -> LLMSuggestionReport | None:
        """Claude's suggestions for `goal_id` from a redacted evidence pack; None without runs.

        Only suggestions citing runs and decisions that exist are kept (the rest are counted). Needs
        `otel-decisions[claude]` and `ANTHROPIC_API_KEY` (`ANTHROPIC_BASE_URL` is honoured); raises
        `ConfigError` without them and `LLMError` when the API fails. See `analysis.llm`.
        """
        from otel_decisions.analysis.llm import suggest_with_claude  # the optional part of the Builder

        insights = self.insights(goal_id)
        if insights is None:
            return None

        def goal_run(run_id: str) -> RunFacts | None:  # only runs of this goal count as evidence
            facts = self.storage.run_facts(run_id)
            return facts if facts is not None and facts.goal_id == goal_id else None

        def decision_exists(run_id: str, decision_id: str) -> bool:
            facts = goal_run(run_id)
            return facts is not None and any(d.decision_id == decision_id for d in facts.decisions)

        return suggest_with_claude(
            insights,
            run_exists=lambda run_id: goal_run(run_id) is not None,
            decision_exists=decision_exists,
            client=client,
            model=model,
        )

    def _goal_facts(self, goal_id: str) -> list[RunFacts]:
        return [f for f in self.storage.facts() if f.goal_id == goal_id]

    def _summaries(self, run_ids: Iterable[str]) -> list[RunSummary]:
        summaries = []
        for run_id in run_ids:
            run = self.storage.load_run(run_id)
            if run is not None:
                summaries.append(RunSummary.from_run(run))
        return summaries
