"""Citation checking: keep only what Claude can back with runs and decisions that exist.

A language model can invent an id that looks right (`run_20250101_120000_deadbeef`, `dec_7`), alter one
it was shown, or cite a decision under the wrong run. Each cited id is looked up with the caller's
`run_exists` / `decision_exists` (the store is the authority, not the evidence pack: a real run that was
trimmed from the pack is still valid evidence). Unknown ids are removed and counted; a suggestion with
no valid citation left is removed and counted. Duplicate citations are merged without being counted:
they are redundant, not invented.

Lookups are memoised per call: suggestions tend to cite the same few runs, and a lookup may load a run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from otel_decisions.analysis.llm._models import DecisionRef, LLMSuggestion

__all__ = ["CitationCheck", "check_citations"]


@dataclass(frozen=True, slots=True)
class CitationCheck:
    """The suggestions left after checking, and what was dropped."""

    suggestions: list[LLMSuggestion]
    dropped_suggestions: int
    dropped_ids: int


def check_citations(
    suggestions: Iterable[LLMSuggestion],
    run_exists: Callable[[str], bool],
    decision_exists: Callable[[str, str], bool],
) -> CitationCheck:
    """Remove unknown run ids and decisions from each suggestion, then suggestions citing nothing."""
    runs: dict[str, bool] = {}
    decisions: dict[tuple[str, str], bool] = {}

    def known_run(run_id: str) -> bool:
        if run_id not in runs:
            runs[run_id] = bool(run_exists(run_id))
        return runs[run_id]

    def known_decision(ref: DecisionRef) -> bool:
        key = (ref.run_id, ref.decision_id)
        if key not in decisions:
            decisions[key] = known_run(ref.run_id) and bool(decision_exists(ref.run_id, ref.decision_id))
        return decisions[key]

    kept: list[LLMSuggestion] = []
    dropped_suggestions = dropped_ids = 0
    for suggestion in suggestions:
        run_ids = list(dict.fromkeys(suggestion.evidence_run_ids))
        refs = list(dict.fromkeys(suggestion.evidence_decisions))
        valid_runs = [r for r in run_ids if known_run(r)]
        valid_refs = [d for d in refs if known_decision(d)]
        dropped_ids += len(run_ids) - len(valid_runs) + len(refs) - len(valid_refs)
        if not valid_runs and not valid_refs:
            dropped_suggestions += 1
            continue
        kept.append(
            suggestion.model_copy(update={"evidence_run_ids": valid_runs, "evidence_decisions": valid_refs})
        )
    return CitationCheck(kept, dropped_suggestions, dropped_ids)
