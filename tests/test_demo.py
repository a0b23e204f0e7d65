"""The calculator demo agent and the `otel-decisions` command, checked end to end.

The CLI is run as a real subprocess (nothing imports the CLI), writing real span files under
`tmp_path`; what it recorded is then read back by a fresh `BuilderQuery`, as a Builder in another
process would. Expected values come from Python's own arithmetic, and expected run counts from
`DEMO_EXPRESSIONS`, so changing the demo inputs does not silently break these tests.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from otel_decisions import BuilderQuery, DecisionType, Run, RunStatus, Runtime
from otel_decisions._demo.calculator import DEMO_EXPRESSIONS, GOAL_ID, run_calculator

TIMEOUT_S = 120
DEMO_CYCLES = 2


def python_value(expression: str) -> float | None:
    """Python's own arithmetic as the oracle; None where Python refuses (the calculator must fail too).

    `eval` is safe here: the inputs are this repository's constants, and builtins are removed, so a
    function call such as `sqrt(16)` is a NameError, as it is an unsupported call for the calculator.
    """
    try:
        value = eval(compile(expression, "<expression>", "eval"), {"__builtins__": {}}, {})
    except (ZeroDivisionError, SyntaxError, NameError):
        return None
    return float(value)


EXPECTED = {expression: python_value(expression) for expression in DEMO_EXPRESSIONS}
EXPECTED_FAILED = sum(value is None for value in EXPECTED.values())
EXPECTED_COMPLETED = len(DEMO_EXPRESSIONS) - EXPECTED_FAILED


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `otel-decisions ARGS` the way the console script does, in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "otel_decisions.cli", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT_S,
        cwd=cwd,
        check=False,
    )


@dataclass(frozen=True)
class Demo:
    directory: Path
    result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """One `demo` run shared by the read-only CLI tests (a subprocess costs about a second)."""
    directory = tmp_path_factory.mktemp("demo") / "spans"
    result = cli("demo", "--dir", str(directory), "--runs", str(DEMO_CYCLES), cwd=directory.parent)
    return Demo(directory, result)


def only_run(directory: Path) -> Run:
    """The single run recorded under `directory`, read back from its spans."""
    query = BuilderQuery(directory)
    (run_id,) = query.storage.list_all_runs()
    run = query.get_full_run(run_id)
    assert run is not None
    return run


# --------------------------------------------------------------------------------------- demo command
def test_demo_prints_the_builders_analysis(demo: Demo) -> None:
    out = demo.result.stdout
    assert demo.result.returncode == 0, demo.result.stderr
    assert demo.result.stderr == ""
    assert (demo.directory / "traces.jsonl").is_file()
    assert str(demo.directory / "traces.jsonl") in out
    assert f"=== Pattern Analysis for Goal {GOAL_ID} ===" in out
    assert "=== Failure Analysis for run_" in out
    assert "Root Cause: " in out
    suggestions = re.findall(r"^  \[(high|medium|low)\] (\w+) .+: .+$", out, flags=re.MULTILINE)
    assert {kind for _, kind in suggestions} >= {"node_improvement", "error_handling"}


def test_demo_runs_are_read_back_by_a_fresh_builder_query(demo: Demo) -> None:
    query = BuilderQuery(demo.directory)
    summaries = query.list_runs_for_goal(GOAL_ID)
    statuses = Counter(s.status for s in summaries)
    assert len(summaries) == DEMO_CYCLES * len(DEMO_EXPRESSIONS)
    assert statuses == {
        RunStatus.FAILED: DEMO_CYCLES * EXPECTED_FAILED,
        RunStatus.COMPLETED: DEMO_CYCLES * EXPECTED_COMPLETED,
    }
    # Every failed run is listed with its trace id, so the user can find it in Jaeger.
    for summary in summaries:
        if summary.status == RunStatus.FAILED:
            execution_id = query.execution_id(summary.run_id)
            assert execution_id is not None and re.fullmatch(r"[0-9a-f]{32}", execution_id)
            assert f"{summary.run_id}  trace {execution_id}" in demo.result.stdout


def test_demo_inputs_produce_patterns_worth_suggesting(demo: Demo) -> None:
    query = BuilderQuery(demo.directory)
    patterns = query.find_patterns(GOAL_ID)
    assert patterns is not None
    assert patterns.success_rate == pytest.approx(EXPECTED_COMPLETED / len(DEMO_EXPRESSIONS))
    assert any(rate > 0.3 for _, rate in patterns.problematic_nodes)
    assert ("Division by zero", 2 * DEMO_CYCLES) in patterns.common_failures
    kinds = {s["type"] for s in query.suggest_improvements(GOAL_ID)}
    assert kinds >= {"node_improvement", "error_handling", "architecture"}


def test_demo_reports_only_its_own_runs_in_a_used_directory(tmp_path: Path) -> None:
    first = cli("demo", "--dir", str(tmp_path), cwd=tmp_path)
    second = cli("demo", "--dir", str(tmp_path), cwd=tmp_path)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert f"Recorded {len(DEMO_EXPRESSIONS)} runs" in second.stdout
    table_rows = re.findall(r"^run_\w+  ", second.stdout, flags=re.MULTILINE)
    assert len(table_rows) == len(DEMO_EXPRESSIONS)
    assert len(BuilderQuery(tmp_path).storage.list_all_runs()) == 2 * len(DEMO_EXPRESSIONS)


# --------------------------------------------------------------------------------------- runs / show
def test_runs_json_lists_every_run_newest_first(demo: Demo) -> None:
    result = cli("runs", "--source", str(demo.directory), "--json", cwd=demo.directory)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == DEMO_CYCLES * len(DEMO_EXPRESSIONS)
    assert Counter(r["status"] for r in rows) == {
        "failed": DEMO_CYCLES * EXPECTED_FAILED,
        "completed": DEMO_CYCLES * EXPECTED_COMPLETED,
    }
    started = [r["started_at"] for r in rows]
    assert started == sorted(started, reverse=True)
    assert {r["goal_id"] for r in rows} == {GOAL_ID}


def test_runs_prints_a_table(demo: Demo) -> None:
    result = cli("runs", "--source", str(demo.directory), cwd=demo.directory)
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["RUN", "ID", "GOAL", "STATUS", "DECISIONS", "SUCCESS", "STARTED"]
    assert len(rows) == DEMO_CYCLES * len(DEMO_EXPRESSIONS)


def test_show_prints_summary_and_decision_trace(demo: Demo) -> None:
    query = BuilderQuery(demo.directory)
    run_id = query.get_recent_failures(limit=1)[0].run_id
    text = cli("show", run_id, "--source", str(demo.directory), cwd=demo.directory)
    as_json = cli("show", run_id, "--source", str(demo.directory), "--json", cwd=demo.directory)
    assert text.returncode == as_json.returncode == 0, text.stderr + as_json.stderr
    document = json.loads(as_json.stdout)
    assert document["run_id"] == run_id
    assert document["status"] == "failed"
    assert document["execution_id"] == query.execution_id(run_id)
    assert document["decision_trace"] == query.get_decision_trace(run_id)
    assert f"Run {run_id} (goal {GOAL_ID})" in text.stdout
    assert f"Execution id (trace id): {query.execution_id(run_id)}" in text.stdout
    trace_part = text.stdout.split("Decision trace:\n", 1)[1]
    assert [line.split(". ", 1)[1] for line in trace_part.splitlines()] == document["decision_trace"]


def test_show_unknown_run_is_a_one_line_error_with_exit_code_1(demo: Demo) -> None:
    result = cli("show", "run_does_not_exist", "--source", str(demo.directory), cwd=demo.directory)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "run not found: run_does_not_exist" in result.stderr


@pytest.mark.parametrize(
    "command", [["runs"], ["runs", "--json"], ["show", "run_x"]], ids=["runs", "runs-json", "show"]
)
@pytest.mark.parametrize("missing", ["no-such-dir", "no-such-dir/*.jsonl"], ids=["path", "glob"])
def test_missing_source_is_a_one_line_error_with_exit_code_2(
    tmp_path: Path, command: list[str], missing: str
) -> None:
    result = cli(*command, "--source", str(tmp_path / missing), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "no span files at" in result.stderr


# --------------------------------------------------------------------------------- calculator agent
@pytest.fixture(scope="module")
def shared_runtime(tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    return Runtime(tmp_path_factory.mktemp("calculator"))


EXTRA_EXPRESSIONS = [
    "-2 ** 2",  # unary minus binds looser than **
    "8 / 4 / 2",  # left-associative division (tokenizer)
    "1 - 2 - 3",  # left-associative subtraction (tokenizer)
    "2 + 3 * 4 - 6 / 3",  # precedence (tokenizer)
    "(2 + 3) * (7 - 4) ** 2",
    "2 ** -2",
    "--2",
    "1_000 + .5",
    "1e3 / 8",
]


@pytest.mark.parametrize("expression", DEMO_EXPRESSIONS + EXTRA_EXPRESSIONS)
def test_calculator_agrees_with_python_arithmetic(shared_runtime: Runtime, expression: str) -> None:
    expected = python_value(expression)
    value = run_calculator(shared_runtime, expression)
    if expected is None:
        assert value is None
    else:
        assert value == pytest.approx(expected, rel=1e-12)
    assert shared_runtime.current_run is None  # the run was ended either way


def test_exact_fractions_avoid_float_rounding(tmp_path: Path) -> None:
    assert run_calculator(Runtime(tmp_path), "0.1 + 0.2") == 0.3  # floats would give 0.30000000000000004
    evaluator = only_run(tmp_path).decisions[1]
    assert evaluator.chosen_option_id == "exact_fraction"
    assert "Decimal" in evaluator.reasoning


def test_each_node_records_its_decision_with_options_constraints_and_context(tmp_path: Path) -> None:
    assert run_calculator(Runtime(tmp_path), "(1 + 2) / 3") == 1.0
    run = only_run(tmp_path)
    assert run.status == RunStatus.COMPLETED
    assert run.input_data == {"expression": "(1 + 2) / 3"}
    assert run.output_data["result"] == 1.0
    parser, evaluator, validator = run.decisions
    assert [d.node_id for d in run.decisions] == ["parser", "evaluator", "validator"]
    assert all(d.was_successful and d.outcome is not None and d.outcome.summary for d in run.decisions)

    assert parser.decision_type == DecisionType.PATH_CHOICE
    assert {o.id for o in parser.options} == {"ast", "regex_tokenizer"}
    assert parser.chosen_option_id == "ast"  # parentheses need the full grammar
    assert parser.active_constraints and parser.input_context["expression"] == "(1 + 2) / 3"

    assert evaluator.decision_type == DecisionType.TOOL_SELECTION
    assert {o.action_type for o in evaluator.options} == {"tool_call"}
    assert evaluator.chosen_option_id == "exact_fraction"
    assert "Division" in evaluator.reasoning
    assert evaluator.active_constraints and evaluator.input_context["operators"] == ["+", "/"]

    assert validator.chosen_option is not None and validator.chosen_option.action_type == "execute"
    assert validator.outcome is not None and validator.outcome.result == 1.0
    assert run.metrics.nodes_executed == ["parser", "evaluator", "validator"]


def test_division_by_zero_fails_the_run_with_a_critical_problem(tmp_path: Path) -> None:
    assert run_calculator(Runtime(tmp_path), "7 / (3 - 3)") is None
    run = only_run(tmp_path)
    assert run.status == RunStatus.FAILED
    parser, evaluator = run.decisions  # the validator never ran
    assert parser.was_successful and not evaluator.was_successful
    assert evaluator.outcome is not None and evaluator.outcome.error == "Division by zero"
    (problem,) = run.problems
    assert problem.severity == "critical"
    assert problem.decision_id == evaluator.id
    assert problem.root_cause is not None and "'3 - 3' evaluates to 0" in problem.root_cause
    assert problem.suggested_fix

    analysis = BuilderQuery(tmp_path).analyze_failure(run.id)
    assert analysis is not None
    assert analysis.root_cause == "Division by zero"
    assert problem.suggested_fix in analysis.suggestions


def test_unsupported_syntax_fails_in_the_parser_with_a_warning(tmp_path: Path) -> None:
    assert run_calculator(Runtime(tmp_path), "sqrt(16)") is None
    run = only_run(tmp_path)
    (parser,) = run.decisions
    assert parser.outcome is not None and parser.outcome.error == "Unsupported syntax: function call"
    assert [p.severity for p in run.problems] == ["warning"]


def test_tokenizer_failure_falls_back_to_ast_and_the_run_succeeds(tmp_path: Path) -> None:
    assert run_calculator(Runtime(tmp_path), "2 * -3") == -6.0
    run = only_run(tmp_path)
    assert run.status == RunStatus.COMPLETED
    tokenizer, fallback = run.decisions[:2]
    assert tokenizer.chosen_option_id == "regex_tokenizer" and not tokenizer.was_successful
    assert tokenizer.outcome is not None
    assert tokenizer.outcome.error == "Tokenizer does not support unary operators"
    assert fallback.decision_type == DecisionType.RETRY_STRATEGY and fallback.was_successful
    assert [p.severity for p in run.problems] == ["minor"]
    assert [d.node_id for d in run.decisions] == ["parser", "parser", "evaluator", "validator"]
