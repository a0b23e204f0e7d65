"""Peer complaints 3, 4, 5 and 6 (research/peers.md §2): decorated generators and async generators.

3. Generator span never ends when the consumer stops early: Arize-ai/openinference#3796,
   openlit/openlit#1454 (and AgentOps' generator wrapper). `break`, `.close()`, `aclose()` and garbage
   collection, of started and of never-started generators, end the decision exactly once.
4. Generator span ends too early / children mis-nested: langfuse/langfuse#7892,
   langfuse/langfuse-python#1628 (and Logfire's generators page). The decision covers the whole
   iteration; spans made by the consumer between items, or after the generator, are not its children.
5. Wrapper breaks the generator protocol: langfuse/langfuse#6800 (return value), #13349
   (`asyncio.timeout`), #10797 (iterators). `send`, `throw`, `asend`, `athrow`, the return value and a
   timeout inside an async generator behave exactly as without the decorator.
6. "Failed to detach context" ERROR logs: open-telemetry/opentelemetry-python#2606,
   google/adk-python#6559. No ERROR is logged when an async generator is finalised in another task, by
   the loop's finaliser or at loop shutdown, or when concurrent tasks share one decision scope (the
   module's `no_error_logs` fixture fails any test that logs at ERROR).

Runs record into `tmp_path`; checks read back with `BuilderQuery` or parse the raw OTLP/JSON lines of
`traces.jsonl`. No sleeps: waits on the event loop are bounded (`settle`).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator
from pathlib import Path
from typing import Any

import pytest
from _function_kinds import run_to_end
from _readback import (
    CHOSEN,
    DECISION_ID,
    RESULT,
    STATUS_ERROR,
    SUCCESS,
    attrs,
    decision_pairs,
    only_run,
    other,
    parent_hex,
    raw_spans,
    root,
    status,
)
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_decisions as od
from otel_decisions import RunStatus

pytestmark = pytest.mark.usefixtures("no_error_logs")  # no test may log at ERROR


async def settle(done: Callable[[], bool]) -> None:
    """Yield to the event loop until `done()` (bounded; no sleeping)."""
    for _ in range(100):
        if done():
            return
        await asyncio.sleep(0)


async def _aclose(gen: AsyncGenerator[Any, Any]) -> None:
    await gen.aclose()


# ===================================================================================== complaint 3
@pytest.mark.parametrize("how", ["break", "close", "gc"])
def test_complaint_3_generator_closed_early_ends_span_exactly_once(tmp_path: Path, how: str) -> None:
    cleanups: list[str] = []

    @od.decision("stream")
    def stream() -> Generator[int, None, None]:
        try:
            yield from range(10)
        finally:
            cleanups.append("closed")

    with od.run("goal", directory=tmp_path):
        if how == "break":
            for item in stream():
                if item == 2:
                    break
        else:
            gen = stream()
            assert [next(gen), next(gen)] == [0, 1]
            if how == "close":
                gen.close()
                gen.close()  # closing again must not record again
            del gen
            gc.collect()
        assert cleanups == ["closed"]

    [(_, outcome)] = decision_pairs(tmp_path)
    assert attrs(outcome)[SUCCESS] is True  # the consumer stopping early is not a failure
    assert len(only_run(tmp_path).decisions) == 1


@pytest.mark.parametrize("how", ["aclose", "break"])
def test_complaint_3_async_generator_closed_early_ends_span_exactly_once(tmp_path: Path, how: str) -> None:
    cleanups: list[str] = []

    @od.decision("astream")
    async def astream() -> AsyncGenerator[int, None]:
        try:
            for i in range(10):
                yield i
        finally:
            cleanups.append("closed")

    async def main() -> None:
        async with od.run("goal", directory=tmp_path):
            if how == "break":
                async for item in astream():
                    if item == 2:
                        break
            else:
                gen = astream()
                assert await anext(gen) == 0
                await gen.aclose()
                await gen.aclose()  # closing again must not record again
            await settle(lambda: bool(cleanups))

    asyncio.run(main())
    assert cleanups == ["closed"]
    assert len(decision_pairs(tmp_path)) == 1
    assert len(only_run(tmp_path).decisions) == 1


def test_complaint_3_unstarted_generators_record_nothing_and_log_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    @od.decision("never started")
    def stream() -> Generator[int, None, None]:
        yield 1

    @od.decision("never started either")
    async def astream() -> AsyncGenerator[int, None]:
        yield 1

    async def main() -> None:
        agen = astream()
        del agen
        gc.collect()
        await asyncio.sleep(0)

    with od.run("goal", directory=tmp_path):
        gen = stream()
        del gen
        gc.collect()
        asyncio.run(main())

    run = only_run(tmp_path)
    assert run.status == RunStatus.COMPLETED and run.decisions == []
    assert run.metrics.total_decisions == 0
    assert decision_pairs(tmp_path) == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


# ===================================================================================== complaint 4
def test_complaint_4_generator_span_covers_iteration_and_later_spans_are_not_its_children(
    tmp_path: Path, other_spans: InMemorySpanExporter
) -> None:
    tracer = trace.get_tracer("other-lib")

    @od.decision("stream")
    def stream() -> Generator[int, None, None]:
        with tracer.start_as_current_span("inside-1"):
            yield 1  # the consumer's code runs outside the decision, even inside this `with`
        with tracer.start_as_current_span("inside-2"):
            pass
        yield 2

    with od.run("goal", directory=tmp_path):
        before = time.time_ns()
        gen = stream()
        assert next(gen) == 1
        with tracer.start_as_current_span("between"):
            pass
        assert next(gen) == 2
        mid = time.time_ns()
        assert list(gen) == []
        with tracer.start_as_current_span("after"), od.decision("next"):
            pass

    (plan, outcome), (later, _) = decision_pairs(tmp_path)
    run_span = root(raw_spans(tmp_path))
    assert int(plan["startTimeUnixNano"]) >= before // 1000 * 1000
    assert int(plan["endTimeUnixNano"]) >= mid // 1000 * 1000
    assert int(outcome["endTimeUnixNano"]) >= mid // 1000 * 1000
    assert parent_hex(other(other_spans, "inside-1")) == plan["spanId"]
    assert parent_hex(other(other_spans, "inside-2")) == plan["spanId"]
    assert parent_hex(other(other_spans, "between")) == run_span["spanId"]
    after = other(other_spans, "after")
    assert parent_hex(after) == run_span["spanId"]
    assert later["parentSpanId"] == f"{after.context.span_id:016x}"


# ===================================================================================== complaint 5
def test_complaint_5_generator_send_throw_and_return_value_pass_through(tmp_path: Path) -> None:
    @od.decision("conversation")
    def conversation() -> Generator[str, str, int]:
        try:
            received = yield "first"
        except KeyError:
            received = yield "recovered"
        yield f"got {received}"
        return 42

    def delegate() -> Generator[str, str, int]:
        return (yield from conversation())

    fatal = RuntimeError("fatal")
    with od.run("goal", directory=tmp_path):
        gen = conversation()
        assert next(gen) == "first"
        assert gen.throw(KeyError("k")) == "recovered"
        assert gen.send("x") == "got x"
        with pytest.raises(StopIteration) as stop:
            next(gen)
        assert stop.value.value == 42
        assert run_to_end(delegate) == 42
        gen = conversation()
        next(gen)
        with pytest.raises(RuntimeError) as excinfo:
            gen.throw(fatal)
        assert excinfo.value is fatal

    (_, first), (_, second), (_, third) = decision_pairs(tmp_path)
    assert json.loads(attrs(first)[RESULT]) == json.loads(attrs(second)[RESULT]) == 42
    assert status(third) == STATUS_ERROR and attrs(third)["error.type"] == "RuntimeError"


def test_complaint_5_async_generator_asend_athrow_and_asyncio_timeout_inside(tmp_path: Path) -> None:
    @od.decision("conversation")
    async def conversation() -> AsyncGenerator[str, str]:
        try:
            received = yield "first"
        except KeyError:
            received = yield "recovered"
        yield f"got {received}"
        try:
            async with asyncio.timeout(0):
                await asyncio.Event().wait()
        except TimeoutError:
            yield "timed out inside"

    @od.decision("times out")
    async def times_out() -> AsyncIterator[str]:
        yield "before"
        async with asyncio.timeout(0):
            await asyncio.Event().wait()
        yield "never"

    async def main() -> None:
        async with od.run("goal", directory=tmp_path):
            gen = conversation()
            assert await anext(gen) == "first"
            assert await gen.athrow(KeyError("k")) == "recovered"
            assert await gen.asend("x") == "got x"
            assert [item async for item in gen] == ["timed out inside"]
            items: list[str] = []
            with pytest.raises(TimeoutError):
                async for item in times_out():
                    items.append(item)
            assert items == ["before"]

    asyncio.run(main())
    (_, ok), (_, timed_out) = decision_pairs(tmp_path)
    assert attrs(ok)[SUCCESS] is True
    assert status(timed_out) == STATUS_ERROR and attrs(timed_out)["error.type"] == "TimeoutError"


# ===================================================================================== complaint 6
@pytest.mark.parametrize("where", ["other_task", "loop_finaliser", "loop_shutdown"])
def test_complaint_6_async_generator_finalised_elsewhere_logs_no_detach_error(
    tmp_path: Path, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    cleanups: list[str] = []
    kept: list[AsyncGenerator[int, None]] = []

    @od.decision("astream")
    async def astream() -> AsyncGenerator[int, None]:
        try:
            for i in range(10):
                yield i
        finally:
            await asyncio.sleep(0)  # cleanup that awaits, e.g. closing an HTTP stream
            cleanups.append("closed")

    async def first_item(gen: AsyncIterator[int]) -> int:
        return await anext(gen)

    async def main() -> None:
        gen = astream()
        assert await asyncio.create_task(first_item(gen)) == 0  # started in another task
        if where == "other_task":
            await asyncio.create_task(_aclose(gen))
        elif where == "loop_finaliser":
            del gen  # the loop's asyncgen finaliser closes it in a task of its own
            await settle(lambda: bool(cleanups))
        else:
            kept.append(gen)  # still open when asyncio.run ends: shutdown_asyncgens closes it

    with od.run("goal", directory=tmp_path):
        asyncio.run(main())
        assert cleanups == ["closed"]

    assert len(decision_pairs(tmp_path)) == 1
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_complaint_6_shared_decision_scope_used_by_concurrent_tasks(tmp_path: Path) -> None:
    shared = od.decision("Pick a worker", options=[{"id": "a"}, {"id": "b"}])  # built once, used by all

    async def worker(option: str) -> str:
        async with shared as d:
            await asyncio.sleep(0)  # the other task enters and leaves `shared` meanwhile
            d.choose(option)
            await asyncio.sleep(0)
            return od.current_decision().decision_id

    async def main() -> list[str]:
        async with od.run("goal", directory=tmp_path):
            return list(await asyncio.gather(worker("a"), worker("b")))

    ids = asyncio.run(main())

    assert sorted(ids) == ["dec_0", "dec_1"]
    chosen = {attrs(p)[DECISION_ID]: attrs(p)[CHOSEN] for p, _ in decision_pairs(tmp_path)}
    assert chosen == dict(zip(ids, ["a", "b"], strict=True))
    assert od.current_decision().decision_id == ""
