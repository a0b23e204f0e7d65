"""Load: 8 threads × 500 runs, plus 4 spawned processes, writing one directory at the same time.

Every run is rebuilt exactly (its `Run` model, timestamps included, equals the one the agent held when
`end_run` returned), no run is lost or invented, and every line of every span file is one complete JSON
document (nothing torn or interleaved). The second variant rotates the file at 1 MB in every writer
and flushes open runs every 20 ms, so runs are split over lines and rotated files while under contention.

Synchronisation is real: one `multiprocessing` barrier (spawn context) is shared by the 4 processes and
the 8 threads, passed once before anyone records and once half-way, so the processes' second halves
are written while the threads still have half of their runs to write. No sleeps, no mocks.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from otel_decisions import BuilderQuery, DecisionType, Runtime, _config
from otel_decisions.export.file_writer import FILE_NAME, JsonLinesWriter
from otel_decisions.export.pipeline import pipeline_for

THREADS, THREAD_RUNS = 8, 500
PROCESSES, PROCESS_RUNS = 4, 250
ROTATE_AT = 1_000_000
JOIN_SECONDS = 180  # generous: only a hung writer gets near it
ROTATED = re.compile(r"traces-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}-\d+(-\d+)?\.jsonl")

# The largest values that are still kept whole: encode_json caps the UTF-8 bytes of a value's JSON
# at 16384, and cap_text caps text at 16384 characters.
AT_CAP_ASCII = "x" * (16_384 - len('{"blob":""}'))  # {"blob": "xxx…"} is exactly 16384 bytes
AT_CAP_UNICODE = "é" * ((16_384 - len('{"blob":""}')) // 2)  # 2 bytes each
AT_CAP_TEXT = "ü" * 16_384
UNICODE = ["Résumé ✓", "日本語のテキスト", "emoji 🚀🔥 and a ZWJ 👩‍💻", "Ω≈ç√∫ — “quotes”", "plain"]
SEVERITIES = ["critical", "warning", "minor"]
TYPES = list(DecisionType)


def record_runs(runtime: Runtime, label: str, count: int, halfway: Any = None) -> dict[str, dict[str, Any]]:
    """Record `count` varied runs; return each run's model as the agent held it after `end_run`.

    Runs differ in size (1-4 decisions), outcome (success, failure, a decision left without one),
    status, text (unicode, values at the cap) and problems. `halfway.wait()` is called after half.
    """
    expected: dict[str, dict[str, Any]] = {}
    for n in range(count):
        if halfway is not None and n == count // 2:
            halfway.wait(timeout=JOIN_SECONDS)
        text = UNICODE[n % len(UNICODE)]
        big = n % 40 == 7
        run_id = runtime.start_run(
            label,
            f"{label} run {n}: {text}",
            {"n": n, "label": label, "text": text, "tags": [text, n % 3, None, 0.25 * n]},
        )
        assert run_id, "start_run failed"
        runtime.set_node(f"node-{n % 3}")
        decision_ids = []
        for k in range(n % 4 + 1):
            decision_id = runtime.decide(
                intent=f"{label} step {k} {text}",
                options=[
                    {
                        "id": "search",
                        "description": "Search",
                        "action_type": "tool_call",
                        "action_params": {"tool": "search", "q": text},
                    },
                    {"id": "answer", "description": f"Answer {text}", "pros": ["fast"], "cons": ["risky"]},
                ],
                chosen="search" if (n + k) % 2 else "answer",
                reasoning=AT_CAP_TEXT if big and k == 0 else f"because {text} ({n}/{k})",
                decision_type=TYPES[(n + k) % len(TYPES)],
                constraints=[f"budget {k}"] if k % 2 else None,
                context={"blob": AT_CAP_UNICODE} if big and k == 0 else {"k": k, "text": text},
            )
            assert decision_id == f"dec_{k}", decision_id
            decision_ids.append(decision_id)
            if n % 5 == 4 and k == n % 4:
                continue  # the last decision of these runs never gets an outcome
            ok = (n + k) % 3 != 0
            runtime.record_outcome(
                decision_id,
                success=ok,
                result={"blob": AT_CAP_ASCII} if big else {"n": n, "k": k, "text": text, "ok": ok},
                error=None if ok else f"failed: {text}",
                summary=f"step {k}",
                state_changes={"step": k} if k % 2 == 0 else None,
                tokens_used=n % 17 + k,
                latency_ms=k * 3,
            )
        problem_id = runtime.report_problem(
            SEVERITIES[n % 3],
            f"problem in run {n}: {text}",
            decision_ids[-1] if n % 2 else None,
            root_cause="root" if n % 4 == 0 else None,
            suggested_fix="fix it" if n % 4 == 1 else None,
        )
        assert problem_id == "prob_0", problem_id
        run = runtime.current_run
        assert run is not None and run.id == run_id
        runtime.end_run(success=n % 4 != 3, narrative=f"done {text}", output_data={"n": n, "text": text})
        expected[run_id] = run.model_dump(mode="json")  # end_run completed this very object
    return expected


def _process_agent(
    directory: str, index: int, results: str, env: dict[str, str], start: Any, halfway: Any
) -> None:
    """One agent process (spawned): records PROCESS_RUNS runs, then writes their models to `results`."""
    os.environ.update(env)  # before the pipeline is built: rotation size, flush interval
    runtime = Runtime(directory)
    start.wait(timeout=JOIN_SECONDS)
    expected = record_runs(runtime, f"process{index}", PROCESS_RUNS, halfway)
    max_bytes = pipeline_for(directory).processor.writer.max_bytes
    Path(results).write_text(json.dumps({"max_bytes": max_bytes, "runs": expected}))


def count_lines(path: Path) -> int:
    """The number of lines of `path`; fails on a torn, interleaved, blank or non-TracesData line.
    (Each line is parsed and dropped: the files total ~100 MB, ten times that as Python objects.)"""
    data = path.read_bytes()
    assert data.endswith(b"\n"), f"{path.name} does not end with a newline"
    lines = data.split(b"\n")[:-1]
    for number, raw in enumerate(lines):
        try:
            document = json.loads(raw)
        except ValueError as exc:
            raise AssertionError(f"{path.name} line {number} is not JSON: {raw[:120]!r}") from exc
        assert isinstance(document, dict) and set(document) == {"resourceSpans"}, f"{path.name}:{number}"
    return len(lines)


def first_difference(found: dict[str, Any], wanted: dict[str, Any]) -> str:
    keys = [key for key in wanted if found.get(key) != wanted[key]] + sorted(set(found) - set(wanted))
    return ", ".join(f"{key}: {str(found.get(key))[:200]} != {str(wanted.get(key))[:200]}" for key in keys)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        _config.OTEL_DECISIONS_DIR,
        _config.OTEL_DECISIONS_FILE_MAX_BYTES,
        _config.OTEL_DECISIONS_FLUSH_INTERVAL,
        _config.OTEL_DECISIONS_MAX_VALUE_CHARS,
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("rotate", [False, True], ids=["one-file", "rotating-1MB"])
def test_threads_and_processes_writing_one_directory_lose_and_tear_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rotate: bool
) -> None:
    directory = tmp_path / "spans"
    results = tmp_path / "results"
    results.mkdir()
    env = (
        {_config.OTEL_DECISIONS_FILE_MAX_BYTES: str(ROTATE_AT), _config.OTEL_DECISIONS_FLUSH_INTERVAL: "0.02"}
        if rotate
        else {_config.OTEL_DECISIONS_FILE_MAX_BYTES: "0"}  # never rotate
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    writer = pipeline_for(directory).processor.writer  # this process's writer, built with `env`
    assert writer.max_bytes == (ROTATE_AT if rotate else 0)

    spawn = multiprocessing.get_context("spawn")
    start, halfway = spawn.Barrier(PROCESSES + THREADS), spawn.Barrier(PROCESSES + THREADS)
    processes = [
        spawn.Process(
            target=_process_agent,
            args=(str(directory), i, str(results / f"{i}.json"), env, start, halfway),
            name=f"load-process-{i}",
        )
        for i in range(PROCESSES)
    ]
    recorded: dict[int, dict[str, dict[str, Any]]] = {}
    errors: list[BaseException] = []

    def thread_agent(index: int) -> None:
        try:
            runtime = Runtime(directory)
            start.wait(timeout=JOIN_SECONDS)
            recorded[index] = record_runs(runtime, f"thread{index}", THREAD_RUNS, halfway)
        except BaseException as exc:
            errors.append(exc)
            start.abort()  # never leave the others waiting for a party that is gone
            halfway.abort()

    threads = [threading.Thread(target=thread_agent, args=(i,)) for i in range(THREADS)]
    try:
        for process in processes:
            process.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=JOIN_SECONDS)
        for process in processes:
            process.join(timeout=JOIN_SECONDS)
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a writer thread is stuck"
    assert errors == []
    assert [p.exitcode for p in processes] == [0] * PROCESSES

    expected: dict[str, dict[str, Any]] = {}
    for runs in recorded.values():
        expected.update(runs)
    for i in range(PROCESSES):
        reported = json.loads((results / f"{i}.json").read_text())
        assert reported["max_bytes"] == writer.max_bytes  # the processes rotate at the same size
        expected.update(reported["runs"])
    assert len(expected) == THREADS * THREAD_RUNS + PROCESSES * PROCESS_RUNS  # run ids are unique

    files = sorted(directory.glob("*.jsonl"))
    assert all(f.name == FILE_NAME or ROTATED.fullmatch(f.name) for f in files), [f.name for f in files]
    for path in files:
        lines = count_lines(path)  # no torn or interleaved line anywhere
        if rotate:
            assert path.stat().st_size <= ROTATE_AT or lines == 1, path.name
    if rotate:
        assert len(files) > 10, "rotation did not happen"
    else:
        assert [f.name for f in files] == [FILE_NAME]

    storage = BuilderQuery(directory).storage
    run_ids = storage.list_all_runs()
    assert len(run_ids) == len(set(run_ids)), "a run is listed twice"
    assert set(run_ids) - set(expected) == set(), "runs nobody recorded"
    assert set(expected) - set(run_ids) == set(), f"{len(set(expected) - set(run_ids))} runs lost"
    wrong: list[tuple[str, dict[str, Any]]] = []
    for run in storage.runs():
        dump = run.model_dump(mode="json")
        if dump != expected[run.id]:
            wrong.append((run.id, dump))
    assert wrong == [], f"{len(wrong)} runs differ; first {wrong[0][0]}: " + first_difference(
        wrong[0][1], expected[wrong[0][0]]
    )
    shutil.rmtree(directory)  # ~100 MB; kept when the test fails


# ----------------------------------------------------------------------- regressions, found bugs

BLANK_LINES, BLANK_PAD = 60, 256_000


def _long_line_writer(directory: str, index: int, start: Any) -> None:
    """Spawned: append BLANK_LINES lines of BLANK_PAD bytes through this process's own writer."""
    writer = JsonLinesWriter(Path(directory), max_bytes=0)
    line = json.dumps({"resourceSpans": [], "writer": index, "pad": "x" * BLANK_PAD}).encode() + b"\n"
    start.wait(timeout=JOIN_SECONDS)
    for _ in range(BLANK_LINES):
        assert writer.write(line)


def test_concurrent_long_appends_leave_no_blank_line(tmp_path: Path) -> None:
    """A regression test: a lock-free version of the writer checked the file's last byte (fstat, then
    pread) while another process's multi-page append was still in progress, took that line for a torn
    one, and started its own with an extra newline — 2 to 50 % blank lines here, against JSON Lines
    (and the OTLP file-exporter spec: every line a JSON value). Long lines keep appends in progress."""
    directory = tmp_path / "spans"
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(PROCESSES)
    writers = [
        spawn.Process(target=_long_line_writer, args=(str(directory), i, start)) for i in range(PROCESSES)
    ]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=JOIN_SECONDS)
    assert [p.exitcode for p in writers] == [0] * PROCESSES
    lines = (directory / FILE_NAME).read_bytes().split(b"\n")
    assert lines.pop() == b""  # the file ends with a newline
    assert lines.count(b"") == 0, f"{lines.count(b'')} blank lines among {len(lines)}"
    writers_of_lines = sorted(json.loads(line)["writer"] for line in lines)  # nothing lost or torn
    assert writers_of_lines == sorted(list(range(PROCESSES)) * BLANK_LINES)
    shutil.rmtree(directory)  # 60 MB


def test_a_non_ascii_value_under_the_character_cap_is_kept_whole(tmp_path: Path) -> None:
    runtime = Runtime(tmp_path)
    run_id = runtime.start_run("cap", "a value of 9011 JSON characters, 18011 UTF-8 bytes")
    decision_id = runtime.decide(intent="keep it", options=[{"id": "a"}], chosen="a", reasoning="")
    runtime.record_outcome(decision_id, success=True, result={"blob": "é" * 9000})
    runtime.end_run(success=True)

    run = BuilderQuery(tmp_path).get_full_run(run_id)
    assert run is not None and run.decisions[0].outcome is not None
    assert run.decisions[0].outcome.result == {"blob": "é" * 9000}
