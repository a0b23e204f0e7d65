"""Regressions found in review: each is a way recording could raise into the agent or lose data."""

from __future__ import annotations

import asyncio
import gc
import json
import multiprocessing
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import otel_decisions as od
from otel_decisions.export.pipeline import pipeline_for


def statuses(directory: Path) -> list[str]:
    return [r.status.value for r in od.BuilderQuery(directory).storage.runs()]


def test_run_block_inside_an_async_generator_finalised_by_the_loop_still_ends(tmp_path: Path) -> None:
    async def stream() -> AsyncIterator[int]:
        async with od.run("streaming", directory=tmp_path):
            with od.decision("first token"):
                pass
            for token in range(5):
                yield token

    async def consume() -> None:
        async for token in stream():
            if token == 1:
                break  # a client that hangs up: the generator is finalised by the event loop

    asyncio.run(consume())
    gc.collect()
    # ended, not left `running`: asyncio.run cancels the finaliser's task, so the run is cancelled
    assert statuses(tmp_path) == ["cancelled"]


def test_a_torn_last_line_is_not_glued_to_the_next_run(tmp_path: Path) -> None:
    (tmp_path / "traces.jsonl").write_bytes(b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"ab')
    runtime = od.Runtime(tmp_path)
    run_id = runtime.start_run("after a crash")
    runtime.quick_decision("go on", "continue", "the file was torn by someone else")
    runtime.end_run(True)
    assert od.BuilderQuery(tmp_path).get_full_run(run_id) is not None
    lines = (tmp_path / "traces.jsonl").read_bytes().split(b"\n")
    assert json.loads(lines[1])["resourceSpans"]  # the run starts on a line of its own


def _child_records_nothing(directory: str, done: Any) -> None:
    pipeline_for(directory).flush()  # what a child's periodic flush would do
    done.set()


def test_a_forked_child_does_not_write_the_parents_queued_decisions(tmp_path: Path) -> None:
    runtime = od.Runtime(tmp_path)
    run_id = runtime.start_run("parent")
    for i in range(3):
        runtime.quick_decision(f"step {i}", "act", "queued until the run ends")
    context = multiprocessing.get_context("fork")
    done = context.Event()
    child = context.Process(target=_child_records_nothing, args=(str(tmp_path), done))
    child.start()
    child.join(timeout=30)
    assert done.is_set() and child.exitcode == 0
    runtime.end_run(True)
    run = od.BuilderQuery(tmp_path).get_full_run(run_id)
    assert run is not None and [d.id for d in run.decisions] == ["dec_0", "dec_1", "dec_2"]


def test_bad_values_through_handles_never_raise(tmp_path: Path) -> None:
    with od.run("handles", directory=tmp_path) as handle:
        with od.decision("count tokens") as decision:
            decision.add_tokens("12k")
            decision.add_tokens(None)
        handle.fail(123)
    run = od.BuilderQuery(tmp_path).get_full_run(handle.run_id)
    assert run is not None and run.status.value == "failed" and run.narrative == "123"


def test_a_callable_object_with_async_call_is_recorded_as_a_coroutine(tmp_path: Path) -> None:
    class Agent:
        async def __call__(self, question: str) -> str:
            with od.decision("answer"):
                await asyncio.sleep(0)
            return question.upper()

    agent = od.run("callable", directory=tmp_path)(Agent())
    assert asyncio.run(agent("hi")) == "HI"
    runs = od.BuilderQuery(tmp_path).storage.runs()
    assert [(r.status.value, len(r.decisions)) for r in runs] == [("completed", 1)]


def test_spans_of_a_failed_write_are_written_by_the_next_flush(tmp_path: Path) -> None:
    directory = tmp_path / "spans"
    runtime = od.Runtime(directory)
    os.rmdir(directory)
    directory.write_text("not a directory yet")  # every write fails now
    run_id = runtime.start_run("transient")
    runtime.quick_decision("try", "write", "the disk will come back")
    runtime.end_run(True)
    directory.unlink()
    assert pipeline_for(directory).flush()  # the same spans, kept and written now
    assert od.BuilderQuery(directory).get_full_run(run_id) is not None


def test_values_are_captured_when_recorded_not_when_written(tmp_path: Path) -> None:
    runtime = od.Runtime(tmp_path)
    run_id = runtime.start_run("capture")
    state: dict[str, Any] = {"step": 1}
    decision_id = runtime.decide("act", [{"id": "a"}], "a", "r", context={"state": state})
    runtime.record_outcome(decision_id, True, result=state)
    state["step"] = 99  # changed after recording, before the run is written
    runtime.end_run(True)
    run = od.BuilderQuery(tmp_path).get_full_run(run_id)
    assert run is not None and run.decisions[0].outcome is not None
    assert run.decisions[0].input_context == {"state": {"step": 1}}
    assert run.decisions[0].outcome.result == {"step": 1}
