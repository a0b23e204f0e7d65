"""Complaint 10 (peers.md §2): spans lost on exit, in serverless, or when the process dies.

langfuse/langfuse#6594, langfuse/langfuse#3292, AgentOps-AI/agentops#717: buffered spans vanish when a
process exits or is killed. Here a real child process records a finished run, a `Runtime` run left
open after three decisions (two with outcomes) and a problem, and a decorated run whose decision is
still working; then it is killed (SIGKILL, `os._exit`), terminated (SIGTERM), exits normally, or dies
on an uncaught exception. Whatever the ending: every ended span is in the file, no line is torn, and
the interrupted runs are reported with the decisions they had made — `running` when nothing could
run (SIGKILL, `os._exit`), `cancelled` on SIGTERM or a normal exit, `failed` on an uncaught exception.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from otlp_receiver import HttpReceiver

from otel_decisions import BuilderQuery, Run, RunStatus
from otel_decisions.reading.otlp_files import discover_files

CHILD = r"""
import json, os, sys, threading
import otel_decisions as od
from otel_decisions import Runtime

directory, mode = sys.argv[1], sys.argv[2]
options = [{"id": "a", "description": "go"}, {"id": "b", "description": "wait"}]
runtime = Runtime(directory)
finished = runtime.start_run("finished", "a run that ended")
decision = runtime.decide("pick", options, "a", "it is quicker")
runtime.record_outcome(decision, success=True, result={"n": 1})
runtime.end_run(success=True)

interrupted = runtime.start_run("interrupted", "a run the process never ends", {"n": 2})
made = []
for step in range(3):
    made.append(runtime.decide(f"step {step}", options, "a", "next step"))
    if step < 2:
        runtime.record_outcome(made[-1], success=step == 0, error=None if step == 0 else "boom")
runtime.report_problem("error", "stuck on step 2", made[-1])

working, release = threading.Event(), threading.Event()
decorated = []

def agent():
    with od.run("decorated", directory=directory) as handle:
        decorated.append(handle.run_id)
        with od.decision("wait for the tool", options=[{"id": "tool"}], chosen="tool"):
            working.set()
            release.wait()

threading.Thread(target=agent, daemon=True).start()
working.wait()
print(json.dumps({"finished": finished, "interrupted": interrupted, "decorated": decorated[0],
                  "decisions": made}), flush=True)
if mode == "hold":
    sys.stdin.readline()  # until the parent kills or terminates us
elif mode == "os_exit":
    os._exit(3)
elif mode == "uncaught":
    raise ValueError("the agent crashed")
"""


def start_child(directory: Path, mode: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(directory), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )


def ids_printed(child: subprocess.Popen[bytes]) -> dict[str, Any]:
    """The ids the child recorded, once it has recorded everything (it prints them last)."""
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], 60)
    assert ready, "the child did not record its runs"
    line = child.stdout.readline()
    assert line, child.communicate(timeout=10)[1].decode(errors="replace")[-2000:]
    ids: dict[str, Any] = json.loads(line)
    return ids


def every_line_parses(directory: Path) -> None:
    files = discover_files(directory)
    assert files
    for path in files:
        for number, line in enumerate(path.read_bytes().splitlines(), 1):
            json.loads(line)  # raises on a torn or interleaved line
            assert line.strip(), f"{path.name} line {number} is empty"


def check_runs(directory: Path, ids: dict[str, Any], interrupted_status: RunStatus) -> tuple[Run, Run]:
    """The finished run is whole; the interrupted runs have `interrupted_status` and every decision
    they had made (outcomes as recorded). Returns (the Runtime run, the decorated run)."""
    every_line_parses(directory)
    query = BuilderQuery(directory)
    finished = query.get_full_run(ids["finished"])
    assert finished is not None and finished.status == RunStatus.COMPLETED
    assert [d.intent for d in finished.decisions] == ["pick"]
    assert finished.decisions[0].outcome is not None and finished.decisions[0].outcome.result == {"n": 1}

    run = query.get_full_run(ids["interrupted"])
    assert run is not None
    assert run.status == interrupted_status
    assert [d.id for d in run.decisions] == ids["decisions"]
    assert [d.intent for d in run.decisions] == ["step 0", "step 1", "step 2"]
    outcomes = [d.outcome for d in run.decisions]
    assert [o.success if o is not None else None for o in outcomes] == [True, False, None]
    assert outcomes[1] is not None and outcomes[1].error == "boom"
    assert [(p.severity, p.description, p.decision_id) for p in run.problems] == [
        ("error", "stuck on step 2", ids["decisions"][2])
    ]
    assert run.goal_description == "a run the process never ends" and run.input_data == {"n": 2}
    assert (run.metrics.total_decisions, run.metrics.successful_decisions, run.metrics.failed_decisions) == (
        3,
        1,
        1,
    )

    decorated = query.get_full_run(ids["decorated"])
    assert decorated is not None
    assert [(d.intent, d.outcome) for d in decorated.decisions] == [("wait for the tool", None)]
    return run, decorated


@pytest.mark.parametrize("how", ["SIGKILL", "os._exit"])
def test_complaint_10_a_killed_process_leaves_every_ended_span_and_its_open_runs_running(
    tmp_path: Path, how: str
) -> None:
    child = start_child(tmp_path, "hold" if how == "SIGKILL" else "os_exit")
    ids = ids_printed(child)
    if how == "SIGKILL":
        child.kill()
    child.communicate(timeout=30)
    assert child.returncode == (-signal.SIGKILL if how == "SIGKILL" else 3)

    run, decorated = check_runs(tmp_path, ids, RunStatus.RUNNING)
    assert run.completed_at is None and decorated.status == RunStatus.RUNNING


def test_complaint_10_sigterm_ends_open_runs_as_cancelled_flushes_and_still_terminates(
    tmp_path: Path,
) -> None:
    with HttpReceiver() as receiver:
        child = start_child(tmp_path, "hold", {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint})
        ids = ids_printed(child)
        child.send_signal(signal.SIGTERM)
        child.communicate(timeout=30)
        assert child.returncode == -signal.SIGTERM  # terminated by the signal, as without us

        run, decorated = check_runs(tmp_path, ids, RunStatus.CANCELLED)
        assert run.narrative == "Run interrupted: the process received SIGTERM."
        assert decorated.status == RunStatus.CANCELLED
        # the OTLP batch was flushed too: the interrupted run's root and its decisions arrived
        spans = receiver.wait_for_spans(1, timeout=10.0)
        roots = {s["attributes"].get("otel_decisions.run.id"): s for s in spans if not s["parent_span_id"]}
    assert roots[ids["interrupted"]]["attributes"]["otel_decisions.run.status"] == "cancelled"
    exported = {
        s["attributes"].get("otel_decisions.decision.id")
        for s in spans
        if s["attributes"].get("otel_decisions.run.id") == ids["interrupted"]
    }
    assert set(ids["decisions"]) <= exported


def test_complaint_10_normal_exit_ends_open_runs_as_cancelled(tmp_path: Path) -> None:
    child = start_child(tmp_path, "exit")
    ids = ids_printed(child)
    child.communicate(timeout=30)
    assert child.returncode == 0

    run, decorated = check_runs(tmp_path, ids, RunStatus.CANCELLED)
    assert run.narrative == "Run interrupted: the process exited before the run ended."
    assert decorated.status == RunStatus.CANCELLED


def test_complaint_10_an_uncaught_exception_ends_open_runs_as_failed(tmp_path: Path) -> None:
    child = start_child(tmp_path, "uncaught")
    ids = ids_printed(child)
    _, err = child.communicate(timeout=30)
    assert child.returncode == 1 and b"ValueError: the agent crashed" in err  # the traceback as usual

    run, decorated = check_runs(tmp_path, ids, RunStatus.FAILED)
    assert run.narrative == "Run interrupted: the process exited on an uncaught ValueError."
    assert decorated.status == RunStatus.FAILED


def test_complaint_10_sigterm_handler_of_the_application_is_left_alone(tmp_path: Path) -> None:
    script = (
        "import signal, sys\n"
        "signal.signal(signal.SIGTERM, lambda *a: (print('app handler', flush=True), sys.exit(7)))\n" + CHILD
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path), "hold"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    ids = ids_printed(child)
    child.send_signal(signal.SIGTERM)
    out, _ = child.communicate(timeout=30)
    assert child.returncode == 7 and b"app handler" in out
    # its sys.exit ran the normal exit path: the open runs were ended there
    run, _ = check_runs(tmp_path, ids, RunStatus.CANCELLED)
    assert run.narrative == "Run interrupted: the process exited before the run ended."


SIGNAL_INSIDE = r"""
import os, signal, sys
import otel_decisions as od
from otel_decisions import Runtime

directory, api, where = sys.argv[1:4]


class Bomb:  # sends this process SIGTERM while we encode it: the signal lands inside start or end

    def __repr__(self) -> str:
        os.kill(os.getpid(), signal.SIGTERM)
        return "bomb"


start_input = {"x": Bomb()} if where == "start" else {"x": 1}
output = {"y": Bomb()} if where == "end" else {"y": 2}
if api == "runtime":
    runtime = Runtime(directory)
    runtime.start_run("goal", "a goal", start_input)
    runtime.decide("pick", [{"id": "a"}], "a", "why")
    runtime.end_run(True, output_data=output)
else:
    with od.run("goal", "a goal", start_input, directory=directory) as handle:
        with od.decision("pick", options=[{"id": "a"}], chosen="a"):
            pass
        handle.set_output(output)
print("not terminated", flush=True)
"""


@pytest.mark.parametrize("api", ["runtime", "decorators"])
@pytest.mark.parametrize("where", ["start", "end"])
def test_complaint_10_sigterm_inside_start_or_end_of_a_run_waits_for_it(
    tmp_path: Path, api: str, where: str
) -> None:
    """A SIGTERM that arrives while a run is being started or ended is handled once that is done: the
    run is in the file, cancelled (caught starting) or as it ended (caught ending), never half
    recorded; and the process still terminates by the signal."""
    done = subprocess.run(
        [sys.executable, "-c", SIGNAL_INSIDE, str(tmp_path), api, where],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == -signal.SIGTERM, done.stderr.decode(errors="replace")[-2000:]
    assert b"not terminated" not in done.stdout
    every_line_parses(tmp_path)
    query = BuilderQuery(tmp_path)
    (run_id,) = query.storage.list_all_runs()
    run = query.get_full_run(run_id)
    assert run is not None
    if where == "start":
        assert run.status == RunStatus.CANCELLED
        assert run.narrative == "Run interrupted: the process received SIGTERM."
        assert run.decisions == []  # the signal was handled as soon as the run had started
        assert run.input_data == {"x": "<unserializable Bomb: bomb>"}
    else:
        assert run.status == RunStatus.COMPLETED
        assert [d.intent for d in run.decisions] == ["pick"]
        assert run.output_data == {"y": "<unserializable Bomb: bomb>"}


SIGNAL_AT_OUTCOME = r"""
import os, signal, sys
import otel_decisions as od
from opentelemetry.sdk.trace import SpanProcessor
from otel_decisions.export.pipeline import add_span_observer


class TerminateAtOutcome(SpanProcessor):  # SIGTERM as the first outcome span ends, mid decision end
    def on_end(self, span) -> None:
        if span.attributes.get("otel_decisions.outcome.decision_id") is not None:
            os.kill(os.getpid(), signal.SIGTERM)


add_span_observer(TerminateAtOutcome())
with od.run("goal", "a goal", directory=sys.argv[1]):
    with od.decision("pick", options=[{"id": "a"}], chosen="a"):
        pass
    print("not terminated", flush=True)
"""


def test_complaint_10_sigterm_while_a_decision_ends_waits_for_its_spans(tmp_path: Path) -> None:
    """SIGTERM while a decorated decision's spans are being ended (written together as one line):
    the handler waits until they are written, then ends the run; nothing it wrote is lost in the
    unwritten line."""
    done = subprocess.run(
        [sys.executable, "-c", SIGNAL_AT_OUTCOME, str(tmp_path)], capture_output=True, timeout=60
    )
    assert done.returncode == -signal.SIGTERM, done.stderr.decode(errors="replace")[-2000:]
    assert b"not terminated" not in done.stdout
    query = BuilderQuery(tmp_path)
    (run_id,) = query.storage.list_all_runs()
    run = query.get_full_run(run_id)
    assert run is not None and run.status == RunStatus.CANCELLED
    outcomes = [(d.intent, d.outcome is not None and d.outcome.success) for d in run.decisions]
    assert outcomes == [("pick", True)]


HANGING_OBSERVER = r"""
import sys, threading
import otel_decisions as od
from opentelemetry.sdk.trace import SpanProcessor
from otel_decisions import Runtime
from otel_decisions.export.pipeline import add_span_observer


class Hang(SpanProcessor):  # a user's observer that never returns, called as a run's root ends
    def on_end(self, span) -> None:
        if span.parent is None and not span.attributes.get("otel_decisions.span.open"):
            print("hanging", flush=True)
            threading.Event().wait()


add_span_observer(Hang())
runtime = Runtime(sys.argv[1])
runtime.start_run("goal")
runtime.end_run(True)
"""


def test_complaint_10_sigterm_waits_for_a_hung_critical_section_only_briefly(tmp_path: Path) -> None:
    """User code runs inside a run's end (observers, `__repr__`): when it hangs there, SIGTERM still
    terminates the process (after `sigterm.WAIT_SECONDS`), as it did before the wait existed."""
    child = subprocess.Popen(
        [sys.executable, "-c", HANGING_OBSERVER, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stdout.readline() == b"hanging\n"
    child.send_signal(signal.SIGTERM)
    try:
        child.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        pytest.fail("SIGTERM did not terminate a process hung inside end_run")
    assert child.returncode == -signal.SIGTERM
    every_line_parses(tmp_path)


FORK_IN_CRITICAL = r"""
import os, signal, sys, threading, time
from opentelemetry.sdk.trace import SpanProcessor
from otel_decisions import Runtime
from otel_decisions.export.pipeline import add_span_observer

in_end, release = threading.Event(), threading.Event()


class Slow(SpanProcessor):  # holds the main thread inside end_run while a worker forks
    def on_end(self, span) -> None:
        if span.parent is None and not span.attributes.get("otel_decisions.span.open"):
            in_end.set()
            release.wait(30)


def worker() -> None:
    in_end.wait(30)
    pid = os.fork()
    if pid == 0:  # the forked child: its main thread is this worker, never inside end_run
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        os._exit(0)  # reached only if SIGTERM was swallowed
    _, status = os.waitpid(pid, 0)
    print("child", os.WTERMSIG(status) if os.WIFSIGNALED(status) else "exited", flush=True)
    release.set()


add_span_observer(Slow())
thread = threading.Thread(target=worker)
thread.start()
runtime = Runtime(sys.argv[1])
runtime.start_run("goal")
runtime.end_run(True)
thread.join()
"""


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() with threads
def test_a_child_forked_while_the_main_thread_ends_a_run_still_dies_on_sigterm(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", FORK_IN_CRITICAL, str(tmp_path)],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    assert done.stdout.decode().split() == ["child", str(int(signal.SIGTERM))]


def test_a_problem_reported_after_the_run_ended_leaves_the_ended_run_as_it_was(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import otel_decisions as od

    with od.run("late", directory=tmp_path) as handle:
        pass
    with caplog.at_level("WARNING"):
        handle.report_problem("error", "too late")  # no snapshot of the ended root may follow
    run = BuilderQuery(tmp_path).get_full_run(handle.run_id)
    assert run is not None and run.status == RunStatus.COMPLETED and run.problems == []
    assert any("reported after run" in r.getMessage() for r in caplog.records)
