"""A full disk or an unwritable span file produces a warning and never breaks the agent.

The errors are real, from the kernel, with no patched `os` function: `traces.jsonl` as a symlink to
`/dev/full` (ENOSPC), a file-size limit set with `setrlimit` in a spawned process (EFBIG in the middle
of a line), the span file as a directory (EISDIR), read-only files and directories (EACCES; skipped where
permissions do not stop the process: root), and the span directory replaced by a regular file.

For each: the agent's calls (`Runtime` and the `run`/`decision` decorators) return normally with the
right ids and values, one warning is logged per kind of error, and once the condition clears the runs
recorded meanwhile (kept by the file processor) and later runs are written and read back exactly.
`tests/test_file_export.py` covers a directory that is unwritable from the start; not repeated here.
"""

from __future__ import annotations

import errno
import json
import logging
import multiprocessing
import os
import re
import resource
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import otel_decisions
from otel_decisions import BuilderQuery, Runtime, _config
from otel_decisions.export.file_writer import FILE_NAME

RUN_ID = re.compile(r"run_\d{8}_\d{6}_[0-9a-f]{8}")
HEX32 = re.compile(r"[0-9a-f]{32}")
WRITER_LOGGER = "otel_decisions.export.file_writer"
READER_LOGGER = "otel_decisions.reading.otlp_files"
TORN = 100  # bytes of a line that fit under the file-size limit

Expected = dict[str, dict[str, Any]]  # run id -> the run's model_dump(mode="json")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        _config.OTEL_DECISIONS_DIR,
        _config.OTEL_DECISIONS_FILE_MAX_BYTES,
        _config.OTEL_DECISIONS_FLUSH_INTERVAL,
    ):
        monkeypatch.delenv(name, raising=False)


# --------------------------------------------------------------------------------------------- helpers


@pytest.fixture
def permissions_enforced(tmp_path: Path) -> None:
    """Skip when file modes do not stop this process (root, or CAP_DAC_OVERRIDE): probed, not guessed
    from `os.geteuid()`, so root without that capability runs the tests too."""
    probe = tmp_path / "probe"
    probe.touch(mode=0o444)
    try:
        os.close(os.open(probe, os.O_WRONLY))
    except PermissionError:
        return
    finally:
        probe.unlink()
    pytest.skip(f"file permissions do not apply to this process (euid {os.geteuid()})")


def agent_run(runtime: Runtime, tag: str) -> tuple[str, dict[str, Any]]:
    """One run through every `Runtime` call, checking what each returns; (run id, expected model)."""
    run_id = runtime.start_run(f"goal-{tag}", f"run {tag} ✓", {"tag": tag})
    assert RUN_ID.fullmatch(run_id), run_id
    first = runtime.decide(
        intent=f"search for {tag}",
        options=[{"id": "search", "description": "Search"}, {"id": "answer", "description": "Answer"}],
        chosen="search",
        reasoning="the docs know",
    )
    second = runtime.decide(
        intent="answer", options=[{"id": "a", "description": "A"}], chosen="a", reasoning=""
    )
    assert (first, second) == ("dec_0", "dec_1")
    runtime.record_outcome(first, success=True, result={"hits": 3, "tag": tag}, tokens_used=7, latency_ms=2)
    runtime.record_outcome(second, success=False, error="disk trouble", tokens_used=1)
    assert runtime.report_problem("warning", f"problem {tag}", second, root_cause="disk") == "prob_0"
    run = runtime.current_run
    assert run is not None and run.id == run_id
    runtime.end_run(success=False, narrative=f"ended {tag}", output_data={"tag": tag})
    assert runtime.current_run is None
    return run_id, run.model_dump(mode="json")


def decorated_run(directory: Path | str, tag: str) -> str:
    """One run through the `run`/`decision` decorators, checking return values; returns its goal id."""
    goal = f"decorated-{tag}"

    @otel_decisions.decision("double it", options=[{"id": "double"}, {"id": "skip"}], chosen="double")
    def double(x: int) -> int:
        return x * 2

    @otel_decisions.decision("divide")
    def divide(x: int) -> float:
        return 1 / x

    @otel_decisions.run(goal, directory=directory)
    def agent(x: int) -> tuple[int, str]:
        doubled = double(x)
        try:
            divide(0)
        except ZeroDivisionError:  # the agent's own exception comes through unchanged
            return doubled, otel_decisions.current_run()
        raise AssertionError("the decision swallowed the exception")

    doubled, execution_id = agent(21)
    assert doubled == 42 and HEX32.fullmatch(execution_id), (doubled, execution_id)
    return goal


def warnings_of(caplog: pytest.LogCaptureFixture, logger: str = "otel_decisions") -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name.startswith(logger) and r.levelno >= logging.WARNING
    ]


def replace_atomically(path: Path, make: Callable[[Path], None]) -> None:
    """Put what `make` creates at `path` with one rename, so no writer ever finds `path` missing."""
    new = path.with_name(path.name + ".new")
    make(new)
    os.replace(new, path)


def check_read_back(directory: Path, expected: Expected, decorated_goals: list[str]) -> None:
    """Every expected run rebuilt exactly, nothing else, and each decorated run with its decisions."""
    storage = BuilderQuery(directory).storage
    runs = storage.runs()
    assert len(runs) == len(storage.list_all_runs()) == len({run.id for run in runs})
    plain = {run.id: run.model_dump(mode="json") for run in runs if run.goal_id not in decorated_goals}
    assert sorted(plain) == sorted(expected), "runs lost or invented"
    for run_id, dump in expected.items():
        assert plain[run_id] == dump, run_id
    for goal in decorated_goals:
        (run,) = [run for run in runs if run.goal_id == goal]
        assert run.status.value == "completed"
        assert [d.intent for d in run.decisions] == ["double it", "divide"]
        assert [d.outcome.success if d.outcome else None for d in run.decisions] == [True, False]
        assert run.decisions[0].outcome is not None and run.decisions[0].outcome.result == 42
    for path in directory.glob("*.jsonl"):
        assert path.is_file() and path.read_bytes().endswith(b"\n")


# -------------------------------------------------------------------------------------------- ENOSPC


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_warns_once_and_the_runs_are_written_when_space_is_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "spans"
    directory.mkdir()
    (directory / FILE_NAME).symlink_to("/dev/full")  # every write: ENOSPC, from the kernel

    with caplog.at_level(logging.WARNING, logger="otel_decisions"):
        runtime = Runtime(directory)
        expected = dict(agent_run(runtime, f"full-{i}") for i in range(3))
        goals = [decorated_run(directory, "full")]
        assert BuilderQuery(directory).storage.list_all_runs() == []  # nothing landed (and no hang)
        during = warnings_of(caplog)
        replace_atomically(directory / FILE_NAME, Path.touch)  # space is back
        expected.update([agent_run(runtime, "after")])
        goals.append(decorated_run(directory, "after"))

    assert len(during) == 1 and os.strerror(errno.ENOSPC) in during[0], during
    assert warnings_of(caplog) == during  # no more warnings, and none once writing works again
    assert not (directory / FILE_NAME).is_symlink()
    check_read_back(directory, expected, goals)


# --------------------------------------------------------------------------------------------- EFBIG


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name}: {record.getMessage()}")


def _fsize_limited_agent(directory: str, results: str) -> None:
    """Spawned: one run, then a file-size limit TORN bytes past the file's end (SIGXFSZ ignored, so
    writes fail with EFBIG), three runs and a decorated one, then the limit lifted and one more run."""
    keep = _Keep()
    logging.getLogger("otel_decisions").addHandler(keep)
    runtime = Runtime(directory)
    runs = [agent_run(runtime, "before")]
    path = Path(directory) / FILE_NAME
    size_before = path.stat().st_size
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size_before + TORN, hard))
    try:
        runs += [agent_run(runtime, f"limited-{i}") for i in range(3)]
        goal = decorated_run(directory, "limited")
        size_during = path.stat().st_size
        warned_during = list(keep.messages)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    runs.append(agent_run(runtime, "after"))
    report = {
        "runs": dict(runs),
        "goal": goal,
        "size_before": size_before,
        "size_during": size_during,
        "warned_during": warned_during,
        "warned": keep.messages,
    }
    Path(results).write_text(json.dumps(report))


def test_a_line_torn_by_a_file_size_limit_is_skipped_with_one_warning_and_nothing_is_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory, results = tmp_path / "spans", tmp_path / "results.json"
    spawn = multiprocessing.get_context("spawn")
    child = spawn.Process(target=_fsize_limited_agent, args=(str(directory), str(results)))
    child.start()
    child.join(timeout=120)
    if child.is_alive():
        child.kill()
        child.join(timeout=30)
    assert child.exitcode == 0
    report = json.loads(results.read_text())

    (warning,) = report["warned_during"]  # exactly one, when the limit was hit
    assert warning.startswith(WRITER_LOGGER) and os.strerror(errno.EFBIG) in warning, warning
    assert report["warned"] == report["warned_during"]  # none after the limit was lifted
    size = report["size_before"]
    assert report["size_during"] == size + TORN  # a line was cut off at the limit
    data = (directory / FILE_NAME).read_bytes()
    torn, rest = data[size : size + TORN + 1], data[size + TORN + 1 :]
    assert torn.endswith(b"\n") and torn.count(b"\n") == 1, "the next write did not start a new line"
    with pytest.raises(ValueError):
        json.loads(torn)
    assert rest.endswith(b"\n") and all(json.loads(line) for line in rest.splitlines())

    with caplog.at_level(logging.WARNING, logger="otel_decisions"):
        check_read_back(directory, report["runs"], [report["goal"]])
    (skipped,) = warnings_of(caplog)
    assert f"skipping an unreadable line in {directory / FILE_NAME} at offset {size}" in skipped, skipped
    assert [r.name for r in caplog.records if r.levelno >= logging.WARNING] == [READER_LOGGER]


# ----------------------------------------------------------------------------- EISDIR, mixed kinds


def test_a_span_file_that_is_a_directory_warns_once_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "spans"
    (directory / FILE_NAME).mkdir(parents=True)  # open(…, O_RDWR): EISDIR, for root too

    with caplog.at_level(logging.WARNING, logger="otel_decisions"):
        runtime = Runtime(directory)
        expected = dict(agent_run(runtime, f"isdir-{i}") for i in range(3))
        goals = [decorated_run(directory, "isdir")]
        during = warnings_of(caplog)
        (directory / FILE_NAME).rmdir()
        expected.update([agent_run(runtime, "after")])

    assert len(during) == 1 and os.strerror(errno.EISDIR) in during[0], during
    assert warnings_of(caplog) == during
    check_read_back(directory, expected, goals)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_each_kind_of_error_warns_once_however_often_and_in_whatever_order_it_recurs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory, elsewhere = tmp_path / "spans", tmp_path / "a-directory"
    directory.mkdir()
    elsewhere.mkdir()
    span_file = directory / FILE_NAME
    runtime = Runtime(directory)
    agent_run(runtime, "healthy")  # the writer holds the file open when the first error comes
    expected: Expected = {}

    with caplog.at_level(logging.WARNING, logger="otel_decisions"):
        for round_ in range(2):
            replace_atomically(span_file, lambda p: p.symlink_to("/dev/full"))
            expected.update(agent_run(runtime, f"full-{round_}-{i}") for i in range(2))
            replace_atomically(span_file, lambda p: p.symlink_to(elsewhere))
            expected.update(agent_run(runtime, f"isdir-{round_}-{i}") for i in range(2))
        replace_atomically(span_file, Path.touch)
        expected.update([agent_run(runtime, "recovered")])

    warned = warnings_of(caplog)
    assert len(warned) == 2, warned
    assert os.strerror(errno.ENOSPC) in warned[0] and os.strerror(errno.EISDIR) in warned[1], warned
    check_read_back(directory, expected, [])


# -------------------------------------------------------------------------------------- permissions


@pytest.mark.usefixtures("permissions_enforced")
def test_a_read_only_span_file_warns_once_and_recovers_when_writable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "spans"
    directory.mkdir()
    span_file = directory / FILE_NAME
    span_file.touch(mode=0o444)

    with caplog.at_level(logging.WARNING, logger="otel_decisions"):
        runtime = Runtime(directory)
        expected = dict(agent_run(runtime, f"ro-{i}") for i in range(3))
        goals = [decorated_run(directory, "ro")]
        during = warnings_of(caplog)
        span_file.chmod(0o644)
        expected.update([agent_run(runtime, "after")])

    assert len(during) == 1 and os.strerror(errno.EACCES) in during[0], during
    assert warnings_of(caplog) == during
    check_read_back(directory, expected, goals)


@pytest.mark.usefixtures("permissions_enforced")
def test_a_read_only_directory_that_blocks_rotation_warns_once_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(_config.OTEL_DECISIONS_FILE_MAX_BYTES, "3000")  # every run is past it
    directory = tmp_path / "spans"
    runtime = Runtime(directory)
    expected = dict([agent_run(runtime, "before")])  # the file, and the lock file, exist
    directory.chmod(0o555)  # appending would work; renaming the full file away cannot
    try:
        with caplog.at_level(logging.WARNING, logger="otel_decisions"):
            expected.update(agent_run(runtime, f"ro-dir-{i}") for i in range(3))
            goals = [decorated_run(directory, "ro-dir")]
            during = warnings_of(caplog)
    finally:
        directory.chmod(0o755)
    with caplog.at_level(logging.WARNING, logger="otel_decisions"):
        expected.update([agent_run(runtime, "after")])

    assert len(during) == 1 and os.strerror(errno.EACCES) in during[0], during
    assert warnings_of(caplog) == during
    assert len(list(directory.glob("*.jsonl"))) >= 2  # rotated once the directory was writable
    check_read_back(directory, expected, goals)


# ------------------------------------------------------------------------ directory replaced by a file


def test_a_directory_replaced_by_a_file_warns_once_and_recovers_when_it_is_a_directory_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "spans"
    runtime = Runtime(directory)
    first, _ = agent_run(runtime, "before")  # the writer holds the file open
    directory.rename(tmp_path / "moved-away")
    directory.write_text("a regular file now\n")

    with caplog.at_level(logging.WARNING, logger="otel_decisions"):
        expected = dict(agent_run(runtime, f"no-dir-{i}") for i in range(3))
        goals = [decorated_run(directory, "no-dir")]
        during = warnings_of(caplog)
        directory.unlink()  # the writer recreates the directory
        expected.update([agent_run(runtime, "after")])

    # One condition, one warning: an earlier version warned twice, for ENOTDIR (the stat of the old
    # path) and then EEXIST (mkdir), as it warns once per errno.
    assert len(during) == 1 and str(directory) in during[0], during
    assert warnings_of(caplog) == during
    assert directory.is_dir()
    check_read_back(directory, expected, goals)
    assert BuilderQuery(tmp_path / "moved-away").storage.list_all_runs() == [first]
