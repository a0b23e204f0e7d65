"""Regression tests for the bugs the hostile-input properties found outside `_values.py` /
`_coerce.py`, each with its smallest reproduction: values whose truth test, hash or repr raises,
megabyte ids, a reseeded global `random`, malformed carriers from the network, ids of any type on the
reading side, and `configure` values of the wrong type. The property tests (test_hostile_inputs.py,
test_hostile_reading.py) now draw these values too.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import otel_decisions as od
from otel_decisions.export.file_writer import FILE_NAME
from otel_decisions.export.pipeline import current_settings
from reliability._hostile import MB, _nested, check_file, raising_class

FALSY_RAISES = raising_class(frozenset({"__bool__"}))
"""An object whose truth cannot be tested (`if x`, `x or y`, `bool(x)` raise)."""
LEN_RAISES = raising_class(frozenset({"__len__"}), dict)
"""A dict subclass whose `len()` raises (so does its truth)."""


def xfail(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=reason)


def logged_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.msg}" for r in caplog.get_records("call") if r.levelno >= logging.ERROR]


# ------------------------------------------------------------------------------------------ runtime.py
def test_decide_records_a_decision_whose_node_id_cannot_be_truth_tested(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = od.Runtime(tmp_path)
    runtime.start_run("goal")
    assert runtime.decide("intent", [{"id": "a"}], "a", "why", node_id=FALSY_RAISES()) == "dec_0"
    assert logged_errors(caplog) == []


def test_end_run_takes_a_success_that_cannot_be_truth_tested(tmp_path: Path) -> None:
    runtime = od.Runtime(tmp_path)
    run_id = runtime.start_run("goal")
    runtime.end_run(FALSY_RAISES())
    run = od.BuilderQuery(tmp_path).get_full_run(run_id)
    assert run is not None and run.status != od.RunStatus.RUNNING


def test_record_outcome_keeps_an_outcome_whose_tokens_cannot_be_truth_tested(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = od.Runtime(tmp_path)
    run_id = runtime.start_run("goal")
    decision_id = runtime.quick_decision("intent", "act", "why")
    runtime.record_outcome(decision_id, True, tokens_used=FALSY_RAISES())
    runtime.end_run(True)
    run = od.BuilderQuery(tmp_path).get_full_run(run_id)
    assert run is not None and run.decisions[0].outcome is not None
    assert logged_errors(caplog) == []


def test_record_outcome_of_an_id_whose_hash_raises_logs_no_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = od.Runtime(tmp_path)
    runtime.start_run("goal")
    runtime.record_outcome(raising_class(frozenset({"__hash__"}), str)("dec_0"), True)
    assert logged_errors(caplog) == []


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(LEN_RAISES(k=1), id="mapping whose len raises: LogRecord() tests its truth"),
        pytest.param(_nested(3000), id="3000 deep: logging re-raises RecursionError from emit"),
    ],
)
def test_warnings_about_hostile_values_never_raise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: Any
) -> None:
    monkeypatch.setattr(logging, "raiseExceptions", False)  # production: a bad record is printed, not raised
    runtime = od.Runtime(tmp_path)
    runtime.record_outcome(value, True)  # no run: "record_outcome called but no run in progress (%s)"
    assert runtime.decide(value, [], "", "") == ""  # no run: "decide called but no run in progress: %s"


def test_warnings_about_huge_values_are_bounded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    od.Runtime(tmp_path).decide("x" * (5 * MB), [], "", "")  # no run
    assert max(len(r.getMessage()) for r in caplog.get_records("call")) < 64 * 1024


# ------------------------------------------------------------------------------------------- scopes.py
def test_decision_takes_a_node_id_that_cannot_be_truth_tested() -> None:
    od.decision("intent", node_id=FALSY_RAISES())


def test_set_outcome_takes_a_success_that_cannot_be_truth_tested(tmp_path: Path) -> None:
    with od.run("goal", directory=tmp_path), od.decision("intent") as handle:
        handle.set_outcome(FALSY_RAISES())


def test_set_outcome_tokens_fit_int64(tmp_path: Path) -> None:
    with od.run("goal", directory=tmp_path), od.decision("intent") as handle:
        handle.set_outcome(True, tokens_used=2**100)
    check_file(tmp_path / FILE_NAME, 0)


@pytest.mark.parametrize("where", ["node()", "decision(node_id=)", "choose()"])
def test_decorated_ids_are_cut_at_the_cap(tmp_path: Path, where: str) -> None:
    huge = "x" * MB
    node_id = huge if where == "decision(node_id=)" else None
    with (
        od.run("goal", directory=tmp_path),
        od.node(huge if where == "node()" else "n"),
        od.decision("intent", node_id=node_id) as handle,
    ):
        handle.choose(huge if where == "choose()" else "action")
    check_file(tmp_path / FILE_NAME, 0)


def test_a_problems_decision_id_is_cut_at_the_cap(tmp_path: Path) -> None:
    runtime = od.Runtime(tmp_path)
    runtime.start_run("goal")
    runtime.report_problem("critical", "description", "x" * MB)
    runtime.end_run(False)
    check_file(tmp_path / FILE_NAME, 0)


# ---------------------------------------------------------------------------------------- pipeline.py
def test_reseeding_random_does_not_merge_runs(tmp_path: Path) -> None:
    runtime = od.Runtime(tmp_path)
    run_ids = []
    for goal in ("first", "second"):
        random.seed(42)  # what agents do for reproducible sampling; two processes alike do the same
        run_ids.append(runtime.start_run(goal))
        runtime.quick_decision(f"{goal} step", "act", "why")
        runtime.end_run(True)
    query = od.BuilderQuery(tmp_path)
    assert [r.goal_id if (r := query.get_full_run(i)) else None for i in run_ids] == ["first", "second"]


# ----------------------------------------------------------------------------------------- context.py
_TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize(
    "carrier",
    [
        pytest.param({"otel-decisions-run": 5, "traceparent": _TRACEPARENT}, id="our key not text"),
        pytest.param({"otel-decisions-run": "zz;r;g;n;d", "traceparent": _TRACEPARENT}, id="exec id not hex"),
        pytest.param({"otel-decisions-run": ";r;g;n;d", "traceparent": _TRACEPARENT}, id="exec id empty"),
        pytest.param({"otel-decisions-run": "ab;r;g;n;a\x00b", "traceparent": _TRACEPARENT}, id="NUL in dir"),
        pytest.param({"otel-decisions-run": "ab;r;g;n;d", "traceparent": 5}, id="traceparent not text"),
        pytest.param(None, id="None"),
        pytest.param([("traceparent", _TRACEPARENT)], id="pairs"),
    ],
)
def test_extract_takes_malformed_carriers(tmp_path: Path, carrier: Any) -> None:
    with od.extract(carrier):
        pass


@pytest.mark.parametrize("carrier", [[("k", "v")], "traceparent", 5], ids=["pairs", "str", "int"])
def test_inject_takes_carriers_that_are_not_mappings(carrier: Any) -> None:
    od.inject(carrier)


# ------------------------------------------------------------------------------------------- reading
@pytest.fixture
def one_run(tmp_path: Path) -> Path:
    runtime = od.Runtime(tmp_path)
    runtime.start_run("goal")
    runtime.quick_decision("intent", "act", "why")
    runtime.end_run(False)
    return tmp_path


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda q: q.get_full_run(["run"]), id="get_full_run(list)"),
        pytest.param(lambda q: q.get_run_summary({"run": 1}), id="get_run_summary(dict)"),
        pytest.param(lambda q: q.compare_runs({1}, "run"), id="compare_runs(set)"),
        pytest.param(
            lambda q: q.storage.load_run(raising_class(frozenset({"__hash__"}))()), id="hash raises"
        ),
        pytest.param(lambda q: q.get_recent_failures("3"), id="get_recent_failures(str)"),
        pytest.param(lambda q: q.get_recent_failures(None), id="get_recent_failures(None)"),
    ],
)
def test_builder_query_answers_ids_of_any_type(one_run: Path, call: Any) -> None:
    call(od.BuilderQuery(one_run))


_QUESTIONS = {
    "get_run_summary": lambda q, run_id: q.get_run_summary(run_id),
    "get_recent_failures": lambda q, run_id: q.get_recent_failures(),
    "list_runs_for_goal": lambda q, run_id: q.list_runs_for_goal("goal"),
    "compare_runs": lambda q, run_id: q.compare_runs(run_id, run_id),
}


@pytest.mark.parametrize(
    ("key", "question"),
    [
        *(
            ("otel_decisions.goal.id", name)
            for name in ("get_run_summary", "get_recent_failures", "compare_runs")
        ),
        *(("otel_decisions.run.id", name) for name in ("get_recent_failures", "list_runs_for_goal")),
    ],
)
def test_a_run_span_with_ids_that_are_not_text_is_read(one_run: Path, key: str, question: str) -> None:
    path = one_run / FILE_NAME
    lines = []
    for line in path.read_bytes().splitlines():
        document = orjson.loads(line)
        for resource_spans in document["resourceSpans"]:
            for scope_spans in resource_spans["scopeSpans"]:
                for span in scope_spans["spans"]:
                    for kv in span.get("attributes", []):
                        if kv["key"] == key:
                            kv["value"] = {"intValue": "7"}
        lines.append(orjson.dumps(document))
    path.write_bytes(b"\n".join(lines) + b"\n")
    query = od.BuilderQuery(one_run)
    (run_id,) = query.storage.list_all_runs()
    _QUESTIONS[question](query, run_id)


# -------------------------------------------------------------------------------------------- settings
@pytest.fixture
def restore_settings() -> Iterator[Any]:
    before = current_settings()
    yield before
    od.configure()


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("directory", 5),
        ("directory", ["spans"]),
        ("local_file", "no"),  # bool("no") is True: the file stays on
        ("join_global_provider", "no"),
        ("service_name", 5),
        ("service_name", b"svc"),
        ("otlp_endpoint", 5),
        ("otlp_protocol", _nested(3000)),
        ("otlp_headers", "key=value"),
        ("otlp_headers", {"key": 5}),
        ("otlp_timeout", True),
        ("exporters", 5),
    ],
)
def test_configure_rejects_values_of_the_wrong_type_with_config_error(
    restore_settings: Any, setting: str, value: Any
) -> None:
    with pytest.raises(od.ConfigError):
        od.configure(**{setting: value})
    assert current_settings() == restore_settings
