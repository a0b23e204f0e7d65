"""Reading span files back: the Collector's file-exporter output, our own files, and damaged ones.

The fixtures under `tests/fixtures/` are written in the exact shape of the Collector's `file` exporter
(pdata JSON marshaler): one `{"resourceSpans": [...]}` object per line, hex ids, int64 as strings,
integer enums, `resource`/`scope`/`status` always present.

- `collector_traces.jsonl`: run A (failed, 2 decisions, 1 problem) spread over 3 lines, root span
  last; line 1 also holds a second resource (`billing-api`) whose spans are not ours.
- `collector/traces-2026-11-01T10-00-00.000.jsonl` (rotated) + `collector/traces.jsonl` (active):
  run B split across both files; the active file ends in a torn line holding all of run C.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from otel_decisions import BuilderQuery, Runtime
from otel_decisions.contract import SpanRecord, ns_to_datetime
from otel_decisions.models import DecisionType, RunStatus
from otel_decisions.reading.otlp_files import parse_line, read_new_lines

FIXTURES = Path(__file__).parent / "fixtures"
COLLECTOR_FILE = FIXTURES / "collector_traces.jsonl"
COLLECTOR_DIR = FIXTURES / "collector"
ROTATED_NAME = "traces-2026-11-01T10-00-00.000.jsonl"

TRACE_A = "4bf92f3577b34da6a3ce929d0e0e4736"
RUN_A = "run_20261101_093000_4bf92f35"
SPANS_A = {"00f067aa0ba902b7", "1a2b3c4d5e6f7081", "2b3c4d5e6f708192", "3c4d5e6f708192a3", "4d5e6f708192a3b4"}
FOREIGN_SPANS = {"5e6f708192a3b4c5", "b7ad6b7169203331"}
FOREIGN_TRACE = "0af7651916cd43dd8448eb211c80319c"
START_A_NS = 1793525400000000000  # 2026-11-01T09:30:00Z
END_A_NS = START_A_NS + 8_000_000_000

TRACE_B = "5b8efff798038103d269b633813fc60c"
RUN_B = "run_20261101_095500_5b8efff7"
RUN_C = "run_20261101_100500_e1f2a3b4"
TRACE_C = "e1f2a3b4c5d6e7f8091a2b3c4d5e6f70"
TORN_REST = 'pleted"}}],"status":{}}]}]}]}\n'
"""What the torn last line of `collector/traces.jsonl` is missing."""

OPTIONS: list[dict[str, Any]] = [
    {"id": "a", "description": "Option A", "action_type": "tool_call", "action_params": {"tool": "lookup"}},
    {"id": "b", "description": "Option B"},
]


# --------------------------------------------------------------------------------------------- helpers


def record(runtime: Runtime, goal: str, intents: list[str]) -> str:
    """One completed run with a decision (and a successful outcome) per intent."""
    run_id = runtime.start_run(goal, f"goal {goal}")
    for intent in intents:
        decision_id = runtime.decide(intent=intent, options=OPTIONS, chosen="a", reasoning="because")
        runtime.record_outcome(decision_id, success=True, result={"intent": intent})
    runtime.end_run(success=True)
    return run_id


def intents_by_run(query: BuilderQuery) -> dict[str, list[str]]:
    return {run.id: [d.intent for d in run.decisions] for run in query.storage.runs()}


def warnings_matching(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage()]


def fixture_lines(path: Path) -> list[str]:
    """The complete lines of a fixture, each with its newline."""
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def any_value(value: Any) -> dict[str, Any]:
    """A hand-written OTLP/JSON AnyValue, using array/kvlist forms for lists and dicts."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": [{"key": k, "value": any_value(v)} for k, v in value.items()]}}
    return {"stringValue": str(value)}


def kv(attributes: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": any_value(v)} for k, v in attributes.items()]


# ------------------------------------------------------------------------------ Collector file format


def test_run_spread_over_three_lines_is_merged_into_one_run() -> None:
    query = BuilderQuery(COLLECTOR_FILE)

    assert query.storage.list_all_runs() == [RUN_A]
    run = query.get_full_run(RUN_A)
    assert run is not None
    assert run.goal_id == "qualify_leads"
    assert run.goal_description == "Qualify sales leads"
    assert run.status == RunStatus.FAILED
    assert run.started_at == ns_to_datetime(START_A_NS)
    assert run.completed_at == ns_to_datetime(END_A_NS)
    assert run.input_data == {"lead_id": "L-42"}
    assert run.narrative == "Scoring timed out"
    assert query.execution_id(RUN_A) == TRACE_A

    assert [d.id for d in run.decisions] == ["dec_0", "dec_1"]
    first, second = run.decisions
    assert first.node_id == "research"
    assert first.decision_type == DecisionType.TOOL_SELECTION
    assert [o.id for o in first.options] == ["ask", "infer"]
    assert first.chosen_option_id == "infer"
    assert first.chosen_option is not None and first.chosen_option.action_params == {"tool": "company_lookup"}
    assert first.active_constraints == ["no cold calls"]
    assert first.input_context == {"lead": "acme"}
    assert first.outcome is not None
    assert first.outcome.success is True
    assert first.outcome.result == {"has_budget": True}
    assert (first.outcome.tokens_used, first.outcome.latency_ms) == (120, 340)
    assert second.node_id == "scoring"
    assert second.outcome is not None
    assert second.outcome.success is False
    assert second.outcome.error == "scoring model timed out"

    assert [(p.id, p.severity, p.decision_id, p.suggested_fix) for p in run.problems] == [
        ("prob_0", "critical", "dec_1", "retry with backoff")
    ]
    m = run.metrics
    assert (m.total_decisions, m.successful_decisions, m.failed_decisions) == (2, 1, 1)
    assert (m.total_tokens, m.total_latency_ms) == (120, 5340)
    assert m.nodes_executed == ["research", "scoring"]


def test_spans_of_other_services_are_ignored() -> None:
    query = BuilderQuery(COLLECTOR_FILE)

    spans = query.storage.spans(RUN_A)
    # The billing-api span in run A's trace (a child of an outcome span) is not part of the run,
    # and the billing-api trace of its own does not become a run.
    assert {s.span_id for s in spans} == SPANS_A
    assert not FOREIGN_SPANS & {s.span_id for s in spans}
    assert {s.trace_id for s in spans} == {TRACE_A}
    assert all(s.attributes["otel_decisions.execution_id"] == TRACE_A for s in spans)
    assert query.storage.list_all_runs() == [RUN_A]
    assert [s.name for s in spans if s.span_id == "4d5e6f708192a3b4"] == ["outcome"]
    assert [s.status_code for s in spans if s.span_id == "4d5e6f708192a3b4"] == [2]


def test_run_split_across_rotated_and_active_file_is_merged() -> None:
    query = BuilderQuery(COLLECTOR_DIR)

    assert query.storage.list_all_runs() == [RUN_B]
    run = query.get_full_run(RUN_B)
    assert run is not None
    assert run.status == RunStatus.COMPLETED
    assert [d.id for d in run.decisions] == ["dec_0", "dec_1"]  # both from the rotated file
    assert [d.outcome is not None and d.outcome.success for d in run.decisions] == [True, True]
    assert run.metrics.total_decisions == 2
    assert run.metrics.total_tokens == 380
    assert query.execution_id(RUN_B) == TRACE_B
    assert len(query.storage.spans(RUN_B)) == 5


def test_torn_last_line_is_skipped_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    query = BuilderQuery(COLLECTOR_DIR / "traces.jsonl")

    with caplog.at_level(logging.WARNING):
        first = query.storage.list_all_runs()
        again = query.storage.list_all_runs()

    assert first == again == [RUN_B]  # run C is all in the torn line
    torn = warnings_matching(caplog, "incomplete last line")
    assert len(torn) == 1
    assert "traces.jsonl" in torn[0].getMessage()


def test_completing_the_torn_line_makes_its_run_visible_to_the_same_query(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "collector"
    shutil.copytree(COLLECTOR_DIR, directory)
    query = BuilderQuery(directory)
    assert query.storage.list_all_runs() == [RUN_B]

    with open(directory / "traces.jsonl", "a", encoding="utf-8") as f:
        f.write(TORN_REST)

    assert sorted(query.storage.list_all_runs()) == sorted([RUN_B, RUN_C])
    run = query.get_full_run(RUN_C)
    assert run is not None
    assert run.goal_id == "summarise_ticket"
    assert run.status == RunStatus.COMPLETED
    assert [d.intent for d in run.decisions] == ["Pick a summary length"]
    assert query.execution_id(RUN_C) == TRACE_C
    run_b = query.get_full_run(RUN_B)
    assert run_b is not None and len(run_b.decisions) == 2
    # the completed fixture is now valid JSON Lines throughout
    for line in fixture_lines(directory / "traces.jsonl"):
        assert set(json.loads(line)) == {"resourceSpans"}


def test_garbage_line_in_the_middle_is_skipped_and_later_lines_are_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first, second, third = fixture_lines(COLLECTOR_FILE)
    path = tmp_path / "traces.jsonl"
    path.write_text(
        first + "this is {not json\n" + second + '{"resourceSpans": 7}\n' + third, encoding="utf-8"
    )

    with caplog.at_level(logging.WARNING):
        query = BuilderQuery(path)
        runs = query.storage.runs()

    assert [r.id for r in runs] == [RUN_A]
    assert runs[0].status == RunStatus.FAILED  # the root span is on the line after the garbage
    assert [d.id for d in runs[0].decisions] == ["dec_0", "dec_1"]
    assert len(warnings_matching(caplog, "unreadable line")) == 2


def test_blank_lines_are_ignored_without_warnings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    first, second, third = fixture_lines(COLLECTOR_FILE)
    path = tmp_path / "traces.jsonl"
    path.write_text("\n" + first + "\n   \n" + second + "\r\n" + third + "\n\n", encoding="utf-8")

    with caplog.at_level(logging.WARNING):
        runs = BuilderQuery(path).storage.runs()

    assert [r.id for r in runs] == [RUN_A]
    assert len(runs[0].decisions) == 2
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(COLLECTOR_FILE, {RUN_A}, id="file"),
        pytest.param(str(COLLECTOR_FILE), {RUN_A}, id="file-as-str"),
        pytest.param(FIXTURES, {RUN_A, RUN_B}, id="directory-recursive"),
        pytest.param(COLLECTOR_DIR, {RUN_B}, id="directory"),
        pytest.param(str(COLLECTOR_DIR / "traces*.jsonl"), {RUN_B}, id="glob"),
        pytest.param(str(FIXTURES / "**" / "*.jsonl"), {RUN_A, RUN_B}, id="recursive-glob"),
    ],
)
def test_a_file_a_directory_and_a_glob_all_work_as_the_source(source: str | Path, expected: set[str]) -> None:
    query = BuilderQuery(source)

    assert set(query.storage.list_all_runs()) == expected


def test_rotated_file_alone_rebuilds_the_partial_run_as_running() -> None:
    # Without the active file there is no root span: run B is still rebuilt from its decisions.
    runs = BuilderQuery(COLLECTOR_DIR / ROTATED_NAME).storage.runs()

    assert [r.id for r in runs] == [RUN_B]
    assert runs[0].status == RunStatus.RUNNING
    assert [d.id for d in runs[0].decisions] == ["dec_0", "dec_1"]


@pytest.mark.parametrize("name", ["missing", "missing/*.jsonl", "missing.jsonl"])
def test_missing_path_gives_no_runs(tmp_path: Path, name: str) -> None:
    query = BuilderQuery(tmp_path / name)

    assert query.storage.list_all_runs() == []
    assert query.get_full_run(RUN_A) is None
    assert query.get_recent_failures() == []
    assert query.find_patterns("qualify_leads") is None


# ------------------------------------------------------------------------------- incremental reading


def test_query_sees_runs_written_after_its_first_read(tmp_path: Path) -> None:
    runtime = Runtime(tmp_path)
    first = record(runtime, "incremental", ["one", "two"])
    query = BuilderQuery(tmp_path)
    assert intents_by_run(query) == {first: ["one", "two"]}

    second = record(runtime, "incremental", ["three"])

    assert intents_by_run(query) == {first: ["one", "two"], second: ["three"]}
    assert query.storage.list_all_runs() == [second, first]  # newest first


def test_renamed_rotated_file_is_not_read_twice(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    runtime = Runtime(tmp_path)
    first = record(runtime, "rotation", ["a", "b"])
    active = tmp_path / "traces.jsonl"
    with open(active, "ab") as f:  # an unreadable line: each parse of it logs one warning
        f.write(b"not json\n")
    query = BuilderQuery(tmp_path)

    with caplog.at_level(logging.WARNING):
        assert intents_by_run(query) == {first: ["a", "b"]}
        os.rename(active, tmp_path / "traces-2026-11-01T10-00-00.000-1.jsonl")  # as rotation does
        second = record(runtime, "rotation", ["c", "d", "e"])
        after = intents_by_run(query)

    assert after == {first: ["a", "b"], second: ["c", "d", "e"]}
    assert sorted(p.name for p in tmp_path.glob("*.jsonl")) == [
        "traces-2026-11-01T10-00-00.000-1.jsonl",
        "traces.jsonl",
    ]
    # Re-reading the renamed file would have parsed (and reported) its bad line a second time.
    assert len(warnings_matching(caplog, "unreadable line")) == 1
    assert sum(len(query.storage.spans(run_id)) for run_id in (first, second)) == (1 + 2 * 2) + (1 + 3 * 2)


def test_same_file_copied_twice_yields_each_run_once(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        shutil.copy(COLLECTOR_FILE, tmp_path / name / "traces.jsonl")

    query = BuilderQuery(tmp_path)

    assert query.storage.list_all_runs() == [RUN_A]
    run = query.get_full_run(RUN_A)
    assert run is not None
    assert [d.id for d in run.decisions] == ["dec_0", "dec_1"]
    assert len(run.problems) == 1
    assert {s.span_id for s in query.storage.spans(RUN_A)} == SPANS_A
    assert len(query.storage.spans(RUN_A)) == len(SPANS_A)


# --------------------------------------------------------------------------- accepted encodings


SNAKE_TRACE = "0123456789abcdef0123456789abcdef"
SNAKE_RUN = "run_20261101_110000_01234567"


def _snake_span(
    span_id: str, parent: str, name: str, attributes: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    common = [
        {"key": "otel_decisions.execution_id", "value": {"string_value": SNAKE_TRACE}},
        {"key": "otel_decisions.run.id", "value": {"string_value": SNAKE_RUN}},
        {"key": "otel_decisions.goal.id", "value": {"string_value": "snake_goal"}},
    ]
    span: dict[str, Any] = {
        "trace_id": SNAKE_TRACE,
        "span_id": span_id,
        "name": name,
        "kind": "SPAN_KIND_INTERNAL",
        "start_time_unix_nano": "1793530800000000000",
        "end_time_unix_nano": "1793530801000000000",
        "attributes": common + attributes,
        "status": {},
    }
    if parent:
        span["parent_span_id"] = parent
    span.update(extra)
    return span


def test_snake_case_keys_are_accepted(tmp_path: Path) -> None:
    root = "aaaaaaaaaaaaaaaa"
    document = {
        "resource_spans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"string_value": "snake"}}]},
                "scope_spans": [
                    {
                        "scope": {"name": "otel_decisions"},
                        "spans": [
                            _snake_span(
                                "bbbbbbbbbbbbbbbb",
                                root,
                                "plan",
                                [
                                    {"key": "gen_ai.operation.name", "value": {"string_value": "plan"}},
                                    {"key": "otel_decisions.decision.id", "value": {"string_value": "dec_0"}},
                                    {"key": "otel_decisions.decision.sequence", "value": {"int_value": "0"}},
                                    {
                                        "key": "otel_decisions.decision.intent",
                                        "value": {"string_value": "Pick"},
                                    },
                                    {
                                        "key": "otel_decisions.decision.chosen_option",
                                        "value": {"string_value": "x"},
                                    },
                                ],
                            ),
                            _snake_span(
                                "cccccccccccccccc",
                                root,
                                "outcome",
                                [
                                    {
                                        "key": "otel_decisions.outcome.decision_id",
                                        "value": {"string_value": "dec_0"},
                                    },
                                    {"key": "otel_decisions.outcome.success", "value": {"bool_value": False}},
                                    {
                                        "key": "otel_decisions.outcome.tokens_used",
                                        "value": {"int_value": "9"},
                                    },
                                ],
                                status={"code": "STATUS_CODE_ERROR", "message": "nope"},
                            ),
                            _snake_span(
                                root,
                                "",
                                "invoke_agent snake_goal",
                                [
                                    {
                                        "key": "gen_ai.operation.name",
                                        "value": {"string_value": "invoke_agent"},
                                    },
                                    {"key": "otel_decisions.run.status", "value": {"string_value": "failed"}},
                                    {"key": "otel_decisions.run.decision_count", "value": {"int_value": "1"}},
                                ],
                            ),
                        ],
                    }
                ],
            }
        ]
    }
    path = tmp_path / "snake.jsonl"
    path.write_text(json.dumps(document) + "\n", encoding="utf-8")

    query = BuilderQuery(path)

    run = query.get_full_run(SNAKE_RUN)
    assert run is not None
    assert run.goal_id == "snake_goal"
    assert run.status == RunStatus.FAILED
    assert [(d.id, d.intent, d.chosen_option_id) for d in run.decisions] == [("dec_0", "Pick", "x")]
    outcome = run.decisions[0].outcome
    assert outcome is not None
    assert (outcome.success, outcome.tokens_used) == (False, 9)
    spans = {s.span_id: s for s in query.storage.spans(SNAKE_RUN)}
    assert set(spans) == {root, "bbbbbbbbbbbbbbbb", "cccccccccccccccc"}
    assert spans["cccccccccccccccc"].status_code == 2
    assert spans["cccccccccccccccc"].parent_span_id == root
    assert spans[root].start_ns == 1793530800000000000


def test_kvlist_and_array_attribute_values_are_accepted(tmp_path: Path) -> None:
    trace, run_id, root = (
        "fedcba9876543210fedcba9876543210",
        "run_20261101_120000_fedcba98",
        "1111111111111111",
    )
    common = {
        "otel_decisions.execution_id": trace,
        "otel_decisions.run.id": run_id,
        "otel_decisions.goal.id": "kv",
    }
    options = [
        {
            "id": "fast",
            "description": "Fast path",
            "action_type": "tool_call",
            "action_params": {"tool": "grep"},
        },
        {
            "id": "slow",
            "description": "Slow path",
            "action_type": "think",
            "pros": ["thorough"],
            "confidence": 0.25,
        },
    ]
    decision = {
        **common,
        "gen_ai.operation.name": "plan",
        "otel_decisions.decision.id": "dec_0",
        "otel_decisions.decision.sequence": 0,
        "otel_decisions.decision.intent": "Choose a path",
        "otel_decisions.decision.chosen_option": "fast",
        "otel_decisions.decision.options": options,  # arrayValue of kvlistValue, not a JSON string
        "otel_decisions.decision.context": {"files": ["a.py", "b.py"], "depth": 2},
        "otel_decisions.decision.constraints": ["read-only", "no network"],
    }
    outcome = {
        **common,
        "otel_decisions.outcome.decision_id": "dec_0",
        "otel_decisions.outcome.success": True,
        "otel_decisions.outcome.result": {"matches": [1, 2], "ratio": 0.5, "ok": True},
        "otel_decisions.outcome.state_changes": {"cache": "warm"},
    }
    run_span = {
        **common,
        "gen_ai.operation.name": "invoke_agent",
        "otel_decisions.run.status": "completed",
        "otel_decisions.run.nodes_executed": ["search"],
        "otel_decisions.run.input_data": {"query": "todo"},
    }

    def span(span_id: str, parent: str, attributes: dict[str, Any]) -> dict[str, Any]:
        s: dict[str, Any] = {
            "traceId": trace,
            "spanId": span_id,
            "name": "s",
            "kind": 1,
            "startTimeUnixNano": "1793534400000000000",
            "endTimeUnixNano": "1793534401000000000",
            "attributes": kv(attributes),
            "status": {},
        }
        if parent:
            s["parentSpanId"] = parent
        return s

    line = {
        "resourceSpans": [
            {
                "resource": {},
                "scopeSpans": [
                    {
                        "scope": {},
                        "spans": [
                            span("2222222222222222", root, decision),
                            span("3333333333333333", root, outcome),
                            span(root, "", run_span),
                        ],
                    }
                ],
            }
        ]
    }
    path = tmp_path / "kv.jsonl"
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")

    run = BuilderQuery(path).get_full_run(run_id)

    assert run is not None
    assert run.status == RunStatus.COMPLETED
    assert run.input_data == {"query": "todo"}
    assert run.metrics.nodes_executed == ["search"]
    (d,) = run.decisions
    assert [(o.id, o.description, o.action_type) for o in d.options] == [
        ("fast", "Fast path", "tool_call"),
        ("slow", "Slow path", "think"),
    ]
    assert d.options[0].action_params == {"tool": "grep"}
    assert (d.options[1].pros, d.options[1].confidence) == (["thorough"], 0.25)
    assert d.input_context == {"files": ["a.py", "b.py"], "depth": 2}
    assert d.active_constraints == ["read-only", "no network"]
    assert d.outcome is not None
    assert d.outcome.result == {"matches": [1, 2], "ratio": 0.5, "ok": True}
    assert d.outcome.state_changes == {"cache": "warm"}


def test_wrongly_typed_attribute_does_not_break_the_query(tmp_path: Path) -> None:
    """A foreign or corrupted writer's `decision.sequence` as a string must not fail every read."""
    first, second, third = fixture_lines(COLLECTOR_FILE)
    bad = second.replace(
        '{"key":"otel_decisions.decision.sequence","value":{"intValue":"1"}}',
        '{"key":"otel_decisions.decision.sequence","value":{"stringValue":"second"}}',
    )
    assert bad != second
    path = tmp_path / "traces.jsonl"
    path.write_text(first + bad + third, encoding="utf-8")

    run = BuilderQuery(path).get_full_run(RUN_A)

    assert run is not None
    assert sorted(d.id for d in run.decisions) == ["dec_0", "dec_1"]


# ------------------------------------------------------------------------------ low-level functions


@pytest.mark.parametrize(
    "line", [b"not json", b"{", '{"resourceSpans": [', b"", b"\xff\xfe{}", b'{"a": 1} trailing']
)
def test_parse_line_raises_value_error_on_non_json(line: bytes | str) -> None:
    with pytest.raises(ValueError):
        parse_line(line)


@pytest.mark.parametrize(
    "line",
    [
        b'{"resourceSpans": 5}',
        b'{"resourceSpans": [null]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [null]}]}]}',
    ],
)
def test_parse_line_raises_value_error_on_json_that_is_not_traces_data(line: bytes) -> None:
    with pytest.raises(ValueError):
        parse_line(line)


def test_parse_line_returns_only_our_spans() -> None:
    first = fixture_lines(COLLECTOR_FILE)[0]

    spans = parse_line(first)

    assert [(s.trace_id, s.span_id, s.name) for s in spans] == [(TRACE_A, "1a2b3c4d5e6f7081", "plan")]
    assert parse_line(b"[1, 2]") == []
    assert parse_line('{"resourceSpans": []}') == []


_OURS = (
    '[{"key":"otel_decisions.run.id","value":{"stringValue":"r"}},'
    '{"key":"otel_decisions.execution_id","value":{"stringValue":"t"}}'
)


def _one_span(span: str) -> bytes:
    return ('{"resourceSpans":[{"scopeSpans":[{"spans":[' + span + "]}]}]}").encode()


def _our_span(fields: str = "", extra_attribute: str = "") -> bytes:
    """A span recognised as ours (run.id + execution_id), with extra `fields` and one more attribute."""
    attributes = _OURS + ("," + extra_attribute if extra_attribute else "") + "]"
    return _one_span("{" + fields + '"attributes":' + attributes + "}")


HOSTILE_LINES = [
    b"not json",
    b'{"resourceSpans": 5}',
    b'{"resourceSpans": [null]}',
    b"[1, 2, 3]",
    b'"just a string"',
    b"null",
    _one_span('{"attributes":{"a":1}}'),
    _one_span('{"attributes":[{"value":{}}]}'),
    _one_span('{"attributes":[{"key":["k"],"value":{}}]}'),
    _one_span('{"attributes":[{"key":"k","value":"str"}]}'),
    _our_span(extra_attribute='{"key":"n","value":{"intValue":"abc"}}'),
    _our_span(extra_attribute='{"key":"n","value":{"doubleValue":"abc"}}'),
    _our_span(extra_attribute='{"key":"n","value":{"kvlistValue":{"values":[null]}}}'),
    _our_span(extra_attribute='{"key":"n","value":{"arrayValue":{"values":7}}}'),
    _our_span('"startTimeUnixNano":null,'),
    _our_span('"status":"x",'),
    _our_span('"events":[null],'),
    b"[" * 5000 + b"]" * 5000,
    b'{"a":"\xff"}',
]


def test_read_new_lines_skips_every_bad_line_without_raising(tmp_path: Path) -> None:
    good = fixture_lines(COLLECTOR_FILE)[0].encode()
    path = tmp_path / "hostile.jsonl"
    data = b"\n".join(HOSTILE_LINES) + b"\n" + good + b'{"resourceSpans":[{"scope'  # and a torn tail
    path.write_bytes(data)
    received: list[SpanRecord] = []
    lines: list[tuple[int, int]] = []

    def sink(spans: list[SpanRecord], offset: int, length: int) -> None:
        received.extend(spans)
        lines.append((offset, length))

    offset = read_new_lines(path, 0, sink, set())

    assert offset == data.rindex(b"\n") + 1  # the torn tail is left for the next read
    assert [s.span_id for s in received] == ["1a2b3c4d5e6f7081"]
    assert lines == [(data.index(good), len(good.rstrip(b"\n")))]  # where the line is, to re-read it


def test_read_new_lines_on_missing_or_unreadable_paths_returns_the_offset(tmp_path: Path) -> None:
    received: list[SpanRecord] = []

    def sink(spans: list[SpanRecord], offset: int, length: int) -> None:
        received.extend(spans)

    assert read_new_lines(tmp_path / "missing.jsonl", 12, sink, set()) == 12
    assert read_new_lines(tmp_path, 0, sink, set()) == 0  # a directory
    assert received == []
