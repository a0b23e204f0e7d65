"""How runs behave over time: retry loops, flip-flops, latency and token hot spots, failures by period.

- A **retry loop** is `RETRY_LOOP_MIN` or more consecutive decisions at the same decision point (node,
  intent): the agent kept deciding the same thing instead of moving on.
- A **flip-flop** is a decision point whose chosen option returns to one it had switched away from
  within a run (A → B → A): the agent is undecided between options.
- A **hot spot** is a node holding a large share of the goal's latency or tokens. Latency is what the
  agent reported (`Outcome.latency_ms`), else the recorded time from the decision to its outcome.

Findings are aggregated per decision point across runs (a count and evidence ids, not one record per
run), so memory stays bounded however many runs are scanned.
"""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from otel_decisions.analysis.evidence import Evidence, finding_dict
from otel_decisions.analysis.facts import DecisionFacts, RunFacts
from otel_decisions.analysis.patterns import INTENT_KEY_CHARS

__all__ = ["LoopPattern", "NodeHotspot", "RunShapeCounter", "SlowDecision", "TimeBucket"]

RETRY_LOOP_MIN: Final = 3
SLOWEST: Final = 10
#: Bucket widths tried for "failures over time", smallest first; the first giving ≤ MAX_BUCKETS wins.
_BUCKET_SECONDS: Final = (60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400, 365 * 86400)
MAX_BUCKETS: Final = 48
RETRY_LOOP: Final = "retry_loop"
FLIP_FLOP: Final = "flip_flop"


@dataclass(frozen=True, slots=True)
class LoopPattern:
    """Runs that looped (`retry_loop`) or flip-flopped (`flip_flop`) at one decision point."""

    kind: str
    node_id: str
    intent: str
    runs: int
    failed_runs: int
    longest: int  # the longest loop, or the most option changes in one run
    example: list[str]  # the chosen options of the longest occurrence, in order
    evidence: Evidence = field(compare=False)

    def to_dict(self) -> dict[str, Any]:
        return finding_dict(self)


@dataclass(frozen=True, slots=True)
class NodeHotspot:
    """Where a goal's time and tokens go, per node (latency of the decisions with an outcome)."""

    node_id: str
    decisions: int
    total_latency_ms: int
    avg_latency_ms: float
    p95_latency_ms: int
    latency_share: float
    total_tokens: int
    avg_tokens: float
    token_share: float
    evidence: Evidence = field(compare=False)  # its slowest decisions

    def to_dict(self) -> dict[str, Any]:
        return finding_dict(self)


@dataclass(frozen=True, slots=True)
class SlowDecision:
    run_id: str
    decision_id: str
    node_id: str
    intent: str
    option: str
    latency_ms: int
    tokens: int
    success: bool | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class TimeBucket:
    """Runs started in [start, start + seconds): how many, and how many failed or completed."""

    start: str  # ISO 8601, UTC
    seconds: int
    runs: int
    failed: int
    completed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class _Loops:
    runs: int = 0
    failed_runs: int = 0
    longest: int = 0
    example: list[str] = field(default_factory=list)
    evidence: Evidence = field(default_factory=Evidence)
    last_run: str = ""


class RunShapeCounter:
    """Counts for loops, flip-flops, hot spots, the slowest decisions and failures over time."""

    def __init__(self) -> None:
        self._loops: dict[tuple[str, str, str], _Loops] = {}
        self._latencies: defaultdict[str, list[int]] = defaultdict(list)
        self._tokens: defaultdict[str, int] = defaultdict(int)
        self._decisions: defaultdict[str, int] = defaultdict(int)
        self._slow_by_node: defaultdict[str, list[tuple[int, str, str]]] = defaultdict(list)
        self._slowest: list[tuple[int, int, str, DecisionFacts]] = []
        self._starts: list[tuple[int, str]] = []
        self._seen = 0

    def add(self, run: RunFacts) -> None:
        self._starts.append((run.started_ns, run.status))
        decisions = run.decisions
        streak: list[DecisionFacts] = []
        sequences: dict[tuple[str, str], list[DecisionFacts]] = {}
        for d in decisions:
            point = (d.node_id, d.intent[:INTENT_KEY_CHARS])
            if streak and (streak[-1].node_id, streak[-1].intent[:INTENT_KEY_CHARS]) != point:
                self._streak_ended(run, streak)
                streak = []
            streak.append(d)
            sequences.setdefault(point, []).append(d)
            self._time(run, d)
        if streak:
            self._streak_ended(run, streak)
        for point, ds in sequences.items():
            self._flip_flops(run, point, ds)

    def _streak_ended(self, run: RunFacts, streak: list[DecisionFacts]) -> None:
        if len(streak) >= RETRY_LOOP_MIN:
            first = streak[0]
            self._record(RETRY_LOOP, run, first.node_id, first.intent, streak, len(streak))

    def _flip_flops(self, run: RunFacts, point: tuple[str, str], ds: list[DecisionFacts]) -> None:
        if len(ds) < 3:
            return
        labels = [_label(d) for d in ds]
        changes = sum(1 for a, b in itertools.pairwise(labels) if a != b)
        if changes < 2:
            return
        left: set[str] = set()
        for previous, label in itertools.pairwise(labels):
            if label != previous:
                left.add(previous)
                if label in left:  # came back to an option it had switched away from
                    self._record(FLIP_FLOP, run, point[0], ds[0].intent, ds, changes)
                    return

    def _record(
        self, kind: str, run: RunFacts, node: str, intent: str, ds: list[DecisionFacts], size: int
    ) -> None:
        key = (kind, node, intent[:INTENT_KEY_CHARS])
        loops = self._loops.get(key)
        if loops is None:
            loops = self._loops[key] = _Loops()
        if loops.last_run != run.run_id:
            loops.last_run = run.run_id
            loops.runs += 1
            loops.failed_runs += run.failed
        for d in ds:
            loops.evidence.add(run.run_id, d.decision_id)
        if size > loops.longest:
            loops.longest = size
            loops.example = [_label(d) for d in ds]

    def _time(self, run: RunFacts, d: DecisionFacts) -> None:
        node = d.node_id
        self._decisions[node] += 1
        self._tokens[node] += d.tokens
        if d.success is None:
            return
        latency = d.time_ms
        self._latencies[node].append(latency)
        self._seen += 1
        item = (latency, -self._seen, run.run_id, d)  # ties: the first seen (newest run) ranks higher
        if len(self._slowest) < SLOWEST:
            heapq.heappush(self._slowest, item)
        elif item > self._slowest[0]:
            heapq.heapreplace(self._slowest, item)
        per_node = self._slow_by_node[node]
        entry = (latency, run.run_id, d.decision_id)
        if len(per_node) < 5:
            heapq.heappush(per_node, entry)
        elif latency > per_node[0][0]:
            heapq.heapreplace(per_node, entry)

    # --- results ---------------------------------------------------------------------------------
    def loops(self) -> list[LoopPattern]:
        """Retry loops and flip-flops per decision point, the most widespread first."""
        found = [
            LoopPattern(kind, node, intent, v.runs, v.failed_runs, v.longest, v.example, v.evidence)
            for (kind, node, intent), v in self._loops.items()
        ]
        found.sort(key=lambda p: (-p.runs, -p.longest))
        return found

    def hotspots(self) -> list[NodeHotspot]:
        """Every node, the largest share of latency first."""
        all_latency = sum(sum(v) for v in self._latencies.values())
        all_tokens = sum(self._tokens.values())
        spots = []
        for node, count in self._decisions.items():
            latencies = sorted(self._latencies.get(node, ()))
            total = sum(latencies)
            slowest = sorted(self._slow_by_node.get(node, ()), reverse=True)
            evidence = Evidence.of([(run_id, decision_id) for _latency, run_id, decision_id in slowest])
            spots.append(
                NodeHotspot(
                    node_id=node,
                    decisions=count,
                    total_latency_ms=total,
                    avg_latency_ms=total / len(latencies) if latencies else 0.0,
                    p95_latency_ms=_percentile(latencies, 0.95),
                    latency_share=total / all_latency if all_latency else 0.0,
                    total_tokens=self._tokens[node],
                    avg_tokens=self._tokens[node] / count,
                    token_share=self._tokens[node] / all_tokens if all_tokens else 0.0,
                    evidence=evidence,
                )
            )
        spots.sort(key=lambda s: (-s.total_latency_ms, -s.total_tokens))
        return spots

    def slowest_decisions(self) -> list[SlowDecision]:
        return [
            SlowDecision(run_id, d.decision_id, d.node_id, d.intent, _label(d), latency, d.tokens, d.success)
            for latency, _order, run_id, d in sorted(self._slowest, reverse=True)
        ]

    def failures_over_time(self) -> list[TimeBucket]:
        """Runs per period (at most `MAX_BUCKETS` periods, widths from a minute to a year), oldest first."""
        if not self._starts:
            return []
        first = min(ns for ns, _ in self._starts) // 1_000_000_000
        last = max(ns for ns, _ in self._starts) // 1_000_000_000
        width = next((w for w in _BUCKET_SECONDS if (last - (first - first % w)) // w < MAX_BUCKETS), 0)
        if not width:  # more than MAX_BUCKETS years: equal widths, so buckets still span at most MAX
            width = -(-(last - first + 1) // (MAX_BUCKETS - 1))
        origin = first - first % width
        counts: dict[int, list[int]] = {}
        for ns, status in self._starts:
            slot = (ns // 1_000_000_000 - origin) // width
            bucket = counts.setdefault(slot, [0, 0, 0])
            bucket[0] += 1
            bucket[1] += status == "failed"
            bucket[2] += status == "completed"
        return [
            TimeBucket(
                start=datetime.fromtimestamp(origin + slot * width, UTC).isoformat(),
                seconds=width,
                runs=c[0],
                failed=c[1],
                completed=c[2],
            )
            for slot, c in sorted(counts.items())
        ]


def _label(d: DecisionFacts) -> str:
    return d.chosen_label if d.chosen_label is not None else d.chosen_option_id


def _percentile(ordered: list[int], fraction: float) -> int:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not ordered:
        return 0
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil without floats drifting
    return ordered[int(rank) - 1]
