"""What Claude returns, as pydantic models: the tool's input schema is generated from them, and its answer
is validated against them.

`SuggestionsAnswer` is the tool input Claude fills in (its JSON schema is the tool's `input_schema`);
`LLMSuggestionReport` is what the caller gets: the suggestions whose citations survived validation, and
how many suggestions and ids were dropped on the way, so a reader can tell how much Claude invented.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["DecisionRef", "LLMSuggestion", "LLMSuggestionReport", "LLMUsage", "Priority", "SuggestionsAnswer"]

Priority = Literal["low", "medium", "high"]

# Serialization-mode schemas mark fields with defaults as required: Claude is asked for every field
# (an empty list when it has nothing to cite) while validation still tolerates an omitted one.
_MODEL_CONFIG = ConfigDict(extra="ignore", json_schema_serialization_defaults_required=True)


class DecisionRef(BaseModel):
    """A decision, cited by its run: decision ids (`dec_3`) are only unique within a run."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    run_id: str = Field(description="The run id, exactly as in the evidence pack.")
    decision_id: str = Field(description="The decision id within that run, exactly as in the evidence pack.")


class LLMSuggestion(BaseModel):
    """One improvement Claude suggests, with the runs and decisions that support it."""

    model_config = _MODEL_CONFIG

    title: str = Field(description="A short imperative headline, at most about 80 characters.")
    type: str = Field(
        description="The kind of change: prompt, tool, option_choice, control_flow, error_handling, "
        "performance, architecture, or observability."
    )
    target: str = Field(description="What to change: a node id, 'node: option', or the goal id.")
    reasoning: str = Field(
        description="Why, from the numbers in the evidence pack (counts, rates, p-values)."
    )
    recommendation: str = Field(description="What to do, concretely enough to act on.")
    priority: Priority = Field(description="high: causes failed runs; medium: likely; low: cost or hygiene.")
    evidence_run_ids: list[str] = Field(
        default_factory=list, description="Run ids from the evidence pack that support this suggestion."
    )
    evidence_decisions: list[DecisionRef] = Field(
        default_factory=list, description="Decisions from the evidence pack that support this suggestion."
    )

    @field_validator("priority", mode="before")
    @classmethod
    def _lower_priority(cls, value: Any) -> Any:
        """Accept "High" for "high": the meaning is clear, and rejecting the whole answer for it is not."""
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def cited(self) -> bool:
        """Whether it cites at least one run or decision."""
        return bool(self.evidence_run_ids or self.evidence_decisions)


class SuggestionsAnswer(BaseModel):
    """The input of the tool Claude is made to call: its JSON schema is the tool's `input_schema`."""

    model_config = _MODEL_CONFIG

    suggestions: list[LLMSuggestion] = Field(
        description="Improvement suggestions, most important first; each cites supporting evidence."
    )


class LLMUsage(BaseModel):
    """Tokens the request used, as the API reported them."""

    input_tokens: int
    output_tokens: int


class LLMSuggestionReport(BaseModel):
    """Claude's validated suggestions for one goal.

    `dropped_ids` counts run ids and decisions Claude cited that do not exist (invented, altered, or
    from another store); `dropped_suggestions` counts suggestions left with no valid citation (they cited
    nothing, or only ids that do not exist), which are not in `suggestions`.
    """

    goal_id: str
    model: str
    suggestions: list[LLMSuggestion]
    dropped_suggestions: int = 0
    dropped_ids: int = 0
    usage: LLMUsage | None = None
    stop_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (the CLI's `--json`)."""
        return self.model_dump(mode="json")

    def __str__(self) -> str:
        """A report a person reads in a terminal."""
        lines = [f"=== Claude suggestions for goal {self.goal_id} ({self.model}) ===", ""]
        if not self.suggestions:
            lines.append("No suggestions with valid evidence.")
        for number, s in enumerate(self.suggestions, 1):
            lines += [
                f"{number}. [{s.priority}] {s.title} ({s.type}: {s.target})",
                f"   Why: {s.reasoning}",
                f"   Do: {s.recommendation}",
            ]
            cited = s.evidence_run_ids + [f"{d.run_id}/{d.decision_id}" for d in s.evidence_decisions]
            lines.append(f"   Evidence: {', '.join(cited)}")
        if self.dropped_suggestions or self.dropped_ids:
            lines += [
                "",
                f"Dropped: {self.dropped_suggestions} suggestion(s) without valid evidence, "
                f"{self.dropped_ids} unknown id(s).",
            ]
        return "\n".join(lines)
