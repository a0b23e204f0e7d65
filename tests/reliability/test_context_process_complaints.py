"""Peer complaint 2 (research/peers.md §2): context lost across processes or a new event loop.

langfuse/langfuse#11589 (`ProcessPoolExecutor`), mlflow/mlflow#21060 (`asyncio.run` in a sync wrapper).
A decision made in a process-pool worker ('spawn' and 'fork'), in a worker reused for several calls, in
a fresh event loop started by `asyncio.run` inside a run, in a thread that only got a W3C carrier
(`inject` / `extract`), or in a real subprocess, keeps the calling run's id (its trace id) and is read
back in that run.

Every test records into `tmp_path` and checks what a brand-new `BuilderQuery(tmp_path)` reads back and
the raw OTLP/JSON lines. Every wait on a thread, a process or an event loop is bounded by `TIMEOUT`.
Functions submitted to process pools live in `tests/_workers.py`, importable by spawned children.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import _workers
import pytest
from _readback import by_id, outcome_result, read_run
from _span_records import DECISION_REMOTE, EXECUTION_ID, decision_span, raw_spans, root_span
from _workers import TIMEOUT, Seen, join_all, look_up

import otel_decisions
from otel_decisions import BuilderQuery, RunHandle

pytestmark = pytest.mark.usefixtures("no_error_logs")  # no test may log at ERROR

TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


SUMMARISE_INTENT = "Summarise asynchronously"


@otel_decisions.decision(SUMMARISE_INTENT, node_id="summariser")
async def summarise(text: str) -> Seen:
    return {
        "key": text,
        "execution_id": otel_decisions.current_run(),
        "decision_id": otel_decisions.current_decision().decision_id,
    }


def summarise_sync(text: str) -> Seen:
    """A sync wrapper over async code as libraries write it (mlflow#21060): a fresh event loop with
    `asyncio.run`, in a worker thread when the caller already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(summarise(text))
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, summarise(text)).result(timeout=TIMEOUT)


@contextmanager
def process_pool(method: str, max_workers: int = 1) -> Iterator[ProcessPoolExecutor]:
    """A process pool of start method `method`; never waits unboundedly for its workers on failure."""
    pool = ProcessPoolExecutor(max_workers=max_workers, mp_context=multiprocessing.get_context(method))
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)  # every submitted call has returned: the idle workers exit at once


# ============================================================================== process pools
@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_complaint_2_process_pool_decisions_join_the_calling_run(tmp_path: Path, method: str) -> None:
    """langfuse#11589: a decision made in a `ProcessPoolExecutor` worker belongs to the run that
    submitted it: same execution id (trace id), nested under the submitting decision, marked remote,
    read back in the parent's run and counted in its metrics."""
    handle: RunHandle
    with (
        otel_decisions.run("process_pool", directory=tmp_path) as handle,
        otel_decisions.decision("Hand work to a process", node_id="planner") as hand_off,
        process_pool(method) as pool,
    ):
        report = pool.submit(_workers.crunch, 21).result(timeout=TIMEOUT)

    assert report["pid"] != os.getpid()
    assert report["execution_id"] == handle.execution_id
    assert report["decision_id"]

    query = BuilderQuery(tmp_path)
    assert query.execution_id(handle.run_id) == handle.execution_id
    run = query.get_full_run(handle.run_id)
    assert run is not None
    decisions = by_id(run)
    assert set(decisions) == {hand_off.decision_id, report["decision_id"]}
    remote = decisions[report["decision_id"]]
    assert remote.intent == _workers.WORKER_INTENT
    assert remote.node_id == _workers.WORKER_NODE
    assert outcome_result(remote)["doubled"] == 42
    assert run.metrics.total_decisions == 2
    assert run.metrics.successful_decisions == 2
    assert run.metrics.failed_decisions == 0
    assert sorted(run.metrics.nodes_executed) == sorted(["planner", _workers.WORKER_NODE])

    spans = raw_spans(tmp_path)
    span = decision_span(spans, handle.run_id, report["decision_id"])
    assert span.trace_id == handle.execution_id
    assert span.attributes[EXECUTION_ID] == handle.execution_id
    assert span.attributes[DECISION_REMOTE] is True
    assert span.parent_span_id == decision_span(spans, handle.run_id, hand_off.decision_id).span_id


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_complaint_2_process_pool_worker_reused_by_several_calls_keeps_decisions_apart(
    tmp_path: Path, method: str
) -> None:
    """A pool worker runs many calls (here one worker, three calls): each call's decision keeps an id of
    its own in the run, with its own outcome."""
    values = [1, 2, 3]
    handle: RunHandle
    with otel_decisions.run("process_pool_reuse", directory=tmp_path) as handle, process_pool(method) as pool:
        futures = [pool.submit(_workers.crunch, v) for v in values]
        reports = [f.result(timeout=TIMEOUT) for f in futures]

    assert len({r["pid"] for r in reports}) == 1  # one worker served every call
    assert [r["execution_id"] for r in reports] == [handle.execution_id] * len(values)
    decision_ids = [r["decision_id"] for r in reports]
    assert len(set(decision_ids)) == len(values), f"decision ids collide: {decision_ids}"
    run = read_run(tmp_path, handle.run_id)
    decisions = by_id(run)
    assert [outcome_result(decisions[r["decision_id"]])["doubled"] for r in reports] == [2, 4, 6]
    assert run.metrics.total_decisions == len(values)
    assert run.metrics.successful_decisions == len(values)


# ============================================================================ a new event loop
@pytest.mark.parametrize("caller", ["sync_caller", "caller_in_a_running_loop"])
def test_complaint_2_nested_asyncio_run_keeps_the_run_id(tmp_path: Path, caller: str) -> None:
    """mlflow#21060: a sync function called within a run wraps async code in `asyncio.run` (a new event
    loop; in a worker thread when the caller already runs a loop). The async decision keeps the run."""
    handle: RunHandle
    if caller == "sync_caller":
        with (
            otel_decisions.run("nested_loop", directory=tmp_path) as handle,
            otel_decisions.decision("Call a sync helper", node_id="planner") as outer,
        ):
            seen = summarise_sync("report")
    else:

        async def main() -> tuple[RunHandle, Any, Seen]:
            handle: RunHandle
            async with (
                otel_decisions.run("nested_loop", directory=tmp_path) as handle,
                otel_decisions.decision("Call a sync helper", node_id="planner") as outer,
            ):
                seen = summarise_sync("report")
            return handle, outer, seen

        handle, outer, seen = asyncio.run(main())

    assert seen["execution_id"] == handle.execution_id
    run = read_run(tmp_path, handle.run_id)
    decisions = by_id(run)
    assert set(decisions) == {outer.decision_id, seen["decision_id"]}
    assert decisions[seen["decision_id"]].intent == SUMMARISE_INTENT
    assert run.metrics.total_decisions == 2
    spans = raw_spans(tmp_path)
    span = decision_span(spans, handle.run_id, seen["decision_id"])
    assert span.trace_id == handle.execution_id
    assert span.parent_span_id == decision_span(spans, handle.run_id, outer.decision_id).span_id


# ======================================================================== carriers, subprocess
def test_complaint_2_inject_gives_a_w3c_traceparent_and_extract_joins_the_run(tmp_path: Path) -> None:
    """Explicit carriers: `inject()` puts a W3C `traceparent` of the run's trace into the carrier (keeping
    the caller's headers); a consumer thread that never saw the run joins it with `extract()` only."""
    requests: queue.Queue[dict[str, str]] = queue.Queue()
    replies: queue.Queue[tuple[str, Seen, str]] = queue.Queue()

    def consumer() -> None:
        carrier = requests.get(timeout=TIMEOUT)
        before = otel_decisions.current_run()
        with otel_decisions.extract(carrier):
            seen = look_up("from a message")
        replies.put((before, seen, otel_decisions.current_run()))

    thread = threading.Thread(target=consumer, name="consumer")
    thread.start()  # before any run: the thread has nothing to inherit
    headers = {"x-request-id": "42"}
    handle: RunHandle
    with otel_decisions.run("carrier", directory=tmp_path) as handle:
        carrier = otel_decisions.inject(headers)
        requests.put(carrier)
        before, seen, after = replies.get(timeout=TIMEOUT)
    join_all([thread])

    match = TRACEPARENT_RE.match(carrier["traceparent"])
    assert match is not None, carrier
    assert match.group(1) == handle.execution_id
    assert carrier["x-request-id"] == "42"
    assert headers["traceparent"] == carrier["traceparent"]  # the given carrier is filled in place
    assert (before, after) == ("", "")
    assert seen["execution_id"] == handle.execution_id

    run = read_run(tmp_path, handle.run_id)
    assert list(by_id(run)) == [seen["decision_id"]]
    assert run.metrics.total_decisions == 1
    assert run.metrics.successful_decisions == 1
    spans = raw_spans(tmp_path)
    root = root_span(spans, handle.run_id)
    assert match.group(2) == root.span_id
    span = decision_span(spans, handle.run_id, seen["decision_id"])
    assert (span.trace_id, span.parent_span_id) == (handle.execution_id, root.span_id)


SUBPROCESS_CODE = """
import json, os, sys
import otel_decisions

carrier = json.loads(sys.argv[1])
with otel_decisions.extract(carrier):
    with otel_decisions.node("subprocess"):
        with otel_decisions.decision("Decide in a subprocess") as d:
            d.choose("action", reasoning="the parent asked")
            inside = otel_decisions.current_run()
print(json.dumps({
    "pid": os.getpid(),
    "inside": inside,
    "after": otel_decisions.current_run(),
    "decision_id": d.decision_id,
}))
"""


def test_complaint_2_extract_in_a_subprocess_joins_the_run(tmp_path: Path) -> None:
    """A real `subprocess` (`sys.executable -c`) gets the carrier as JSON on its command line; its
    decision appears in the parent's run, with the parent's trace id, counted in the run's metrics."""
    handle: RunHandle
    with otel_decisions.run("subprocess", directory=tmp_path) as handle:
        with otel_decisions.decision("Plan", node_id="planner") as plan:
            pass
        carrier = otel_decisions.inject()
        done = subprocess.run(
            [sys.executable, "-c", SUBPROCESS_CODE, json.dumps(carrier)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT * 2,
            cwd=tmp_path,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    child = json.loads(done.stdout.strip().splitlines()[-1])
    assert child["pid"] != os.getpid()
    assert child["inside"] == handle.execution_id
    assert child["after"] == ""

    query = BuilderQuery(tmp_path)
    assert query.execution_id(handle.run_id) == handle.execution_id
    run = query.get_full_run(handle.run_id)
    assert run is not None
    decisions = by_id(run)
    assert set(decisions) == {plan.decision_id, child["decision_id"]}
    remote = decisions[child["decision_id"]]
    assert (remote.intent, remote.node_id, remote.chosen_option_id) == (
        "Decide in a subprocess",
        "subprocess",
        "action",
    )
    assert remote.reasoning == "the parent asked"
    assert remote.outcome is not None and remote.outcome.success
    assert run.metrics.total_decisions == 2
    assert run.metrics.successful_decisions == 2
    assert sorted(run.metrics.nodes_executed) == ["planner", "subprocess"]

    spans = raw_spans(tmp_path)
    span = decision_span(spans, handle.run_id, child["decision_id"])
    assert span.trace_id == handle.execution_id
    assert span.attributes[DECISION_REMOTE] is True
    assert span.parent_span_id == root_span(spans, handle.run_id).span_id
