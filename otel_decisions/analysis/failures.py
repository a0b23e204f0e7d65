"""Why did a run fail? The seed's `BuilderQuery.analyze_failure`, as a pure function over a `Run`.

Kept free of storage and of OpenTelemetry so the same analysis serves runs read back from spans, runs
built in tests, and runs loaded from the seed's JSON files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from otel_decisions.models import Decision, Run, RunStatus

__all__ = ["FailureAnalysis", "analyze_failure"]

NO_FAILED_DECISION_POINT: Final = "Unknown - no decision marked as failed"
EXTERNAL_CAUSE: Final = "Run failed but all decisions succeeded (external cause?)"
UNKNOWN_ERROR: Final = "Unknown"


@dataclass
class FailureAnalysis:
    """Where a failed run went wrong, what led there, and what to try next.

    Field order and names are the seed's, so positional and keyword construction both keep working.
    """

    run_id: str
    failure_point: str
    root_cause: str
    decision_chain: list[str]
    problems: list[str]
    suggestions: list[str]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output; the lists are copies so callers cannot mutate the analysis."""
        return {
            "run_id": self.run_id,
            "failure_point": self.failure_point,
            "root_cause": self.root_cause,
            "decision_chain": list(self.decision_chain),
            "problems": list(self.problems),
            "suggestions": list(self.suggestions),
        }

    def __str__(self) -> str:
        """The seed's human-readable report (a Builder reads this, so the layout is kept)."""
        lines = [
            f"=== Failure Analysis for {self.run_id} ===",
            "",
            f"Failure Point: {self.failure_point}",
            f"Root Cause: {self.root_cause}",
            "",
            "Decision Chain Leading to Failure:",
        ]
        lines.extend(f"  {i}. {step}" for i, step in enumerate(self.decision_chain, 1))
        if self.problems:
            lines += ["", "Reported Problems:"]
            lines.extend(f"  - {problem}" for problem in self.problems)
        if self.suggestions:
            lines += ["", "Suggestions:"]
            lines.extend(f"  → {suggestion}" for suggestion in self.suggestions)
        return "\n".join(lines)


def analyze_failure(run: Run) -> FailureAnalysis | None:
    """Explain a failed run; None for any other status, since there is nothing to explain.

    A decision without an outcome counts as failed (the seed's `was_successful`): a run that died
    mid-step leaves exactly such a decision behind, and it is usually the culprit.
    """
    if run.status != RunStatus.FAILED:
        return None

    failed = [d for d in run.decisions if not d.was_successful]
    if failed:
        first = failed[0]
        failure_point = first.summary_for_builder()
        error = first.outcome.error if first.outcome is not None else None
        root_cause = error or UNKNOWN_ERROR
    else:
        failure_point = NO_FAILED_DECISION_POINT
        root_cause = EXTERNAL_CAUSE

    return FailureAnalysis(
        run_id=run.id,
        failure_point=failure_point,
        root_cause=root_cause,
        decision_chain=_chain_to_first_failure(run.decisions),
        problems=[f"[{p.severity}] {p.description}" for p in run.problems],
        suggestions=_suggestions(run, failed),
    )


def _chain_to_first_failure(decisions: list[Decision]) -> list[str]:
    """Summaries up to and including the first failed decision (all of them when none failed)."""
    chain: list[str] = []
    for decision in decisions:
        chain.append(decision.summary_for_builder())
        if not decision.was_successful:
            break
    return chain


def _suggestions(run: Run, failed: list[Decision]) -> list[str]:
    """Heuristic hints per failed decision, then the fixes the agent itself proposed for its problems."""
    suggestions: list[str] = []
    for decision in failed:
        # The seed only looks for an alternative when more than one option was considered.
        if len(decision.options) > 1:
            alternative = next((o for o in decision.options if o.id != decision.chosen_option_id), None)
            if alternative is not None:
                chosen = decision.chosen_option
                chosen_desc = chosen.description if chosen is not None else "unknown"
                suggestions.append(
                    f"Consider alternative: '{alternative.description}' instead of '{chosen_desc}'"
                )
        if not decision.input_context:
            suggestions.append(
                f"Decision '{decision.intent}' had no input context - ensure relevant data is passed"
            )
        if decision.active_constraints:
            constraints = ", ".join(decision.active_constraints)
            suggestions.append(f"Review constraints: {constraints} - may be too restrictive")
    suggestions.extend(p.suggested_fix for p in run.problems if p.suggested_fix)
    return suggestions
