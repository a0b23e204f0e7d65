"""The seed's running example: an agent qualifying sales leads, recorded with `otel_decisions.Runtime`.

Run it from the repository root::

    python examples/lead_qualification.py [DIR]   # default $OTEL_DECISIONS_DIR or ./.otel-decisions

The seed documents this agent piece by piece ("Determine if lead has budget", options "Ask the lead
directly" / "Infer from company size", node "lead-qualifier", goal "qualify-leads"). Here it is whole,
written against the seed's API exactly as a seed user would (only the import changes), deterministic
and offline: the CRM, the web search and the lead's e-mail replies are seeded data, and latencies and
token counts are simulated. One run per lead, through four nodes:

- **enrichment** chooses where company data comes from: the CRM when the lead has a CRM id, else a
  web search. The CRM times out for some records: the run fails there, with a critical problem.
- **lead-qualifier** decides whether the lead has budget: infer it from the company's revenue when that
  is known, else ask the lead directly (an e-mail).
- **scorer** picks a scoring rubric (enterprise or small business) and scores the lead.
- **router** routes the lead to sales, nurture or disqualify by its score.

Then it prints what the Builder reads back from the spans: patterns, the analysis of a failed run and
the suggested improvements.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from otel_decisions import BuilderQuery, DecisionType, RunStatus, Runtime

__all__ = ["CRM_TIMEOUT", "GOAL_ID", "LEADS", "Lead", "main", "qualify"]

GOAL_ID: Final = "qualify-leads"
CRM_TIMEOUT: Final = "CRM lookup timed out after 5000 ms"
TARGET_INDUSTRIES: Final = frozenset({"software", "fintech", "healthcare"})


@dataclass(frozen=True)
class Lead:
    name: str
    crm_id: str | None = None
    says_it_has_budget: bool = False  # the lead's answer when asked directly


LEADS: Final[list[Lead]] = [
    Lead("Acme Corp", "CRM-001"),
    Lead("Globex", "CRM-002"),
    Lead("Initech", "CRM-404"),  # the CRM times out
    Lead("Umbrella Health"),
    Lead("Hooli", "CRM-005"),
    Lead("Vandelay Industries", says_it_has_budget=True),
    Lead("Wayne Fintech", "CRM-408"),  # the CRM times out
    Lead("Tiny Bakery"),
    Lead("Stark Software", "CRM-007"),
    Lead("Soylent", "CRM-504"),  # the CRM times out
]

# Seeded "systems": what the CRM and a web search know about each company.
CRM: Final[dict[str, dict[str, Any]]] = {
    "CRM-001": {"employees": 500, "industry": "software", "revenue_musd": 120.0},
    "CRM-002": {"employees": 1200, "industry": "manufacturing", "revenue_musd": 300.0},
    "CRM-005": {"employees": 80, "industry": "software", "revenue_musd": 9.0},
    "CRM-007": {"employees": 5000, "industry": "software", "revenue_musd": 900.0},
}
CRM_UNAVAILABLE: Final = frozenset({"CRM-404", "CRM-408", "CRM-504"})
WEB: Final[dict[str, dict[str, Any]]] = {
    "Umbrella Health": {"employees": 300, "industry": "healthcare", "revenue_musd": 45.0},
    "Vandelay Industries": {"employees": 40, "industry": "import/export", "revenue_musd": None},
    "Tiny Bakery": {"employees": 3, "industry": "food", "revenue_musd": None},
}


class CRMError(Exception):
    """The CRM did not answer."""


def crm_lookup(crm_id: str) -> dict[str, Any]:
    if crm_id in CRM_UNAVAILABLE:
        raise CRMError(CRM_TIMEOUT)
    return dict(CRM[crm_id])


def web_search(company: str) -> dict[str, Any]:
    return dict(WEB.get(company, {"employees": None, "industry": "unknown", "revenue_musd": None}))


def qualify(runtime: Runtime, lead: Lead) -> dict[str, Any] | None:
    """Qualify one lead as one run; returns its route and score, or None when the run failed."""
    runtime.start_run(
        GOAL_ID, "Qualify incoming sales leads", {"lead_name": lead.name, "crm_id": lead.crm_id}
    )

    # 1. Where does company data come from?
    runtime.set_node("enrichment")
    source = "crm_lookup" if lead.crm_id else "web_search"
    decision_id = runtime.decide(
        intent="Choose a source for company data",
        options=[
            {
                "id": "crm_lookup",
                "description": "Look the company up in the CRM",
                "action_type": "tool_call",
                "action_params": {"tool": "crm_lookup"},
                "pros": ["Accurate", "Has revenue"],
                "cons": ["The CRM is sometimes slow"],
                "confidence": 0.8,
            },
            {
                "id": "web_search",
                "description": "Search the web for the company",
                "action_type": "tool_call",
                "action_params": {"tool": "web_search"},
                "pros": ["Always available"],
                "cons": ["Often misses revenue"],
                "confidence": 0.6,
            },
        ],
        chosen=source,
        reasoning="The lead has a CRM id" if lead.crm_id else "The lead is not in the CRM",
        decision_type=DecisionType.TOOL_SELECTION,
        constraints=["under_5_seconds"],
        context={"company": lead.name, "crm_id": lead.crm_id},
    )
    try:
        company = crm_lookup(lead.crm_id) if lead.crm_id else web_search(lead.name)
    except CRMError as error:
        runtime.record_outcome(decision_id, success=False, error=str(error), latency_ms=5000)
        runtime.report_problem(
            "critical",
            f"Could not enrich {lead.name}",
            decision_id,
            root_cause=str(error),
            suggested_fix="Fall back to a web search when the CRM lookup fails",
        )
        runtime.end_run(success=False, narrative=f"Enrichment failed for {lead.name}: {error}")
        return None
    runtime.record_outcome(
        decision_id,
        success=True,
        result=company,
        summary=f"{company['employees']} employees, {company['industry']}",
        latency_ms=180 if source == "crm_lookup" else 900,
    )

    # 2. The seed's own example decision: does the lead have budget?
    runtime.set_node("lead-qualifier")
    revenue = company["revenue_musd"]
    ask = revenue is None
    decision_id = runtime.decide(
        intent="Determine if lead has budget",
        options=[
            {
                "id": "ask",
                "description": "Ask the lead directly",
                "action_type": "tool_call",
                "action_params": {"tool": "send_email"},
                "pros": ["Direct answer"],
                "cons": ["Might be awkward"],
                "confidence": 0.6,
            },
            {
                "id": "infer",
                "description": "Infer from company size",
                "action_type": "generate",
                "pros": ["Fast", "Non-intrusive"],
                "cons": ["Less accurate"],
                "confidence": 0.8,
            },
        ],
        chosen="ask" if ask else "infer",
        reasoning="No revenue data: only the lead can tell" if ask else "Company data is available",
        decision_type=DecisionType.TOOL_SELECTION,
        constraints=["no_spam"],
        context={"employees": company["employees"], "revenue_musd": revenue},
    )
    has_budget = lead.says_it_has_budget if ask else revenue is not None and revenue >= 10
    runtime.record_outcome(
        decision_id,
        success=True,
        result={"has_budget": has_budget},
        summary=("The lead says it has budget" if has_budget else "No budget confirmed")
        if ask
        else f"Inferred {'a' if has_budget else 'no'} budget from ${revenue}M revenue",
        state_changes={"has_budget": has_budget},
        tokens_used=320 if ask else 150,
        latency_ms=1200 if ask else 420,
    )

    # 3. Which rubric scores this lead?
    runtime.set_node("scorer")
    employees = company["employees"] or 0
    rubric = "enterprise" if employees >= 250 else "smb"
    decision_id = runtime.decide(
        intent="Choose a scoring rubric",
        options=[
            {
                "id": "enterprise",
                "description": "Enterprise rubric (size, revenue, industry)",
                "action_type": "compute",
            },
            {
                "id": "smb",
                "description": "Small-business rubric (budget, industry)",
                "action_type": "compute",
            },
        ],
        chosen=rubric,
        reasoning=f"{employees} employees",
        decision_type=DecisionType.PARAMETER_CHOICE,
        context={"employees": employees},
    )
    fit = 25 if company["industry"] in TARGET_INDUSTRIES else 0
    budget = 35 if has_budget else 0
    size = min(40, employees // 50) if rubric == "enterprise" else min(20, employees // 5)
    score = min(100, fit + budget + size)
    runtime.record_outcome(
        decision_id, success=True, result={"score": score}, summary=f"Score {score}", latency_ms=5
    )

    # 4. Where does the lead go?
    runtime.set_node("router")
    route = "sales" if score >= 70 else "nurture" if score >= 40 else "disqualify"
    _, routed = runtime.decide_and_execute(
        "Route the lead",
        [
            {"id": "sales", "description": "Hand over to sales", "action_type": "route"},
            {"id": "nurture", "description": "Add to the nurture campaign", "action_type": "route"},
            {"id": "disqualify", "description": "Disqualify the lead", "action_type": "route"},
        ],
        route,
        f"Score {score}: sales from 70, nurture from 40",
        lambda: {"route": route, "score": score},
        decision_type=DecisionType.PATH_CHOICE,
        context={"score": score},
    )
    runtime.end_run(success=True, narrative=f"{lead.name}: {route} (score {score})", output_data=routed)
    return dict(routed)


def main(argv: Sequence[str] | None = None) -> None:
    """Qualify the seeded leads into DIR, then print what the Builder finds in the exported spans."""
    args = sys.argv[1:] if argv is None else list(argv)
    directory = Path(
        args[0] if args else os.environ.get("OTEL_DECISIONS_DIR", "").strip() or ".otel-decisions"
    )
    runtime = Runtime(directory)
    for lead in LEADS:
        routed = qualify(runtime, lead)
        outcome = f"{routed['route']} (score {routed['score']})" if routed else f"failed: {CRM_TIMEOUT}"
        print(f"{lead.name:>20}  →  {outcome}")

    # A separate reader: it sees only what was exported, as a Builder in another process would.
    query = BuilderQuery(directory)
    print()
    print(query.find_patterns(GOAL_ID))
    failed = [s for s in query.list_runs_for_goal(GOAL_ID) if s.status == RunStatus.FAILED]
    if failed:
        print()
        print(query.analyze_failure(failed[0].run_id))
    print("\nSuggestions:")
    for suggestion in query.suggest_improvements(GOAL_ID):
        where = f"{suggestion['type']} {suggestion['target']}"
        print(
            f"  [{suggestion['priority']}] {where}: {suggestion['reason']} → {suggestion['recommendation']}"
        )
    print(f"\nSpans: {directory / 'traces.jsonl'}")


if __name__ == "__main__":
    main()
