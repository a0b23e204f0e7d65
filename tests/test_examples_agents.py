"""The lead-qualification and journey onboarding examples, run as real scripts.

Each example runs as a subprocess from the repository root (`python examples/NAME.py DIR`), exactly as
the README shows, writing real span files under `tmp_path`. The test checks the analysis it printed,
then reads the spans back with a fresh `BuilderQuery`, as a Builder in another process would.
Expectations come from the examples' own seeded data, so changing the data does not silently pass.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from otel_decisions import BuilderQuery, DecisionType, RunStatus

if str(Path(__file__).parents[1]) not in sys.path:  # `examples` is a directory of the repository
    sys.path.insert(0, str(Path(__file__).parents[1]))

from examples import journey_onboarding, lead_qualification

ROOT = Path(__file__).parents[1]
TIMEOUT_S = 120


def run_example(name: str, directory: Path) -> str:
    """`python examples/NAME.py DIR` from the repository root; returns its stdout (exit 0 asserted)."""
    result = subprocess.run(
        [sys.executable, f"examples/{name}.py", str(directory)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT_S,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def test_lead_qualification_records_and_explains_the_crm_failures(tmp_path: Path) -> None:
    leads = lead_qualification.LEADS
    failing = {lead.name for lead in leads if lead.crm_id in lead_qualification.CRM_UNAVAILABLE}
    assert failing  # the example must fail on purpose
    timeout = lead_qualification.CRM_TIMEOUT
    rate = 100 * (len(leads) - len(failing)) / len(leads)

    out = run_example("lead_qualification", tmp_path)
    for lead in leads:
        assert f"{lead.name:>20}  →  {'failed' if lead.name in failing else ''}" in out
    assert "=== Pattern Analysis for Goal qualify-leads ===" in out
    assert f"Success Rate: {rate:.1f}%" in out
    assert f"  - {timeout} ({len(failing)} occurrences)" in out
    assert f"Root Cause: {timeout}" in out
    assert (
        "Failure Point: ✗ [enrichment] Choose a source for company data → Look the company up in the CRM"
        in out
    )
    assert "→ Fall back to a web search when the CRM lookup fails" in out
    assert f"[high] architecture qualify-leads: Goal success rate is only {rate:.1f}%" in out
    assert f"error_handling {timeout}: Error occurred {len(failing)} times" in out

    query = BuilderQuery(tmp_path)
    summaries = query.list_runs_for_goal(lead_qualification.GOAL_ID)
    assert len(summaries) == len(leads)
    runs = [query.get_full_run(s.run_id) for s in summaries]
    by_lead = {run.input_data["lead_name"]: run for run in runs if run is not None}
    assert {name for name, run in by_lead.items() if run.status == RunStatus.FAILED} == failing
    for name in failing:
        analysis = query.analyze_failure(by_lead[name].id)
        assert analysis is not None and analysis.root_cause == timeout
        (problem,) = by_lead[name].problems
        assert (problem.severity, problem.root_cause) == ("critical", timeout)
    acme = by_lead["Acme Corp"]
    assert [d.node_id for d in acme.decisions] == ["enrichment", "lead-qualifier", "scorer", "router"]
    budget = acme.decisions[1]
    assert (budget.intent, budget.chosen_option_id) == ("Determine if lead has budget", "infer")
    assert budget.outcome is not None and budget.outcome.tokens_used == 150
    assert acme.decisions[3].decision_type == DecisionType.PATH_CHOICE
    assert acme.output_data["route"] in {"sales", "nurture", "disqualify"}


def test_journey_onboarding_records_conversations_with_tool_calls_and_steps(tmp_path: Path) -> None:
    users = list(journey_onboarding.CONVERSATIONS)
    out = run_example("journey_onboarding", tmp_path)
    assert f"=== {len(users)} runs of onboarding-agent (newest first) ===" in out
    assert "Sorry, that didn't work (invalid email address 'bob-at-example.com'). Could you try again?" in out
    assert "  ✗ [collect_email] Choose a tool at step collect_email → Save the user's email" in out
    assert "  ✓ [collect_email] Choose the step after collect_email → go to step complete" in out
    assert "Root Cause: Error executing save_email: invalid email address 'carol@'" in out
    assert "[high] node_improvement collect_email" in out

    query = BuilderQuery(tmp_path)
    summaries = query.list_runs_for_goal("onboarding-agent")
    runs = {
        run.input_data["user"]: run
        for run in (query.get_full_run(s.run_id) for s in summaries)
        if run is not None
    }
    assert sorted(runs) == sorted(users)
    assert {user: run.status for user, run in runs.items()} == {
        "alice": RunStatus.COMPLETED,
        "bob": RunStatus.COMPLETED,
        "carol": RunStatus.FAILED,
    }
    bob = runs["bob"]
    calls = [d for d in bob.decisions if d.decision_type == DecisionType.TOOL_SELECTION]
    assert [(d.chosen_option_id, d.outcome is not None and d.outcome.success) for d in calls] == [
        ("start_onboarding", True),
        ("save_name", True),
        ("save_email", False),
        ("save_email", True),
    ]
    steps = [d.chosen_option_id for d in bob.decisions if d.decision_type == DecisionType.PATH_CHOICE]
    assert steps == ["collect_name", "collect_email", "complete"]
