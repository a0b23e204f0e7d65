"""`otel_decisions.run` / `decision` / `node` as decorators and (async) context managers.

Runs record into `tmp_path`; checks read back with `BuilderQuery` or parse the raw OTLP/JSON lines of
`traces.jsonl`. Peer complaints (research/peers.md §2) have tests named `test_complaint_N_...`. No test may
log at ERROR level (autouse fixture): that covers OpenTelemetry's "Failed to detach context".
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import logging
import time
import traceback
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_decisions as od
from otel_decisions import BuilderQuery, Run, RunStatus

DECISION_ID = "otel_decisions.decision.id"
OUTCOME_DECISION_ID = "otel_decisions.outcome.decision_id"
SUCCESS = "otel_decisions.outcome.success"
RESULT = "otel_decisions.outcome.result"
NODE = "otel_decisions.node.id"
CHOSEN = "otel_decisions.decision.chosen_option"
REASONING = "otel_decisions.decision.reasoning"
TRUNCATED = "otel_decisions.truncated"
STATUS_ERROR = 2
Span = dict[str, Any]

# ------------------------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _no_error_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fails any test that logs at ERROR (e.g. OpenTelemetry's "Failed to detach context")."""
    caplog.set_level(logging.WARNING)
    yield
    errors = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], errors


_OTHER_EXPORTER = InMemorySpanExporter()
_other_installed: list[bool] = []


@pytest.fixture
def other_spans() -> InMemorySpanExporter:
    """Spans of `trace.get_tracer("other-lib")`: an SDK provider set as the GLOBAL one (our pipeline
    uses its own per-directory provider). Reuses a global SDK provider another test may have set."""
    if not _other_installed:
        if not isinstance(trace.get_tracer_provider(), SdkTracerProvider):
            trace.set_tracer_provider(SdkTracerProvider())
        provider = trace.get_tracer_provider()
        assert isinstance(provider, SdkTracerProvider), "a non-SDK global tracer provider is set"
        provider.add_span_processor(SimpleSpanProcessor(_OTHER_EXPORTER))
        _other_installed.append(True)
    _OTHER_EXPORTER.clear()
    return _OTHER_EXPORTER


def other(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    found = [s for s in exporter.get_finished_spans() if s.name == name]
    assert len(found) == 1, f"{name}: {[s.name for s in exporter.get_finished_spans()]}"
    return found[0]


def parent_hex(span: ReadableSpan) -> str | None:
    return f"{span.parent.span_id:016x}" if span.parent is not None else None


def _value(v: dict[str, Any]) -> Any:
    if "intValue" in v:
        return int(v["intValue"])
    if "arrayValue" in v:
        return [_value(x) for x in v["arrayValue"].get("values", [])]
    return next(iter(v.values()))


def attrs(span: Span) -> dict[str, Any]:
    return {kv["key"]: _value(kv["value"]) for kv in span.get("attributes", [])}


def raw_spans(directory: Path) -> list[Span]:
    spans: list[Span] = []
    for line in (directory / "traces.jsonl").read_text(encoding="utf-8").splitlines():
        for resource_spans in json.loads(line)["resourceSpans"] if line.strip() else []:
            for scope_spans in resource_spans["scopeSpans"]:
                spans.extend(scope_spans["spans"])
    return spans


def root(spans: list[Span]) -> Span:
    roots = [s for s in spans if not s.get("parentSpanId")]
    assert len(roots) == 1, [s["name"] for s in roots]
    return roots[0]


def decision_pairs(directory: Path) -> list[tuple[Span, Span]]:
    """(decision span, outcome span) per decision, asserting each was recorded exactly once and that the
    outcome is the child of its decision."""
    spans = raw_spans(directory)
    pairs, plans = [], [s for s in spans if DECISION_ID in attrs(s)]
    decision_ids = [attrs(p)[DECISION_ID] for p in plans]
    assert len(decision_ids) == len(set(decision_ids)), f"duplicate decision spans: {decision_ids}"
    for plan in plans:
        outcomes = [s for s in spans if attrs(s).get(OUTCOME_DECISION_ID) == attrs(plan)[DECISION_ID]]
        assert len(outcomes) == 1, f"{attrs(plan)[DECISION_ID]}: {len(outcomes)} outcome spans"
        assert outcomes[0]["parentSpanId"] == plan["spanId"]
        pairs.append((plan, outcomes[0]))
    return pairs


def only_run(directory: Path) -> Run:
    [run] = BuilderQuery(directory).storage.runs()
    return run


def status(span: Span) -> int:
    return int((span.get("status") or {}).get("code", 0))


async def settle(done: Callable[[], bool]) -> None:
    """Yield to the event loop until `done()` (bounded; no sleeping)."""
    for _ in range(100):
        if done():
            return
        await asyncio.sleep(0)


# ------------------------------------------------------------------ every kind of function, wrapping


def work(x: int, *, y: int = 2) -> int:
    """Doc."""
    return x * y


async def awork(x: int, *, y: int = 2) -> int:
    """Doc."""
    await asyncio.sleep(0)
    return x * y


def gwork(x: int, *, y: int = 2) -> Generator[int, None, int]:
    """Doc."""
    yield x
    return x * y


async def agwork(x: int, *, y: int = 2) -> AsyncIterator[int]:
    """Doc."""
    await asyncio.sleep(0)
    yield x * y


def _run_to_end(fn: Callable[..., Any], *args: Any) -> Any:
    """Call `fn` to completion whatever its kind: its return value (the items, for async generators)."""
    if inspect.isasyncgenfunction(fn):

        async def collect() -> list[Any]:
            return [item async for item in fn(*args)]

        return asyncio.run(collect())
    if inspect.iscoroutinefunction(fn):
        return asyncio.run(fn(*args))
    if inspect.isgeneratorfunction(fn):
        gen = fn(*args)
        try:
            while True:
                next(gen)
        except StopIteration as stop:
            return stop.value
    return fn(*args)


KINDS: dict[str, Callable[..., Any]] = {
    "sync": work,
    "coroutine": awork,
    "generator": gwork,
    "asyncgen": agwork,
}
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

    assert _run_to_end(fn, 3) == ([6] if kind == "asyncgen" else 6)
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


def test_return_value_is_the_same_object_and_a_huge_result_is_capped_with_a_marker(tmp_path: Path) -> None:
    value, huge = {"answer": [1, 2, 3]}, ["x" * 100] * 5_000

    @od.decision("Answer", options=[{"id": "a"}, {"id": "b"}], chosen="a", reasoning="static")
    def answer(result: Any) -> Any:
        return result

    with od.run("goal", directory=tmp_path):
        assert answer(value) is value
        assert answer(huge) is huge

    (plan, outcome), (_, capped) = decision_pairs(tmp_path)
    assert attrs(outcome)[SUCCESS] is True and status(outcome) != STATUS_ERROR
    assert json.loads(attrs(outcome)[RESULT]) == value
    assert attrs(plan)[CHOSEN] == "a" and attrs(plan)[REASONING] == "static"
    assert len(attrs(capped)[RESULT]) < 20_000
    marker = json.loads(attrs(capped)[RESULT])
    assert marker[TRUNCATED] is True and marker["original_chars"] > 500_000


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


def test_complaint_15_decision_handle_outside_a_run_keeps_nothing_after_its_block() -> None:
    with od.decision("first") as d:
        d.choose("ask", reasoning="said by the first block only")
        d.add_tokens(7)
    with od.decision("second") as later:
        assert (later.chosen, later.reasoning, later.tokens_used) == (None, None, 0)
    handle = od.current_decision()
    assert (handle.chosen, handle.reasoning, handle.tokens_used) == (None, None, 0)


class Agent:
    def __init__(self, name: str) -> None:
        self.name = name

    @od.decision("greet")
    def greet(self, whom: str) -> str:
        """Greets."""
        return f"{self.name} greets {whom}"


class SubAgent(Agent):
    pass


def test_complaint_11_decorated_method_and_inherited_method_record_one_span_per_call(tmp_path: Path) -> None:
    with od.run("goal", directory=tmp_path):
        assert Agent("a").greet("b") == "a greets b"
        assert SubAgent("c").greet("d") == "c greets d"

    assert Agent.greet.__doc__ == "Greets."
    results = [json.loads(attrs(o)[RESULT]) for _, o in decision_pairs(tmp_path)]
    assert results == ["a greets b", "c greets d"]


@pytest.mark.parametrize("kind", list(KINDS))
def test_complaint_11_decorated_twice_records_one_span(tmp_path: Path, kind: str) -> None:
    twice = od.decision("outer")(od.decision("inner")(KINDS[kind]))
    wrapped_runs = od.run("goal", directory=tmp_path)(od.run("goal", directory=tmp_path)(twice))

    assert _run_to_end(wrapped_runs, 1) == ([2] if kind == "asyncgen" else 2)
    assert len(BuilderQuery(tmp_path).storage.runs()) == 1
    assert len(decision_pairs(tmp_path)) == 1


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


def test_complaint_7_exception_is_the_same_object_with_its_traceback_and_marks_failure(
    tmp_path: Path,
) -> None:
    raised: list[BaseException] = []

    @od.decision("Call the API")
    def call_api() -> None:
        error = ValueError("bad input")
        raised.append(error)
        raise error  # the line the traceback must point at

    @od.run("goal", directory=tmp_path)
    async def main() -> None:
        await asyncio.sleep(0)
        call_api()

    with pytest.raises(ValueError) as excinfo:
        asyncio.run(main())

    assert excinfo.value is raised[0]
    last = traceback.extract_tb(excinfo.value.__traceback__)[-1]
    assert last.name == "call_api" and last.line == "raise error  # the line the traceback must point at"
    [(_, outcome)] = decision_pairs(tmp_path)
    assert status(outcome) == STATUS_ERROR
    assert attrs(outcome)["error.type"] == "ValueError" and attrs(outcome)[SUCCESS] is False
    run = only_run(tmp_path)
    assert run.status == RunStatus.FAILED
    assert run.decisions[0].outcome is not None and run.decisions[0].outcome.error == "bad input"
    assert status(root(raw_spans(tmp_path))) == STATUS_ERROR


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


# ----------------------------------------------------------------------------------------- generators


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


async def _aclose(gen: AsyncGenerator[Any, Any]) -> None:
    await gen.aclose()


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
        assert _run_to_end(delegate) == 42
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


# ------------------------------------------------------------------ context and other instrumentations


def test_complaint_17_spans_of_other_instrumentations_nest_under_the_decision(
    tmp_path: Path, other_spans: InMemorySpanExporter
) -> None:
    tracer = trace.get_tracer("other-lib")

    @od.decision("Call the tool")
    def call_tool() -> None:
        with tracer.start_as_current_span("http GET"), od.decision("Inner choice"):
            pass

    @od.decision("Async call")
    async def async_call() -> None:
        await asyncio.sleep(0)
        with tracer.start_as_current_span("db query"):
            pass

    with od.run("goal", directory=tmp_path) as handle:
        call_tool()
        asyncio.run(async_call())

    pairs = {attrs(p)["otel_decisions.decision.intent"]: p for p, _ in decision_pairs(tmp_path)}
    http, db = other(other_spans, "http GET"), other(other_spans, "db query")
    assert parent_hex(http) == pairs["Call the tool"]["spanId"]
    assert parent_hex(db) == pairs["Async call"]["spanId"]
    for span in (http, db):
        assert f"{span.context.trace_id:032x}" == handle.execution_id
    assert pairs["Inner choice"]["parentSpanId"] == f"{http.context.span_id:016x}"


def test_complaint_15_run_and_decision_context_does_not_leak_after_the_block(
    tmp_path: Path, other_spans: InMemorySpanExporter
) -> None:
    tracer = trace.get_tracer("other-lib")

    @od.decision("Fails")
    def fails() -> None:
        raise OSError("disk")

    reusable = od.decision("Reused", options=[{"id": "a"}, {"id": "b"}])
    with tracer.start_as_current_span("outer") as outer:
        with od.run("goal", directory=tmp_path), od.node("n"):
            run_span = trace.get_current_span()
            with reusable as d:
                d.choose("a", reasoning="first call only")
            with pytest.raises(OSError):
                fails()
            assert trace.get_current_span() is run_span
            assert od.current_decision().decision_id == ""
            with reusable:
                pass
        assert trace.get_current_span() is outer
        assert od.current_run() == "" and od.current_decision().decision_id == ""
        with tracer.start_as_current_span("after outer"):
            pass
    with tracer.start_as_current_span("after all"):
        pass

    assert trace.get_current_span() is trace.INVALID_SPAN
    assert parent_hex(other(other_spans, "after outer")) == f"{outer.get_span_context().span_id:016x}"
    assert other(other_spans, "after all").parent is None
    for span in other_spans.get_finished_spans():
        if span.instrumentation_scope is not None and span.instrumentation_scope.name == "otel_decisions":
            continue  # ours, handed to the user's provider on purpose (we join it)
        assert not [k for k in (span.attributes or {}) if k.startswith("otel_decisions")], span.name
    first, _, third = (attrs(p) for p, _ in decision_pairs(tmp_path))
    assert (first[CHOSEN], first[REASONING]) == ("a", "first call only")
    assert third.get(CHOSEN, "") == "" and REASONING not in third  # as on a fresh decision


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
