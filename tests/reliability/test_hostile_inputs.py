"""Hostile values through every recording entry point: nothing raises into the agent, sizes stay bounded.

Each story below calls a group of entry points, taking every argument from `value(name)`. It runs twice:
fuzzed, each argument drawn on its own from `_hostile.hostile()` (non-JSON objects, cycles, 1-5 MB
strings, 100k-item containers, NaN, bytes, lone surrogates, objects whose dunders raise, endless
generators); and once per `NASTIEST` value, that value in every argument at once. Each story checks:

* nothing escapes into the caller but the caller's own exception (`decide_and_execute`'s executor, a
  decorated function), re-raised as the identical object; decorated functions return the identical object;
* nothing is logged at ERROR (`_logging`): hostile input is the agent's mistake, a traceback means data lost;
* the run is readable afterwards (`BuilderQuery.get_full_run`), with every decision and problem;
* every attribute written is at most the cap plus the `cap_text` suffix, and one that reached the cap is
  marked as cut (`_hostile.check_line`): work and file size follow the cap, not the input (no clock).

A few arguments avoid bugs outside `_values.py` / `_coerce.py` (see `fit`); test_hostile_bugs.py
reproduces each of those bugs as a strict xfail.
"""

from __future__ import annotations

import asyncio
import io
import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import otel_decisions as od
from otel_decisions.export.file_writer import FILE_NAME
from reliability._hostile import FUZZ, NASTIEST, HostileError, check_file, hostile, small_hostile

# hypothesis describes every example, megabyte values too, and warns about the size of the description
pytestmark = pytest.mark.filterwarnings(
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"
)

Value = Callable[[str], Any]

def truthy(value: Any) -> bool:
    """What the recorder makes of a success flag: its truth, or False when that cannot be tested."""
    try:
        return bool(value)
    except Exception:
        return False


H, S = hostile(), small_hostile()


def drawn(data: st.DataObject) -> Value:
    def value(name: str) -> Any:
        return data.draw(H, label=name)

    return value


def everywhere(case: str) -> Value:
    made = NASTIEST[case]()
    return lambda name: made


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


def fresh(root: Path) -> Path:
    """A directory of its own for one example. Hypothesis seeds `random` alike for every example, and
    the SDK draws trace ids from `random`: in a shared directory, examples would share trace ids
    (test_hostile_bugs.py::test_reseeding_random_does_not_merge_runs)."""
    return root / uuid.uuid4().hex  # uuid4 reads os.urandom


class _Nowhere(io.StringIO):
    def write(self, text: str) -> int:
        return len(text)


class _Console(logging.StreamHandler):  # type: ignore[type-arg]
    """Formats every record as a console would (to nowhere), and keeps what was logged at ERROR."""

    def __init__(self) -> None:
        super().__init__(_Nowhere())
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            trace = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
            self.errors.append(f"{record.name}: {record.msg}\n{trace[-3000:]}")
        super().emit(record)


@pytest.fixture(autouse=True)
def _logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Our warnings go to a console, as in production, instead of pytest's capture, which would keep
    every record (and the megabyte values in it) and re-raise one that cannot be formatted (logging
    itself prints it and goes on: `raiseExceptions` only chooses whether to print). Nothing may be
    logged at ERROR. Log messages of hostile values are test_hostile_bugs.py's business."""
    logger = logging.getLogger("otel_decisions")
    console = _Console()
    monkeypatch.setattr(logging, "raiseExceptions", False)
    monkeypatch.setattr(logger, "propagate", False)
    level = logger.level
    logger.setLevel(logging.WARNING)
    logger.addHandler(console)
    try:
        yield
    finally:
        logger.removeHandler(console)
        logger.setLevel(level)
        console.close()
    assert console.errors == [], console.errors


def read_back(directory: Path, run_id: str) -> od.Run:
    assert run_id.startswith("run_"), run_id
    run = od.BuilderQuery(directory).get_full_run(run_id)
    assert run is not None, run_id
    check_file(directory / FILE_NAME, 0)
    return run


# ------------------------------------------------------------------------------------------- stories
def runtime_story(directory: Path, value: Value) -> None:
    """Every `Runtime` method, every argument hostile; `decide_and_execute`'s executor returns one."""
    runtime = od.Runtime(directory)
    run_id = runtime.start_run(value("goal_id"), value("goal_description"), value("input_data"))
    runtime.set_node(value("set_node"))
    decide = {k: value(k) for k in ("intent", "options", "chosen", "reasoning", "node_id", "decision_type")}
    first = runtime.decide(**decide, constraints=value("constraints"), context=value("context"))
    outcome = {k: value(k) for k in ("success", "result", "error", "summary", "state_changes", "tokens_used")}
    runtime.record_outcome(first, **outcome, latency_ms=value("latency_ms"))
    runtime.record_outcome(value("unknown_id"), **outcome)  # not a decision's id: ignored
    problem = [value(k) for k in ("severity", "description", "problem_decision_id", "cause", "fix")]
    problem_id = runtime.report_problem(*problem)
    second = runtime.quick_decision(
        value("intent"), value("action"), value("reasoning"), value("quick_node_id")
    )
    returned = value("returned")
    third, result = runtime.decide_and_execute(
        decide["intent"], decide["options"], decide["chosen"], decide["reasoning"], lambda: returned
    )
    assert result is returned
    success = value("end_success")
    runtime.end_run(success, value("narrative"), value("output_data"))

    assert (first, second, third, problem_id) == ("dec_0", "dec_1", "dec_2", "prob_0")
    run = read_back(directory, run_id)
    assert [d.id for d in run.decisions] == ["dec_0", "dec_1", "dec_2"]
    assert [p.id for p in run.problems] == ["prob_0"]
    assert run.status == (od.RunStatus.COMPLETED if truthy(success) else od.RunStatus.FAILED)
    assert run.decisions[2].outcome is not None and run.decisions[2].outcome.success


def failing_executor_story(directory: Path, value: Value) -> None:
    runtime = od.Runtime(directory)
    run_id = runtime.start_run(value("goal_id"))
    error = HostileError(value("message"))

    def executor() -> Any:
        raise error

    with pytest.raises(HostileError) as caught:
        runtime.decide_and_execute(
            value("intent"),
            value("options"),
            value("chosen"),
            value("reasoning"),
            executor,
            context=value("c"),
        )
    assert caught.value is error
    runtime.end_run(False)
    (decision,) = read_back(directory, run_id).decisions
    assert decision.outcome is not None and not decision.outcome.success
    assert decision.outcome.error is not None  # str(error), as the seed records it: may be empty


def decision_kwargs(value: Value) -> dict[str, Any]:
    keys = ("options", "chosen", "reasoning", "decision_type", "constraints", "context")
    return {k: value(k) for k in keys}


def decorator_story(directory: Path, value: Value) -> None:
    """`run`, `node` and `decision` around a function returning a hostile value; the handles' methods."""
    returned = value("returned")

    @od.node(value("node"))
    @od.decision(value("intent"), **decision_kwargs(value))
    def act() -> Any:
        handle = od.current_decision()
        handle.choose(value("choose_id"), value("reasoning"))
        handle.explain(value("explanation"))
        handle.add_tokens(value("add_tokens"))
        return returned

    with od.run(value("goal_id"), value("goal_description"), value("input_data"), directory=directory) as run:
        assert act() is returned
        assert od.current_run() == run.execution_id
        problem = [value(k) for k in ("severity", "description", "problem_decision_id", "cause", "fix")]
        assert run.report_problem(*problem) == "prob_0"
        run.set_output(value("output_data"))
        run.fail(value("narrative"))

    recorded = read_back(directory, run.run_id)
    assert recorded.status == od.RunStatus.FAILED
    assert [p.id for p in recorded.problems] == ["prob_0"]
    (decision,) = recorded.decisions
    assert decision.outcome is not None and decision.outcome.success


def decorated_failure_story(directory: Path, value: Value) -> None:
    """A decorated function's own exception; `set_outcome` with hostile values in a coroutine."""
    error = HostileError(value("message"))
    kwargs = decision_kwargs(value)
    intent = value("intent")
    outcome = [value(k) for k in ("success", "result", "error", "summary", "state_changes", "outcome_tokens")]

    @od.decision(intent, **kwargs)
    def fails() -> None:
        raise error

    @od.decision(intent, **kwargs)
    async def sets_outcome() -> Any:
        od.current_decision().set_outcome(*outcome)
        return outcome[1]

    with od.run("decorated failures", directory=directory) as run:
        with pytest.raises(HostileError) as caught:
            fails()
        assert caught.value is error
        assert asyncio.run(sets_outcome()) is outcome[1]

    decisions = read_back(directory, run.run_id).decisions
    assert [d.outcome is not None and d.outcome.success for d in decisions] == [False, truthy(outcome[0])]


def block_and_generator_story(directory: Path, value: Value) -> None:
    returned = value("returned")
    kwargs = decision_kwargs(value)

    @od.decision(value("intent"), **kwargs)
    def produce() -> Iterator[Any]:
        yield returned
        yield returned

    with od.run("blocks", directory=directory) as run:
        with od.decision(value("intent"), **kwargs) as handle:
            handle.set_outcome(True, result=returned)
        assert [item is returned for item in produce()] == [True, True]

    assert [d.id for d in read_back(directory, run.run_id).decisions] == ["dec_0", "dec_1"]


STORIES = {
    "runtime": runtime_story,
    "failing executor": failing_executor_story,
    "decorators and handles": decorator_story,
    "decorated failures": decorated_failure_story,
    "block and generator": block_and_generator_story,
}


@pytest.mark.parametrize("story", STORIES)
@FUZZ
@given(data=st.data())
def test_fuzzed_values_in_every_argument(root: Path, story: str, data: st.DataObject) -> None:
    STORIES[story](fresh(root), drawn(data))


@pytest.mark.parametrize("case", NASTIEST)
@pytest.mark.parametrize("story", STORIES)
def test_the_nastiest_values_in_every_argument_at_once(root: Path, story: str, case: str) -> None:
    STORIES[story](root / "nastiest", everywhere(case))  # random is not reseeded: one directory will do


@pytest.mark.parametrize("case", NASTIEST)
def test_entry_points_outside_a_run_take_hostile_values(root: Path, case: str) -> None:
    """The seed's "no run" answers and the do-nothing handles."""
    nasty = NASTIEST[case]()
    runtime = od.Runtime(root / "outside")
    # the warnings say which intent, problem or decision id had no run (short, safe reprs)
    logged = nasty
    assert runtime.decide(logged, nasty, nasty, nasty) == ""
    assert runtime.report_problem(logged, logged) == ""
    runtime.record_outcome(logged, nasty, nasty)
    runtime.end_run(True)
    handle = od.current_decision()
    handle.choose(nasty, nasty)
    handle.explain(nasty)
    handle.add_tokens(nasty)
    handle.set_outcome(nasty, nasty, nasty, nasty, nasty, nasty)
    assert od.current_run() == ""


# ------------------------------------------------------------------------------------ inject/extract
_carrier_text = st.text(st.characters(codec="utf-8") | st.characters(categories=["Cs"]), max_size=60)
_traceparent = st.from_regex(r"\A[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}\Z") | _carrier_text
_field = _carrier_text.filter(lambda t: ";" not in t)
OUR_KEY = "otel-decisions-run"


@FUZZ
@given(
    sent=st.dictionaries(_carrier_text, _carrier_text, max_size=3),
    node=S,
    fields=st.tuples(_field, _field, _field),  # run id, goal id, node id as they arrive
    received=st.dictionaries(
        st.sampled_from(["traceparent", "tracestate", "baggage", "x-other"]), _traceparent
    ),
    returned=H,
)
def test_inject_and_extract_take_hostile_carriers(
    root: Path,
    sent: dict[str, str],
    node: Any,
    fields: tuple[str, str, str],
    received: dict[str, str],
    returned: Any,
) -> None:
    """Carriers travel through other systems: any text may come back in them. Values under our own key
    that are not what `inject` wrote are test_hostile_bugs.py's business; its free-text fields are here."""
    directory = fresh(root)
    with od.run("carried", directory=directory) as run, od.node(node):
        carrier = dict(sent)
        injected = od.inject(carrier)
    assert carrier == injected and injected["traceparent"].startswith("00-")
    execution_id, *_, where = injected[OUR_KEY].split(";")
    arriving = {**injected, **received, OUR_KEY: ";".join((execution_id, *fields, where))}

    @od.decision("in the worker")
    def work() -> Any:
        return returned

    with od.extract(arriving):
        assert work() is returned
    decisions = read_back(directory, run.run_id).decisions
    assert len(decisions) <= 1
    if arriving["traceparent"] == injected["traceparent"]:
        assert len(decisions) == 1  # the worker's decision joined the run


@pytest.mark.parametrize("case", NASTIEST)
def test_inject_outside_a_run_and_extract_of_nothing(case: str) -> None:
    nasty = NASTIEST[case]()
    assert OUR_KEY not in od.inject()
    with od.extract({"traceparent": "00-" + "0" * 32 + "-" + "0" * 16 + "-01", "x": "y"}):  # invalid ids
        assert od.current_decision().decision_id == ""
        od.current_decision().set_outcome(True, nasty)
