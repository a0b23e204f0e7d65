"""What recurs across runs, and what to change: the seed's pattern, comparison and node queries.

Pure functions over run facts (`analysis.facts`; seed `Run` models are accepted too), with no storage
and no OpenTelemetry, so the reader can feed them runs straight from spans. They take any iterable and
make a single pass over runs and decisions: they are meant to run over a whole store.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Final

from otel_decisions.analysis.evidence import Evidence
from otel_decisions.analysis.facts import RunFacts, as_facts
from otel_decisions.models import Run

__all__ = ["PatternAnalysis", "PatternCounter", "compare_runs", "find_patterns", "node_performance"]

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


class PatternCounter:
    """Everything `find_patterns` needs, counted in one pass; dicts keep first-seen order for ties.

    It also keeps the evidence (run and decision ids) behind each failing node, each error and each
    unsuccessful run, which the suggestions cite.
    """

    def __init__(self) -> None:
        self.runs = 0
        self.completed = 0
        self.failures: defaultdict[str, int] = defaultdict(int)
        self.node_totals: defaultdict[str, int] = defaultdict(int)
        self.node_failures: defaultdict[str, int] = defaultdict(int)
        self.types: defaultdict[str, int] = defaultdict(int)
        self.choices: dict[str, defaultdict[str, int]] = {}
        self.node_evidence: defaultdict[str, Evidence] = defaultdict(Evidence)
        self.error_evidence: defaultdict[str, Evidence] = defaultdict(Evidence)
        self.unsuccessful_runs = Evidence()

    def add(self, run: RunFacts) -> None:
        self.runs += 1
        run_id = run.run_id
        if run.completed:
            self.completed += 1
        first_failed: str | None = None
        for decision in run.decisions:
            node = decision.node_id
            self.node_totals[node] += 1
            if decision.success is not True:
                self.node_failures[node] += 1
                self.node_evidence[node].add(run_id, decision.decision_id)
                if first_failed is None:
                    first_failed = decision.decision_id
                # Only decisions that reported an outcome have an error to group by.
                if decision.success is False:
                    error = decision.error or UNKNOWN_FAILURE
                    self.failures[error] += 1
                    self.error_evidence[error].add(run_id, decision.decision_id)
            self.types[decision.decision_type] += 1
            label = decision.chosen_label
            if label is not None:
                intent_key = decision.intent[:INTENT_KEY_CHARS]
                per_intent = self.choices.get(intent_key)
                if per_intent is None:
                    per_intent = self.choices[intent_key] = defaultdict(int)
                per_intent[label] += 1
        if not run.completed:
            self.unsuccessful_runs.add(run_id, first_failed)

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


def find_patterns(goal_id: str, runs: Iterable[Run | RunFacts]) -> PatternAnalysis | None:
    """Patterns across `runs` (the caller's selection of the goal's runs); None when there are none.

    Success rate is completed runs over all runs, so running, stuck and cancelled runs count against it.
    """
    counter = PatternCounter()
    for run in as_facts(runs):
        counter.add(run)
    if counter.runs == 0:
        return None
    return counter.result(goal_id)


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


def node_performance(node_id: str, runs: Iterable[Run | RunFacts]) -> dict[str, Any]:
    """How one node's decisions fared across `runs`; decisions of other nodes are ignored.

    Latency is averaged over all the node's decisions, including those without an outcome (the seed's
    definition). Rates are 0.0 when the node made no decisions.
    """
    total = successful = latency = tokens = 0
    types: defaultdict[str, int] = defaultdict(int)
    for run in as_facts(runs):
        for decision in run.decisions:
            if decision.node_id != node_id:
                continue
            total += 1
            if decision.success is True:
                successful += 1
            latency += decision.latency_ms
            tokens += decision.tokens
            types[decision.decision_type] += 1
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
