"""The seed framework's data models: decisions, outcomes, problems and runs.

These are pydantic v2 models with the seed's field names, defaults and computed fields, so code and
stored data written for the seed keep working. Nothing here knows about OpenTelemetry: the span
contract (`otel_decisions.contract`) turns these models into span attributes and back.

Every model allows extra fields (the seed does), and every model accepts the keys of its own computed
fields in its input and ignores them, so a `model_dump()` can be validated again.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

__all__ = [
    "Decision",
    "DecisionEvaluation",
    "DecisionType",
    "Option",
    "Outcome",
    "Problem",
    "Run",
    "RunMetrics",
    "RunStatus",
    "RunSummary",
]


class _SeedModel(BaseModel):
    """Base: extra fields are allowed, as in the seed."""

    model_config = ConfigDict(extra="allow")


class _WithComputedFields(_SeedModel):
    """Base of models with computed fields: their keys are dropped from input (a dump validates again).

    Only these models pay for the Python-level validator; the reader validates many thousands of models.
    """

    @model_validator(mode="before")
    @classmethod
    def _drop_computed_keys(cls, data: Any) -> Any:
        computed = cls.__pydantic_computed_fields__
        if isinstance(data, dict) and any(k in data for k in computed):
            return {k: v for k, v in data.items() if k not in computed}
        return data


class DecisionType(str, Enum):
    """What kind of choice a decision is."""

    TOOL_SELECTION = "tool_selection"
    PARAMETER_CHOICE = "parameter_choice"
    PATH_CHOICE = "path_choice"
    OUTPUT_FORMAT = "output_format"
    RETRY_STRATEGY = "retry_strategy"
    DELEGATION = "delegation"
    TERMINATION = "termination"
    CUSTOM = "custom"


class RunStatus(str, Enum):
    """Where a run stands."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    STUCK = "stuck"
    CANCELLED = "cancelled"


class Option(_SeedModel):
    """One choice the agent considered."""

    id: str
    description: str
    action_type: str
    action_params: dict[str, Any] = Field(default_factory=dict)
    pros: list[str] = Field(default_factory=list)
    cons: list[str] = Field(default_factory=list)
    confidence: float = 0.5


class Outcome(_SeedModel):
    """What happened when the chosen option was carried out."""

    success: bool
    result: Any = None
    error: str | None = None
    state_changes: dict[str, Any] = Field(default_factory=dict)
    tokens_used: int = 0
    latency_ms: int = 0
    summary: str = ""
    timestamp: datetime = Field(default_factory=datetime.now)


class DecisionEvaluation(_SeedModel):
    """A judgement made after the fact of whether a decision was good."""

    goal_aligned: bool = True
    alignment_score: float = Field(default=1.0, ge=0.0, le=1.0)
    better_option_existed: bool = False
    better_option_id: str | None = None
    why_better: str | None = None
    outcome_quality: float = Field(default=1.0, ge=0.0, le=1.0)
    contributed_to_success: bool | None = None
    explanation: str = ""


class Decision(_WithComputedFields):
    """A moment where the agent chose between options, and why."""

    id: str
    timestamp: datetime = Field(default_factory=datetime.now)
    node_id: str
    intent: str
    decision_type: DecisionType = DecisionType.CUSTOM
    options: list[Option] = Field(default_factory=list)
    chosen_option_id: str = ""
    reasoning: str = ""
    active_constraints: list[str] = Field(default_factory=list)
    input_context: dict[str, Any] = Field(default_factory=dict)
    outcome: Outcome | None = None
    evaluation: DecisionEvaluation | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def chosen_option(self) -> Option | None:
        """The option whose id is `chosen_option_id`, or None."""
        for option in self.options:
            if option.id == self.chosen_option_id:
                return option
        return None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def was_successful(self) -> bool:
        """True when an outcome was recorded and it succeeded."""
        return self.outcome is not None and self.outcome.success

    @computed_field  # type: ignore[prop-decorator]
    @property
    def was_good_decision(self) -> bool:
        """`was_successful` unless evaluated; then goal-aligned with quality above 0.5."""
        if self.evaluation is None:
            return self.was_successful
        return self.evaluation.goal_aligned and self.evaluation.outcome_quality > 0.5

    def summary_for_builder(self) -> str:
        """One line for the Builder: `✓ [node] intent → chosen description [quality: 0.9]`."""
        mark = "✓" if self.was_successful else "✗"
        chosen = self.chosen_option
        action = chosen.description if chosen else "unknown action"
        quality = f" [quality: {self.evaluation.outcome_quality:.1f}]" if self.evaluation else ""
        return f"{mark} [{self.node_id}] {self.intent} → {action}{quality}"


class Problem(_SeedModel):
    """Something that went wrong in a run, as the agent reported it."""

    id: str
    severity: str = Field(description="critical, warning, or minor")
    description: str
    root_cause: str | None = None
    decision_id: str | None = None
    timestamp: datetime = Field(default_factory=datetime.now)
    suggested_fix: str | None = None


class RunMetrics(_WithComputedFields):
    """Counts kept up to date as decisions and outcomes are added to a run."""

    total_decisions: int = 0
    successful_decisions: int = 0
    failed_decisions: int = 0
    total_tokens: int = 0
    total_latency_ms: int = 0
    nodes_executed: list[str] = Field(default_factory=list)
    edges_traversed: list[str] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def success_rate(self) -> float:
        """successful / total decisions; 0.0 without decisions."""
        if self.total_decisions == 0:
            return 0.0
        return self.successful_decisions / self.total_decisions


class Run(_WithComputedFields):
    """One execution towards a goal: its decisions, problems, metrics and narrative."""

    id: str
    goal_id: str
    started_at: datetime = Field(default_factory=datetime.now)
    status: RunStatus = RunStatus.RUNNING
    completed_at: datetime | None = None
    decisions: list[Decision] = Field(default_factory=list)
    problems: list[Problem] = Field(default_factory=list)
    metrics: RunMetrics = Field(default_factory=RunMetrics)
    narrative: str = ""
    goal_description: str = ""
    input_data: dict[str, Any] = Field(default_factory=dict)
    output_data: dict[str, Any] = Field(default_factory=dict)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def duration_ms(self) -> int:
        """Milliseconds from start to completion; 0 while the run is open."""
        if self.completed_at is None:
            return 0
        return int((self.completed_at - self.started_at).total_seconds() * 1000)

    def add_decision(self, decision: Decision) -> None:
        """Append a decision and count it (and its node, first seen first)."""
        self.decisions.append(decision)
        self.metrics.total_decisions += 1
        if decision.node_id not in self.metrics.nodes_executed:
            self.metrics.nodes_executed.append(decision.node_id)

    def record_outcome(self, decision_id: str, outcome: Outcome) -> bool:
        """Attach `outcome` to the first decision with `decision_id` and update the metrics.

        Returns whether such a decision exists (the seed returns None; callers may ignore it).
        """
        for decision in self.decisions:
            if decision.id == decision_id:
                self.apply_outcome(decision, outcome)
                return True
        return False

    def apply_outcome(self, decision: Decision, outcome: Outcome) -> None:
        """Attach `outcome` to `decision` (one of this run's) and update the metrics.

        `record_outcome` without the search, for recorders that already hold the decision.
        """
        decision.outcome = outcome
        if outcome.success:
            self.metrics.successful_decisions += 1
        else:
            self.metrics.failed_decisions += 1
        self.metrics.total_tokens += outcome.tokens_used
        self.metrics.total_latency_ms += outcome.latency_ms

    def add_problem(
        self,
        severity: str,
        description: str,
        decision_id: str | None = None,
        root_cause: str | None = None,
        suggested_fix: str | None = None,
    ) -> str:
        """Append a problem; returns its id, `prob_N`."""
        problem_id = f"prob_{len(self.problems)}"
        self.problems.append(
            Problem(
                id=problem_id,
                severity=severity,
                description=description,
                decision_id=decision_id,
                root_cause=root_cause,
                suggested_fix=suggested_fix,
            )
        )
        return problem_id

    def complete(self, status: RunStatus, narrative: str = "") -> None:
        """Close the run with `status`; the narrative is generated when empty."""
        self.status = status
        self.completed_at = datetime.now()
        self.narrative = narrative or self.generate_narrative()

    def generate_narrative(self) -> str:
        """The seed's default narrative, built from the run's metrics, problems and failures."""
        parts = ["Run completed successfully." if self.status == RunStatus.COMPLETED else "Run failed."]
        m = self.metrics
        parts.append(
            f"Made {m.total_decisions} decisions: {m.successful_decisions} succeeded, "
            f"{m.failed_decisions} failed."
        )
        critical = [p.description for p in self.problems if p.severity == "critical"]
        warnings = [p.description for p in self.problems if p.severity == "warning"]
        if critical:
            parts.append(f"Critical issues: {', '.join(critical)}")
        if warnings:
            parts.append(f"Warnings: {', '.join(warnings)}")
        failed = [d.intent for d in self.decisions if not d.was_successful]
        if failed:
            parts.append(f"Failed on: {', '.join(failed[:3])}")
        return " ".join(parts)


class RunSummary(_SeedModel):
    """A condensed view of a run for the Builder to scan first."""

    run_id: str
    goal_id: str
    status: RunStatus
    duration_ms: int
    decision_count: int
    success_rate: float
    problem_count: int
    narrative: str
    key_decisions: list[str] = Field(default_factory=list)
    critical_problems: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    successes: list[str] = Field(default_factory=list)

    @classmethod
    def from_run(cls, run: Run) -> RunSummary:
        """Summarise `run`: failed or high-quality decisions, problems by severity, successes."""
        key = [
            d.summary_for_builder()
            for d in run.decisions
            if not d.was_successful or (d.evaluation is not None and d.evaluation.outcome_quality > 0.8)
        ][:5]
        successes = [
            d.outcome.summary
            for d in run.decisions
            if d.was_successful and d.outcome is not None and d.outcome.summary
        ][:3]
        return cls(
            run_id=run.id,
            goal_id=run.goal_id,
            status=run.status,
            duration_ms=run.duration_ms,
            decision_count=run.metrics.total_decisions,
            success_rate=run.metrics.success_rate,
            problem_count=len(run.problems),
            narrative=run.narrative,
            key_decisions=key,
            critical_problems=[p.description for p in run.problems if p.severity == "critical"],
            warnings=[p.description for p in run.problems if p.severity == "warning"],
            successes=successes,
        )
