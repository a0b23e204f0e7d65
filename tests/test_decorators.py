"""`otel_decisions.run` / `decision` / `node` as decorators and (async) context managers.

Runs record into `tmp_path`; checks read back with `BuilderQuery` or parse the raw OTLP/JSON lines of
`traces.jsonl`. The tests named after peer complaints (research/peers.md §2: generators, failures,
double decoration, context leaks, other instrumentations) are in `tests/reliability/`. No test may log
at ERROR level (`no_error_logs`, tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
from _function_kinds import KINDS, run_to_end
from _readback import (
    CHOSEN,
    NODE,
    REASONING,
    RESULT,
    STATUS_ERROR,
    attrs,
    decision_pairs,
    only_run,
    raw_spans,
    root,
    status,
)

import otel_decisions as od
from otel_decisions import BuilderQuery, RunStatus

pytestmark = pytest.mark.usefixtures("no_error_logs")


# ------------------------------------------------------------------ every kind of function, wrapping

SCOPES: dict[str, Callable[[Path], Any]] = {
    "run": lambda d: od.run("goal", directory=d),
    "decision": lambda d: od.decision("intent"),
    "node": lambda d: od.node("n"),
}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("scope", list(SCOPES))
def test_decorators_preserve_wraps_metadata_signature_and_kind(tmp_path: Path, scope: str, kind: str) -> None:
    fn = KINDS[kind]
    wrapped = SCOPES[scope](tmp_path)(fn)

    assert wrapped.__name__ == fn.__name__
    assert wrapped.__qualname__ == fn.__qualname__
    assert wrapped.__doc__ == "Doc."
    assert wrapped.__wrapped__ is fn
    assert inspect.signature(wrapped) == inspect.signature(fn)
    assert inspect.iscoroutinefunction(wrapped) is (kind == "coroutine")
    assert inspect.isgeneratorfunction(wrapped) is (kind == "generator")
    assert inspect.isasyncgenfunction(wrapped) is (kind == "asyncgen")


@pytest.mark.parametrize("kind", list(KINDS))
def test_run_node_and_decision_stacked_record_one_run_on_every_kind(tmp_path: Path, kind: str) -> None:
    fn = od.run("goal", directory=tmp_path)(od.node("router")(od.decision("route")(KINDS[kind])))

    assert run_to_end(fn, 3) == ([6] if kind == "asyncgen" else 6)
    run = only_run(tmp_path)
    assert run.status == RunStatus.COMPLETED and run.goal_id == "goal"
    [d] = run.decisions
    assert d.intent == "route" and d.node_id == "router"
    assert d.outcome is not None and d.outcome.success
    [(plan, outcome)] = decision_pairs(tmp_path)
    assert attrs(plan)[NODE] == "router"
    if kind != "asyncgen":  # an async generator has no return value
        assert json.loads(attrs(outcome)[RESULT]) == 6
    assert plan["parentSpanId"] == root(raw_spans(tmp_path))["spanId"]


def test_decision_without_options_is_a_single_action_decision_like_quick_decision(tmp_path: Path) -> None:
    with od.run("goal", directory=tmp_path), od.decision("Send the email", reasoning="asked to"):
        pass
    runtime = od.Runtime(tmp_path)
    seed_run_id = runtime.start_run("goal")
    runtime.quick_decision("Send the email", "Send the email", "asked to")
    runtime.end_run(success=True)

    runs = {r.id: r for r in BuilderQuery(tmp_path).storage.runs()}
    assert len(runs) == 2  # one file, one contract, one reader for both
    [ours] = [r for r in runs.values() if r.id != seed_run_id]
    [d] = ours.decisions
    [seed] = runs[seed_run_id].decisions
    assert d.chosen_option_id == seed.chosen_option_id == "action"
    assert [o.model_dump() for o in d.options] == [o.model_dump() for o in seed.options]
    assert d.reasoning == seed.reasoning == "asked to"
    assert {s["name"] for s in raw_spans(tmp_path)} == {"invoke_agent goal", "plan", "outcome"}


def test_choose_explain_and_set_outcome_are_recorded_and_read_back(tmp_path: Path) -> None:
    @od.decision("Pick a tool", options=[{"id": "search"}, {"id": "answer"}])
    def route() -> str:
        od.current_decision().choose("search", reasoning="names a product")
        od.current_decision().set_outcome(success=False, error="no agent available", summary="queued")
        return "returned normally"

    @od.decision("Retry")
    def retry() -> None:
        od.current_decision().set_outcome(success=True, result={"recovered": True})
        raise ConnectionError("flaky")

    with od.run("goal", directory=tmp_path) as handle:
        assert route() == "returned normally"
        with pytest.raises(ConnectionError):
            retry()
        with od.decision("Escalate?", options=[{"id": "yes"}, {"id": "no"}]) as d:
            d.choose("no")
            d.explain("an agent is free")

    run = BuilderQuery(tmp_path).get_full_run(handle.run_id)
    assert run is not None
    assert [(d.chosen_option_id, d.reasoning) for d in run.decisions] == [
        ("search", "names a product"),
        ("action", ""),
        ("no", "an agent is free"),
    ]
    (first, failed), (_, succeeded), (third, _) = decision_pairs(tmp_path)
    assert (attrs(first)[CHOSEN], attrs(first)[REASONING]) == ("search", "names a product")
    assert (attrs(third)[CHOSEN], attrs(third)[REASONING]) == ("no", "an agent is free")
    outcomes = [d.outcome for d in run.decisions]
    assert outcomes[0] is not None and outcomes[1] is not None
    assert (outcomes[0].success, outcomes[0].error, outcomes[0].summary) == (
        False,
        "no agent available",
        "queued",
    )
    assert (outcomes[1].success, outcomes[1].result) == (True, {"recovered": True})
    assert status(failed) == STATUS_ERROR and status(succeeded) != STATUS_ERROR


def test_decision_outside_a_run_is_not_recorded_warns_once_per_decorator_and_still_works(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    @od.decision("lonely")
    def lonely(x: int) -> int:
        od.current_decision().choose("action")
        return x + 1

    @od.decision("also lonely")
    def stream() -> Generator[int, None, None]:
        yield 1

    assert [lonely(1), lonely(2)] == [2, 3]
    assert list(stream()) == [1] and list(stream()) == [1]
    with od.decision("block") as d:
        d.set_outcome(success=True)

    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("otel_decisions")]
    assert len(warnings) == 3, warnings
    assert not (tmp_path / "traces.jsonl").exists()
    assert od.current_run() == "" and od.current_decision().decision_id == ""


# --------------------------------------------------------------------------------------------- runs


def test_run_context_manager_gives_ids_reports_problems_and_is_on_disk_when_the_block_ends(
    tmp_path: Path,
) -> None:
    assert od.current_run() == ""
    with od.run("support", "Answer a ticket", {"ticket": 7}, directory=tmp_path) as handle:
        assert od.current_run() == handle.execution_id
        with od.decision("d") as d:
            decision_id = d.decision_id
        problem_id = handle.report_problem("warning", "slow tool", decision_id, "rate limit", "cache it")
    assert od.current_run() == ""

    query = BuilderQuery(tmp_path)
    assert query.execution_id(handle.run_id) == handle.execution_id
    run = query.get_full_run(handle.run_id)
    assert run is not None and run.status == RunStatus.COMPLETED
    assert (run.goal_description, run.input_data) == ("Answer a ticket", {"ticket": 7})
    assert root(raw_spans(tmp_path))["traceId"] == handle.execution_id
    [problem] = run.problems
    assert problem_id == problem.id == "prob_0"
    assert (problem.severity, problem.description, problem.decision_id) == ("warning", "slow tool", "dec_0")
    assert (problem.root_cause, problem.suggested_fix) == ("rate limit", "cache it")


def test_run_as_async_context_manager_and_as_coroutine_decorator(tmp_path: Path) -> None:
    @od.run("decorated", directory=tmp_path)
    async def main() -> str:
        async with od.node("n"), od.decision("inside") as d:
            d.choose("action")
            await asyncio.sleep(0)
        return od.current_run()

    async def both() -> tuple[str, str]:
        async with od.run("managed", directory=tmp_path) as handle, od.decision("d"):
            await asyncio.sleep(0)
        return handle.execution_id, await main()

    managed_id, decorated_id = asyncio.run(both())

    runs = {r.goal_id: r for r in BuilderQuery(tmp_path).storage.runs()}
    assert set(runs) == {"managed", "decorated"}
    assert all(r.status == RunStatus.COMPLETED and len(r.decisions) == 1 for r in runs.values())
    assert runs["decorated"].decisions[0].node_id == "n"
    assert decorated_id != managed_id and len(decorated_id) == 32


def test_failed_run_block_propagates_the_exception_and_run_handle_fail_marks_failure(tmp_path: Path) -> None:
    error = KeyError("missing")
    with pytest.raises(KeyError) as excinfo, od.run("raises", directory=tmp_path):
        raise error
    assert excinfo.value is error
    with od.run("gives up", directory=tmp_path) as handle:
        handle.fail("gave up after 3 tries")

    runs = {r.goal_id: r for r in BuilderQuery(tmp_path).storage.runs()}
    assert runs["raises"].status == runs["gives up"].status == RunStatus.FAILED
    assert runs["gives up"].narrative == "gave up after 3 tries"
    assert [status(s) for s in raw_spans(tmp_path) if not s.get("parentSpanId")] == [STATUS_ERROR] * 2


def test_nested_node_scopes_restore_the_outer_node(tmp_path: Path) -> None:
    @od.node("inner")
    @od.decision("decorated")
    def decorated() -> None:
        pass

    with od.run("goal", directory=tmp_path), od.node("outer"):
        with od.decision("first"):
            pass
        with od.node("middle"):
            decorated()
            with od.decision("second"):
                pass
        with od.decision("third"), od.decision("explicit", node_id="pinned"):
            pass

    nodes = {d.intent: d.node_id for d in only_run(tmp_path).decisions}
    assert nodes == {
        "first": "outer",
        "decorated": "inner",
        "second": "middle",
        "third": "outer",
        "explicit": "pinned",
    }


# ------------------------------------------------------------------------- methods and descriptors


def test_decision_above_staticmethod_and_classmethod_keeps_the_binding(tmp_path: Path) -> None:
    class Tools:
        @od.decision("static tool")
        @staticmethod
        def double(value: int) -> int:
            return value * 2

        @od.decision("class tool")
        @classmethod
        def name(cls, value: int) -> str:
            return f"{cls.__name__}:{value}"

    with od.run("bindings", directory=tmp_path) as handle:
        assert Tools().double(2) == 4 and Tools.double(3) == 6
        assert Tools().name(1) == "Tools:1"
    run = od.BuilderQuery(tmp_path).get_full_run(handle.run_id)
    assert run is not None
    assert [d.intent for d in run.decisions] == ["static tool", "static tool", "class tool"]
