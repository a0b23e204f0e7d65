"""Round trip through the span contract: `Run` model -> spans in a file -> `Run` model.

A run written with `record_run(pipeline_for(dir), run)` must come back from `BuilderQuery(dir)` equal to
the original, whatever its decisions, options, outcomes, problems and status (contract.py: "a
round-trip property test keeps them in agreement"). Each example writes to its own fresh directory.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import otel_decisions
from otel_decisions import BuilderQuery, Runtime
from otel_decisions._values import TRUNCATED_KEY
from otel_decisions.contract import datetime_to_ns, ns_to_datetime
from otel_decisions.export.pipeline import pipeline_for
from otel_decisions.models import (
    Decision,
    DecisionEvaluation,
    DecisionType,
    Option,
    Outcome,
    Run,
    RunStatus,
)
from otel_decisions.recording.recorder import record_run

_MIN_TIME = datetime(2001, 1, 1)
_MAX_TIME = datetime(2090, 12, 31, 23, 59, 59, 999_999)

_SETTINGS = settings(
    max_examples=75,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ------------------------------------------------------------------------------------------ strategies

# Text encodable as UTF-8 (no lone surrogates; those get their own test in test_runtime.py).
_chars = st.characters(codec="utf-8")
texts = st.text(alphabet=_chars, max_size=12)
non_empty_texts = st.text(alphabet=_chars, min_size=1, max_size=12)

# JSON-compatible values: ints are limited to 64 bits (what JSON numbers hold in practice; orjson's
# limit), floats are finite (NaN/inf have their own test below).
int64s = st.integers(min_value=-(2**63), max_value=2**63 - 1)
json_scalars: st.SearchStrategy[Any] = (
    st.none() | st.booleans() | int64s | st.floats(allow_nan=False, allow_infinity=False) | texts
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=8,
)
json_objects: st.SearchStrategy[dict[str, Any]] = st.dictionaries(texts, json_values, max_size=3)
unit_floats = st.floats(min_value=0.0, max_value=1.0)
counts = st.integers(min_value=0, max_value=2**40)
# Extra fields (every model allows them); the prefix keeps them clear of declared and computed fields.
extras: st.SearchStrategy[dict[str, Any]] = st.dictionaries(
    st.text(alphabet="abcdefgh", min_size=1, max_size=6).map(lambda k: f"x_{k}"), json_values, max_size=2
)

options = st.builds(
    Option,
    id=texts,
    description=texts,
    action_type=st.sampled_from(["tool_call", "execute", "unknown"]) | texts,
    action_params=json_objects
    | st.dictionaries(st.sampled_from(["tool", "tool_name"]), texts | int64s, max_size=2),
    pros=st.lists(texts, max_size=3),
    cons=st.lists(texts, max_size=3),
    confidence=st.floats(allow_nan=False, allow_infinity=False),
)

evaluations = st.builds(
    DecisionEvaluation,
    goal_aligned=st.booleans(),
    alignment_score=unit_floats,
    better_option_existed=st.booleans(),
    better_option_id=st.none() | texts,
    why_better=st.none() | texts,
    outcome_quality=unit_floats,
    contributed_to_success=st.none() | st.booleans(),
    explanation=texts,
)

statuses = st.sampled_from(
    [RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.STUCK, RunStatus.RUNNING]
)


@st.composite
def runs(draw: st.DrawFn) -> Run:
    """An arbitrary run built through the model methods, with non-decreasing timestamps."""
    clock = [draw(st.datetimes(min_value=_MIN_TIME, max_value=datetime(2080, 1, 1)))]

    def later() -> datetime:
        """A time no earlier than the previous one (kept close, so long runs stay in range)."""
        step = draw(
            st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30))
            | st.just(timedelta(0))
            | st.timedeltas(min_value=timedelta(0), max_value=timedelta(milliseconds=5))
        )
        clock[0] = min(clock[0] + step, _MAX_TIME)
        return clock[0]

    run = Run(
        id=draw(non_empty_texts),
        goal_id=draw(texts),
        started_at=clock[0],
        goal_description=draw(texts),
        input_data=draw(json_objects),
        **draw(extras),
    )
    decision_ids = draw(st.lists(non_empty_texts, unique=True, max_size=5))
    for decision_id in decision_ids:
        opts = draw(st.lists(options, max_size=3))
        pick_existing = bool(opts) and draw(st.booleans())
        chosen = draw(st.sampled_from([o.id for o in opts])) if pick_existing else draw(texts)
        decision = Decision(
            id=decision_id,
            timestamp=later(),
            node_id=draw(st.sampled_from(["planner", "executor", "unknown"]) | texts),
            intent=draw(texts),
            decision_type=draw(st.sampled_from(list(DecisionType))),
            options=opts,
            chosen_option_id=chosen,
            reasoning=draw(texts),
            active_constraints=draw(st.lists(texts, max_size=3)),
            input_context=draw(json_objects),
            evaluation=draw(st.none() | evaluations),
            **draw(extras),
        )
        run.add_decision(decision)
        if draw(st.booleans()):
            outcome = Outcome(
                success=draw(st.booleans()),
                result=draw(json_values),
                error=draw(st.none() | texts),
                state_changes=draw(json_objects),
                tokens_used=draw(counts),
                latency_ms=draw(counts),
                summary=draw(texts),
                timestamp=later(),
                **draw(extras),
            )
            assert run.record_outcome(decision_id, outcome)
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        run.add_problem(
            draw(st.sampled_from(["critical", "warning", "minor", "error", "info"]) | texts),
            draw(texts),
            draw(st.none() | st.sampled_from(decision_ids or ["dec_0"])),
            draw(st.none() | texts),
            draw(st.none() | texts),
        )
        run.problems[-1].timestamp = draw(st.datetimes(min_value=run.started_at, max_value=_MAX_TIME))
    run.metrics.edges_traversed = draw(st.lists(texts, max_size=3))
    run.status = draw(statuses)
    if run.status != RunStatus.RUNNING:
        run.completed_at = later()
        run.narrative = draw(texts)
        run.output_data = draw(json_objects)
    return run


# ------------------------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True, scope="module")
def lossless() -> Iterator[None]:
    """Scrubbing off: the contract itself loses nothing (random keys such as `TOKEN` would otherwise
    be redacted, by design; tests/reliability/test_privacy.py covers that)."""
    otel_decisions.configure(scrub=False)
    try:
        yield
    finally:
        otel_decisions.configure()


@contextlib.contextmanager
def fresh_directory() -> Iterator[Path]:
    """A new span directory for one example; its pipeline is shut down (files closed) afterwards."""
    with tempfile.TemporaryDirectory(prefix="otel_decisions_rt_") as name:
        directory = Path(name)
        try:
            yield directory
        finally:
            pipeline_for(directory).provider.shutdown()


def write_and_read(run: Run) -> tuple[Run | None, str]:
    """Write `run` with `record_run` into a fresh directory and read it back with a new BuilderQuery."""
    with fresh_directory() as directory:
        execution_id = record_run(pipeline_for(directory), run)
        # No flush: ending the root span writes the run.
        return BuilderQuery(directory).get_full_run(run.id), execution_id


# ------------------------------------------------------------------------------------------ round trip


@_SETTINGS
@given(run=runs())
def test_record_run_then_get_full_run_returns_an_equal_run(run: Run) -> None:
    loaded, execution_id = write_and_read(run)

    assert loaded is not None, "the run was not readable right after record_run returned"
    assert len(execution_id) == 32
    assert loaded.model_dump() == run.model_dump()
    assert loaded == run


def test_record_run_returns_the_trace_id_the_reader_reports() -> None:
    run = Run(id="run_x", goal_id="g")
    run.complete(RunStatus.COMPLETED)
    with fresh_directory() as directory:
        execution_id = record_run(pipeline_for(directory), run)
        query = BuilderQuery(directory)

        assert query.execution_id("run_x") == execution_id
        assert int(execution_id, 16) != 0


def _nan_run(result: Any) -> Run:
    run = Run(id="run_nan", goal_id="g")
    run.add_decision(Decision(id="dec_0", node_id="n", intent="compute"))
    run.record_outcome("dec_0", Outcome(success=True, result=result, state_changes={"ratio": math.inf}))
    run.complete(RunStatus.COMPLETED)
    return run


def test_nan_and_infinity_in_a_result_come_back_marked() -> None:
    """Non-finite floats have no JSON form (orjson would write `null`, a silent loss): they are written
    as the marked strings "<float nan>", "<float inf>", "<float -inf>"; the value around them is kept.
    Nothing raises, neither on writing nor on reading."""
    loaded, _ = write_and_read(_nan_run({"score": math.nan, "items": [1.0, -math.inf, 2.5], "ok": True}))

    assert loaded is not None
    outcome = loaded.decisions[0].outcome
    assert outcome is not None
    assert outcome.success is True
    assert outcome.result == {"score": "<float nan>", "items": [1.0, "<float -inf>", 2.5], "ok": True}
    assert outcome.state_changes == {"ratio": "<float inf>"}


def test_a_bare_nan_result_is_recorded_and_reads_back_marked() -> None:
    loaded, _ = write_and_read(_nan_run(math.nan))

    assert loaded is not None
    outcome = loaded.decisions[0].outcome
    assert outcome is not None and outcome.success
    assert outcome.result == "<float nan>"


def test_an_oversized_result_reads_back_as_the_truncation_marker() -> None:
    run = Run(id="run_big", goal_id="g")
    run.add_decision(Decision(id="dec_0", node_id="n", intent="fetch"))
    run.record_outcome("dec_0", Outcome(success=True, result=list(range(100_000))))
    run.complete(RunStatus.COMPLETED)

    loaded, _ = write_and_read(run)

    assert loaded is not None
    outcome = loaded.decisions[0].outcome
    assert outcome is not None
    assert isinstance(outcome.result, dict)
    assert outcome.result[TRUNCATED_KEY] is True
    assert outcome.result["original_chars"] > 100_000


# ----------------------------------------------------------------------------------- open (running) run


def test_open_run_is_rebuilt_from_its_decision_and_outcome_spans(tmp_path: Path) -> None:
    runtime = Runtime(tmp_path)
    run_id = runtime.start_run("open_goal", "never ended yet")
    runtime.set_node("planner")
    first = runtime.decide("pick a tool", [{"id": "a", "description": "A"}], "a", "only one")
    runtime.record_outcome(first, success=True, result={"n": 1}, tokens_used=7, latency_ms=3)
    second = runtime.decide("retry?", [{"id": "r"}, {"id": "s"}], "s", "stop", node_id="critic")
    runtime.record_outcome(second, success=False, error="gave up")
    runtime.decide("pending", [{"id": "p"}], "p", "no outcome yet")

    assert pipeline_for(tmp_path).flush()
    loaded = BuilderQuery(tmp_path).get_full_run(run_id)

    assert loaded is not None
    assert loaded.status == RunStatus.RUNNING
    assert loaded.completed_at is None
    assert loaded.goal_id == "open_goal"
    assert [d.id for d in loaded.decisions] == ["dec_0", "dec_1", "dec_2"]
    assert [d.intent for d in loaded.decisions] == ["pick a tool", "retry?", "pending"]
    assert [d.was_successful for d in loaded.decisions] == [True, False, False]
    assert loaded.decisions[2].outcome is None
    live = runtime.current_run
    assert live is not None
    assert [d.model_dump() for d in loaded.decisions] == [d.model_dump() for d in live.decisions]
    assert loaded.metrics.total_decisions == 3
    assert loaded.metrics.successful_decisions == 1
    assert loaded.metrics.failed_decisions == 1
    assert loaded.metrics.total_tokens == 7
    assert loaded.metrics.total_latency_ms == 3
    assert loaded.metrics.nodes_executed == ["planner", "critic"]

    # Once ended, the same directory holds the complete run.
    runtime.end_run(success=True)
    ended = BuilderQuery(tmp_path).get_full_run(run_id)
    assert ended is not None
    assert ended.status == RunStatus.COMPLETED
    assert ended.goal_description == "never ended yet"
    assert len(ended.decisions) == 3


# ------------------------------------------------------------------------------------------ time mapping


@contextlib.contextmanager
def local_timezone(name: str) -> Iterator[None]:
    """Run with the process's local time zone set to `name` (restored afterwards)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


_MIN_NS = datetime_to_ns(datetime(2001, 1, 2))
_MAX_NS = datetime_to_ns(datetime(2090, 12, 30))


@_SETTINGS
@given(value=st.datetimes(min_value=_MIN_TIME, max_value=_MAX_TIME))
def test_ns_to_datetime_inverts_datetime_to_ns_for_naive_local_times(value: datetime) -> None:
    ns = datetime_to_ns(value)

    assert ns % 1000 == 0
    back = ns_to_datetime(ns)
    assert back == value
    assert back.tzinfo is None


@_SETTINGS
@given(ns=st.integers(min_value=_MIN_NS, max_value=_MAX_NS))
def test_datetime_to_ns_inverts_ns_to_datetime_to_the_microsecond(ns: int) -> None:
    assert datetime_to_ns(ns_to_datetime(ns)) == ns - ns % 1000


@_SETTINGS
@given(
    value=st.datetimes(
        min_value=_MIN_TIME,
        max_value=_MAX_TIME,
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7))]),
    )
)
def test_aware_datetimes_map_to_their_instant(value: datetime) -> None:
    expected = (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000

    assert datetime_to_ns(value) == expected
    assert ns_to_datetime(expected) == value.astimezone().replace(tzinfo=None)


@_SETTINGS
@given(
    a=st.datetimes(min_value=_MIN_TIME, max_value=_MAX_TIME),
    b=st.datetimes(min_value=_MIN_TIME, max_value=_MAX_TIME),
)
def test_datetime_to_ns_preserves_order(a: datetime, b: datetime) -> None:
    if a <= b:
        assert datetime_to_ns(a) <= datetime_to_ns(b)
    else:
        assert datetime_to_ns(a) > datetime_to_ns(b)


def _every_minute_around(start: datetime, hours: int) -> list[int]:
    base = datetime_to_ns(start)
    return [base + k * 60_000_000_000 + 123_456_789 for k in range(hours * 60)]


def test_time_mapping_round_trips_across_daylight_saving_changes() -> None:
    """In a zone with DST, every instant survives ns -> naive local -> ns, including the repeated hour
    (the second 02:30 is told apart by `fold`)."""
    with local_timezone("Europe/Berlin"):
        autumn = _every_minute_around(datetime(2024, 10, 27, 0, 0), 5)
        spring = _every_minute_around(datetime(2024, 3, 31, 0, 0), 5)
        failures = [ns for ns in autumn + spring if datetime_to_ns(ns_to_datetime(ns)) != ns - ns % 1000]
        repeated = [ns_to_datetime(ns) for ns in autumn if ns_to_datetime(ns).hour == 2]

    assert failures == []
    assert len(repeated) == 120, "the repeated hour 02:00-03:00 should appear twice in local time"
