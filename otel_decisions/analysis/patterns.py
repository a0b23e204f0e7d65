"""What recurs across runs, and what to change: the seed's pattern, comparison and node queries.

Pure functions over `Run` models (no storage, no OpenTelemetry), so the reader can feed them runs
straight from spans. They take any iterable and make a single pass over runs and decisions, because
they are meant to be run over a whole store (100k runs) without materialising it twice.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Final

from otel_decisions.models import Run, RunStatus

__all__ = ["PatternAnalysis", "compare_runs", "find_patterns", "node_performance", "suggest_improvements"]

#: A node is problematic above this failure rate (strictly).
PROBLEMATIC_NODE_RATE: Final = 0.1
#: How many of the most frequent errors `find_patterns` reports.
TOP_FAILURES: Final = 5
#: Intents are grouped by this many leading characters when counting choices.
INTENT_KEY_CHARS: Final = 50
UNKNOWN_FAILURE: Final = "Unknown error"


@dataclass
class PatternAnalysis:
    """Patterns across the runs of one goal. Field order and names are the seed's."""

    goal_id: str
    run_count: int
    success_rate: float
    common_failures: list[tuple[str, int]]
    problematic_nodes: list[tuple[str, float]]
    decision_patterns: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output (tuples stay tuples, as in the seed; JSON makes them arrays)."""
        return {
            "goal_id": self.goal_id,
            "run_count": self.run_count,
            "success_rate": self.success_rate,
            "common_failures": list(self.common_failures),
            "problematic_nodes": list(self.problematic_nodes),
            "decision_patterns": self.decision_patterns,
        }

    def __str__(self) -> str:
        """The seed's human-readable report (a Builder reads this, so the layout is kept)."""
        lines = [
            f"=== Pattern Analysis for Goal {self.goal_id} ===",
            "",
            f"Runs Analyzed: {self.run_count}",
            f"Success Rate: {self.success_rate:.1%}",
        ]
        if self.common_failures:
            lines += ["", "Common Failures:"]
            lines.extend(f"  - {error} ({count} occurrences)" for error, count in self.common_failures)
        if self.problematic_nodes:
            lines += ["", "Problematic Nodes (failure rate):"]
            lines.extend(f"  - {node}: {rate:.1%} failure rate" for node, rate in self.problematic_nodes)
        return "\n".join(lines)


class _PatternCounter:
    """Everything `find_patterns` needs, counted in one pass; dicts keep first-seen order for ties."""

    def __init__(self) -> None:
        self.runs = 0
        self.completed = 0
        self.failures: defaultdict[str, int] = defaultdict(int)
        self.node_totals: defaultdict[str, int] = defaultdict(int)
        self.node_failures: defaultdict[str, int] = defaultdict(int)
        self.types: defaultdict[str, int] = defaultdict(int)
        self.choices: dict[str, defaultdict[str, int]] = {}

    def add(self, run: Run) -> None:
        self.runs += 1
        if run.status == RunStatus.COMPLETED:
            self.completed += 1
        for decision in run.decisions:
            node = decision.node_id
            self.node_totals[node] += 1
            if not decision.was_successful:
                self.node_failures[node] += 1
                # Only decisions that reported an outcome have an error to group by.
                if decision.outcome is not None:
                    self.failures[decision.outcome.error or UNKNOWN_FAILURE] += 1
            self.types[decision.decision_type.value] += 1
            chosen = decision.chosen_option
            if chosen is not None:
                intent_key = decision.intent[:INTENT_KEY_CHARS]
                per_intent = self.choices.get(intent_key)
                if per_intent is None:
                    per_intent = self.choices[intent_key] = defaultdict(int)
                per_intent[chosen.description] += 1

    def result(self, goal_id: str) -> PatternAnalysis:
        # nlargest is documented equal to sorted(..., reverse=True)[:n] (stable), without sorting all.
        common = heapq.nlargest(TOP_FAILURES, self.failures.items(), key=itemgetter(1))
        problematic = [
            (node, rate)
            for node, total in self.node_totals.items()
            if (rate := self.node_failures.get(node, 0) / total) > PROBLEMATIC_NODE_RATE
        ]
        problematic.sort(key=itemgetter(1), reverse=True)
        common_choices: dict[str, dict[str, Any]] = {}
        for intent, counts in self.choices.items():
            choice, count = max(counts.items(), key=itemgetter(1))  # first seen wins a tie
            common_choices[intent] = {"choice": choice, "count": count, "alternatives": len(counts) - 1}
        return PatternAnalysis(
            goal_id=goal_id,
            run_count=self.runs,
            success_rate=self.completed / self.runs,
            common_failures=common,
            problematic_nodes=problematic,
            decision_patterns={
                "decision_type_distribution": dict(self.types),
                "common_choices": common_choices,
            },
        )


def find_patterns(goal_id: str, runs: Iterable[Run]) -> PatternAnalysis | None:
    """Patterns across `runs` (the caller's selection of the goal's runs); None when there are none.

    Success rate is completed runs over all runs, so running, stuck and cancelled runs count against it.
    """
    counter = _PatternCounter()
    for run in runs:
        counter.add(run)
    if counter.runs == 0:
        return None
    return counter.result(goal_id)


def suggest_improvements(goal_id: str, runs: Iterable[Run]) -> list[dict[str, Any]]:
    """Prioritised suggestions from `find_patterns`: weak nodes, repeated errors, then the goal as a whole.

    Each is `{type, target, reason, recommendation, priority}`; `[]` when there are no runs.
    """
    patterns = find_patterns(goal_id, runs)
    if patterns is None:
        return []
    suggestions: list[dict[str, Any]] = []
    for node_id, rate in patterns.problematic_nodes:
        suggestions.append(
            {
                "type": "node_improvement",
                "target": node_id,
                "reason": f"Node has {rate:.1%} failure rate",
                "recommendation": (
                    f"Review and improve node '{node_id}' - high failure rate suggests prompt or tool issues"
                ),
                "priority": "high" if rate > 0.3 else "medium",
            }
        )
    for error, count in patterns.common_failures:
        if count >= 2:  # a one-off error is noise, not a pattern
            suggestions.append(
                {
                    "type": "error_handling",
                    "target": error,
                    "reason": f"Error occurred {count} times",
                    "recommendation": f"Add handling for: {error}",
                    "priority": "high" if count >= 5 else "medium",
                }
            )
    if patterns.success_rate < 0.8:
        suggestions.append(
            {
                "type": "architecture",
                "target": goal_id,
                "reason": f"Goal success rate is only {patterns.success_rate:.1%}",
                "recommendation": "Consider restructuring the agent graph or improving goal definition",
                "priority": "high",
            }
        )
    return suggestions


def compare_runs(run_1: Run | None, run_2: Run | None) -> dict[str, Any]:
    """Side-by-side facts and the differences between two runs, in the seed's order.

    Takes None for a run that was not found, so callers can pass a lookup result straight through.
    The node sets print like the seed's Python sets, but in first-seen order so output is reproducible.
    """
    if run_1 is None or run_2 is None:
        return {"error": "One or both runs not found"}

    differences: list[str] = []
    if run_1.status != run_2.status:
        differences.append(f"Status: {run_1.status.value} vs {run_2.status.value}")
    if len(run_1.decisions) != len(run_2.decisions):
        differences.append(f"Decision count: {len(run_1.decisions)} vs {len(run_2.decisions)}")
    for i, (d1, d2) in enumerate(zip(run_1.decisions, run_2.decisions, strict=False)):
        if d1.chosen_option_id != d2.chosen_option_id:
            differences.append(
                f"Diverged at decision {i}: chose '{d1.chosen_option_id}' vs '{d2.chosen_option_id}'"
            )
            break
    nodes_1, nodes_2 = run_1.metrics.nodes_executed, run_2.metrics.nodes_executed
    only_1 = _ordered_difference(nodes_1, nodes_2)
    only_2 = _ordered_difference(nodes_2, nodes_1)
    if only_1:
        differences.append(f"Nodes only in run 1: {_set_text(only_1)}")
    if only_2:
        differences.append(f"Nodes only in run 2: {_set_text(only_2)}")

    return {"run_1": _run_facts(run_1), "run_2": _run_facts(run_2), "differences": differences}


def node_performance(node_id: str, runs: Iterable[Run]) -> dict[str, Any]:
    """How one node's decisions fared across `runs`; decisions of other nodes are ignored.

    Latency is averaged over all the node's decisions, including those without an outcome (the seed's
    definition). Rates are 0.0 when the node made no decisions.
    """
    total = successful = latency = tokens = 0
    types: defaultdict[str, int] = defaultdict(int)
    for run in runs:
        for decision in run.decisions:
            if decision.node_id != node_id:
                continue
            total += 1
            if decision.was_successful:
                successful += 1
            if decision.outcome is not None:
                latency += decision.outcome.latency_ms
                tokens += decision.outcome.tokens_used
            types[decision.decision_type.value] += 1
    return {
        "node_id": node_id,
        "total_decisions": total,
        "success_rate": successful / total if total else 0.0,
        "avg_latency_ms": latency / total if total else 0.0,
        "total_tokens": tokens,
        "decision_type_distribution": dict(types),
    }


def _run_facts(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status.value,
        "decisions": len(run.decisions),
        "success_rate": run.metrics.success_rate,
    }


def _ordered_difference(nodes: list[str], other: list[str]) -> list[str]:
    """Nodes of `nodes` absent from `other`, unique, in first-seen order."""
    exclude = set(other)
    return list(dict.fromkeys(n for n in nodes if n not in exclude))


def _set_text(nodes: list[str]) -> str:
    """The text `str(set(nodes))` would give, with a deterministic element order."""
    return "{" + ", ".join(repr(n) for n in nodes) + "}"
