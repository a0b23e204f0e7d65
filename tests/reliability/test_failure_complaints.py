"""Peer complaints 7 and 11 (research/peers.md §2): failures and double instrumentation.

7. Failure not recorded / span lost on exception: traceloop/openllmetry#2076, mlflow/mlflow#16689 (a
   child's `record_exception` leaves the trace OK). The caller gets the very exception object, with its
   traceback pointing at the raising line; the outcome span is ERROR; the run is read back as failed.
11. Duplicate spans from double instrumentation: Arize-ai/openinference#2101, #2119. A function
   decorated twice (as a decision and as a run, of every kind of function) and a decorated method
   inherited by a subclass record one span per call. (`instrument()` twice is checked with the
   instrumentor itself in `tests/test_otlp_export.py`.)

Runs record into `tmp_path`; checks read back with `BuilderQuery` or parse the raw OTLP/JSON lines of
`traces.jsonl`.
"""

from __future__ import annotations

import asyncio
import json
import traceback
from pathlib import Path

import pytest
from _function_kinds import KINDS, run_to_end
from _readback import RESULT, STATUS_ERROR, SUCCESS, attrs, decision_pairs, only_run, raw_spans, root, status

import otel_decisions as od
from otel_decisions import BuilderQuery, RunStatus

pytestmark = pytest.mark.usefixtures("no_error_logs")  # no test may log at ERROR


# ===================================================================================== complaint 7
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


# ==================================================================================== complaint 11
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

    assert run_to_end(wrapped_runs, 1) == ([2] if kind == "asyncgen" else 2)
    assert len(BuilderQuery(tmp_path).storage.runs()) == 1
    assert len(decision_pairs(tmp_path)) == 1
