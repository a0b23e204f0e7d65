"""Peer complaint 8 (research/peers.md §2): non-JSON arguments break capture.

langfuse/langfuse#3730, traceloop/openllmetry#2320 (dataclasses), traceloop/openllmetry#472. Agents hand
over whatever they hold: dataclasses, pydantic models, sets, bytes, datetimes, cyclic structures, objects
whose `__repr__` raises, and plain wrong types. Through `Runtime.decide` / `record_outcome` and through
the `@otel_decisions.decision` decorator (its context, its return value, `set_outcome`, and the run's
input and output data), nothing raises into the agent, the decorated call returns the value itself, and
a brand-new `BuilderQuery(tmp_path)` reads the run back with each value converted (dataclass, model,
set, datetime) or visibly marked (`"<bytes N: base64>"`, `"<cycle>"`, `"<unserializable Type: repr>"`).
(numpy values are not covered: numpy is not installed in the dev environment.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pydantic
import pytest
from _readback import LOGGER, only_outcome, outcome_result, read_run, warnings_logged

import otel_decisions as od
from otel_decisions import Decision, DecisionType, Outcome, RunStatus, Runtime

pytestmark = pytest.mark.usefixtures("no_error_logs")  # no test may log at ERROR


class Opaque:
    """Not JSON: recorded as a marked string."""

    def __repr__(self) -> str:
        return "Opaque()"


class BadRepr:
    """Its repr raises: recording must not."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def _cyclic() -> dict[str, Any]:
    value: dict[str, Any] = {"name": "loop"}
    value["self"] = value
    return value


@dataclass(frozen=True)
class Point:
    """A dataclass holding a datetime (traceloop/openllmetry#2320)."""

    x: int
    at: datetime


class Ticket(pydantic.BaseModel):
    """A pydantic model holding a set."""

    id: int
    tags: set[str]


NON_JSON: dict[str, tuple[Any, Any]] = {
    # kind: (the value the agent hands over, what a BuilderQuery reads back for it)
    "dataclass": (Point(1, datetime(2024, 5, 6, 7, 8, 9)), {"x": 1, "at": "2024-05-06T07:08:09"}),
    "pydantic_model": (Ticket(id=7, tags={"vip"}), {"id": 7, "tags": ["vip"]}),
    "set": ({3}, [3]),
    "bytes": (b"\x00\xff", "<bytes 2: AP8=>"),
    "datetime": (datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), "2024-05-06T07:08:09+00:00"),
    "cyclic_dict": (_cyclic(), {"name": "loop", "self": "<cycle>"}),
    "object": (Opaque(), "<unserializable Opaque: Opaque()>"),
    "repr_raises": (BadRepr(), "<unserializable BadRepr: repr failed>"),
}


@dataclass(frozen=True)
class BadDecide:
    """Keyword overrides for `decide`, whether a warning is expected, and a check on the stored decision."""

    overrides: dict[str, Any]
    warns: bool
    check: Callable[[Decision], bool]


def _in_context(kind: str) -> BadDecide:
    """A `NON_JSON` value of `kind` in a decision's context, read back converted or marked."""
    value, expected = NON_JSON[kind]
    return BadDecide({"context": {"obj": value}}, False, lambda d: d.input_context == {"obj": expected})


BAD_DECIDE_INPUT: dict[str, BadDecide] = {
    "option_without_id": BadDecide(
        {"options": [{"description": "no id here"}]},
        True,
        lambda d: len(d.options) == 1 and d.options[0].description == "no id here" and d.options[0].id != "",
    ),
    "non_dict_options": BadDecide(
        {"options": ["plain text", 3]},
        True,
        lambda d: [o.description for o in d.options] == ["plain text", "3"],
    ),
    "options_none": BadDecide({"options": None}, False, lambda d: d.options == []),
    "options_a_string": BadDecide({"options": "abc"}, True, lambda d: isinstance(d.options, list)),
    "bogus_decision_type": BadDecide(
        {"decision_type": "bogus"}, True, lambda d: d.decision_type == DecisionType.CUSTOM
    ),
    "context_a_list": BadDecide(
        {"context": [1, 2]},
        True,
        lambda d: isinstance(d.input_context, dict) and [1, 2] in d.input_context.values(),
    ),
    "constraints_a_string": BadDecide(
        {"constraints": "be quick"}, True, lambda d: d.active_constraints == ["be quick"]
    ),
    "intent_not_text": BadDecide({"intent": 42}, True, lambda d: d.intent == "42"),
    "set_in_context": BadDecide(
        {"context": {"tags": {"a"}}}, False, lambda d: d.input_context["tags"] == ["a"]
    ),
    "object_in_context": BadDecide(
        {"context": {"obj": Opaque()}}, False, lambda d: "Opaque" in str(d.input_context["obj"])
    ),
    "bad_repr_in_context": BadDecide(
        {"context": {"obj": BadRepr()}}, False, lambda d: isinstance(d.input_context["obj"], str)
    ),
    "bytes_in_context": BadDecide(
        {"context": {"raw": b"\x00\xff"}}, False, lambda d: isinstance(d.input_context["raw"], str)
    ),
    "cyclic_context": BadDecide(
        {"context": _cyclic()},
        False,
        lambda d: d.input_context["name"] == "loop" and "cycle" in str(d.input_context),
    ),
    "lone_surrogate_in_intent": BadDecide(
        {"intent": "broken \ud800 text"}, False, lambda d: d.intent.startswith("broken")
    ),
    "dataclass_in_context": _in_context("dataclass"),
    "pydantic_model_in_context": _in_context("pydantic_model"),
    "datetime_in_context": _in_context("datetime"),
}


@pytest.mark.parametrize("case", list(BAD_DECIDE_INPUT))
def test_complaint_8_decide_with_bad_input_never_raises_and_the_run_stays_readable(
    runtime: Runtime, tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    bad = BAD_DECIDE_INPUT[case]
    kwargs: dict[str, Any] = {
        "intent": "bad input",
        "options": [{"id": "a"}],
        "chosen": "a",
        "reasoning": "r",
    }
    kwargs.update(bad.overrides)
    run_id = runtime.start_run("goal")

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        decision_id = runtime.decide(**kwargs)

    assert decision_id == "dec_0"
    if bad.warns:
        assert warnings_logged(caplog), f"coercing {case} should log a warning"
    assert runtime.decide("a normal one", [{"id": "a"}], "a", "r") == "dec_1"
    runtime.end_run(success=True)
    run = read_run(tmp_path, run_id)
    assert [d.id for d in run.decisions] == ["dec_0", "dec_1"]
    assert bad.check(run.decisions[0]), run.decisions[0]


@dataclass(frozen=True)
class BadOutcome:
    """Keyword overrides for `record_outcome`, whether a warning is expected, and a check on the result."""

    overrides: dict[str, Any]
    warns: bool
    check: Callable[[Outcome], bool]


def _as_result(kind: str) -> BadOutcome:
    """A `NON_JSON` value of `kind` as an outcome's result, read back converted or marked."""
    value, expected = NON_JSON[kind]
    return BadOutcome({"result": value}, False, lambda o: o.result == expected)


BAD_OUTCOME_INPUT: dict[str, BadOutcome] = {
    "latency_a_float": BadOutcome(
        {"latency_ms": 1.5}, True, lambda o: type(o.latency_ms) is int and o.latency_ms in (1, 2)
    ),
    "tokens_a_string": BadOutcome({"tokens_used": "ten"}, True, lambda o: type(o.tokens_used) is int),
    "error_an_exception": BadOutcome(
        {"success": False, "error": Exception("x")}, True, lambda o: o.error == "x" and not o.success
    ),
    "state_changes_a_list": BadOutcome(
        {"state_changes": [1, 2]}, True, lambda o: [1, 2] in o.state_changes.values()
    ),
    "set_in_result": BadOutcome({"result": {"s": {1}}}, False, lambda o: o.result == {"s": [1]}),
    "object_result": BadOutcome({"result": Opaque()}, False, lambda o: "Opaque" in str(o.result)),
    "bytes_result": BadOutcome({"result": b"\x00\x01binary"}, False, lambda o: isinstance(o.result, str)),
    "cyclic_result": BadOutcome(
        {"result": _cyclic()}, False, lambda o: o.result["name"] == "loop" and "cycle" in str(o.result)
    ),
    "mixed_non_json_result": BadOutcome(
        {"result": {"s": {2}, "o": Opaque(), "b": b"ab", "c": _cyclic(), "ok": 1}},
        False,
        lambda o: o.result["ok"] == 1 and o.result["s"] == [2] and "Opaque" in o.result["o"],
    ),
    "big_int_next_to_data": BadOutcome(
        {"result": {"big": 2**70, "keep": "me"}},
        False,
        lambda o: isinstance(o.result, dict) and o.result["keep"] == "me",
    ),
    "dataclass_result": _as_result("dataclass"),
    "pydantic_model_result": _as_result("pydantic_model"),
    "datetime_result": _as_result("datetime"),
    "repr_raises_result": _as_result("repr_raises"),
}


@pytest.mark.parametrize("case", list(BAD_OUTCOME_INPUT))
def test_complaint_8_record_outcome_with_bad_input_never_raises_and_the_run_stays_readable(
    runtime: Runtime, tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    bad = BAD_OUTCOME_INPUT[case]
    run_id = runtime.start_run("goal")
    decision_id = runtime.decide("act", [{"id": "a"}], "a", "r")
    kwargs: dict[str, Any] = {"decision_id": decision_id, "success": True}
    kwargs.update(bad.overrides)

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert runtime.record_outcome(**kwargs) is None  # type: ignore[func-returns-value]

    if bad.warns:
        assert warnings_logged(caplog), f"coercing {case} should log a warning"
    runtime.end_run(success=True)
    outcome = only_outcome(read_run(tmp_path, run_id).decisions[0])
    assert bad.check(outcome), outcome


def test_complaint_8_bad_input_everywhere_in_one_run_still_gives_a_readable_run(
    runtime: Runtime, tmp_path: Path
) -> None:
    run_id = runtime.start_run(None, 3, ["not", "a", "dict"])  # type: ignore[arg-type]
    base: dict[str, Any] = {"intent": "x", "chosen": "a", "reasoning": "r", "options": [{"id": "a"}]}
    # The lone surrogate has its own test; here it would hide every other case behind one failure.
    ids = [
        runtime.decide(**{**base, **bad.overrides})
        for name, bad in BAD_DECIDE_INPUT.items()
        if name != "lone_surrogate_in_intent"
    ]
    for decision_id, bad_outcome in zip(ids, BAD_OUTCOME_INPUT.values(), strict=False):
        runtime.record_outcome(**{"decision_id": decision_id, "success": True, **bad_outcome.overrides})
    problem = runtime.report_problem(None, Opaque(), 5)  # type: ignore[arg-type]
    runtime.set_node(None)  # type: ignore[arg-type]
    runtime.end_run(success=True, narrative=None, output_data=[1])  # type: ignore[arg-type]

    assert ids == [f"dec_{i}" for i in range(len(ids))]
    assert problem == "prob_0"
    run = read_run(tmp_path, run_id)
    assert run.status == RunStatus.COMPLETED
    assert len(run.decisions) == len(ids)
    assert run.narrative.startswith("Run completed successfully.")


@pytest.mark.parametrize("kind", list(NON_JSON))
def test_complaint_8_non_json_values_through_the_decorators_never_raise_and_read_back_marked(
    tmp_path: Path, kind: str
) -> None:
    """A decorated decision's context and return value (sync and async), an explicit `set_outcome`
    result and state changes, and the run's input and output data, all holding a value of `kind`: the
    calls return the very value, and the run reads back completed with the value converted or marked."""
    value, expected = NON_JSON[kind]

    @od.decision("Use an odd value", context={"value": value})
    def use(given: Any) -> Any:
        return given

    @od.decision("Use it asynchronously")
    async def use_async(given: Any) -> Any:
        await asyncio.sleep(0)
        return given

    with od.run("odd_values", "Hand odd values over", {"value": value}, directory=tmp_path) as handle:
        assert use(value) is value
        assert asyncio.run(use_async(value)) is value
        with od.decision("Set it as the outcome") as explicit:
            explicit.set_outcome(success=True, result=value, state_changes={"value": value})
        handle.set_output({"value": value})

    run = read_run(tmp_path, handle.run_id)
    assert run.status == RunStatus.COMPLETED
    assert (run.input_data, run.output_data) == ({"value": expected}, {"value": expected})
    returned, awaited, set_explicitly = run.decisions
    assert returned.input_context == {"value": expected}
    assert [outcome_result(d) for d in run.decisions] == [expected] * 3
    assert only_outcome(set_explicitly).state_changes == {"value": expected}
    assert awaited.intent == "Use it asynchronously"
