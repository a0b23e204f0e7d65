"""Figures the report derives from `GoalInsights` before drawing them.

Success rate by node is summed from `insights.options`, not read from `patterns.problematic_nodes`:
every decision is counted in exactly one `OptionStat` (its node, intent and chosen option), so summing
`succeeded` and `chosen` per node gives every node's decisions and successes, while
`problematic_nodes` lists only the nodes failing more than 10% of the time. The definition is the same
as the seed's failure rate: a decision without an outcome counts as unsuccessful (it is shown apart, in
grey, so the two kinds of unsuccessful decision stay distinguishable).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Final

from otel_decisions.analysis.decision_stats import OptionStat, RiskyOption
from otel_decisions.analysis.run_shapes import TimeBucket

#: Gaps between time buckets are filled with empty buckets only up to this many periods.
MAX_TIME_SLOTS: Final = 120


@dataclass(frozen=True, slots=True)
class NodeSuccess:
    """How the decisions of one node turned out."""

    node_id: str
    decisions: int
    succeeded: int
    failed: int
    no_outcome: int

    @property
    def success_rate(self) -> float:
        return self.succeeded / self.decisions if self.decisions else 0.0


def node_success(options: Iterable[OptionStat]) -> list[NodeSuccess]:
    """Decisions and outcomes per node, the least successful first (ties: most decisions, then id)."""
    totals: dict[str, list[int]] = {}
    for o in options:
        t = totals.setdefault(o.node_id, [0, 0, 0, 0])
        t[0] += o.chosen
        t[1] += o.succeeded
        t[2] += o.failed
        t[3] += o.no_outcome
    nodes = [NodeSuccess(node, *t) for node, t in totals.items()]
    nodes.sort(key=lambda n: (n.success_rate, -n.decisions, n.node_id))
    return nodes


@dataclass(frozen=True, slots=True)
class MatrixRow:
    """One option of the option × outcome matrix, with its risk finding when it has one."""

    stat: OptionStat
    risky: RiskyOption | None


@dataclass(frozen=True, slots=True)
class MatrixGroup:
    """The options of one decision point (node, intent), in the analysis's order (most chosen first)."""

    node_id: str
    intent: str
    rows: list[MatrixRow]


@dataclass(frozen=True, slots=True)
class Matrix:
    groups: list[MatrixGroup]
    hidden_options: int  # options left out by the cap
    hidden_decisions: int  # decisions those options account for


def option_matrix(options: Sequence[OptionStat], risky: Sequence[RiskyOption], limit: int) -> Matrix:
    """The rows of the option × outcome matrix: risky options first, then the most chosen, `limit` in all.

    Kept rows are shown grouped by decision point in the analysis's order, so the matrix reads like
    the agent's graph, while the cap keeps what matters most.
    """
    by_key = {(r.node_id, r.intent, r.option): r for r in risky}
    ranked = sorted(
        range(len(options)),
        key=lambda i: (
            (options[i].node_id, options[i].intent, options[i].option) not in by_key,
            -options[i].chosen,
            i,
        ),
    )
    kept = sorted(ranked[: max(0, limit)])
    hidden = [options[i] for i in ranked[max(0, limit) :]]
    groups: list[MatrixGroup] = []
    for i in kept:
        o = options[i]
        row = MatrixRow(o, by_key.get((o.node_id, o.intent, o.option)))
        if groups and (groups[-1].node_id, groups[-1].intent) == (o.node_id, o.intent):
            groups[-1].rows.append(row)
        else:
            groups.append(MatrixGroup(o.node_id, o.intent, [row]))
    return Matrix(groups, len(hidden), sum(o.chosen for o in hidden))


def time_slots(buckets: Sequence[TimeBucket]) -> list[TimeBucket]:
    """`buckets` with the periods in between that had no run added as empty buckets, oldest first.

    The analysis lists only periods with runs; drawn as they are, a quiet week would look like no time
    at all. Buckets are returned unchanged when they cannot be placed on one axis (mixed widths, an
    unreadable start) or the gaps would need more than `MAX_TIME_SLOTS` periods.
    """
    if len(buckets) < 2:
        return list(buckets)
    width = buckets[0].seconds
    try:
        starts = [datetime.fromisoformat(b.start) for b in buckets]
    except ValueError:
        return list(buckets)
    if width <= 0 or any(b.seconds != width for b in buckets):
        return list(buckets)
    try:
        offsets = [(start - starts[0]).total_seconds() for start in starts]
    except TypeError:  # naive and aware starts mixed
        return list(buckets)
    ordered = all(a < b for a, b in pairwise(offsets))
    if not ordered or any(o % width for o in offsets) or offsets[-1] // width >= MAX_TIME_SLOTS:
        return list(buckets)
    known = {int(o // width): bucket for o, bucket in zip(offsets, buckets, strict=True)}
    slots: list[TimeBucket] = []
    for k in range(int(offsets[-1] // width) + 1):
        bucket = known.get(k)
        if bucket is None:
            bucket = TimeBucket((starts[0] + timedelta(seconds=k * width)).isoformat(), width, 0, 0, 0)
        slots.append(bucket)
    return slots
