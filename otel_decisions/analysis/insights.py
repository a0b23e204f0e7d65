"""Everything the Builder learns about one goal, in one pass, and the suggestions that follow from it.

`analyze_goal` feeds each run once to every counter (patterns, option statistics, run shapes), so a
store is scanned once however many questions are asked; the HTML report, the CLI and the Claude
evidence pack all read the resulting `GoalInsights`.

Suggestions are deterministic rules. The seed's three come first, unchanged in wording
(`node_improvement`, `error_handling`, `architecture`); the evidence-based rules follow: options
over-represented in failed runs (`option_risk`), `retry_loop`, `flip_flop`, options never tried where
decisions fail (`unexplored_option`), and latency or token hot spots. Every suggestion carries
`evidence`: the run and decision ids that support it, and how many there are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from otel_decisions.analysis.decision_stats import (
    OptionStat,
    OptionStatsCounter,
    RiskyOption,
    UnexploredOption,
)
from otel_decisions.analysis.facts import RunFacts, as_facts
from otel_decisions.analysis.patterns import PROBLEMATIC_NODE_RATE, PatternAnalysis, PatternCounter
from otel_decisions.analysis.run_shapes import (
    RETRY_LOOP,
    LoopPattern,
    NodeHotspot,
    RunShapeCounter,
    SlowDecision,
    TimeBucket,
)
from otel_decisions.models import Run

__all__ = ["GoalInsights", "analyze_goal", "suggest_improvements"]

#: A node is a hot spot when it holds at least this share of the goal's latency (or tokens).
HOTSPOT_SHARE: Final = 0.5
#: Loops and flip-flops seen in fewer runs are left out of the suggestions (still listed in insights).
MIN_LOOP_RUNS: Final = 2
#: At most this many suggestions of each evidence-based type.
MAX_PER_RULE: Final = 10


@dataclass(slots=True)
class GoalInsights:
    """The Builder's view of one goal (see the module docstring for each part)."""

    goal_id: str
    status_counts: dict[str, int]
    patterns: PatternAnalysis
    options: list[OptionStat]
    risky_options: list[RiskyOption]
    unexplored_options: list[UnexploredOption]
    loops: list[LoopPattern]
    hotspots: list[NodeHotspot]
    slowest_decisions: list[SlowDecision]
    failures_over_time: list[TimeBucket]
    suggestions: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (the CLI's `--json`, the report and the Claude evidence pack use it)."""
        return {
            "goal_id": self.goal_id,
            "status_counts": dict(self.status_counts),
            "patterns": self.patterns.to_dict(),
            "options": [o.to_dict() for o in self.options],
            "risky_options": [r.to_dict() for r in self.risky_options],
            "unexplored_options": [u.to_dict() for u in self.unexplored_options],
            "loops": [lp.to_dict() for lp in self.loops],
            "hotspots": [h.to_dict() for h in self.hotspots],
            "slowest_decisions": [s.to_dict() for s in self.slowest_decisions],
            "failures_over_time": [b.to_dict() for b in self.failures_over_time],
            "suggestions": self.suggestions,
        }


def analyze_goal(goal_id: str, runs: Iterable[Run | RunFacts]) -> GoalInsights | None:
    """Every analysis of `goal_id` over `runs` (the caller's selection), in one pass; None without runs."""
    patterns, options, shapes = PatternCounter(), OptionStatsCounter(), RunShapeCounter()
    status_counts: dict[str, int] = {}
    for run in as_facts(runs):
        status_counts[run.status] = status_counts.get(run.status, 0) + 1
        patterns.add(run)
        options.add(run)
        shapes.add(run)
    if patterns.runs == 0:
        return None
    insights = GoalInsights(
        goal_id=goal_id,
        status_counts=status_counts,
        patterns=patterns.result(goal_id),
        options=options.option_stats(),
        risky_options=options.risky_options(),
        unexplored_options=options.unexplored_options(),
        loops=shapes.loops(),
        hotspots=shapes.hotspots(),
        slowest_decisions=shapes.slowest_decisions(),
        failures_over_time=shapes.failures_over_time(),
        suggestions=[],
    )
    insights.suggestions = _seed_suggestions(insights.patterns, patterns) + _evidence_suggestions(insights)
    return insights


def suggest_improvements(goal_id: str, runs: Iterable[Run | RunFacts]) -> list[dict[str, Any]]:
    """Prioritised suggestions for `goal_id`, each `{type, target, reason, recommendation, priority,
    evidence}`; `[]` when there are no runs."""
    insights = analyze_goal(goal_id, runs)
    return insights.suggestions if insights is not None else []


def _suggestion(
    kind: str, target: str, reason: str, recommendation: str, priority: str, evidence: dict[str, Any]
) -> dict[str, Any]:
    return {
        "type": kind,
        "target": target,
        "reason": reason,
        "recommendation": recommendation,
        "priority": priority,
        "evidence": evidence,
    }


def _seed_suggestions(patterns: PatternAnalysis, counter: PatternCounter) -> list[dict[str, Any]]:
    """The seed's rules and wording: weak nodes, repeated errors, then the goal as a whole."""
    out = [
        _suggestion(
            "node_improvement",
            node_id,
            f"Node has {rate:.1%} failure rate",
            f"Review and improve node '{node_id}' - high failure rate suggests prompt or tool issues",
            "high" if rate > 0.3 else "medium",
            counter.node_evidence[node_id].to_dict(),
        )
        for node_id, rate in patterns.problematic_nodes
    ]
    out += [
        _suggestion(
            "error_handling",
            error,
            f"Error occurred {count} times",
            f"Add handling for: {error}",
            "high" if count >= 5 else "medium",
            counter.error_evidence[error].to_dict(),
        )
        for error, count in patterns.common_failures
        if count >= 2  # a one-off error is noise, not a pattern
    ]
    if patterns.success_rate < 0.8:
        out.append(
            _suggestion(
                "architecture",
                patterns.goal_id,
                f"Goal success rate is only {patterns.success_rate:.1%}",
                "Consider restructuring the agent graph or improving goal definition",
                "high",
                counter.unsuccessful_runs.to_dict(),
            )
        )
    return out


def _evidence_suggestions(insights: GoalInsights) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for risky in insights.risky_options[:MAX_PER_RULE]:
        alternative = _best_alternative(insights.options, risky)
        without = risky.failure_rate_without or 0.0
        out.append(
            _suggestion(
                "option_risk",
                f"{risky.node_id}: {risky.option}",
                f"Chosen in {risky.failed_with} failed runs at '{risky.intent}': "
                f"{risky.failure_rate_with:.0%} of runs choosing it failed vs {without:.0%} otherwise "
                f"(Fisher p={risky.p_value:.2g})",
                f"Review when node '{risky.node_id}' chooses '{risky.option}'"
                + (f"; '{alternative}' does better at this point" if alternative else ""),
                "high" if risky.p_value <= 0.01 else "medium",
                risky.evidence.to_dict(),
            )
        )
    widespread = [lp for lp in insights.loops if lp.runs >= MIN_LOOP_RUNS]
    retry_loops = [lp for lp in widespread if lp.kind == RETRY_LOOP][:MAX_PER_RULE]
    flip_flops = [lp for lp in widespread if lp.kind != RETRY_LOOP][:MAX_PER_RULE]
    for loop in retry_loops + flip_flops:
        if loop.kind == RETRY_LOOP:
            reason = f"{loop.runs} runs repeated '{loop.intent}' up to {loop.longest} times in a row"
            advice = "Cap retries or change strategy after a failed attempt"
        else:
            reason = (
                f"{loop.runs} runs switched back and forth at '{loop.intent}' ({' → '.join(loop.example)})"
            )
            advice = "Make the choice criteria decisive, or remember why an option was abandoned"
        out.append(
            _suggestion(
                loop.kind,
                loop.node_id,
                reason,
                f"{advice} in node '{loop.node_id}'",
                "medium" if loop.failed_runs else "low",
                loop.evidence.to_dict(),
            )
        )
    risky_points = [u for u in insights.unexplored_options if u.point_failure_rate > PROBLEMATIC_NODE_RATE]
    for unexplored in risky_points[:MAX_PER_RULE]:
        out.append(
            _suggestion(
                "unexplored_option",
                f"{unexplored.node_id}: {unexplored.option}",
                f"Offered {unexplored.times_offered} times at '{unexplored.intent}' and never chosen, where "
                f"{unexplored.point_failure_rate:.0%} of decisions did not succeed",
                f"Let node '{unexplored.node_id}' try '{unexplored.option}' (or drop it from the options)",
                "low",
                unexplored.evidence.to_dict(),
            )
        )
    if len(insights.hotspots) >= 2:
        for spot in insights.hotspots:
            for kind, share, noun, what in (
                ("latency_hotspot", spot.latency_share, "latency", f"{spot.total_latency_ms} ms"),
                ("token_hotspot", spot.token_share, "tokens", f"{spot.total_tokens} tokens"),
            ):
                if share >= HOTSPOT_SHARE:
                    out.append(
                        _suggestion(
                            kind,
                            spot.node_id,
                            f"Node accounts for {share:.0%} of the goal's {noun} ({what})",
                            f"Optimise node '{spot.node_id}' first: cache, batch, or use a smaller model",
                            "low",
                            spot.evidence.to_dict(),
                        )
                    )
    return out


def _best_alternative(options: list[OptionStat], risky: RiskyOption) -> str | None:
    """The other option chosen at the same decision point whose runs failed least, if they failed less.

    Both sides are compared on the same measure: the share of the runs choosing the option that failed.
    """
    same_point = [o for o in options if o.node_id == risky.node_id and o.intent == risky.intent and o.runs]
    own = next((o for o in same_point if o.option == risky.option), None)
    others = [o for o in same_point if o.option != risky.option]
    if own is None or not others:
        return None
    best = min(others, key=lambda o: (o.failed_runs / o.runs, -o.chosen))
    return best.option if best.failed_runs / best.runs < own.failed_runs / own.runs else None
