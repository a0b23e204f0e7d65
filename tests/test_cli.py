"""The `otel-decisions` commands over real recorded runs, checked against `BuilderQuery`.

Runs are recorded into `tmp_path` by `Runtime` (the calculator demo agent, plus a small agent that
retries, flip-flops and spends tokens), then the CLI is called in-process through `main([...])`; a few
tests start a real interpreter to check exit codes and that no traceback reaches the user. Expected
values come from a fresh `BuilderQuery` over the same files, never from the CLI's own code.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from otel_decisions import BuilderQuery, Run, Runtime
from otel_decisions._demo.calculator import DEMO_EXPRESSIONS, GOAL_ID, run_calculator
from otel_decisions.analysis.facts import RunFacts
from otel_decisions.cli import main
from otel_decisions.cli._progress import ProgressBar
from otel_decisions.contract import ns_to_datetime
from otel_decisions.reading.run_store import RunStore

CYCLES = 3  # enough runs for the evaluator's exact-fraction choice to be a significant risk
LOOP_GOAL = "retriever"
TIMEOUT_S = 120


# --------------------------------------------------------------------------------------- recorded runs
def record_looping_run(runtime: Runtime, fail: bool) -> None:
    """A run that retries one decision three times, switching fetch → cache → fetch (a retry loop and
    a flip-flop), never tries "skip", and spends most of its time and tokens in the writer."""
    runtime.start_run(LOOP_GOAL, input_data={"question": "weather?"})
    options = [
        {"id": "fetch", "description": "Fetch live data", "action_type": "tool_call"},
        {"id": "cache", "description": "Use the cached copy", "action_type": "tool_call"},
        {"id": "skip", "description": "Answer without data", "action_type": "execute"},
    ]
    for attempt, choice in enumerate(["fetch", "cache", "fetch"]):
        decision_id = runtime.decide("Pick a data source", options, choice, "need data", node_id="retriever")
        ok = attempt == 2
        runtime.record_outcome(
            decision_id, ok, error=None if ok else "timeout", tokens_used=10, latency_ms=20 + 10 * attempt
        )
    writer = [{"id": "llm", "description": "Ask the LLM to write the answer", "action_type": "llm"}]
    decision_id = runtime.decide("Write the answer", writer, "llm", "only option", node_id="writer")
    runtime.record_outcome(
        decision_id, not fail, error="rate limited" if fail else None, tokens_used=900, latency_ms=400
    )
    runtime.end_run(success=not fail)


@dataclass(frozen=True)
class Store:
    directory: Path
    query: BuilderQuery

    @property
    def facts(self) -> list[RunFacts]:
        return self.query.storage.facts()

    def failed_ids(self, goal: str | None = None) -> list[str]:
        return [f.run_id for f in self.facts if f.failed and goal in (None, f.goal_id)]

    def full_run(self, run_id: str) -> Run:
        run = self.query.get_full_run(run_id)
        assert run is not None, run_id
        return run

    def run_ids(self, goal: str | None = None, status: str | None = None) -> list[str]:
        return [f.run_id for f in self.facts if goal in (None, f.goal_id) and status in (None, f.status)]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    directory = tmp_path_factory.mktemp("cli") / "spans"
    runtime = Runtime(directory)
    for _ in range(CYCLES):
        for expression in DEMO_EXPRESSIONS:
            run_calculator(runtime, expression)
    for fail in (False, True, False, True):
        record_looping_run(runtime, fail)
    return Store(directory, BuilderQuery(directory))


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`otel-decisions ARGS` in-process: (exit code, stdout, stderr)."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys: pytest.CaptureFixture[str], store: Store, *args: str) -> Any:
    code, out, err = cli(capsys, *args, "--source", str(store.directory), "--json")
    assert (code, err) == (0, ""), err
    return json.loads(out)


def subprocess_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`otel-decisions ARGS` in a fresh interpreter, as the console script runs (no $OTEL_DECISIONS_DIR
    unless `env` sets it)."""
    base = {k: v for k, v in os.environ.items() if k != "OTEL_DECISIONS_DIR"}
    return subprocess.run(
        [sys.executable, "-m", "otel_decisions", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT_S,
        cwd=cwd,
        env=base | (env or {}),
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert result.returncode == code, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("otel-decisions: error: ")
    assert "Traceback" not in result.stderr
    assert text in result.stderr


# ------------------------------------------------------------------------------------------------ runs
def test_runs_json_lists_every_runs_facts_newest_first(
    capsys: pytest.CaptureFixture[str], store: Store
) -> None:
    rows = cli_json(capsys, store, "runs")
    assert [r["run_id"] for r in rows] == store.run_ids()
    assert len(rows) == CYCLES * len(DEMO_EXPRESSIONS) + 4
    for row in rows[:: max(1, len(rows) // 8)]:
        summary = store.query.get_run_summary(row["run_id"])
        assert summary is not None
        assert row["goal_id"] == summary.goal_id
        assert row["status"] == summary.status.value
        assert row["decisions"] == summary.decision_count
        assert row["success_rate"] == pytest.approx(summary.success_rate)
        assert row["duration_ms"] == pytest.approx(summary.duration_ms, abs=1)
        assert row["trace_id"] == store.query.execution_id(row["run_id"])
    started = [r["started_at"] for r in rows]
    assert started == sorted(started, reverse=True)


@pytest.mark.parametrize(
    ("flags", "goal", "status"),
    [
        (["--goal", LOOP_GOAL], LOOP_GOAL, None),
        (["--status", "failed"], None, "failed"),
        (["--goal", GOAL_ID, "--status", "completed"], GOAL_ID, "completed"),
        (["--goal", "no-such-goal"], "no-such-goal", None),
    ],
)
def test_runs_filters_by_goal_and_status(
    capsys: pytest.CaptureFixture[str], store: Store, flags: list[str], goal: str | None, status: str | None
) -> None:
    rows = cli_json(capsys, store, "runs", *flags)
    assert [r["run_id"] for r in rows] == store.run_ids(goal, status)
    if goal != "no-such-goal":
        assert rows


def test_runs_limit_keeps_the_newest(capsys: pytest.CaptureFixture[str], store: Store) -> None:
    rows = cli_json(capsys, store, "runs", "--status", "failed", "--limit", "3")
    assert [r["run_id"] for r in rows] == store.failed_ids()[:3]


def test_runs_since_and_until_select_by_start_time(capsys: pytest.CaptureFixture[str], store: Store) -> None:
    facts = store.facts
    middle = facts[len(facts) // 2]
    moment = ns_to_datetime(middle.started_ns).isoformat()  # local time, to the microsecond
    since = cli_json(capsys, store, "runs", "--since", moment)
    until = cli_json(capsys, store, "runs", "--until", moment)
    assert [r["run_id"] for r in since] == [f.run_id for f in facts if f.started_ns >= middle.started_ns]
    assert [r["run_id"] for r in until] == [f.run_id for f in facts if f.started_ns < middle.started_ns]
    assert middle.run_id in {r["run_id"] for r in since} and len(since) + len(until) == len(facts)
    # relative times: everything here was recorded within the last hour
    assert len(cli_json(capsys, store, "runs", "--since", "1h")) == len(facts)
    assert cli_json(capsys, store, "runs", "--until", "1h") == []
    assert cli_json(capsys, store, "runs", "--since", "2999-01-01") == []


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01", "5x", ""])
@pytest.mark.parametrize("flag", ["--since", "--until"])
def test_a_bad_time_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], store: Store, flag: str, value: str
) -> None:
    code, out, err = cli(capsys, "runs", flag, value, "--source", str(store.directory))
    assert code == 2 and out == ""
    assert f"argument {flag}: expected an ISO date or time" in err


def test_runs_table_is_aligned_with_numbers_on_the_right(
    capsys: pytest.CaptureFixture[str], store: Store
) -> None:
    code, out, _ = cli(capsys, "runs", "--source", str(store.directory))
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["RUN", "ID", "GOAL", "STATUS", "DECISIONS", "SUCCESS", "STARTED"]
    assert [row.split()[0] for row in rows] == store.run_ids()
    decisions_end = header.index("DECISIONS") + len("DECISIONS")
    success_end = header.index("SUCCESS") + len("SUCCESS")
    for row in rows:
        assert row[decisions_end - 1].isdigit() and row[decisions_end] == " "
        assert row[success_end - 1] == "%"
        assert row == row.rstrip()


# -------------------------------------------------------------------------------------------- failures
def test_failures_lists_the_newest_failed_runs_with_their_root_cause(
    capsys: pytest.CaptureFixture[str], store: Store
) -> None:
    rows = cli_json(capsys, store, "failures", "--limit", "5")
    assert [r["run_id"] for r in rows] == store.failed_ids()[:5]
    for row in rows:
        analysis = store.query.analyze_failure(row["run_id"])
        assert analysis is not None
        assert {k: row[k] for k in analysis.to_dict()} == analysis.to_dict()

    code, out, _ = cli(capsys, "failures", "--limit", "5", "--source", str(store.directory))
    assert code == 0
    for row in rows:
        line = next(line for line in out.splitlines() if line.startswith(row["run_id"]))
        assert row["root_cause"][:30] in line
    # long failure points are cut with an ellipsis in the table, and whole in JSON
    assert "…" in out and all(len(line) <= 200 for line in out.splitlines())
    assert len(store.failed_ids()) > 5 and "older failed runs not shown" in out


def test_failures_of_one_goal(capsys: pytest.CaptureFixture[str], store: Store) -> None:
    rows = cli_json(capsys, store, "failures", "--goal", LOOP_GOAL, "--limit", "50")
    assert [r["run_id"] for r in rows] == store.failed_ids(LOOP_GOAL)
    assert {r["root_cause"] for r in rows} == {"timeout"}  # the first failed decision's error


# --------------------------------------------------------------------------------------------- analyze
def division_by_zero_run(store: Store) -> str:
    for run_id in store.failed_ids(GOAL_ID):
        analysis = store.query.analyze_failure(run_id)
        if analysis is not None and analysis.root_cause == "Division by zero":
            return run_id
    raise AssertionError("the demo has division-by-zero runs")


def test_analyze_a_failed_run_shows_its_root_cause_and_suspect_decisions(
    capsys: pytest.CaptureFixture[str], store: Store
) -> None:
    run_id = division_by_zero_run(store)
    analysis = store.query.analyze_failure(run_id)
    assert analysis is not None
    (risky,) = store.query.risky_options(GOAL_ID)  # the exact-fraction evaluator, as the demo is built
    document = cli_json(capsys, store, "analyze", run_id)
    assert document["failure_analysis"] == analysis.to_dict()
    assert document["status"] == "failed"
    (suspect,) = document["suspect_decisions"]
    assert suspect == {"decision_id": "dec_1", **risky.to_dict()}

    code, out, _ = cli(capsys, "analyze", run_id, "--source", str(store.directory))
    assert code == 0
    assert out.startswith(str(analysis))
    assert "Root Cause: Division by zero" in out
    suspects = out.split("Suspect decisions", 1)[1]
    assert re.search(
        rf"^dec_1 +evaluator +.+ {risky.failed_with}/\d+ .+ {risky.p_value:.2g} ", suspects, re.M
    )
    assert all(other in suspects for other in risky.evidence.run_ids)


def test_analyze_a_completed_run_says_it_did_not_fail(
    capsys: pytest.CaptureFixture[str], store: Store
) -> None:
    completed = store.run_ids(LOOP_GOAL, "completed")[0]
    code, out, err = cli(capsys, "analyze", completed, "--source", str(store.directory))
    assert (code, err) == (0, "")
    assert f"Run {completed} did not fail (status: completed)" in out
    assert "Suspect decisions: none" in out
    document = cli_json(capsys, store, "analyze", completed)
    assert document["failure_analysis"] is None and document["suspect_decisions"] == []


def test_analyze_a_completed_run_still_shows_its_suspect_choices(
    capsys: pytest.CaptureFixture[str], store: Store
) -> None:
    (risky,) = store.query.risky_options(GOAL_ID)
    completed = next(
        run_id
        for run_id in store.run_ids(GOAL_ID, "completed")
        if any(d.chosen_option_id == risky.option_id for d in store.full_run(run_id).decisions)
    )
    code, out, _ = cli(capsys, "analyze", completed, "--source", str(store.directory))
    assert code == 0 and "did not fail" in out
    assert re.search(r"^dec_\d+ +evaluator ", out, re.M)


# -------------------------------------------------------------------------------------------- patterns
def test_patterns_json_has_every_option_analysis(capsys: pytest.CaptureFixture[str], store: Store) -> None:
    document = cli_json(capsys, store, "patterns", GOAL_ID)
    insights = store.query.insights(GOAL_ID)
    assert insights is not None
    expected = insights.to_dict()
    for key in ("patterns", "options", "risky_options", "unexplored_options", "loops", "status_counts"):
        assert document[key] == json.loads(json.dumps(expected[key])), key
    assert document["risky_options"] and document["unexplored_options"]


def test_patterns_text_shows_the_seed_report_statistics_and_evidence(
    capsys: pytest.CaptureFixture[str], store: Store
) -> None:
    code, out, _ = cli(capsys, "patterns", GOAL_ID, "--source", str(store.directory))
    assert code == 0
    patterns = store.query.find_patterns(GOAL_ID)
    assert out.startswith(str(patterns))
    (risky,) = store.query.risky_options(GOAL_ID)
    risky_part = out.split("Risky options", 1)[1].split("Unexplored options", 1)[0]
    assert f"{risky.p_value:.2g}" in risky_part and f"{risky.q_value:.2g}" in risky_part
    assert f"{risky.failed_with}/{risky.failed_with + risky.completed_with}" in risky_part
    assert all(run_id in risky_part for run_id in risky.evidence.run_ids)
    for stat in store.query.option_stats(GOAL_ID):
        assert re.search(rf"^{stat.node_id} .+ {stat.chosen} +{stat.success_rate:.1%} ", out, re.M)
    (unexplored,) = store.query.unexplored_options(GOAL_ID)
    assert unexplored.option[:30] in out.split("Unexplored options", 1)[1]


def test_patterns_shows_retry_loops_and_flip_flops(capsys: pytest.CaptureFixture[str], store: Store) -> None:
    loops = store.query.loops(LOOP_GOAL)
    assert {lp.kind for lp in loops} == {"retry_loop", "flip_flop"}
    code, out, _ = cli(capsys, "patterns", LOOP_GOAL, "--source", str(store.directory))
    assert code == 0
    part = out.split("Retry loops and flip-flops:", 1)[1]
    for lp in loops:
        counts = rf"{lp.runs} +{lp.failed_runs} +{lp.longest}"
        row = rf"^{lp.kind} +retriever +Pick a data source +{counts} +Fetch live"
        assert (lp.runs, lp.failed_runs) == (4, 2) and re.search(row, part, re.M)
        assert all(run_id in part for run_id in lp.evidence.run_ids)
    assert "Answer without data" in out.split("Unexplored options", 1)[1]


def test_an_unknown_goal_is_an_error_naming_the_known_goals(
    capsys: pytest.CaptureFixture[str], store: Store
) -> None:
    goals = ", ".join(dict.fromkeys(f.goal_id for f in store.facts))  # newest run's goal first
    for command in (["patterns", "nope"], ["suggest", "nope"], ["nodes", "--goal", "nope"]):
        code, out, err = cli(capsys, *command, "--source", str(store.directory))
        assert (code, out) == (1, "")
        assert err == f"otel-decisions: error: no runs of goal 'nope' in {store.directory} (goals: {goals})\n"


# --------------------------------------------------------------------------------------------- suggest
@pytest.mark.parametrize("goal", [GOAL_ID, LOOP_GOAL])
def test_suggest_shows_each_suggestion_with_evidence_ids_that_exist(
    capsys: pytest.CaptureFixture[str], store: Store, goal: str
) -> None:
    expected = store.query.suggest_improvements(goal)
    assert expected
    document = cli_json(capsys, store, "suggest", goal)
    assert document == {"goal_id": goal, "suggestions": json.loads(json.dumps(expected))}

    code, out, _ = cli(capsys, "suggest", goal, "--source", str(store.directory))
    assert code == 0
    blocks = out.split("\n\n")[1:]
    assert len(blocks) == len(expected)
    for n, (block, s) in enumerate(zip(blocks, expected, strict=True), 1):
        assert block.startswith(f"{n}. [{s['priority']}] {s['type']}: {s['target']}\n")
        assert f"Reason: {s['reason']}" in block and f"Recommendation: {s['recommendation']}" in block
        evidence = s["evidence"]
        assert f"Evidence: {evidence['run_count']} run" in block
        assert evidence["run_ids"] and all(run_id in block for run_id in evidence["run_ids"])
        for pair in evidence["decisions"]:  # every cited decision exists in the cited run
            assert pair["decision_id"] in {d.id for d in store.full_run(pair["run_id"]).decisions}
            assert re.search(rf"{pair['run_id']} \([^)]*\b{pair['decision_id']}\b", block)
    kinds = {s["type"] for s in expected}
    assert kinds >= ({"option_risk", "unexplored_option"} if goal == GOAL_ID else {"retry_loop", "flip_flop"})


# --------------------------------------------------------------------------------------------- compare
def test_compare_shows_the_differences(capsys: pytest.CaptureFixture[str], store: Store) -> None:
    failed = division_by_zero_run(store)
    completed = store.run_ids(GOAL_ID, "completed")[0]
    expected = store.query.compare_runs(failed, completed)
    assert cli_json(capsys, store, "compare", failed, completed) == expected
    code, out, _ = cli(capsys, "compare", failed, completed, "--source", str(store.directory))
    assert code == 0
    assert re.search(r"^status +failed +completed$", out, re.M)
    assert "Status: failed vs completed" in expected["differences"]
    for difference in expected["differences"]:
        assert f"  - {difference}" in out


def test_compare_with_an_unknown_run_exits_1(capsys: pytest.CaptureFixture[str], store: Store) -> None:
    code, out, err = cli(
        capsys, "compare", store.run_ids()[0], "run_missing", "--source", str(store.directory)
    )
    assert (code, out) == (1, "")
    assert err == f"otel-decisions: error: run not found: run_missing (in {store.directory})\n"


# ----------------------------------------------------------------------------------------------- nodes
def test_nodes_numbers_match_node_performance_and_hotspots(
    capsys: pytest.CaptureFixture[str], store: Store
) -> None:
    rows = cli_json(capsys, store, "nodes")
    hotspots = store.query.hotspots()
    assert [r["node_id"] for r in rows] == [h.node_id for h in hotspots]
    assert {r["node_id"] for r in rows} == {"parser", "evaluator", "validator", "retriever", "writer"}
    for row, spot in zip(rows, hotspots, strict=True):
        assert row["performance"] == store.query.get_node_performance(row["node_id"])
        assert row["hotspot"] == json.loads(json.dumps(spot.to_dict()))

    code, out, _ = cli(capsys, "nodes", "--source", str(store.directory))
    assert code == 0
    writer = next(r for r in rows if r["node_id"] == "writer")
    perf, spot = writer["performance"], writer["hotspot"]
    assert perf["total_tokens"] == 4 * 900 and spot["p95_latency_ms"] == 400
    line = next(line for line in out.splitlines() if line.startswith("writer "))
    assert line.split() == [
        "writer",
        str(perf["total_decisions"]),
        f"{perf['success_rate']:.1%}",
        f"{spot['avg_latency_ms']:.1f}",
        str(spot["p95_latency_ms"]),
        str(perf["total_tokens"]),
        f"{spot['latency_share']:.1%}",
        f"{spot['token_share']:.1%}",
    ]


def test_nodes_of_one_goal_count_only_its_runs(capsys: pytest.CaptureFixture[str], store: Store) -> None:
    rows = cli_json(capsys, store, "nodes", "--goal", LOOP_GOAL)
    assert {r["node_id"]: r["performance"]["total_decisions"] for r in rows} == {"retriever": 12, "writer": 4}
    assert [r["node_id"] for r in rows] == [h.node_id for h in store.query.hotspots(LOOP_GOAL)]
    assert rows[0]["hotspot"]["latency_share"] == pytest.approx(1600 / (1600 + 4 * (20 + 30 + 40)))


# -------------------------------------------------------------------------------------------- show/demo
def test_show_json_keeps_non_ascii_text(capsys: pytest.CaptureFixture[str], store: Store) -> None:
    run_id = store.failed_ids(GOAL_ID)[0]
    code, out, _ = cli(capsys, "show", run_id, "--source", str(store.directory), "--json")
    assert code == 0 and "✗ [" in out  # ensure_ascii=False: the trace's marks are not escaped
    assert json.loads(out)["decision_trace"] == store.query.get_decision_trace(run_id)


def test_demo_json_reports_the_runs_it_recorded(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = cli(capsys, "demo", "--dir", str(tmp_path), "--json")
    assert (code, err) == (0, "")
    document = json.loads(out)
    query = BuilderQuery(tmp_path)
    assert [r["run_id"] for r in document["runs"]] == list(reversed(query.storage.list_all_runs()))
    assert [r["input"]["expression"] for r in document["runs"]] == DEMO_EXPRESSIONS
    assert document["suggestions"] == json.loads(json.dumps(query.suggest_improvements(GOAL_ID)))
    assert document["latest_failure"]["run_id"] == next(
        r["run_id"] for r in reversed(document["runs"]) if r["status"] == "failed"
    )


# --------------------------------------------------------------------------------------- progress bar
class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_bar_redraws_in_place_throttled_and_ends_with_a_newline() -> None:
    stream, clock = io.StringIO(), FakeClock()
    bar = ProgressBar(stream, width=60, min_interval=0.1, clock=clock)
    bar(0, 1000)
    for done in (100, 200, 300):  # within the interval: not drawn
        clock.now += 0.01
        bar(done, 1000)
    clock.now += 0.2
    bar(500, 1000)
    clock.now += 0.01
    bar(1000, 1000)  # the last call is always drawn
    text = stream.getvalue()
    frames = text.split("\r")[1:]
    assert len(frames) == 3 and text.endswith("\n") and text.count("\n") == 1
    assert [re.findall(r"(\d+)%", f) for f in frames] == [["0"], ["50"], ["100"]]
    assert frames[1].startswith("Reading spans [") and "0.5/1.0 kB" in frames[1]
    assert all(len(f.rstrip("\n")) <= 59 for f in frames)


def test_progress_bar_draws_a_one_call_pass_once_and_skips_repeats() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, width=80, clock=FakeClock())
    bar(0, 0)  # nothing to read
    assert stream.getvalue() == ""
    bar(4_000_000, 4_000_000)
    bar(4_000_000, 4_000_000)  # a later refresh that read nothing new
    assert stream.getvalue().count("\r") == 1 and stream.getvalue().endswith("100%  4.0/4.0 MB\n")
    bar(4_000_000, 9_000_000)  # a new pass: more was appended
    bar(9_000_000, 9_000_000)
    assert stream.getvalue().count("\n") == 2


def test_progress_bar_close_ends_a_half_drawn_line_only() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, width=80, clock=FakeClock())
    bar.close()
    assert stream.getvalue() == ""
    bar(10, 100)
    bar.close()
    bar.close()
    assert stream.getvalue().endswith("\n") and stream.getvalue().count("\n") == 1


def test_progress_is_drawn_on_stderr_when_forced_and_json_stays_parseable(
    capsys: pytest.CaptureFixture[str], store: Store
) -> None:
    code, out, err = cli(capsys, "runs", "--source", str(store.directory), "--json", "--progress")
    assert code == 0
    assert len(json.loads(out)) == len(store.facts)
    assert err.startswith("\rReading spans [") and "100%" in err and err.endswith("\n")
    assert "\n" not in err[:-1]  # one bar, redrawn in place


def test_progress_is_not_drawn_when_disabled_or_stderr_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str], store: Store
) -> None:
    for flags in (["--no-progress"], []):  # captured stderr is not a TTY: automatic means off
        code, _, err = cli(capsys, "runs", "--source", str(store.directory), *flags)
        assert (code, err) == (0, "")


# ---------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "command",
    [["runs"], ["failures", "--json"], ["analyze", "run_x"], ["patterns", "g"], ["suggest", "g"], ["nodes"]],
)
def test_a_missing_source_exits_2_without_traceback(tmp_path: Path, command: list[str]) -> None:
    result = subprocess_cli(*command, "--source", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert_one_line_error(result, 2, f"no span files at {tmp_path / 'nowhere'}")


def test_the_default_source_is_otel_decisions_dir(store: Store, tmp_path: Path) -> None:
    result = subprocess_cli("runs", "--json", cwd=tmp_path, env={"OTEL_DECISIONS_DIR": str(store.directory)})
    assert result.returncode == 0, result.stderr
    assert [r["run_id"] for r in json.loads(result.stdout)] == store.run_ids()
    missing = subprocess_cli("runs", cwd=tmp_path)  # no $OTEL_DECISIONS_DIR here: ./.otel-decisions
    assert_one_line_error(missing, 2, "no span files at .otel-decisions")


@pytest.mark.parametrize("command", [["show"], ["analyze"], ["compare", "run_missing"]])
def test_an_unknown_run_exits_1_without_traceback(store: Store, tmp_path: Path, command: list[str]) -> None:
    result = subprocess_cli(*command, "run_missing", "--source", str(store.directory), cwd=tmp_path)
    assert_one_line_error(result, 1, "run not found: run_missing")


def test_a_bad_argument_exits_2(store: Store, tmp_path: Path) -> None:
    result = subprocess_cli("runs", "--since", "soon", "--source", str(store.directory), cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert "argument --since" in result.stderr and "Traceback" not in result.stderr


@pytest.fixture
def unix_socket(tmp_path: Path) -> Iterator[Path]:
    """A file no one can read, even root: opening a Unix socket fails with ENXIO."""
    path = tmp_path / "s.jsonl"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        yield path
    finally:
        server.close()


def test_an_unopenable_source_file_exits_2(unix_socket: Path, tmp_path: Path) -> None:
    result = subprocess_cli("runs", "--source", str(unix_socket), cwd=tmp_path)
    assert_one_line_error(result, 2, f"cannot read {unix_socket}: ")


def test_an_unreadable_source_file_exits_2(store: Store, tmp_path: Path) -> None:
    copy = tmp_path / "traces.jsonl"
    copy.write_bytes(next(store.directory.glob("*.jsonl")).read_bytes())
    copy.chmod(0)
    try:
        copy.open("rb").close()
    except PermissionError:
        pass
    else:  # root, or CAP_DAC_OVERRIDE: permissions do not apply (the socket test above still runs)
        pytest.skip("this user can read chmod 000 files")
    result = subprocess_cli("runs", "--source", str(copy), cwd=tmp_path)
    assert_one_line_error(result, 2, f"cannot read {copy}: Permission denied")
    # inside a directory, an unreadable file is skipped with a warning
    (tmp_path / "ok.jsonl").write_bytes(next(store.directory.glob("*.jsonl")).read_bytes())
    partial = subprocess_cli("runs", "--json", "--source", str(tmp_path), cwd=tmp_path)
    assert partial.returncode == 0 and "otel-decisions: warning: " in partial.stderr
    assert len(json.loads(partial.stdout)) == len(store.facts)


def test_an_unexpected_exception_is_one_line_with_exit_1(
    capsys: pytest.CaptureFixture[str], store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: BuilderQuery, run_id_1: str, run_id_2: str) -> dict[str, Any]:
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(BuilderQuery, "compare_runs", broken)
    run_id = store.run_ids()[0]
    code, out, err = cli(capsys, "compare", run_id, run_id, "--source", str(store.directory))
    assert (code, out) == (1, "")
    assert err == "otel-decisions: error: RuntimeError: disk on fire second line\n"


def test_ctrl_c_exits_130_quietly(
    capsys: pytest.CaptureFixture[str], store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(self: RunStore) -> list[RunFacts]:
        raise KeyboardInterrupt

    monkeypatch.setattr(RunStore, "facts", interrupted)
    assert cli(capsys, "runs", "--source", str(store.directory)) == (130, "", "")


def test_the_module_and_the_package_main_both_run(tmp_path: Path) -> None:
    for module in ("otel_decisions", "otel_decisions.cli"):
        result = subprocess.run(
            [sys.executable, "-m", module, "--help"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        for command in (
            "runs",
            "show",
            "failures",
            "analyze",
            "patterns",
            "suggest",
            "compare",
            "nodes",
            "demo",
        ):
            assert command in result.stdout


# ------------------------------------------------------------------------------------------------ report
def test_report_writes_one_self_contained_html_file(
    capsys: pytest.CaptureFixture[str], store: Store, tmp_path: Path
) -> None:
    target = tmp_path / "report.html"
    code, out, err = cli(capsys, "report", GOAL_ID, "--source", str(store.directory), "-o", str(target))

    assert (code, err) == (0, ""), err
    assert str(target) in out
    html = target.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "<script" not in html and "<link" not in html
    for failed in store.failed_ids(GOAL_ID)[:3]:
        assert failed in html  # the evidence is there to click through to


def test_report_json_and_unwritable_target(
    capsys: pytest.CaptureFixture[str], store: Store, tmp_path: Path
) -> None:
    target = tmp_path / "r.html"
    data = cli_json(capsys, store, "report", GOAL_ID, "-o", str(target))
    assert data == {
        "goal_id": GOAL_ID,
        "path": str(target),
        "runs": len(store.run_ids(GOAL_ID)),
        "suggestions": len(store.query.suggest_improvements(GOAL_ID)),
    }

    code, out, err = cli(
        capsys,
        "report",
        GOAL_ID,
        "--source",
        str(store.directory),
        "-o",
        str(tmp_path / "missing" / "r.html"),
    )
    assert code == 2 and out == ""
    assert err.startswith("otel-decisions: error: cannot write the report") and err.count("\n") == 1


def test_a_huge_duration_is_a_usage_error_not_a_traceback(
    capsys: pytest.CaptureFixture[str], store: Store
) -> None:
    code, out, err = cli(capsys, "runs", "--source", str(store.directory), "--since", "99999999999d")
    assert code == 2 and out == ""
    assert "duration out of range" in err and "Traceback" not in err


def test_an_unreachable_jaeger_is_a_source_error(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, out, err = cli(capsys, "runs", "--source", f"http://127.0.0.1:{port}")
    assert code == 2 and out == ""
    assert f"otel-decisions: error: cannot read http://127.0.0.1:{port}" in err
