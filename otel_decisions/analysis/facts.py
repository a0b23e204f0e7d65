"""The compact facts cross-run analyses need: one small record per run and per decision.

Why not the pydantic `Run`? A Builder question such as "which option fails most?" touches every
decision of every run, and a million spans of full models (options, contexts, results, reasoning) do
not fit in memory. The reader keeps these facts for every run instead (a few hundred bytes per
decision, repeated strings interned) and loads full runs only on demand. `RunFacts.from_run` gives the
same facts for a `Run` built in memory, so every analysis has one implementation and both inputs; a
test proves facts read from spans equal facts of the rebuilt runs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from otel_decisions.contract import datetime_to_ns
from otel_decisions.models import Run, RunStatus

__all__ = ["DecisionFacts", "RunFacts", "as_facts", "intern"]

COMPLETED: Final = RunStatus.COMPLETED.value
FAILED: Final = RunStatus.FAILED.value


def intern(text: object) -> str:
    """`text` as an interned string: node ids, intents and option labels repeat across runs."""
    return sys.intern(text) if type(text) is str else sys.intern(str(text))


@dataclass(slots=True)
class DecisionFacts:
    """What a decision chose, among what, and how it turned out (success None: no outcome yet)."""

    decision_id: str
    node_id: str
    intent: str
    decision_type: str
    chosen_option_id: str
    chosen_label: str | None  # the chosen option's description; None when it is not among the options
    option_ids: tuple[str, ...]
    option_labels: tuple[str, ...]
    start_ns: int
    sequence: int = field(default=0, compare=False)  # order among decisions started together
    success: bool | None = None
    error: str | None = None
    tokens: int = 0
    latency_ms: int = 0  # as the agent reported it
    elapsed_ms: int = 0  # from the decision to its outcome, as recorded (span times)

    @property
    def time_ms(self) -> int:
        """The reported latency, else the measured time from decision to outcome."""
        return self.latency_ms or self.elapsed_ms

    @property
    def was_successful(self) -> bool:
        """The seed's definition: an outcome was recorded and it succeeded."""
        return self.success is True


@dataclass(slots=True)
class RunFacts:
    """A run as the cross-run analyses see it; `decisions` are in the order they were made."""

    run_id: str
    trace_id: str
    goal_id: str
    status: str
    started_ns: int
    ended_ns: int
    decisions: list[DecisionFacts]
    nodes_executed: tuple[str, ...]

    @property
    def failed(self) -> bool:
        return self.status == FAILED

    @property
    def completed(self) -> bool:
        return self.status == COMPLETED

    @classmethod
    def from_run(cls, run: Run, trace_id: str = "") -> RunFacts:
        """The facts of an in-memory `Run` (the seed's models, or a run rebuilt from spans)."""
        decisions = []
        for d in run.decisions:
            chosen = d.chosen_option
            outcome = d.outcome
            decisions.append(
                DecisionFacts(
                    decision_id=d.id,
                    node_id=intern(d.node_id),
                    intent=intern(d.intent),
                    decision_type=intern(d.decision_type.value),
                    chosen_option_id=intern(d.chosen_option_id),
                    chosen_label=intern(chosen.description) if chosen is not None else None,
                    option_ids=tuple(intern(o.id) for o in d.options),
                    option_labels=tuple(intern(o.description) for o in d.options),
                    start_ns=datetime_to_ns(d.timestamp),
                    success=outcome.success if outcome is not None else None,
                    error=outcome.error if outcome is not None else None,
                    tokens=outcome.tokens_used if outcome is not None else 0,
                    latency_ms=outcome.latency_ms if outcome is not None else 0,
                    elapsed_ms=_elapsed_ms(d.timestamp, outcome.timestamp) if outcome is not None else 0,
                )
            )
        return cls(
            run_id=run.id,
            trace_id=trace_id,
            goal_id=intern(run.goal_id),
            status=run.status.value,
            started_ns=datetime_to_ns(run.started_at),
            ended_ns=datetime_to_ns(run.completed_at) if run.completed_at is not None else 0,
            decisions=decisions,
            nodes_executed=tuple(run.metrics.nodes_executed),
        )


def as_facts(runs: Iterable[Run | RunFacts]) -> Iterator[RunFacts]:
    """`runs` as facts: the analyses accept seed `Run` models and reader facts alike."""
    for run in runs:
        yield run if isinstance(run, RunFacts) else RunFacts.from_run(run)


def _elapsed_ms(start: datetime, end: datetime) -> int:
    return max(0, (datetime_to_ns(end) - datetime_to_ns(start)) // 1_000_000)
