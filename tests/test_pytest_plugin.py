"""The pytest plugin, run as users run it: inner test sessions in a subprocess, where the `pytest11`
entry point (not `-p`) loads it, with real `Runtime` runs and decorated runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from otel_decisions import BuilderQuery, RunStatus
from otel_decisions.contract import is_open
from otel_decisions.export import pipeline
from otel_decisions.reading.otlp_files import parse_line

pytest_plugins = ["pytester"]

AGENT = """
import otel_decisions as od
from otel_decisions import DecisionType, Runtime

LEAD_OPTIONS = [
    {"id": "ask", "description": "Ask the lead directly", "action_type": "tool_call",
     "action_params": {"tool": "send_email"}},
    {"id": "infer", "description": "Infer from company size", "action_type": "generate"},
]


def qualify(storage, lead, *, choose="infer", tokens=300, problem=None, end=True, success=True):
    runtime = Runtime(storage)
    runtime.start_run("qualify_leads", "Qualify sales leads", {"lead": lead})
    decision_id = runtime.decide(
        intent="Determine if lead has budget", options=LEAD_OPTIONS, chosen=choose,
        reasoning="company data is available", node_id="lead-qualifier",
        decision_type=DecisionType.TOOL_SELECTION,
    )
    runtime.record_outcome(decision_id, success=success, tokens_used=tokens,
                           error=None if success else "CRM timeout")
    if problem:
        runtime.report_problem("critical", problem, decision_id, "upstream outage", "retry later")
    if end:
        runtime.end_run(success=success)
    return runtime


@od.run("support_ticket")
def support(ticket, tokens=120):
    with od.node("router"):
        return route(ticket, tokens)


@od.decision("Pick a tool", options=[
    {"id": "search", "action_type": "tool_call", "action_params": {"tool": "kb_search"}},
    {"id": "answer", "action_type": "generate"},
])
def route(ticket, tokens):
    decision = od.current_decision()
    decision.choose("search" if "product" in ticket else "answer", reasoning="keyword")
    decision.add_tokens(tokens)
    return "ok"


@od.decision("Process a part")
def part(i):
    return i
"""

PASSING = """
import threading
from concurrent.futures import ThreadPoolExecutor

import otel_decisions as od
from otel_decisions.export import pipeline

from agent import part, qualify, support


def test_runtime_run(decision_runs, tmp_path):
    qualify(tmp_path, "Acme", tokens=300)
    run = decision_runs.run("qualify_leads")
    assert run.status == "completed" and run.input_data == {"lead": "Acme"}
    chosen = decision_runs.assert_chose("infer", intent="budget", node_id="lead-qualifier")
    assert chosen.id == "dec_0" and chosen.chosen_option.description == "Infer from company size"
    decision_runs.assert_no_critical_problems()
    decision_runs.assert_tokens_within(300)
    decision_runs.assert_succeeded("qualify_leads")
    assert decision_runs.total_tokens() == 300 and decision_runs.problems() == []


def test_decorated_runs(decision_runs):
    assert support("product question") == "ok"
    support("hello", tokens=80)
    assert [run.goal_id for run in decision_runs.runs] == ["support_ticket"] * 2
    assert [d.chosen_option_id for d in decision_runs.decisions(node_id="router")] == ["search", "answer"]
    assert decision_runs.decisions(intent="budget") == []
    decision_runs.assert_chose("answer", intent="Pick")
    decision_runs.assert_tokens_within(120, goal_id="support_ticket")
    assert decision_runs.total_tokens("support_ticket") == 200
    decision_runs.assert_succeeded()


def test_problems_of_ended_runs(decision_runs, tmp_path):
    qualify(tmp_path, "Acme", problem="CRM slow")
    assert [p.description for p in decision_runs.problems("CRITICAL")] == ["CRM slow"]
    decision_runs.assert_no_critical_problems(goal_id="other_goal")


def test_open_runs_are_read_as_far_as_recorded(decision_runs, tmp_path):
    runtime = qualify(tmp_path, "Open Inc", choose="ask", end=False)
    run = decision_runs.run()
    assert run.status == "running" and [d.chosen_option_id for d in run.decisions] == ["ask"]
    assert run.metrics.total_tokens == 300
    runtime.end_run(success=True)
    assert decision_runs.run().status == "completed"
    with od.run("live", directory=tmp_path):
        with od.decision("first step"):
            pass
        live = decision_runs.run("live")
        assert live.status == "running" and [d.intent for d in live.decisions] == ["first step"]
    assert decision_runs.run("live").status == "completed"


def test_runs_recorded_in_threads(decision_runs, tmp_path):
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda i: qualify(tmp_path, f"lead {i}", tokens=10 * i), range(8)))
    threads = [threading.Thread(target=support, args=(f"product {i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with od.run("fan_out", directory=tmp_path), ThreadPoolExecutor(max_workers=2) as pool:
        assert list(pool.map(part, range(4))) == [0, 1, 2, 3]
    assert len(decision_runs.runs) == 12
    assert sorted(r.input_data["lead"] for r in decision_runs.runs_for("qualify_leads")) == [
        f"lead {i}" for i in range(8)
    ]
    assert len(decision_runs.decisions(node_id="router", goal_id="support_ticket")) == 3
    assert len(decision_runs.run("fan_out").decisions) == 4
    assert decision_runs.total_tokens("qualify_leads") == 280
    decision_runs.assert_tokens_within(120)
    decision_runs.assert_succeeded()


def test_clear(decision_runs, tmp_path):
    qualify(tmp_path, "warm-up")
    decision_runs.clear()
    assert decision_runs.runs == []


def test_an_observer_only_while_the_fixture_is_in_use(decision_runs):
    assert len(pipeline._observers.processors) == 1


def test_no_observer_without_the_fixture():
    assert pipeline._observers.processors == ()
"""

FAILING = """
from agent import qualify


def test_wrong_choice(decision_runs, tmp_path):
    qualify(tmp_path, "Acme", choose="ask")
    decision_runs.assert_chose("infer", intent="budget")


def test_no_matching_decision(decision_runs, tmp_path):
    qualify(tmp_path, "Acme")
    decision_runs.assert_chose("infer", node_id="nowhere")


def test_no_run_at_all(decision_runs):
    decision_runs.assert_chose("infer")


def test_critical_problem(decision_runs, tmp_path):
    qualify(tmp_path, "Acme", problem="CRM API returned 500")
    decision_runs.assert_no_critical_problems()


def test_problems_of_an_open_run(decision_runs, tmp_path):
    qualify(tmp_path, "Acme", problem="CRM API returned 500", end=False)
    decision_runs.assert_no_critical_problems()


def test_over_budget(decision_runs, tmp_path):
    qualify(tmp_path, "Acme", tokens=1234)
    decision_runs.assert_tokens_within(1000)


def test_failed_run(decision_runs, tmp_path):
    qualify(tmp_path, "Acme", success=False)
    decision_runs.assert_succeeded()


def test_two_runs_where_one_is_expected(decision_runs, tmp_path):
    qualify(tmp_path, "A")
    qualify(tmp_path, "B")
    decision_runs.run("qualify_leads")
"""


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner sessions inherit the environment: no span directory or flush settings from outside."""
    for name in ("OTEL_DECISIONS_DIR", "OTEL_DECISIONS_FLUSH_INTERVAL", "PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        monkeypatch.delenv(name, raising=False)


def _span_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.jsonl"))


def test_fixture_assertions_pass(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(agent=AGENT, test_passing=PASSING)
    result = pytester.runpytest_subprocess("-W", "error", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)
    assert "otel_decisions:" not in result.stdout.str()  # no summary line without the option


def test_fixture_assertions_fail_with_readable_messages(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(agent=AGENT, test_failing=FAILING)
    result = pytester.runpytest_subprocess("-W", "error", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=8)
    result.stdout.fnmatch_lines(
        [
            "E *AssertionError: no decision (intent='budget') chose 'infer'; "
            "1 matching decision chose instead:",
            "E *✓ dec_0 [[]lead-qualifier] 'Determine if lead has budget' chose 'ask' "
            "(run run_*, goal 'qualify_leads')",
            "test_failing.py:6: AssertionError",
            "E *AssertionError: no decision matches node_id='nowhere', so none chose 'infer'; "
            "1 decision recorded:",
            "E *✓ dec_0 [[]lead-qualifier] 'Determine if lead has budget' chose 'infer' *",
            "E *AssertionError: no decision matches no filter, so none chose 'infer'; "
            "0 runs recorded, with no decisions",
            "E *AssertionError: 1 critical problem in 1 run:",
            "E *[[]critical] CRM API returned 500 (run run_*, goal 'qualify_leads'; decision dec_0; "
            "root cause: upstream outage; suggested fix: retry later)",
            "E *AssertionError: cannot check problems: 1 run still open *",
            "E *run run_* (goal 'qualify_leads', running)",
            "E *AssertionError: 1 run over the budget of 1000 tokens:",
            "E *run run_* (goal 'qualify_leads', completed) used 1234 tokens; "
            "most in dec_0 [[]lead-qualifier] 'Determine if lead has budget': 1234",
            "E *AssertionError: 1 run did not complete:",
            "E *run run_* (goal 'qualify_leads', failed); first failed decision dec_0 "
            "'Determine if lead has budget': CRM timeout; Run failed.*",
            "E *AssertionError: expected one run of goal 'qualify_leads', 2 runs recorded:",
            "E *run run_* (goal 'qualify_leads', completed)",
            "E *run run_* (goal 'qualify_leads', completed)",
        ]
    )
    # the helpers hide their own frames: each failure points at the test's line
    result.stdout.no_fnmatch_line("*_pytest_runs.py*")


def test_directory_option_keeps_the_session_spans_for_the_builder(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        agent=AGENT,
        test_session="""
            import os

            from agent import qualify, support


            def test_runs_in_their_own_directories(tmp_path):
                qualify(tmp_path / "agent", "A", choose="ask", success=False)
                qualify(tmp_path / "agent", "B")


            def test_runs_in_the_default_directory():
                assert os.environ["OTEL_DECISIONS_DIR"].endswith("spans")
                support("product x")
                support("hello")


            def test_run_written_straight_into_the_directory():
                qualify(os.environ["OTEL_DECISIONS_DIR"], "C")


            def test_run_left_open(tmp_path):
                qualify(tmp_path, "D", end=False)


            def test_with_the_fixture_too(decision_runs, tmp_path):
                qualify(tmp_path, "E")
                decision_runs.assert_chose("infer")
                assert len(decision_runs.runs) == 1
        """,
    )
    result = pytester.runpytest_subprocess(
        "-W", "error", "-p", "no:cacheprovider", "--otel-decisions-dir=spans"
    )
    result.assert_outcomes(passed=5)
    spans = pytester.path / "spans"
    result.stdout.fnmatch_lines(
        [
            f"otel_decisions: 6 runs of 2 goals recorded (1 still open, written as far as recorded) "
            f"in {spans} (otel-decisions patterns GOAL --source {spans})"
        ]
    )
    assert not (pytester.path / ".otel-decisions").exists()  # the default directory went to DIR

    records = [
        record for line in (spans / "traces.jsonl").read_bytes().splitlines() for record in parse_line(line)
    ]
    span_ids = [record.span_id for record in records if not is_open(record)]  # not crash-safety snapshots
    assert len(span_ids) == len(set(span_ids))  # runs already written to DIR are not copied twice

    query = BuilderQuery(spans)
    leads = query.list_runs_for_goal("qualify_leads")
    assert sorted(run.status for run in leads) == sorted(
        [RunStatus.COMPLETED] * 3 + [RunStatus.FAILED, RunStatus.RUNNING]
    )
    assert all(run.decision_count == 1 for run in leads)
    assert [run.decision_count for run in query.list_runs_for_goal("support_ticket")] == [1, 1]
    patterns = query.find_patterns("qualify_leads")
    assert patterns is not None and patterns.run_count == 5
    choices = patterns.decision_patterns["common_choices"]["Determine if lead has budget"]
    assert choices["choice"] == "Infer from company size" and choices["count"] == 4
    # the agent's own directories keep their copy
    agent_files = [path for path in _span_files(pytester.path) if "spans" not in path.parts]
    assert agent_files and all(path.name == "traces.jsonl" for path in agent_files)


def test_ini_option_is_relative_to_the_ini_file(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\notel_decisions_dir = ini_spans\n")
    sub = pytester.mkpydir("sub")
    (sub / "test_ini.py").write_text(
        "from otel_decisions import Runtime\n\n\n"
        "def test_one_run(tmp_path):\n"
        "    runtime = Runtime(tmp_path)\n"
        "    runtime.start_run('ini_goal')\n"
        "    runtime.quick_decision('Say hello', 'greet', 'polite')\n"
        "    runtime.end_run(success=True)\n"
    )
    monkeypatch.chdir(sub)
    result = pytester.runpytest_subprocess("-W", "error", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["otel_decisions: 1 run of 1 goal recorded in *ini_spans *"])
    summaries = BuilderQuery(pytester.path / "ini_spans").list_runs_for_goal("ini_goal")
    assert [(s.status, s.decision_count) for s in summaries] == [(RunStatus.COMPLETED, 1)]
    assert not (sub / "ini_spans").exists()


def test_unused_plugin_changes_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="""
            import os

            from otel_decisions import Runtime
            from otel_decisions.export import pipeline


            def test_records_its_own_run(tmp_path):
                runtime = Runtime(tmp_path / "agent")
                runtime.start_run("plain")
                runtime.quick_decision("Do it", "act", "because")
                runtime.end_run(success=True)
                assert pipeline._observers.processors == ()
                assert "OTEL_DECISIONS_DIR" not in os.environ
        """
    )
    result = pytester.runpytest_subprocess("-W", "error", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "otel_decisions:" not in result.stdout.str()
    assert not any(path.name == ".otel-decisions" for path in pytester.path.rglob("*"))
    files = _span_files(pytester.path)
    assert len(files) == 1 and files[0].parent.name == "agent"  # only the agent's own run


def test_session_option_restores_the_process_state(pytester: pytest.Pytester) -> None:
    """In process: after a session with the option, no observer is left and the environment is back."""
    observers = pipeline._observers.processors
    pytester.makepyfile(
        test_inner="""
            import os


            def test_directory_is_set():
                assert os.environ["OTEL_DECISIONS_DIR"].endswith("kept")
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--otel-decisions-dir=kept")
    result.assert_outcomes(passed=1)
    assert pipeline._observers.processors == observers
    assert "OTEL_DECISIONS_DIR" not in os.environ
    assert (pytester.path / "kept").is_dir()
