"""Which run a decision belongs to, wherever the work runs (issue points 4, 5, 6; peers.md section 2).

Covers peer complaints 1 (context lost in thread pools), 2 (lost across processes or a new event loop)
and 12 (other instrumentations' spans in our file), plus delegation links between runs.

Every test records with the decorators / context managers into `tmp_path` and checks what a brand-new
`BuilderQuery(tmp_path)` reads back, and where the span shape matters, the raw OTLP/JSON lines of
`tmp_path / "traces.jsonl"`. Every wait on a thread, a process or an event loop is bounded by `TIMEOUT`.
No sleeps and no mocks: real thread pools, real process pools ('spawn' and 'fork'), a real subprocess.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import _workers
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_decisions
from otel_decisions import BuilderQuery, Decision, DecisionType, Run, RunHandle

TIMEOUT = 30.0
"""Upper bound, in seconds, of every wait on a thread, a task, a process or a barrier."""

STEPS = 3

EXECUTION_ID = "otel_decisions.execution_id"
RUN_ID = "otel_decisions.run.id"
DECISION_ID = "otel_decisions.decision.id"
DECISION_REMOTE = "otel_decisions.decision.remote"
DELEGATED_RUN_IDS = "otel_decisions.decision.delegated_run_ids"
LINK_TYPE = "otel_decisions.link.type"
OP = "gen_ai.operation.name"
TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


# ------------------------------------------------------------------------------------------ raw spans
@dataclass(frozen=True, slots=True)
class RawLink:
    trace_id: str
    span_id: str
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RawSpan:
    """One span exactly as the OTLP/JSON line holds it."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    scope: str
    attributes: dict[str, Any]
    links: list[RawLink] = field(default_factory=list)


def _value(value: dict[str, Any]) -> Any:
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "arrayValue" in value:
        return [_value(v) for v in value["arrayValue"].get("values", [])]
    return None


def _attributes(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {item["key"]: _value(item.get("value", {})) for item in items}


def raw_spans(directory: Path) -> list[RawSpan]:
    """Every span in every span file under `directory`."""
    spans: list[RawSpan] = []
    for path in sorted(directory.glob("traces*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            for resource_spans in json.loads(line).get("resourceSpans", []):
                for scope_spans in resource_spans.get("scopeSpans", []):
                    scope = str(scope_spans.get("scope", {}).get("name", ""))
                    for s in scope_spans.get("spans", []):
                        spans.append(
                            RawSpan(
                                trace_id=s["traceId"],
                                span_id=s["spanId"],
                                parent_span_id=s.get("parentSpanId", ""),
                                name=s["name"],
                                scope=scope,
                                attributes=_attributes(s.get("attributes", [])),
                                links=[
                                    RawLink(
                                        link["traceId"],
                                        link["spanId"],
                                        _attributes(link.get("attributes", [])),
                                    )
                                    for link in s.get("links", [])
                                ],
                            )
                        )
    return spans


def root_span(spans: list[RawSpan], run_id: str) -> RawSpan:
    """The root (`invoke_agent`) span of run `run_id`; fails unless there is exactly one."""
    found = [
        s
        for s in spans
        if s.attributes.get(OP) == "invoke_agent"
        and s.attributes.get(RUN_ID) == run_id
        and not s.parent_span_id
    ]
    assert len(found) == 1, f"expected one root span for {run_id}, found {len(found)}"
    return found[0]


def decision_span(spans: list[RawSpan], run_id: str, decision_id: str) -> RawSpan:
    """The `plan` span of decision `decision_id` of run `run_id`; fails unless there is exactly one."""
    found = [
        s
        for s in spans
        if s.attributes.get(RUN_ID) == run_id and s.attributes.get(DECISION_ID) == decision_id
    ]
    assert len(found) == 1, f"expected one span for decision {decision_id} of {run_id}, found {len(found)}"
    return found[0]


# ------------------------------------------------------------------------------------------- read back
def read_run(directory: Path, run_id: str) -> Run:
    """The run as a brand-new BuilderQuery sees it (fails the test when it is not readable)."""
    run = BuilderQuery(directory).get_full_run(run_id)
    assert run is not None, f"run {run_id} is not readable from {directory}"
    return run


def by_id(run: Run) -> dict[str, Decision]:
    """The run's decisions by id; fails when two decisions share an id."""
    ids = [d.id for d in run.decisions]
    assert len(ids) == len(set(ids)), f"duplicate decision ids in {run.id}: {ids}"
    return {d.id: d for d in run.decisions}


def outcome_result(decision: Decision) -> Any:
    assert decision.outcome is not None, f"decision {decision.id} has no outcome"
    assert decision.outcome.success, f"decision {decision.id} failed: {decision.outcome.error}"
    return decision.outcome.result


# ---------------------------------------------------------------------------------- decorated helpers
class Seen(TypedDict):
    """What decorated code saw while its decision ran."""

    key: str
    execution_id: str
    decision_id: str


LOOK_UP_INTENT = "Look up a fact"


@otel_decisions.decision(LOOK_UP_INTENT, node_id="lookup")
def look_up(key: str) -> Seen:
    """A decision as an agent's tool would make it: no idea which thread or run it is in."""
    return {
        "key": key,
        "execution_id": otel_decisions.current_run(),
        "decision_id": otel_decisions.current_decision().decision_id,
    }


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


def join_all(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), f"{thread.name} did not finish within {TIMEOUT} s"


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


# ===================================================================================== complaint 1
def test_complaint_1_thread_pool_decisions_belong_to_the_calling_run(tmp_path: Path) -> None:
    """edutelligence#414, smolagents#2221, mlflow#14881: `ThreadPoolExecutor.submit` and `.map` lose the
    context. Here one pool, created before any run, serves two runs in turn: every decision made in its
    threads belongs to the run that submitted it and nests under the submitting span."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="shared-pool") as pool:
        handle_a: RunHandle
        with otel_decisions.run("pool_a", directory=tmp_path) as handle_a:
            with otel_decisions.decision("Fan out the look-ups", node_id="planner") as fan_out:
                futures = [pool.submit(look_up, f"a{i}") for i in range(STEPS)]
                seen_a = [f.result(timeout=TIMEOUT) for f in futures]
            seen_a += list(pool.map(look_up, ["a-map"], timeout=TIMEOUT))
        handle_b: RunHandle
        with otel_decisions.run("pool_b", directory=tmp_path) as handle_b:
            seen_b = pool.submit(look_up, "b0").result(timeout=TIMEOUT)

    assert handle_a.execution_id != handle_b.execution_id
    assert [s["execution_id"] for s in seen_a] == [handle_a.execution_id] * (STEPS + 1)
    assert seen_b["execution_id"] == handle_b.execution_id

    run_a = read_run(tmp_path, handle_a.run_id)
    decisions_a = by_id(run_a)
    assert len(decisions_a) == STEPS + 2
    assert {s["decision_id"] for s in seen_a} | {fan_out.decision_id} == set(decisions_a)
    assert sorted(outcome_result(decisions_a[s["decision_id"]])["key"] for s in seen_a) == sorted(
        [*(f"a{i}" for i in range(STEPS)), "a-map"]
    )
    assert run_a.metrics.total_decisions == STEPS + 2
    assert run_a.metrics.successful_decisions == STEPS + 2
    assert sorted(run_a.metrics.nodes_executed) == ["lookup", "planner"]

    run_b = read_run(tmp_path, handle_b.run_id)
    assert list(by_id(run_b)) == [seen_b["decision_id"]]
    assert run_b.metrics.total_decisions == 1

    spans = raw_spans(tmp_path)
    root_a = root_span(spans, handle_a.run_id)
    fan_out_span = decision_span(spans, handle_a.run_id, fan_out.decision_id)
    for seen in seen_a:
        span = decision_span(spans, handle_a.run_id, seen["decision_id"])
        assert span.trace_id == handle_a.execution_id
        assert span.attributes[EXECUTION_ID] == handle_a.execution_id
        expected_parent = root_a.span_id if seen["key"] == "a-map" else fan_out_span.span_id
        assert span.parent_span_id == expected_parent, seen
    span_b = decision_span(spans, handle_b.run_id, seen_b["decision_id"])
    assert (span_b.trace_id, span_b.parent_span_id) == (
        handle_b.execution_id,
        root_span(spans, handle_b.run_id).span_id,
    )


def test_complaint_1_threading_thread_decisions_belong_to_the_calling_run(tmp_path: Path) -> None:
    """A `threading.Thread` (with a target, and a subclass overriding `run`) started inside a run."""
    results: list[Seen] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(look_up("target"))
        except BaseException as error:
            errors.append(error)

    class Worker(threading.Thread):
        def run(self) -> None:
            try:
                results.append(look_up("subclass"))
            except BaseException as error:
                errors.append(error)

    handle: RunHandle
    with otel_decisions.run("threads", directory=tmp_path) as handle:
        threads = [threading.Thread(target=work, name="target-thread"), Worker(name="subclass-thread")]
        for thread in threads:
            thread.start()
        join_all(threads)

    assert errors == []
    assert sorted(r["key"] for r in results) == ["subclass", "target"]
    assert [r["execution_id"] for r in results] == [handle.execution_id] * 2
    run = read_run(tmp_path, handle.run_id)
    assert set(by_id(run)) == {r["decision_id"] for r in results}
    assert run.metrics.total_decisions == 2
    spans = raw_spans(tmp_path)
    root = root_span(spans, handle.run_id)
    for r in results:
        span = decision_span(spans, handle.run_id, r["decision_id"])
        assert (span.trace_id, span.parent_span_id) == (handle.execution_id, root.span_id)


def test_complaint_1_run_in_executor_and_to_thread_decisions_belong_to_the_calling_run(
    tmp_path: Path,
) -> None:
    """`loop.run_in_executor` (default executor and an explicit pool) and `asyncio.to_thread`."""

    async def main() -> tuple[RunHandle, list[Seen]]:
        handle: RunHandle
        async with otel_decisions.run("executors", directory=tmp_path) as handle:
            loop = asyncio.get_running_loop()
            seen = [
                await asyncio.wait_for(loop.run_in_executor(None, look_up, "default executor"), TIMEOUT),
                await asyncio.wait_for(asyncio.to_thread(look_up, "to_thread"), TIMEOUT),
            ]
            with ThreadPoolExecutor(max_workers=1) as pool:
                seen.append(await asyncio.wait_for(loop.run_in_executor(pool, look_up, "own pool"), TIMEOUT))
        return handle, seen

    handle, seen = asyncio.run(main())

    assert [s["execution_id"] for s in seen] == [handle.execution_id] * 3
    run = read_run(tmp_path, handle.run_id)
    decisions = by_id(run)
    assert set(decisions) == {s["decision_id"] for s in seen}
    assert sorted(outcome_result(d)["key"] for d in decisions.values()) == sorted(
        ["default executor", "to_thread", "own pool"]
    )
    assert run.metrics.total_decisions == 3
    spans = raw_spans(tmp_path)
    root = root_span(spans, handle.run_id)
    for s in seen:
        span = decision_span(spans, handle.run_id, s["decision_id"])
        assert (span.trace_id, span.parent_span_id) == (handle.execution_id, root.span_id)


@pytest.mark.parametrize("when", ["before_the_run", "inside_the_run"])
def test_complaint_1_propagation_opt_out_leaves_thread_pool_decisions_out_of_the_run(
    tmp_path: Path, when: str
) -> None:
    """`otel_decisions.propagate_context(False)`: a decision made in a `ThreadPoolExecutor` is no longer
    recorded in the calling run (it is outside any run), while the calling thread's decisions still are.
    Opting out at start-up, before any run, must hold for the runs that follow."""
    try:
        if when == "before_the_run":
            otel_decisions.propagate_context(False)
        handle: RunHandle
        with otel_decisions.run("opted_out", directory=tmp_path) as handle:
            if when == "inside_the_run":
                otel_decisions.propagate_context(False)
            with ThreadPoolExecutor(max_workers=1) as pool:
                seen = pool.submit(look_up, "in the pool").result(timeout=TIMEOUT)
            with otel_decisions.decision("Decide in the calling thread") as local:
                pass
    finally:
        otel_decisions.propagate_context(True)

    assert seen["execution_id"] == "", "the pool's decision still ran inside the run"
    run = read_run(tmp_path, handle.run_id)
    assert list(by_id(run)) == [local.decision_id]
    assert run.metrics.total_decisions == 1
    assert all(s.attributes.get(RUN_ID) == handle.run_id for s in raw_spans(tmp_path))


@dataclass(frozen=True, slots=True)
class AgentReport:
    run_id: str
    execution_id: str
    seen: list[str]  # the execution id seen inside every decision, in order


def _check_agents_never_mixed(directory: Path, reports: dict[str, AgentReport], nested_intent: str) -> None:
    """Each agent's run holds its own decisions only, with its own trace id, and nothing else."""
    assert len({r.run_id for r in reports.values()}) == len(reports)
    assert len({r.execution_id for r in reports.values()}) == len(reports)
    spans = raw_spans(directory)
    for name, report in reports.items():
        assert report.seen == [report.execution_id] * (2 * STEPS), name
        run = read_run(directory, report.run_id)
        decisions = by_id(run)
        own = [d for d in run.decisions if d.intent.startswith(f"{name} step ")]
        nested = [d for d in run.decisions if d.intent == nested_intent]
        assert len(own) == STEPS and len(nested) == STEPS and len(decisions) == 2 * STEPS, name
        assert run.metrics.total_decisions == 2 * STEPS
        assert run.metrics.successful_decisions == 2 * STEPS
        assert f"node_{name}" in run.metrics.nodes_executed
        assert not any(n.startswith("node_") and n != f"node_{name}" for n in run.metrics.nodes_executed)
        for span in spans:
            if span.attributes.get(RUN_ID) == report.run_id:
                assert span.trace_id == report.execution_id
                assert span.attributes[EXECUTION_ID] == report.execution_id
        step_spans = {decision_span(spans, report.run_id, d.id).span_id for d in own}
        for d in nested:  # each nested decision sits under a step of its own run
            assert decision_span(spans, report.run_id, d.id).parent_span_id in step_spans


def test_complaint_1_concurrent_runs_in_two_threads_never_mix(tmp_path: Path) -> None:
    """Two agents, each running in its own thread, with their decisions forced to overlap by a barrier
    (both runs are inside a decision at the same moment, STEPS times)."""
    barrier = threading.Barrier(2, timeout=TIMEOUT)
    reports: dict[str, AgentReport] = {}
    errors: list[BaseException] = []

    def agent(name: str) -> None:
        try:
            handle: RunHandle
            with otel_decisions.run(f"agent_{name}", directory=tmp_path) as handle:
                seen: list[str] = []
                for step in range(STEPS):
                    with otel_decisions.decision(f"{name} step {step}", node_id=f"node_{name}"):
                        barrier.wait()
                        seen.append(otel_decisions.current_run())
                        seen.append(look_up(f"{name}{step}")["execution_id"])
                        barrier.wait()
            reports[name] = AgentReport(handle.run_id, handle.execution_id, seen)
        except BaseException as error:
            barrier.abort()
            errors.append(error)

    threads = [threading.Thread(target=agent, args=(name,), name=f"agent-{name}") for name in ("a", "b")]
    for thread in threads:
        thread.start()
    join_all(threads)

    assert errors == []
    _check_agents_never_mixed(tmp_path, reports, LOOK_UP_INTENT)


def test_complaint_1_concurrent_runs_in_two_asyncio_tasks_never_mix(tmp_path: Path) -> None:
    """Two agents as two asyncio tasks of one loop (`asyncio.gather`), interleaved by a barrier inside
    every decision, including a decorated coroutine both tasks call at the same time."""
    think_intent = "Think asynchronously"

    @otel_decisions.decision(think_intent, node_id="thinker")
    async def think(barrier: asyncio.Barrier) -> str:
        await asyncio.wait_for(barrier.wait(), TIMEOUT)
        return otel_decisions.current_run()

    async def agent(name: str, barrier: asyncio.Barrier) -> AgentReport:
        handle: RunHandle
        async with otel_decisions.run(f"task_{name}", directory=tmp_path) as handle:
            seen: list[str] = []
            for step in range(STEPS):
                async with otel_decisions.decision(f"{name} step {step}", node_id=f"node_{name}"):
                    await asyncio.wait_for(barrier.wait(), TIMEOUT)
                    seen.append(otel_decisions.current_run())
                    seen.append(await think(barrier))
        return AgentReport(handle.run_id, handle.execution_id, seen)

    async def main() -> list[AgentReport]:
        barrier = asyncio.Barrier(2)
        return list(await asyncio.wait_for(asyncio.gather(agent("a", barrier), agent("b", barrier)), TIMEOUT))

    a, b = asyncio.run(main())
    _check_agents_never_mixed(tmp_path, {"a": a, "b": b}, think_intent)


def test_complaint_1_one_decision_object_entered_by_two_concurrent_runs_never_mixes(tmp_path: Path) -> None:
    """A `decision(...)` object kept at module level and used as `with STEP:` by two agents in two
    threads at once (like a decorated function, which is shared the same way). Thread a enters first and
    leaves first: each thread must end its own decision, not the other's, and no error may reach the
    agent."""
    shared_step = otel_decisions.decision("Shared step", node_id="shared")
    a_entered, b_entered, a_left = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, tuple[str, str, str]] = {}  # name -> (execution id, decision id inside, id after)
    handles: dict[str, RunHandle] = {}
    errors: list[BaseException] = []

    def wait(event: threading.Event) -> None:
        assert event.wait(TIMEOUT), "the other thread did not get there in time"

    def agent(name: str) -> None:
        try:
            handle: RunHandle
            with otel_decisions.run(f"shared_{name}", directory=tmp_path) as handle:
                handles[name] = handle
                if name == "b":
                    wait(a_entered)
                with shared_step as step:
                    (a_entered if name == "a" else b_entered).set()
                    if name == "a":
                        wait(b_entered)
                    else:
                        wait(a_left)
                    inside = (otel_decisions.current_run(), step.decision_id)
                if name == "a":
                    a_left.set()
                seen[name] = (*inside, otel_decisions.current_decision().decision_id)
        except BaseException as error:
            for event in (a_entered, b_entered, a_left):
                event.set()
            errors.append(error)

    threads = [threading.Thread(target=agent, args=(name,), name=f"shared-{name}") for name in ("a", "b")]
    for thread in threads:
        thread.start()
    join_all(threads)

    assert errors == []
    for name in ("a", "b"):
        handle = handles[name]
        execution_id, decision_id, after = seen[name]
        assert execution_id == handle.execution_id
        assert after == "", f"{name}: a decision is still current after its block"
        run = read_run(tmp_path, handle.run_id)
        assert list(by_id(run)) == [decision_id]
        assert outcome_result(run.decisions[0]) is None
        assert run.metrics.total_decisions == 1


# ===================================================================================== complaint 2
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


# ======================================================================================== delegation
@pytest.mark.parametrize("where", ["same_thread", "thread_pool"])
def test_delegation_starts_a_sub_run_linked_both_ways(tmp_path: Path, where: str) -> None:
    """A `delegation` decision starts a sub-run (in the same thread, or in a pool thread it hands the work
    to): its own trace, whose root links to the delegating decision span; `BuilderQuery` shows the link
    from both ends."""
    sub_handles: list[RunHandle] = []

    def sub_agent() -> None:
        sub: RunHandle
        with otel_decisions.run("sub_agent", directory=tmp_path) as sub:
            sub_handles.append(sub)
            with otel_decisions.decision("Work in the sub-run", node_id="sub_node"):
                pass

    parent: RunHandle
    with otel_decisions.run("lead_agent", directory=tmp_path) as parent:
        with otel_decisions.decision(
            "Delegate the research", node_id="lead", decision_type=DecisionType.DELEGATION
        ) as delegating:
            if where == "same_thread":
                sub_agent()
            else:
                with ThreadPoolExecutor(max_workers=1) as pool:
                    pool.submit(sub_agent).result(timeout=TIMEOUT)
        with otel_decisions.decision("Wrap up", node_id="lead"):
            pass

    (sub,) = sub_handles
    assert sub.execution_id != parent.execution_id
    query = BuilderQuery(tmp_path)
    assert query.execution_id(parent.run_id) == parent.execution_id
    assert query.execution_id(sub.run_id) == sub.execution_id
    assert query.get_delegations(parent.run_id) == [
        {"decision_id": delegating.decision_id, "run_id": sub.run_id}
    ]
    assert query.get_delegating_decision(sub.run_id) == {
        "run_id": parent.run_id,
        "decision_id": delegating.decision_id,
        "execution_id": parent.execution_id,
    }
    assert query.get_delegations(sub.run_id) == []
    assert query.get_delegating_decision(parent.run_id) is None

    parent_run = read_run(tmp_path, parent.run_id)
    assert [d.intent for d in parent_run.decisions] == ["Delegate the research", "Wrap up"]
    assert parent_run.decisions[0].decision_type == DecisionType.DELEGATION
    assert parent_run.metrics.total_decisions == 2
    sub_run = read_run(tmp_path, sub.run_id)
    assert [d.intent for d in sub_run.decisions] == ["Work in the sub-run"]
    assert sub_run.metrics.total_decisions == 1

    spans = raw_spans(tmp_path)
    delegating_span = decision_span(spans, parent.run_id, delegating.decision_id)
    assert delegating_span.trace_id == parent.execution_id
    assert delegating_span.attributes[DELEGATED_RUN_IDS] == [sub.run_id]
    sub_root = root_span(spans, sub.run_id)
    assert sub_root.trace_id == sub.execution_id
    assert len(sub_root.links) == 1
    link = sub_root.links[0]
    assert (link.trace_id, link.span_id) == (parent.execution_id, delegating_span.span_id)
    assert link.attributes[LINK_TYPE] == "delegated_from"
    assert link.attributes[RUN_ID] == parent.run_id
    assert link.attributes[DECISION_ID] == delegating.decision_id
    assert all(s.trace_id == sub.execution_id for s in spans if s.attributes.get(RUN_ID) == sub.run_id)
    assert root_span(spans, parent.run_id).links == []


# ==================================================================================== complaint 12
def test_complaint_12_file_holds_only_our_spans_when_other_instrumentations_trace_inside_a_decision(
    tmp_path: Path,
) -> None:
    """langflow#13344, langfuse#7212: another instrumentation with a TracerProvider of its own (and one
    going through the global API) creates spans inside a decision. Our file holds only our spans; the
    other spans nest under the decision span (complaint 17) in their own pipeline; the global provider
    is never replaced."""
    global_before = trace.get_tracer_provider()
    exporter = InMemorySpanExporter()
    other = SdkTracerProvider(shutdown_on_exit=False)
    other.add_span_processor(SimpleSpanProcessor(exporter))
    http_tracer = other.get_tracer("some.http.instrumentation")
    try:
        handle: RunHandle
        with (
            otel_decisions.run("mixed_tracing", directory=tmp_path) as handle,
            otel_decisions.decision("Call the weather API", node_id="tools") as call,
            http_tracer.start_as_current_span("GET /weather"),
            trace.get_tracer("some.global.library").start_as_current_span("global work"),
        ):
            pass
    finally:
        other.shutdown()
    assert trace.get_tracer_provider() is global_before

    spans = raw_spans(tmp_path)
    assert spans
    names = {s.name for s in spans}
    assert "GET /weather" not in names and "global work" not in names
    for span in spans:
        assert span.scope == "otel_decisions", span
        assert span.trace_id == handle.execution_id, span
        assert span.attributes[RUN_ID] == handle.run_id, span
    assert len(spans) == 3  # run root, decision, its outcome

    (http_span,) = exporter.get_finished_spans()
    assert http_span.name == "GET /weather"
    assert http_span.parent is not None
    decision_span_id = decision_span(spans, handle.run_id, call.decision_id).span_id
    assert f"{http_span.context.trace_id:032x}" == handle.execution_id
    assert f"{http_span.parent.span_id:016x}" == decision_span_id
    run = read_run(tmp_path, handle.run_id)
    assert list(by_id(run)) == [call.decision_id]
