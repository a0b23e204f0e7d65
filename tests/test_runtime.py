"""The seed `Runtime` (SEED_API.md, "Runtime(storage_path)") recorded through real span files.

Every test records into `tmp_path` and reads back with a new `BuilderQuery(tmp_path)` or
`runtime.storage`, or by reading the raw OTLP/JSON lines of `tmp_path / "traces.jsonl"` to check the span
contract (contract.py). No flushes, no sleeps: `end_run` promises the run is on disk when it returns.
Bad and non-JSON input (peer complaint 8) and huge values (complaint 9) are tested in
`tests/reliability/test_value_complaints.py` and `test_payload_complaints.py`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from _readback import LOGGER, RUN_ID, attrs, only_outcome, raw_spans, read_run, span_kind, warnings_logged
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

from otel_decisions import BuilderQuery, DecisionType, Option, RunStatus, Runtime
from otel_decisions.models import RunSummary

# ------------------------------------------------------------------------------------------- helpers

RUN_ID_RE = re.compile(r"^run_(\d{8}_\d{6})_[0-9a-f]{8}$")
HEX32_RE = re.compile(r"^[0-9a-f]{32}$")

OP = "gen_ai.operation.name"
ERROR_TYPE = "error.type"
EXECUTION_ID = "otel_decisions.execution_id"
GOAL_ID = "otel_decisions.goal.id"
STATUS_OK = 1
STATUS_ERROR = 2


def status_code(span: dict[str, Any]) -> int:
    return int((span.get("status") or {}).get("code", 0))


def root_of(spans: list[dict[str, Any]]) -> dict[str, Any]:
    roots = [s for s in spans if not s.get("parentSpanId")]
    assert len(roots) == 1, f"expected one root span, got {[s['name'] for s in roots]}"
    return roots[0]


# ----------------------------------------------------------------------------- construction and run ids


@pytest.mark.parametrize("as_str", [True, False], ids=["str", "Path"])
def test_runtime_accepts_str_or_path_and_creates_the_directory(tmp_path: Path, as_str: bool) -> None:
    target = tmp_path / "not" / "yet" / "there"
    assert not target.exists()

    runtime = Runtime(str(target) if as_str else target)

    assert target.is_dir()
    run_id = runtime.start_run("goal")
    runtime.end_run(success=True)
    assert read_run(target, run_id).status == RunStatus.COMPLETED
    assert BuilderQuery(str(target)).get_full_run(run_id) is not None


def test_run_id_has_the_seed_format_with_local_start_time(runtime: Runtime) -> None:
    before = datetime.now().replace(microsecond=0)
    run_id = runtime.start_run("goal")
    after = datetime.now()

    match = RUN_ID_RE.match(run_id)
    assert match is not None, run_id
    stamp = datetime.strptime(match.group(1), "%Y%m%d_%H%M%S")
    assert before <= stamp <= after


def test_run_ids_are_unique(runtime: Runtime) -> None:
    ids = []
    for _ in range(20):
        ids.append(runtime.start_run("goal"))
        runtime.end_run(success=True)
    assert len(set(ids)) == 20


def test_start_run_records_goal_description_and_input(runtime: Runtime, tmp_path: Path) -> None:
    run_id = runtime.start_run("qualify_leads", "Qualify sales leads", {"lead": {"name": "ACME", "n": 3}})
    live = runtime.current_run
    assert live is not None
    assert live.id == run_id
    assert live.status == RunStatus.RUNNING
    runtime.end_run(success=True)

    run = read_run(tmp_path, run_id)
    assert run.goal_id == "qualify_leads"
    assert run.goal_description == "Qualify sales leads"
    assert run.input_data == {"lead": {"name": "ACME", "n": 3}}


# ----------------------------------------------------------------------------------- replacing a run


def test_start_run_while_a_run_is_open_ends_the_open_run_as_cancelled(
    runtime: Runtime, tmp_path: Path
) -> None:
    first = runtime.start_run("goal", "first")
    assert runtime.decide("step one", [{"id": "a"}], "a", "r") == "dec_0"

    second = runtime.start_run("goal", "second")

    assert second != first
    live = runtime.current_run
    assert live is not None and live.id == second
    cancelled = read_run(tmp_path, first)
    assert cancelled.status == RunStatus.CANCELLED
    assert cancelled.completed_at is not None
    assert [d.intent for d in cancelled.decisions] == ["step one"]
    root = root_of(raw_spans(tmp_path, first))
    assert attrs(root)["otel_decisions.run.status"] == "cancelled"
    assert status_code(root) != STATUS_OK

    # The new run works and counts its own decisions.
    assert runtime.decide("step one again", [{"id": "b"}], "b", "r") == "dec_0"
    runtime.end_run(success=True)
    replaced = read_run(tmp_path, second)
    assert replaced.status == RunStatus.COMPLETED
    assert replaced.goal_description == "second"
    assert [d.intent for d in replaced.decisions] == ["step one again"]
    assert runtime.storage.get_runs_by_status("cancelled") == [first]


# ------------------------------------------------------------------------------------------- end_run


def test_end_run_makes_run_readable_immediately(runtime: Runtime, tmp_path: Path) -> None:
    run_id = runtime.start_run("goal")
    runtime.decide("d", [{"id": "a"}], "a", "r")

    assert runtime.end_run(success=True) is None  # type: ignore[func-returns-value]

    run = read_run(tmp_path, run_id)  # a new BuilderQuery, no flush, no waiting
    assert run.status == RunStatus.COMPLETED
    assert len(run.decisions) == 1
    assert runtime.storage.load_run(run_id) is not None


def test_end_run_clears_current_run_and_execution_id(runtime: Runtime) -> None:
    runtime.start_run("goal")
    assert runtime.current_run is not None
    assert runtime.execution_id != ""

    runtime.end_run(success=False)

    assert runtime.current_run is None
    assert runtime.execution_id == ""


def test_end_run_success_generates_the_seed_narrative(runtime: Runtime, tmp_path: Path) -> None:
    run_id = runtime.start_run("goal")
    runtime.end_run(success=True)

    run = read_run(tmp_path, run_id)
    assert run.status == RunStatus.COMPLETED
    assert run.narrative == "Run completed successfully. Made 0 decisions: 0 succeeded, 0 failed."
    assert run.completed_at is not None and run.completed_at >= run.started_at


def test_end_run_failure_generates_the_seed_narrative_with_problems_and_failures(
    runtime: Runtime, tmp_path: Path
) -> None:
    run_id = runtime.start_run("goal")
    ok = runtime.decide("fetch the page", [{"id": "a"}], "a", "r")
    runtime.record_outcome(ok, success=True)
    bad = runtime.decide("parse the page", [{"id": "a"}], "a", "r")
    runtime.record_outcome(bad, success=False, error="no html")
    runtime.decide("summarise", [{"id": "a"}], "a", "r")  # no outcome: counts as not successful
    runtime.report_problem("critical", "timeout")
    runtime.report_problem("warning", "slow")
    runtime.report_problem("critical", "bad data")
    runtime.report_problem("minor", "typo")

    runtime.end_run(success=False)

    run = read_run(tmp_path, run_id)
    assert run.status == RunStatus.FAILED
    assert run.narrative == (
        "Run failed. Made 3 decisions: 1 succeeded, 1 failed. Critical issues: timeout, bad data "
        "Warnings: slow Failed on: parse the page, summarise"
    )
    live_summary = RunSummary.from_run(run)
    assert BuilderQuery(tmp_path).get_run_summary(run_id) == live_summary


def test_end_run_keeps_a_given_narrative_and_output_data(runtime: Runtime, tmp_path: Path) -> None:
    run_id = runtime.start_run("goal")
    runtime.end_run(
        success=True, narrative="All leads qualified.", output_data={"qualified": [1, 2], "ok": True}
    )

    run = read_run(tmp_path, run_id)
    assert run.narrative == "All leads qualified."
    assert run.output_data == {"qualified": [1, 2], "ok": True}


def test_end_run_without_output_data_stores_an_empty_dict(runtime: Runtime, tmp_path: Path) -> None:
    run_id = runtime.start_run("goal")
    runtime.end_run(success=True)

    assert read_run(tmp_path, run_id).output_data == {}


# ------------------------------------------------------------------------------------ without a run

_NO_RUN_CALLS: dict[str, tuple[Callable[[Runtime], object], object]] = {
    "end_run": (lambda rt: rt.end_run(success=True), None),
    "decide": (lambda rt: rt.decide("intent", [{"id": "a"}], "a", "why"), ""),
    "report_problem": (lambda rt: rt.report_problem("critical", "broken"), ""),
    "record_outcome": (lambda rt: rt.record_outcome("dec_0", success=True), None),
}


@pytest.mark.parametrize("name", list(_NO_RUN_CALLS))
def test_call_without_a_run_logs_a_warning_and_returns_the_seed_value(
    runtime: Runtime, tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    call, expected = _NO_RUN_CALLS[name]

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        result = call(runtime)

    assert result == expected
    assert type(result) is type(expected)
    assert len(warnings_logged(caplog)) == 1
    assert runtime.current_run is None
    assert runtime.storage.list_all_runs() == []


@pytest.mark.parametrize("name", list(_NO_RUN_CALLS))
def test_call_after_the_run_ended_logs_a_warning_and_records_nothing(
    runtime: Runtime, tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    run_id = runtime.start_run("goal")
    runtime.end_run(success=True)
    before = read_run(tmp_path, run_id)
    call, expected = _NO_RUN_CALLS[name]

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert call(runtime) == expected

    assert warnings_logged(caplog)
    assert read_run(tmp_path, run_id) == before
    assert runtime.storage.list_all_runs() == [run_id]


# ------------------------------------------------------------------------------------------ set_node


def test_set_node_is_sticky_and_defaults_to_unknown(runtime: Runtime, tmp_path: Path) -> None:
    run_id = runtime.start_run("goal")
    runtime.decide("before any node", [{"id": "a"}], "a", "r")
    runtime.set_node("search")
    runtime.decide("first in search", [{"id": "a"}], "a", "r")
    runtime.decide("explicit node", [{"id": "a"}], "a", "r", node_id="override")
    runtime.decide("second in search", [{"id": "a"}], "a", "r")
    runtime.end_run(success=True)

    run = read_run(tmp_path, run_id)
    assert [d.node_id for d in run.decisions] == ["unknown", "search", "override", "search"]
    assert run.metrics.nodes_executed == ["unknown", "search", "override"]

    # Sticky across runs too (the seed keeps the node on the runtime).
    next_id = runtime.start_run("goal")
    runtime.decide("next run", [{"id": "a"}], "a", "r")
    runtime.end_run(success=True)
    assert [d.node_id for d in read_run(tmp_path, next_id).decisions] == ["search"]


# -------------------------------------------------------------------------------------------- decide


def test_decide_returns_sequential_ids_per_run(runtime: Runtime, tmp_path: Path) -> None:
    runtime.start_run("goal")
    first = [runtime.decide(f"d{i}", [{"id": "a"}], "a", "r") for i in range(3)]
    runtime.end_run(success=True)
    run_id = runtime.start_run("goal")
    second = [runtime.decide(f"e{i}", [{"id": "a"}], "a", "r") for i in range(2)]
    runtime.end_run(success=True)

    assert first == ["dec_0", "dec_1", "dec_2"]
    assert second == ["dec_0", "dec_1"]
    assert [d.id for d in read_run(tmp_path, run_id).decisions] == ["dec_0", "dec_1"]


def test_decide_fills_option_defaults_and_records_every_field(runtime: Runtime, tmp_path: Path) -> None:
    run_id = runtime.start_run("goal")
    decision_id = runtime.decide(
        intent="Pick a search tool",
        options=[
            {"id": "bare"},
            {
                "id": "web",
                "description": "Search the web",
                "action_type": "tool_call",
                "action_params": {"tool": "web_search", "k": 5},
                "pros": ["fresh"],
                "cons": ["slow"],
                "confidence": 0.9,
            },
        ],
        chosen="web",
        reasoning="needs fresh data",
        node_id="researcher",
        decision_type=DecisionType.TOOL_SELECTION,
        constraints=["budget < $1", "no PII"],
        context={"query": "weather", "history": [1, 2, {"x": None}]},
    )
    runtime.end_run(success=True)

    (decision,) = read_run(tmp_path, run_id).decisions
    assert decision.id == decision_id == "dec_0"
    assert decision.options[0] == Option(
        id="bare", description="", action_type="unknown", action_params={}, pros=[], cons=[], confidence=0.5
    )
    assert decision.options[1] == Option(
        id="web",
        description="Search the web",
        action_type="tool_call",
        action_params={"tool": "web_search", "k": 5},
        pros=["fresh"],
        cons=["slow"],
        confidence=0.9,
    )
    assert decision.chosen_option_id == "web"
    assert decision.chosen_option == decision.options[1]
    assert decision.intent == "Pick a search tool"
    assert decision.reasoning == "needs fresh data"
    assert decision.node_id == "researcher"
    assert decision.decision_type == DecisionType.TOOL_SELECTION
    assert decision.active_constraints == ["budget < $1", "no PII"]
    assert decision.input_context == {"query": "weather", "history": [1, 2, {"x": None}]}
    assert decision.outcome is None


def test_decide_accepts_decision_type_as_its_string_value(runtime: Runtime, tmp_path: Path) -> None:
    run_id = runtime.start_run("goal")
    runtime.decide("d", [{"id": "a"}], "a", "r", decision_type="retry_strategy")  # type: ignore[arg-type]
    runtime.end_run(success=True)

    assert read_run(tmp_path, run_id).decisions[0].decision_type == DecisionType.RETRY_STRATEGY


def test_decide_matches_the_live_run(runtime: Runtime, tmp_path: Path) -> None:
    run_id = runtime.start_run("goal", "desc", {"in": 1})
    d = runtime.decide("d", [{"id": "a", "description": "A"}], "a", "r", context={"k": "v"})
    runtime.record_outcome(d, success=True, result=[1, "two"], summary="done", tokens_used=3, latency_ms=4)
    live = runtime.current_run
    assert live is not None
    live_decisions = [x.model_dump() for x in live.decisions]
    runtime.end_run(success=True)

    assert [x.model_dump() for x in read_run(tmp_path, run_id).decisions] == live_decisions


# ------------------------------------------------------------------------------------ record_outcome


def test_record_outcome_records_every_field_and_updates_metrics(runtime: Runtime, tmp_path: Path) -> None:
    run_id = runtime.start_run("goal")
    a = runtime.decide("a", [{"id": "x"}], "x", "r")
    b = runtime.decide("b", [{"id": "x"}], "x", "r")
    runtime.record_outcome(
        a,
        success=True,
        result={"rows": [1, 2, 3]},
        summary="fetched 3 rows",
        state_changes={"cursor": 3},
        tokens_used=120,
        latency_ms=45,
    )
    runtime.record_outcome(b, success=False, error="rate limited", tokens_used=10, latency_ms=5)
    runtime.end_run(success=False)

    run = read_run(tmp_path, run_id)
    first, second = (only_outcome(d) for d in run.decisions)
    assert (first.success, first.result, first.summary, first.state_changes) == (
        True,
        {"rows": [1, 2, 3]},
        "fetched 3 rows",
        {"cursor": 3},
    )
    assert (first.tokens_used, first.latency_ms, first.error) == (120, 45, None)
    assert (second.success, second.error, second.result) == (False, "rate limited", None)
    assert first.timestamp >= run.decisions[0].timestamp
    m = run.metrics
    assert (m.total_decisions, m.successful_decisions, m.failed_decisions) == (2, 1, 1)
    assert (m.total_tokens, m.total_latency_ms) == (130, 50)
    assert m.success_rate == 0.5


def test_record_outcome_with_unknown_id_is_ignored_with_a_warning(
    runtime: Runtime, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run_id = runtime.start_run("goal")
    d = runtime.decide("d", [{"id": "a"}], "a", "r")

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert runtime.record_outcome("dec_99", success=False, error="x") is None  # type: ignore[func-returns-value]

    assert any("dec_99" in message for message in warnings_logged(caplog))
    runtime.end_run(success=True)
    run = read_run(tmp_path, run_id)
    assert [x.id for x in run.decisions] == [d]
    assert run.decisions[0].outcome is None
    assert (run.metrics.successful_decisions, run.metrics.failed_decisions) == (0, 0)
    outcome_spans = [
        s for s in raw_spans(tmp_path, run_id) if "otel_decisions.outcome.decision_id" in attrs(s)
    ]
    assert outcome_spans == []


# ------------------------------------------------------------------------------------ report_problem


def test_report_problem_returns_sequential_ids_and_records_every_field(
    runtime: Runtime, tmp_path: Path
) -> None:
    run_id = runtime.start_run("goal")
    d = runtime.decide("d", [{"id": "a"}], "a", "r")
    first = runtime.report_problem("critical", "API down", d, "provider outage", "add a fallback")
    second = runtime.report_problem("minor", "slow response")
    runtime.end_run(success=False)

    assert (first, second) == ("prob_0", "prob_1")
    run = read_run(tmp_path, run_id)
    p0, p1 = run.problems
    assert (p0.id, p0.severity, p0.description, p0.decision_id, p0.root_cause, p0.suggested_fix) == (
        "prob_0",
        "critical",
        "API down",
        "dec_0",
        "provider outage",
        "add a fallback",
    )
    assert (p1.id, p1.severity, p1.description, p1.decision_id, p1.root_cause, p1.suggested_fix) == (
        "prob_1",
        "minor",
        "slow response",
        None,
        None,
        None,
    )
    assert run.started_at <= p0.timestamp <= p1.timestamp


# ------------------------------------------------------------------------------- decide_and_execute


class ExecutorError(RuntimeError):
    """Raised by the failing executor below."""


def test_decide_and_execute_records_success_with_latency_and_returns_the_result(
    runtime: Runtime, tmp_path: Path
) -> None:
    run_id = runtime.start_run("goal")
    produced = {"answer": 42, "items": [1, 2]}
    inner: list[float] = []

    def executor() -> dict[str, Any]:
        start = time.perf_counter()
        digest = b"seed"
        for _ in range(20_000):
            digest = hashlib.sha256(digest).digest()
        inner.append(time.perf_counter() - start)
        return produced

    outer_start = time.perf_counter()
    decision_id, result = runtime.decide_and_execute(
        "compute the answer",
        [{"id": "calc", "description": "Calculate"}],
        "calc",
        "it is arithmetic",
        executor,
        node_id="calculator",
        decision_type=DecisionType.PATH_CHOICE,
    )
    outer_ms = (time.perf_counter() - outer_start) * 1000
    runtime.end_run(success=True)

    assert decision_id == "dec_0"
    assert result is produced
    decision = read_run(tmp_path, run_id).decisions[0]
    assert decision.node_id == "calculator"
    assert decision.decision_type == DecisionType.PATH_CHOICE
    outcome = only_outcome(decision)
    assert outcome.success is True
    assert outcome.error is None
    assert outcome.result == produced
    assert isinstance(outcome.latency_ms, int)
    assert int(inner[0] * 1000) - 1 <= outcome.latency_ms <= outer_ms + 1


def failing_executor() -> int:
    raise ExecutorError("disk on fire")


def test_decide_and_execute_records_failure_and_reraises_the_same_exception(
    runtime: Runtime, tmp_path: Path
) -> None:
    run_id = runtime.start_run("goal")

    with pytest.raises(ExecutorError) as excinfo:
        runtime.decide_and_execute("write file", [{"id": "w"}], "w", "must save", failing_executor)

    raised = excinfo.value
    assert str(raised) == "disk on fire"
    frames = [frame.name for frame in traceback.extract_tb(raised.__traceback__)]
    assert frames[-1] == "failing_executor"
    # The run goes on after the agent's exception.
    assert runtime.current_run is not None
    assert runtime.decide("next", [{"id": "n"}], "n", "r") == "dec_1"
    runtime.end_run(success=False)

    run = read_run(tmp_path, run_id)
    outcome = only_outcome(run.decisions[0])
    assert outcome.success is False
    assert outcome.error == "disk on fire"
    assert outcome.latency_ms >= 0
    assert run.metrics.failed_decisions == 1
    (outcome_span,) = [
        s for s in raw_spans(tmp_path, run_id) if "otel_decisions.outcome.decision_id" in attrs(s)
    ]
    assert status_code(outcome_span) == STATUS_ERROR
    assert attrs(outcome_span)[ERROR_TYPE] == "ExecutorError"


def test_decide_and_execute_reraises_the_identical_exception_object(runtime: Runtime) -> None:
    runtime.start_run("goal")
    original = ValueError("bad value")

    def executor() -> None:
        raise original

    with pytest.raises(ValueError) as excinfo:
        runtime.decide_and_execute("x", [{"id": "a"}], "a", "r", executor)

    assert excinfo.value is original
    assert "executor" in [frame.name for frame in traceback.extract_tb(original.__traceback__)]
    runtime.end_run(success=False)


# ----------------------------------------------------------------------------------- quick_decision


def test_quick_decision_records_a_single_chosen_execute_option(runtime: Runtime, tmp_path: Path) -> None:
    run_id = runtime.start_run("goal")
    runtime.set_node("sticky")
    first = runtime.quick_decision("Save the file", "write to disk", "user asked", node_id="writer")
    second = runtime.quick_decision("Close", "close handle", "done")
    runtime.end_run(success=True)

    assert (first, second) == ("dec_0", "dec_1")
    d0, d1 = read_run(tmp_path, run_id).decisions
    assert d0.options == [Option(id="action", description="write to disk", action_type="execute")]
    assert d0.chosen_option_id == "action"
    assert d0.chosen_option is not None and d0.chosen_option.description == "write to disk"
    assert (d0.intent, d0.reasoning, d0.node_id) == ("Save the file", "user asked", "writer")
    assert d0.decision_type == DecisionType.CUSTOM
    assert d1.node_id == "sticky"
    assert d1.summary_for_builder() == "✗ [sticky] Close → close handle"


# ------------------------------------------------------------------------------------- execution id


def test_execution_id_is_the_trace_id_of_every_span_of_the_run(runtime: Runtime, tmp_path: Path) -> None:
    assert runtime.execution_id == ""
    run_id = runtime.start_run("goal")
    execution_id = runtime.execution_id
    d = runtime.decide("d", [{"id": "a", "action_type": "tool_call"}], "a", "r")
    runtime.record_outcome(d, success=True)
    runtime.report_problem("minor", "m")
    runtime.end_run(success=True)

    assert HEX32_RE.match(execution_id), execution_id
    assert execution_id != "0" * 32
    spans = raw_spans(tmp_path, run_id)
    assert len(spans) == 3
    assert {s["traceId"] for s in spans} == {execution_id}
    assert {attrs(s)[EXECUTION_ID] for s in spans} == {execution_id}
    assert BuilderQuery(tmp_path).execution_id(run_id) == execution_id


def test_each_run_gets_its_own_execution_id(runtime: Runtime) -> None:
    runtime.start_run("goal")
    first = runtime.execution_id
    runtime.start_run("goal")  # cancels the first
    second = runtime.execution_id
    runtime.end_run(success=True)

    assert HEX32_RE.match(first) and HEX32_RE.match(second)
    assert first != second


# ----------------------------------------------------------------------------------- runtime.storage


def test_storage_answers_the_seed_queries_newest_first(runtime: Runtime, tmp_path: Path) -> None:
    store = runtime.storage  # opened before anything was written: it must pick up later runs
    assert store.list_all_runs() == []
    assert store.list_all_goals() == []

    r1 = runtime.start_run("goal_a")
    runtime.set_node("n1")
    runtime.decide("d", [{"id": "a"}], "a", "r")
    runtime.end_run(success=True)
    r2 = runtime.start_run("goal_b")
    runtime.set_node("n2")
    runtime.decide("d", [{"id": "a"}], "a", "r")
    runtime.end_run(success=False)
    r3 = runtime.start_run("goal_a")
    runtime.set_node("n3")
    runtime.decide("d", [{"id": "a"}], "a", "r")
    r4 = runtime.start_run("goal_c")  # cancels r3
    runtime.decide("d", [{"id": "a"}], "a", "r")
    runtime.end_run(success=True)

    assert runtime.storage is store
    assert store.list_all_runs() == [r4, r3, r2, r1]
    assert store.list_all_goals() == ["goal_c", "goal_a", "goal_b"]
    assert store.get_runs_by_goal("goal_a") == [r3, r1]
    assert store.get_runs_by_goal("goal_missing") == []
    assert store.get_runs_by_status("completed") == [r4, r1]
    assert store.get_runs_by_status(RunStatus.COMPLETED) == [r4, r1]
    assert store.get_runs_by_status("failed") == [r2]
    assert store.get_runs_by_status(RunStatus.FAILED) == [r2]
    assert store.get_runs_by_status(RunStatus.CANCELLED) == [r3]
    assert store.get_runs_by_status("running") == []
    assert store.get_runs_by_node("n1") == [r1]
    assert store.get_runs_by_node("n3") == [r4, r3]
    assert store.get_runs_by_node("nowhere") == []

    loaded = store.load_run(r2)
    assert loaded is not None and loaded.id == r2 and loaded.status == RunStatus.FAILED
    summary = store.load_summary(r2)
    assert summary is not None
    assert (summary.run_id, summary.goal_id, summary.status, summary.decision_count) == (
        r2,
        "goal_b",
        RunStatus.FAILED,
        1,
    )
    assert summary == RunSummary.from_run(loaded)
    assert store.load_run("run_missing") is None
    assert store.load_summary("run_missing") is None

    # A fresh reader over the same directory agrees.
    query = BuilderQuery(tmp_path)
    assert [s.run_id for s in query.list_runs_for_goal("goal_a")] == [r3, r1]
    assert [s.run_id for s in query.get_recent_failures()] == [r2]


def test_storage_of_two_runtimes_sharing_a_directory_sees_both(tmp_path: Path) -> None:
    one, two = Runtime(tmp_path), Runtime(str(tmp_path))
    a = one.start_run("g1")
    b = two.start_run("g2")
    two.end_run(success=True)
    one.end_run(success=False)

    assert sorted(one.storage.list_all_runs()) == sorted([a, b])
    assert two.storage.get_runs_by_status("failed") == [a]


# ------------------------------------------------------------------------------------- span contract


@dataclass
class RecordedRun:
    directory: Path
    run_id: str
    execution_id: str
    spans: list[dict[str, Any]]


SECRET_INTENT = "look up customer 4711 credit score"


@pytest.fixture
def recorded(runtime: Runtime, tmp_path: Path) -> RecordedRun:
    """A failed run with a tool call, a failed plain outcome and two problems, read raw from the file."""
    run_id = runtime.start_run("contract_goal", "check the contract", {"query": "input", "n": [1, 2]})
    execution_id = runtime.execution_id
    tool = runtime.decide(
        SECRET_INTENT,
        [
            {"id": "search", "action_type": "tool_call", "action_params": {"tool": "web_search"}},
            {"id": "ask", "description": "ask the user"},
        ],
        "search",
        "fastest",
        context={"customer": {"id": 4711}},
    )
    runtime.record_outcome(tool, success=True, result={"hits": [1, 2]}, state_changes={"page": 2})
    plain = runtime.decide(SECRET_INTENT + " again", [{"id": "x"}], "x", "retry")
    runtime.record_outcome(plain, success=False, error="still failing")
    runtime.report_problem("warning", "slow search", tool)
    runtime.report_problem("critical", "no score found", plain, "API down", "use cache")
    runtime.end_run(success=False, output_data={"answer": None})
    return RecordedRun(tmp_path, run_id, execution_id, raw_spans(tmp_path, run_id))


def test_run_span_is_a_root_invoke_agent_span(recorded: RecordedRun) -> None:
    root = root_of(recorded.spans)
    a = attrs(root)

    assert a[OP] == "invoke_agent"
    assert span_kind(root) == "run"
    assert root["spanId"]
    assert root["name"] == "invoke_agent contract_goal"


def test_decision_spans_are_plan_children_of_the_run_span(recorded: RecordedRun) -> None:
    root = root_of(recorded.spans)
    decisions = [s for s in recorded.spans if span_kind(s) == "decision"]

    assert len(decisions) == 2
    for span in decisions:
        assert span["name"] == "plan"
        assert attrs(span)[OP] == "plan"
        assert span["parentSpanId"] == root["spanId"]
        assert span["traceId"] == root["traceId"]


def test_tool_call_outcome_is_an_execute_tool_span(recorded: RecordedRun) -> None:
    root = root_of(recorded.spans)
    outcomes = {
        attrs(s)["otel_decisions.outcome.decision_id"]: s for s in recorded.spans if span_kind(s) == "outcome"
    }

    tool = outcomes["dec_0"]
    assert tool["name"] == "execute_tool web_search"
    assert attrs(tool)[OP] == "execute_tool"
    assert attrs(tool)["gen_ai.tool.name"] == "web_search"
    assert status_code(tool) == 0
    assert ERROR_TYPE not in attrs(tool)
    decision_span = next(s for s in recorded.spans if attrs(s).get("otel_decisions.decision.id") == "dec_0")
    assert decision_span["parentSpanId"] == root["spanId"]
    assert tool["parentSpanId"] == decision_span["spanId"]  # the outcome nests under its decision


def test_failed_outcome_has_error_status_and_error_type(recorded: RecordedRun) -> None:
    failed = next(s for s in recorded.spans if attrs(s).get("otel_decisions.outcome.decision_id") == "dec_1")

    assert failed["name"] == "outcome"
    assert status_code(failed) == STATUS_ERROR
    assert attrs(failed)[ERROR_TYPE]
    assert attrs(failed)["otel_decisions.outcome.error"] == "still failing"


def test_failed_run_root_has_error_status_and_error_type(recorded: RecordedRun) -> None:
    root = root_of(recorded.spans)

    assert status_code(root) == STATUS_ERROR
    assert attrs(root)[ERROR_TYPE]
    assert attrs(root)["otel_decisions.run.status"] == "failed"


def test_completed_run_root_has_unset_status(runtime: Runtime, tmp_path: Path) -> None:
    run_id = runtime.start_run("goal")
    runtime.end_run(success=True)

    root = root_of(raw_spans(tmp_path, run_id))
    assert status_code(root) == 0
    assert ERROR_TYPE not in attrs(root)


def test_no_span_has_status_ok(recorded: RecordedRun) -> None:
    assert len(recorded.spans) == 5
    assert [s["name"] for s in recorded.spans if status_code(s) == STATUS_OK] == []


def test_span_names_never_contain_the_intent(recorded: RecordedRun) -> None:
    names = [s["name"] for s in recorded.spans]

    assert len(names) == 5
    assert not any("customer" in name or "4711" in name for name in names), names


def test_problems_are_events_on_the_run_span_with_count_and_max_severity(recorded: RecordedRun) -> None:
    root = root_of(recorded.spans)
    events = [e for e in root.get("events", []) if e["name"] == "otel_decisions.problem"]

    assert [attrs(e)["otel_decisions.problem.severity"] for e in events] == ["warning", "critical"]
    assert [attrs(e)["otel_decisions.problem.description"] for e in events] == [
        "slow search",
        "no score found",
    ]
    assert attrs(events[1])["otel_decisions.problem.decision_id"] == "dec_1"
    assert attrs(root)["otel_decisions.run.problem_count"] == 2
    assert attrs(root)["otel_decisions.run.max_problem_severity"] == "critical"
    for span in recorded.spans:
        if span is not root:
            assert not span.get("events"), "problems belong on the run span only"


def test_every_span_carries_execution_run_and_goal_ids(recorded: RecordedRun) -> None:
    for span in recorded.spans:
        a = attrs(span)
        assert a[EXECUTION_ID] == recorded.execution_id
        assert a[RUN_ID] == recorded.run_id
        assert a[GOAL_ID] == "contract_goal"
        assert span["traceId"] == recorded.execution_id


def test_nested_values_are_json_strings(recorded: RecordedRun) -> None:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for span in recorded.spans:
        by_kind.setdefault(span_kind(span), []).append(attrs(span))
    run_attrs = by_kind["run"][0]
    tool_decision = next(a for a in by_kind["decision"] if a["otel_decisions.decision.id"] == "dec_0")
    tool_outcome = next(a for a in by_kind["outcome"] if a["otel_decisions.outcome.decision_id"] == "dec_0")

    def decoded(a: dict[str, Any], key: str) -> Any:
        assert isinstance(a[key], str), f"{key} should be a JSON string"
        return json.loads(a[key])

    options = decoded(tool_decision, "otel_decisions.decision.options")
    assert [o["id"] for o in options] == ["search", "ask"]
    assert decoded(tool_decision, "otel_decisions.decision.context") == {"customer": {"id": 4711}}
    assert decoded(tool_outcome, "otel_decisions.outcome.result") == {"hits": [1, 2]}
    assert decoded(tool_outcome, "otel_decisions.outcome.state_changes") == {"page": 2}
    assert decoded(run_attrs, "otel_decisions.run.input_data") == {"query": "input", "n": [1, 2]}
    assert decoded(run_attrs, "otel_decisions.run.output_data") == {"answer": None}


def test_recorded_run_reads_back_through_builder_query(recorded: RecordedRun) -> None:
    run = read_run(recorded.directory, recorded.run_id)

    assert run.status == RunStatus.FAILED
    assert [d.intent for d in run.decisions] == [SECRET_INTENT, SECRET_INTENT + " again"]
    assert [p.severity for p in run.problems] == ["warning", "critical"]
    assert run.problems[1].suggested_fix == "use cache"
    assert run.output_data == {"answer": None}
    assert run.input_data == {"query": "input", "n": [1, 2]}


# --------------------------------------------------------------------------------- an enclosing span


@pytest.fixture
def outer_tracer_provider() -> Iterator[SdkTracerProvider]:
    provider = SdkTracerProvider()
    yield provider
    provider.shutdown()


def test_run_inside_another_span_starts_its_own_trace_linked_to_that_span(
    runtime: Runtime, tmp_path: Path, outer_tracer_provider: SdkTracerProvider
) -> None:
    tracer = outer_tracer_provider.get_tracer("the.agent.app")
    with tracer.start_as_current_span("handle_request") as outer:
        run_id = runtime.start_run("goal")
        runtime.decide("d", [{"id": "a"}], "a", "r")
        execution_id = runtime.execution_id
        runtime.end_run(success=True)
    outer_ctx = outer.get_span_context()
    outer_trace = f"{outer_ctx.trace_id:032x}"
    outer_span = f"{outer_ctx.span_id:016x}"

    assert execution_id != outer_trace
    spans = raw_spans(tmp_path, run_id)
    root = root_of(spans)
    assert "parentSpanId" not in root or not root["parentSpanId"]
    assert {s["traceId"] for s in spans} == {execution_id}
    links = root.get("links", [])
    assert [(link["traceId"], link["spanId"]) for link in links] == [(outer_trace, outer_span)]
    assert read_run(tmp_path, run_id).status == RunStatus.COMPLETED


def test_run_without_an_enclosing_span_has_no_links(runtime: Runtime, tmp_path: Path) -> None:
    run_id = runtime.start_run("goal")
    runtime.end_run(success=True)

    assert root_of(raw_spans(tmp_path, run_id)).get("links", []) == []
