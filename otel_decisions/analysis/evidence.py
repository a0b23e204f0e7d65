"""Evidence: the run and decision ids behind a finding, so every claim can be clicked through to.

Decision ids are only unique within their run (the seed numbers them `dec_0`, `dec_1`, ...), so a
decision is cited as a pair: `{"run_id": ..., "decision_id": ...}`.

Analyses stream over every run of a goal; keeping every supporting id would cost memory in proportion
to the store. A sink keeps the first `EVIDENCE_LIMIT` runs and decisions (runs arrive newest first, so
these are the newest examples) and counts all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["EVIDENCE_LIMIT", "Evidence", "finding_dict"]

#: How many run ids and decisions a finding lists (the counts cover all of them).
EVIDENCE_LIMIT: Final = 20


@dataclass(slots=True)
class Evidence:
    """Supporting runs and decisions (the first `EVIDENCE_LIMIT` of each) and how many there are."""

    run_ids: list[str] = field(default_factory=list)
    decisions: list[tuple[str, str]] = field(default_factory=list)  # (run id, decision id)
    run_count: int = 0
    decision_count: int = 0
    _last_run: str | None = None

    def add(self, run_id: str, decision_id: str | None = None) -> None:
        """Count `run_id` (once per consecutive run: runs are added one after another) and `decision_id`."""
        if run_id != self._last_run:
            self._last_run = run_id
            self.run_count += 1
            if len(self.run_ids) < EVIDENCE_LIMIT:
                self.run_ids.append(run_id)
        if decision_id is not None:
            self.decision_count += 1
            if len(self.decisions) < EVIDENCE_LIMIT:
                self.decisions.append((run_id, decision_id))

    @classmethod
    def of(cls, decisions: list[tuple[str, str]]) -> Evidence:
        """Evidence from (run id, decision id) pairs in any order (a run's pairs need not be adjacent)."""
        evidence = cls()
        seen: set[str] = set()
        for run_id, decision_id in decisions:
            if run_id not in seen:
                seen.add(run_id)
                evidence.run_count += 1
                if len(evidence.run_ids) < EVIDENCE_LIMIT:
                    evidence.run_ids.append(run_id)
            evidence.decision_count += 1
            if len(evidence.decisions) < EVIDENCE_LIMIT:
                evidence.decisions.append((run_id, decision_id))
        return evidence

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_ids": list(self.run_ids),
            "decisions": [{"run_id": r, "decision_id": d} for r, d in self.decisions],
            "run_count": self.run_count,
            "decision_count": self.decision_count,
        }


def finding_dict(finding: Any) -> dict[str, Any]:
    """A finding dataclass (with an `evidence` field) as plain data: its fields, evidence as a dict."""
    data = {name: getattr(finding, name) for name in finding.__dataclass_fields__ if name != "evidence"}
    data["evidence"] = finding.evidence.to_dict()
    return data
