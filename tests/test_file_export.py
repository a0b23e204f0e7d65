"""The local span file: Collector-format OTLP JSON Lines, its directory, rotation, and concurrent writers.

Every test writes through the real pipeline (`Runtime` -> `RunFileProcessor` -> `JsonLinesWriter`) or
the real writer, into its own temporary directory (pipelines are cached per resolved directory).
"""

from __future__ import annotations

import json
import logging
import os
import re
import select
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otel_decisions import BuilderQuery, Runtime, _config
from otel_decisions.contract import RUN_ID as RUN_ID_KEY
from otel_decisions.contract import SPAN_OPEN
from otel_decisions.export.file_writer import FILE_NAME, JsonLinesWriter
from otel_decisions.export.pipeline import pipeline_for
from otel_decisions.models import RunStatus

HEX32 = re.compile(r"[0-9a-f]{32}")
HEX16 = re.compile(r"[0-9a-f]{16}")
DIGITS = re.compile(r"-?[0-9]+")
RUN_ID = re.compile(r"run_\d{8}_\d{6}_[0-9a-f]{8}")
# rotated names: UTC time, pid, and a serial when two rotations share a millisecond
ROTATED = re.compile(r"traces-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}-\d+(-\d+)?\.jsonl")

OPTIONS: list[dict[str, Any]] = [
    {
        "id": "search",
        "description": "Search the docs",
        "action_type": "tool_call",
        "action_params": {"tool": "doc_search"},
    },
    {"id": "answer", "description": "Answer directly", "action_type": "generate"},
]


# --------------------------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        _config.OTEL_DECISIONS_DIR,
        _config.OTEL_DECISIONS_FILE_MAX_BYTES,
        _config.OTEL_DECISIONS_FILE_FSYNC,
    ):
        monkeypatch.delenv(name, raising=False)


def record(runtime: Runtime, goal: str, intents: list[str]) -> str:
    """One run with a decision per intent; outcomes alternate success/failure."""
    run_id = runtime.start_run(goal, f"goal {goal}", {"intents": len(intents)})
    for i, intent in enumerate(intents):
        decision_id = runtime.decide(intent=intent, options=OPTIONS, chosen="search", reasoning="r" * 40)
        runtime.record_outcome(
            decision_id,
            success=i % 2 == 0,
            result={"i": i, "ratio": 0.5},
            error=None if i % 2 == 0 else "boom",
            tokens_used=i + 1,
            latency_ms=3,
        )
    runtime.end_run(success=True)
    return run_id


def jsonl_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.jsonl"))


def parsed_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of `path`, asserting the file is complete JSON Lines of TracesData objects."""
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), f"{path.name} does not end with a newline"
    out: list[dict[str, Any]] = []
    for number, raw in enumerate(data.split(b"\n")[:-1]):
        try:
            document = json.loads(raw)
        except ValueError as exc:  # a torn or interleaved line
            raise AssertionError(f"{path.name} line {number} is not JSON: {raw[:120]!r}") from exc
        assert isinstance(document, dict)
        assert set(document) == {"resourceSpans"}, f"{path.name} line {number}: {sorted(document)}"
        out.append(document)
    return out


def writer_line(n: int, pad: int = 0) -> bytes:
    """A small TracesData line for writer tests, numbered `n` (a resource attribute)."""
    attributes = [
        {"key": "n", "value": {"intValue": str(n)}},
        {"key": "pad", "value": {"stringValue": "x" * pad}},
    ]
    return (
        json.dumps({"resourceSpans": [{"resource": {"attributes": attributes}, "scopeSpans": []}]}).encode()
        + b"\n"
    )


def line_number(document: dict[str, Any]) -> int:
    return int(document["resourceSpans"][0]["resource"]["attributes"][0]["value"]["intValue"])


def intents_by_run(query: BuilderQuery) -> dict[str, list[str]]:
    return {run.id: [d.intent for d in run.decisions] for run in query.storage.runs()}


def _check_any_value(value: dict[str, Any]) -> None:
    assert len(value) <= 1
    if "intValue" in value:
        assert isinstance(value["intValue"], str) and DIGITS.fullmatch(value["intValue"])
    if "doubleValue" in value:
        assert isinstance(value["doubleValue"], float | int | str)
    if "boolValue" in value:
        assert isinstance(value["boolValue"], bool)
    for item in value.get("arrayValue", {}).get("values", ()):
        _check_any_value(item)
    for pair in value.get("kvlistValue", {}).get("values", ()):
        _check_attribute(pair)


def _check_attribute(pair: dict[str, Any]) -> None:
    assert set(pair) <= {"key", "value"} and isinstance(pair["key"], str)
    _check_any_value(pair.get("value", {}))


def check_span(span: dict[str, Any]) -> None:
    """The OTLP/JSON rules of the Collector's pdata JSON marshaler, for one span."""
    assert HEX32.fullmatch(span["traceId"]), span["traceId"]
    assert HEX16.fullmatch(span["spanId"]), span["spanId"]
    if "parentSpanId" in span:
        assert HEX16.fullmatch(span["parentSpanId"])
    assert type(span["kind"]) is int
    for key in ("startTimeUnixNano", "endTimeUnixNano"):
        assert isinstance(span[key], str) and DIGITS.fullmatch(span[key]), key
    assert int(span["startTimeUnixNano"]) <= int(span["endTimeUnixNano"])
    if "flags" in span:
        assert type(span["flags"]) is int
    assert "status" in span and isinstance(span["status"], dict)
    if "code" in span["status"]:
        assert type(span["status"]["code"]) is int
    for pair in span.get("attributes", ()):
        _check_attribute(pair)
    for event in span.get("events", ()):
        assert isinstance(event["timeUnixNano"], str) and DIGITS.fullmatch(event["timeUnixNano"])
        for pair in event.get("attributes", ()):
            _check_attribute(pair)
    for link in span.get("links", ()):
        assert HEX32.fullmatch(link["traceId"]) and HEX16.fullmatch(link["spanId"])
        if "flags" in link:
            assert type(link["flags"]) is int


def all_spans(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        sp
        for doc in documents
        for rs in doc["resourceSpans"]
        for ss in rs["scopeSpans"]
        for sp in ss["spans"]
    ]


# ------------------------------------------------------------------------------------------ format


def test_run_is_written_as_collector_format_otlp_json_lines(tmp_path: Path) -> None:
    runtime = Runtime(tmp_path)
    run_id = runtime.start_run("support", "Answer a ticket", {"ticket": 7, "tags": ["a", "b"]})
    decision_id = runtime.decide(
        intent="Find the answer", options=OPTIONS, chosen="search", reasoning="docs first"
    )
    runtime.record_outcome(decision_id, success=False, error="index down", tokens_used=12, latency_ms=40)
    runtime.report_problem("critical", "search index unavailable", decision_id)
    execution_id = runtime.execution_id
    runtime.end_run(success=False, narrative="gave up")

    path = tmp_path / FILE_NAME
    assert path.is_file()  # on disk when end_run returns, without an explicit flush
    documents = parsed_lines(path)
    assert documents
    for document in documents:
        for rs in document["resourceSpans"]:
            assert "resource" in rs and isinstance(rs["resource"], dict)
            for ss in rs["scopeSpans"]:
                assert ss["scope"]["name"] == "otel_decisions"
    every = all_spans(documents)
    for span in every:
        check_span(span)
    snapshots = [s for s in every if {"key": SPAN_OPEN, "value": {"boolValue": True}} in s["attributes"]]
    spans = [s for s in every if s not in snapshots]
    # the run's root, written when it started and again with its problem, before it ended
    assert [s["spanId"] for s in snapshots] == [spans[-1]["spanId"]] * 2
    assert [len(s.get("events", ())) for s in snapshots] == [0, 1]
    assert {span["traceId"] for span in every} == {execution_id}
    roots = [s for s in spans if "parentSpanId" not in s]
    assert len(roots) == 1 and len(spans) == 3
    root = roots[0]
    assert root["status"] == {"code": 2, "message": "gave up"}
    attributes = {a["key"]: a["value"] for a in root["attributes"]}
    assert attributes["otel_decisions.run.id"] == {"stringValue": run_id}
    assert attributes["otel_decisions.execution_id"] == {"stringValue": execution_id}
    assert attributes["otel_decisions.run.decision_count"] == {"intValue": "1"}
    assert [e["name"] for e in root["events"]] == ["otel_decisions.problem"]
    outcome = next(s for s in spans if s["name"].startswith("execute_tool"))
    plan = next(s for s in spans if s["name"] == "plan")
    assert outcome["parentSpanId"] == plan["spanId"] and plan["parentSpanId"] == root["spanId"]
    assert {a["key"]: a["value"] for a in outcome["attributes"]}["otel_decisions.outcome.tokens_used"] == {
        "intValue": "12"
    }


def test_every_record_is_a_complete_line_appended_as_it_happens_to_the_same_file(tmp_path: Path) -> None:
    runtime = Runtime(tmp_path)
    run_ids = [record(runtime, "lines", [f"run {n} decision {d}" for d in range(3)]) for n in range(4)]

    assert [p.name for p in jsonl_files(tmp_path)] == [FILE_NAME]
    documents = parsed_lines(tmp_path / FILE_NAME)
    per_line = [
        [
            (
                next(a["value"]["stringValue"] for a in sp["attributes"] if a["key"] == RUN_ID_KEY),
                sp["name"],
            )
            for sp in all_spans([doc])
        ]
        for doc in documents
    ]
    # one line per record, in the order they happened: the run's start, each decision and outcome, its end
    expected = [
        [(run_id, name)]
        for run_id in run_ids
        for name in ["invoke_agent lines", *["plan", "execute_tool doc_search"] * 3, "invoke_agent lines"]
    ]
    assert per_line == expected


# ----------------------------------------------------------------------------------------- directory


def test_default_directory_is_dot_otel_decisions_under_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    directory = _config.default_directory()
    pipeline = pipeline_for(directory)
    run_id = record(Runtime(directory), "default", ["x"])

    assert directory == Path(".otel-decisions")
    assert pipeline.directory == (tmp_path / ".otel-decisions").resolve()
    assert (tmp_path / ".otel-decisions" / FILE_NAME).is_file()
    assert BuilderQuery(tmp_path / ".otel-decisions").storage.list_all_runs() == [run_id]


def test_otel_decisions_dir_overrides_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    custom = tmp_path / "elsewhere" / "spans"
    monkeypatch.setenv(_config.OTEL_DECISIONS_DIR, str(custom))

    directory = _config.default_directory()
    run_id = record(Runtime(directory), "override", ["y"])

    assert directory == custom
    assert pipeline_for(directory).directory == custom.resolve()
    assert (custom / FILE_NAME).is_file()
    assert not (tmp_path / ".otel-decisions").exists()
    assert BuilderQuery(custom).storage.list_all_runs() == [run_id]


def test_blank_otel_decisions_dir_falls_back_to_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_config.OTEL_DECISIONS_DIR, "   ")

    assert _config.default_directory() == Path(".otel-decisions")


# ------------------------------------------------------------------------------------------ rotation


def test_rotated_files_are_named_like_the_collectors(tmp_path: Path) -> None:
    writer = JsonLinesWriter(tmp_path, max_bytes=200)
    first, second = writer_line(1), writer_line(2, pad=60)
    assert len(first) < 200 < len(first) + len(second)

    assert writer.write(first) and writer.write(second)
    writer.close()

    rotated = [p for p in jsonl_files(tmp_path) if p.name != FILE_NAME]
    assert len(rotated) == 1
    assert ROTATED.fullmatch(rotated[0].name), rotated[0].name
    assert rotated[0].name.endswith(f"-{os.getpid()}.jsonl")
    assert rotated[0].read_bytes() == first
    assert (tmp_path / FILE_NAME).read_bytes() == second


def test_size_rotation_keeps_every_line_exactly_once(tmp_path: Path) -> None:
    max_bytes = 1000
    writer = JsonLinesWriter(tmp_path, max_bytes=max_bytes)
    lines = [writer_line(n, pad=150) for n in range(40)]

    results = [writer.write(line) for line in lines]
    writer.close()

    assert all(results)
    files = jsonl_files(tmp_path)
    assert len(files) > 2
    assert all(f.name == FILE_NAME or ROTATED.fullmatch(f.name) for f in files)
    assert all(f.stat().st_size <= max_bytes for f in files)
    numbers = sorted(line_number(doc) for f in files for doc in parsed_lines(f))
    assert numbers == list(range(40)), f"lost lines: {sorted(set(range(40)) - set(numbers))}"


def test_rotation_through_the_environment_keeps_every_run_readable_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(_config.OTEL_DECISIONS_FILE_MAX_BYTES, "40000")
    runtime = Runtime(tmp_path)
    query = BuilderQuery(tmp_path)
    expected: dict[str, list[str]] = {}

    for n in range(30):
        intents = [f"run {n} decision {d}" for d in range(n % 3 + 1)]
        expected[record(runtime, "rotating", intents)] = intents
        if n == 14:  # a query kept open across rotations
            assert intents_by_run(query) == expected

    files = jsonl_files(tmp_path)
    assert len(files) > 2 and (tmp_path / FILE_NAME) in files
    assert all(f.stat().st_size <= 40000 for f in files)
    assert intents_by_run(query) == expected
    assert len(query.storage.list_all_runs()) == 30
    assert intents_by_run(BuilderQuery(tmp_path)) == expected
    assert intents_by_run(BuilderQuery(str(tmp_path / "traces*.jsonl"))) == expected


# --------------------------------------------------------------------------------------- concurrency


def test_threads_with_their_own_runtime_share_a_directory_without_losing_decisions(tmp_path: Path) -> None:
    threads_n, runs_n, decisions_n = 8, 50, 5
    barrier = threading.Barrier(threads_n)
    recorded: dict[int, dict[str, list[str]]] = {}
    errors: list[BaseException] = []

    def agent(index: int) -> None:
        try:
            runtime = Runtime(tmp_path)
            barrier.wait(timeout=30)
            mine: dict[str, list[str]] = {}
            for n in range(runs_n):
                intents = [f"t{index} r{n} d{d}" for d in range(decisions_n)]
                mine[record(runtime, f"thread{index}", intents)] = intents
            recorded[index] = mine
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=agent, args=(i,)) for i in range(threads_n)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not any(w.is_alive() for w in workers), "a writer thread is stuck"
    assert errors == []

    for path in jsonl_files(tmp_path):
        for document in parsed_lines(path):
            for span in all_spans([document]):
                check_span(span)
    expected = {run_id: intents for mine in recorded.values() for run_id, intents in mine.items()}
    assert len(expected) == threads_n * runs_n
    assert intents_by_run(BuilderQuery(tmp_path)) == expected
    runs = BuilderQuery(tmp_path).storage.runs()
    assert all(r.status == RunStatus.COMPLETED and r.metrics.total_decisions == decisions_n for r in runs)


_CHILD = textwrap.dedent(
    """
    import json, sys
    from otel_decisions import Runtime

    directory, proc = sys.argv[1], int(sys.argv[2])
    runtime = Runtime(directory)
    print("ready", flush=True)
    sys.stdin.readline()
    recorded = {}
    for n in range(30):
        run_id = runtime.start_run(f"proc{proc}", "", {"proc": proc, "run": n})
        intents = [f"p{proc} r{n} d{d}" for d in range(n % 4 + 1)]
        for intent in intents:
            decision_id = runtime.decide(
                intent=intent, options=[{"id": "a", "description": "A"}, {"id": "b", "description": "B"}],
                chosen="a", reasoning="x" * 300,
            )
            runtime.record_outcome(decision_id, success=True, result={"n": n})
        runtime.end_run(success=True)
        recorded[run_id] = intents
    print(json.dumps(recorded), flush=True)
    """
)


def test_processes_writing_one_directory_with_rotation_never_tear_lines(tmp_path: Path) -> None:
    max_bytes = 20_000
    env = {**os.environ, _config.OTEL_DECISIONS_FILE_MAX_BYTES: str(max_bytes)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(tmp_path), str(i)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for i in range(4)
    ]
    outputs: list[tuple[bytes, bytes]] = []
    try:
        for proc in procs:  # wait until every child has imported and built its pipeline
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], 60)
            assert ready, "a writer process did not start"
            assert proc.stdout.readline() == b"ready\n"
        for proc in procs:  # then release them together
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
        for proc in procs:
            outputs.append(proc.communicate(timeout=60))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode(errors="replace")[-2000:]

    files = jsonl_files(tmp_path)
    assert len(files) > 2, "rotation did not happen"
    for path in files:
        lines = parsed_lines(path)  # no torn or interleaved line anywhere
        assert path.stat().st_size <= max_bytes or len(lines) == 1
        for span in all_spans(lines):
            check_span(span)
    expected: dict[str, list[str]] = {}
    for out, _ in outputs:
        expected.update(json.loads(out.decode().splitlines()[-1]))
    assert len(expected) == 4 * 30
    found = intents_by_run(BuilderQuery(tmp_path))
    assert found == expected, f"{len(set(expected) - set(found))} of {len(expected)} runs lost"
    runs = BuilderQuery(tmp_path).storage.runs()
    assert all(r.metrics.total_decisions == len(expected[r.id]) for r in runs)
    assert {r.goal_id for r in runs} == {f"proc{i}" for i in range(4)}


# ---------------------------------------------------------------------------------- unwritable paths


@pytest.fixture
def unwritable_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory spans cannot be written to: mode 0o500, or (as root, where chmod does not stop
    writes) a path under a regular file, so mkdir and open fail."""
    if os.geteuid() == 0:
        blocker = tmp_path / "a-regular-file"
        blocker.write_text("not a directory\n")
        yield blocker / "spans"
        return
    directory = tmp_path / "read-only"
    directory.mkdir()
    directory.chmod(0o500)
    try:
        yield directory
    finally:
        directory.chmod(0o700)


def test_writer_on_unwritable_directory_returns_false_and_warns_once(
    unwritable_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = JsonLinesWriter(unwritable_dir, max_bytes=100)

    with caplog.at_level(logging.WARNING, logger="otel_decisions"):
        results = [writer.write(b'{"resourceSpans":[]}\n') for _ in range(3)]
        writer.close()

    assert results == [False, False, False]
    warnings = [r for r in caplog.records if r.name == "otel_decisions.export.file_writer"]
    assert len(warnings) == 1
    assert str(unwritable_dir) in warnings[0].getMessage()
    assert not (unwritable_dir / FILE_NAME).exists()


def test_runtime_on_unwritable_directory_still_returns_ids(
    unwritable_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        runtime = Runtime(unwritable_dir)
        run_id = runtime.start_run("offline", "disk is read-only")
        decision_id = runtime.decide(
            intent="Go on anyway", options=OPTIONS, chosen="answer", reasoning="no disk"
        )
        runtime.record_outcome(decision_id, success=True, result="ok")
        problem_id = runtime.report_problem("warning", "spans are not being saved")
        runtime.end_run(success=True)

    assert RUN_ID.fullmatch(run_id), run_id
    assert (decision_id, problem_id) == ("dec_0", "prob_0")
    assert runtime.current_run is None
    assert len([r for r in caplog.records if r.name == "otel_decisions.export.file_writer"]) == 1


def test_runtime_survives_its_directory_becoming_unusable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "spans"
    runtime = Runtime(directory)
    first = record(runtime, "vanishing", ["before"])
    directory.rename(tmp_path / "moved-away")
    directory.write_text("a regular file now\n")  # neither mkdir nor open can succeed

    with caplog.at_level(logging.WARNING):
        run_id = runtime.start_run("vanishing")
        decision_id = runtime.decide(intent="after", options=OPTIONS, chosen="answer", reasoning="r")
        runtime.record_outcome(decision_id, success=True)
        runtime.end_run(success=True)

    assert RUN_ID.fullmatch(run_id) and run_id != first
    assert decision_id == "dec_0"
    assert len([r for r in caplog.records if r.name == "otel_decisions.export.file_writer"]) == 1
    assert intents_by_run(BuilderQuery(tmp_path / "moved-away")) == {first: ["before"]}


def test_per_run_durability_writes_each_run_as_one_line_at_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(_config.OTEL_DECISIONS_DURABILITY, "run")
    runtime = Runtime(tmp_path)
    run_ids = [record(runtime, "lines", [f"run {n} decision {d}" for d in range(3)]) for n in range(2)]
    runtime.start_run("open")
    runtime.decide(intent="still open", options=OPTIONS, chosen="search", reasoning="r")

    documents = parsed_lines(tmp_path / FILE_NAME)  # the open run's decision waits for its end
    assert len(documents) == 2
    runs_per_line = [
        {
            next(a["value"]["stringValue"] for a in sp["attributes"] if a["key"] == RUN_ID_KEY)
            for sp in all_spans([d])
        }
        for d in documents
    ]
    assert runs_per_line == [{run_id} for run_id in run_ids]  # one line per run, written at its end
    assert all(len(all_spans([d])) == 1 + 3 * 2 for d in documents)  # no snapshots of open spans
    assert intents_by_run(BuilderQuery(tmp_path)) == {
        run_ids[0]: [f"run 0 decision {d}" for d in range(3)],
        run_ids[1]: [f"run 1 decision {d}" for d in range(3)],
    }
    runtime.end_run(success=True)
