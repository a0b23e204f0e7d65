"""Which choices go wrong: statistics per (node, intent, option) across the runs of a goal.

Three questions, answered in one pass over run facts:

- **How does each option do?** Times chosen, outcomes, and the runs that chose it (`OptionStat`).
- **Which options are over-represented in failed runs?** (`RiskyOption`) For every decision point
  (node, intent) and every option chosen there, the finished runs that reached that point form a 2×2
  table: failed or completed × chose the option or not. A one-sided Fisher exact test gives the
  probability of seeing at least that many failed runs among those choosing the option if the option
  made no difference; Benjamini–Hochberg q-values are reported next to it because a goal tests many
  options at once (every option chosen at a point counts as a test, which keeps q conservative). An
  option is flagged when at least `MIN_FAILED_RUNS` failed runs chose it, its
  failure rate is higher than the others' and p ≤ `SIGNIFICANCE`.
- **Which options were offered but never chosen?** (`UnexploredOption`)

Options are identified by their description (the label a person reads; option ids are often generated
per decision), and intents by their first `INTENT_KEY_CHARS` characters, as the seed's `common_choices`.
Running, stuck and cancelled runs are counted in the option statistics but left out of the failure
test, whose question is about finished runs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from otel_decisions.analysis.evidence import Evidence, finding_dict
from otel_decisions.analysis.facts import DecisionFacts, RunFacts
from otel_decisions.analysis.patterns import INTENT_KEY_CHARS

__all__ = [
    "OptionStat",
    "OptionStatsCounter",
    "RiskyOption",
    "UnexploredOption",
    "benjamini_hochberg",
    "fisher_greater",
]

SIGNIFICANCE: Final = 0.05
MIN_FAILED_RUNS: Final = 2

Context = tuple[str, str]  # (node id, intent key)
OptionKey = tuple[str, str, str]  # (node id, intent key, option label)


@dataclass(frozen=True, slots=True)
class OptionStat:
    """How one option did at one decision point."""

    node_id: str
    intent: str
    option: str
    option_id: str
    chosen: int  # decisions that chose it
    succeeded: int
    failed: int  # decisions whose outcome failed
    no_outcome: int
    success_rate: float  # succeeded / chosen (a decision without outcome counts as unsuccessful)
    runs: int
    failed_runs: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RiskyOption:
    """An option chosen in failed runs more often than chance allows, with the runs that show it."""

    node_id: str
    intent: str
    option: str
    option_id: str
    failed_with: int  # finished runs that chose the option, and failed
    completed_with: int
    failed_without: int  # finished runs that reached the same point, chose otherwise, and failed
    completed_without: int
    failure_rate_with: float
    failure_rate_without: float | None  # None when every finished run chose this option
    p_value: float
    q_value: float
    evidence: Evidence = field(compare=False)

    def to_dict(self) -> dict[str, Any]:
        return finding_dict(self)


@dataclass(frozen=True, slots=True)
class UnexploredOption:
    """An option offered at a decision point that no run ever chose."""

    node_id: str
    intent: str
    option: str
    option_id: str
    times_offered: int
    point_failure_rate: float  # share of the decisions at this point that did not succeed
    evidence: Evidence = field(compare=False)

    def to_dict(self) -> dict[str, Any]:
        return finding_dict(self)


@dataclass(slots=True)
class _OptionTally:
    option_id: str
    chosen: int = 0
    succeeded: int = 0
    failed: int = 0
    runs: int = 0
    failed_runs: int = 0
    finished_failed: int = 0
    finished_completed: int = 0
    evidence: Evidence = field(default_factory=Evidence)  # failed runs that chose it


@dataclass(slots=True)
class _Offer:
    option_id: str
    times: int = 0
    evidence: Evidence = field(default_factory=Evidence)


class OptionStatsCounter:
    """Counts for `OptionStat`, `RiskyOption` and `UnexploredOption`, fed one run at a time."""

    def __init__(self) -> None:
        self._options: dict[OptionKey, _OptionTally] = {}
        self._points_failed: defaultdict[Context, int] = defaultdict(int)  # finished runs per point
        self._points_completed: defaultdict[Context, int] = defaultdict(int)
        self._point_decisions: defaultdict[Context, int] = defaultdict(int)
        self._point_unsuccessful: defaultdict[Context, int] = defaultdict(int)
        self._offers: dict[Context, dict[str, _Offer]] = {}

    def add(self, run: RunFacts) -> None:
        finished = run.failed or run.completed
        points: set[Context] = set()
        chosen: dict[OptionKey, DecisionFacts] = {}  # first decision per option in this run
        for d in run.decisions:
            point = (d.node_id, d.intent[:INTENT_KEY_CHARS])
            points.add(point)
            self._point_decisions[point] += 1
            if d.success is not True:
                self._point_unsuccessful[point] += 1
            self._offer(point, d, run.run_id)
            label = d.chosen_label if d.chosen_label is not None else d.chosen_option_id
            key = (point[0], point[1], label)
            tally = self._options.get(key)
            if tally is None:
                tally = self._options[key] = _OptionTally(d.chosen_option_id)
            tally.chosen += 1
            if d.success is True:
                tally.succeeded += 1
            elif d.success is False:
                tally.failed += 1
            chosen.setdefault(key, d)
        for key, d in chosen.items():
            tally = self._options[key]
            tally.runs += 1
            if run.failed:
                tally.failed_runs += 1
                tally.finished_failed += 1
                tally.evidence.add(run.run_id, d.decision_id)
            elif run.completed:
                tally.finished_completed += 1
        if finished:
            counts = self._points_failed if run.failed else self._points_completed
            for point in points:
                counts[point] += 1

    def _offer(self, point: Context, d: DecisionFacts, run_id: str) -> None:
        if not d.option_ids:
            return
        offers = self._offers.get(point)
        if offers is None:
            offers = self._offers[point] = {}
        for option_id, label in zip(d.option_ids, d.option_labels, strict=False):
            offer = offers.get(label)
            if offer is None:
                offer = offers[label] = _Offer(option_id)
            offer.times += 1
            offer.evidence.add(run_id, d.decision_id)

    # --- results ---------------------------------------------------------------------------------
    def option_stats(self) -> list[OptionStat]:
        """Every (node, intent, option) chosen at least once, most chosen first."""
        stats = [
            OptionStat(
                node_id=node,
                intent=intent,
                option=label,
                option_id=t.option_id,
                chosen=t.chosen,
                succeeded=t.succeeded,
                failed=t.failed,
                no_outcome=t.chosen - t.succeeded - t.failed,
                success_rate=t.succeeded / t.chosen,
                runs=t.runs,
                failed_runs=t.failed_runs,
            )
            for (node, intent, label), t in self._options.items()
        ]
        stats.sort(key=lambda s: (s.node_id, s.intent, -s.chosen))
        return stats

    def risky_options(self) -> list[RiskyOption]:
        """Options over-represented in failed runs, strongest evidence first."""
        tested: list[tuple[OptionKey, _OptionTally, int, int, float]] = []
        for key, t in self._options.items():
            point = (key[0], key[1])
            failed_without = self._points_failed[point] - t.finished_failed
            completed_without = self._points_completed[point] - t.finished_completed
            p = fisher_greater(t.finished_failed, t.finished_completed, failed_without, completed_without)
            tested.append((key, t, failed_without, completed_without, p))
        q_values = benjamini_hochberg([p for *_, p in tested])
        risky: list[RiskyOption] = []
        for (key, t, failed_without, completed_without, p), q in zip(tested, q_values, strict=True):
            with_total = t.finished_failed + t.finished_completed
            without_total = failed_without + completed_without
            if t.finished_failed < MIN_FAILED_RUNS or p > SIGNIFICANCE or with_total == 0:
                continue
            rate_with = t.finished_failed / with_total
            rate_without = failed_without / without_total if without_total else None
            if rate_without is None or rate_with <= rate_without:
                continue  # no contrast to judge the option by, or it does no worse than the others
            risky.append(
                RiskyOption(
                    node_id=key[0],
                    intent=key[1],
                    option=key[2],
                    option_id=t.option_id,
                    failed_with=t.finished_failed,
                    completed_with=t.finished_completed,
                    failed_without=failed_without,
                    completed_without=completed_without,
                    failure_rate_with=rate_with,
                    failure_rate_without=rate_without,
                    p_value=p,
                    q_value=q,
                    evidence=t.evidence,
                )
            )
        risky.sort(key=lambda r: (r.p_value, -r.failed_with))
        return risky

    def unexplored_options(self) -> list[UnexploredOption]:
        """Options offered but never chosen, at the points that fail most first."""
        unexplored: list[UnexploredOption] = []
        for point, offers in self._offers.items():
            decisions = self._point_decisions[point]
            rate = self._point_unsuccessful[point] / decisions if decisions else 0.0
            for label, offer in offers.items():
                if (point[0], point[1], label) in self._options:
                    continue
                unexplored.append(
                    UnexploredOption(
                        node_id=point[0],
                        intent=point[1],
                        option=label,
                        option_id=offer.option_id,
                        times_offered=offer.times,
                        point_failure_rate=rate,
                        evidence=offer.evidence,
                    )
                )
        unexplored.sort(key=lambda u: (-u.point_failure_rate, -u.times_offered))
        return unexplored


# --- statistics ----------------------------------------------------------------------------------
def fisher_greater(a: int, b: int, c: int, d: int) -> float:
    """One-sided Fisher exact p-value P(X ≥ a) for the 2×2 table [[a, b], [c, d]].

    X is hypergeometric: the failed runs (a + c) drawn among all runs, counted in the first row
    (a + b, runs choosing the option). Summed in log space, so tables of millions of runs are exact.
    """
    row, col, n = a + b, a + c, a + b + c + d
    if n == 0 or row == 0 or col == 0:
        return 1.0
    base = _lchoose(n, col)
    upper = min(row, col)
    total = 0.0
    for x in range(a, upper + 1):
        term = math.exp(_lchoose(row, x) + _lchoose(n - row, col - x) - base)
        total += term
        if term < total * 1e-17 and x > row * col / n:  # past the mode, the tail no longer adds up
            break
    return min(1.0, total)


def _lchoose(n: int, k: int) -> float:
    if k < 0 or k > n:
        return -math.inf
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values (q-values), in the order given."""
    m = len(p_values)
    order = sorted(range(m), key=p_values.__getitem__, reverse=True)
    q = [1.0] * m
    running = 1.0
    for rank_from_top, index in enumerate(order):
        rank = m - rank_from_top
        running = min(running, p_values[index] * m / rank)
        q[index] = running
    return q
