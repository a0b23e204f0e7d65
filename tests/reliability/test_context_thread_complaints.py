"""Peer complaint 1 (research/peers.md §2): context lost in thread pools, giving orphan traces.

ls1intum/edutelligence#414, huggingface/smolagents#2221, mlflow/mlflow#14881. Decisions made in
`ThreadPoolExecutor.submit` / `.map`, `threading.Thread`, `loop.run_in_executor` and `asyncio.to_thread`
belong to the run that handed the work over and nest under the handing-over span; two runs in two
threads or two asyncio tasks never mix, even when they share one decision object; and opting out of
propagation (`propagate_context(False)`) really leaves pool decisions out of the run.

Every test records with the decorators / context managers into `tmp_path` and checks what a brand-new
`BuilderQuery(tmp_path)` reads back and, where the span shape matters, the raw OTLP/JSON lines. Every wait
on a thread, a task or a barrier is bounded by `TIMEOUT`. No sleeps and no mocks: real threads and pools.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from _readback import RUN_ID, by_id, outcome_result, read_run
from _span_records import EXECUTION_ID, decision_span, raw_spans, root_span
from _workers import LOOK_UP_INTENT, TIMEOUT, Seen, join_all, look_up

import otel_decisions
from otel_decisions import RunHandle

pytestmark = pytest.mark.usefixtures("no_error_logs")  # no test may log at ERROR

STEPS = 3


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


# ------------------------------------------------------------------------------- concurrent runs
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
