"""The reading side and configuration, given hostile input; NaN kept visible; a megabyte input's line.

* `BuilderQuery` answers every question about ids and goals of the wrong type with its "not found"
  answer (None, [], `{"error": ...}`), never an exception;
* span files holding random bytes, undecodable text, JSON of the wrong shape, mutated copies of real
  lines and a torn last line: every `BuilderQuery` method answers, and the real runs read back whole;
* `configure()` rejects bad values with `ConfigError` and nothing else, and changes nothing then;
* NaN and infinities inside JSON values are written as marked strings, not as `null`;
* a run given 5 MB in every argument writes a line bounded by the number of attributes, not the input.

Bugs these properties found outside `_values.py` / `_coerce.py` are strict xfails in test_hostile_bugs.py.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

import otel_decisions as od
from otel_decisions import _config
from otel_decisions.export.file_writer import FILE_NAME
from otel_decisions.export.pipeline import current_settings
from reliability._hostile import FUZZ, MB, SLACK, Model, check_line, is_marked

pytestmark = pytest.mark.filterwarnings(
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"
)


# ------------------------------------------------------------------------------------- recorded runs
@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two real runs (one failed, with a problem) and a third whose line the file fuzz mutates."""
    directory = tmp_path_factory.mktemp("recorded")
    runtime = od.Runtime(directory)
    runs = {}
    for goal, success in (("keep", True), ("keep", False), ("victim", False)):
        run_id = runtime.start_run(goal, "a goal", {"n": 1})
        runtime.set_node("router")
        first = runtime.decide("route", [{"id": "a"}, {"id": "b"}], "a", "r", context={"k": [1, None]})
        runtime.record_outcome(first, success, result={"ok": success}, error=None if success else "boom")
        runtime.report_problem("critical", "it broke", first, "cause", "fix")
        runtime.end_run(success)
        runs[run_id] = success
    lines = (directory / FILE_NAME).read_bytes().splitlines()
    owners = [[run_id for run_id in runs if run_id.encode() in line] for line in lines]
    assert all(len(found) == 1 for found in owners)  # each line holds spans of one run
    victim = list(runs)[2]
    return {
        "runs": runs,
        "lines": [line for line, found in zip(lines, owners, strict=True) if found != [victim]],
        "victim": [line for line, found in zip(lines, owners, strict=True) if found == [victim]],
        "directory": directory,
    }


def ask_everything(query: od.BuilderQuery, run_id: Any, goal_id: Any) -> None:
    """Every question `BuilderQuery` answers (`suggest_with_llm` only up to where it needs Claude)."""
    for method in ("get_run_summary", "get_full_run", "execution_id", "get_delegating_decision"):
        getattr(query, method)(run_id)
    for method in ("get_delegations", "get_decision_trace"):
        assert isinstance(getattr(query, method)(run_id), list)
    query.analyze_failure(run_id)
    assert isinstance(query.compare_runs(run_id, run_id), dict)
    for method in ("list_runs_for_goal", "suggest_improvements", "option_stats", "risky_options"):
        assert isinstance(getattr(query, method)(goal_id), list)
    for method in ("unexplored_options", "loops", "hotspots"):
        assert isinstance(getattr(query, method)(goal_id), list)
    query.find_patterns(goal_id)
    query.insights(goal_id)
    assert isinstance(query.get_node_performance(goal_id), dict)
    assert isinstance(query.get_recent_failures(), list)
    assert isinstance(query.hotspots(), list)


# Ids of every wrong type: unhashable ones too.
_text = st.text(st.characters(codec="utf-8") | st.characters(categories=["Cs"]), max_size=30)
wrong_ids = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.binary(max_size=20),
    _text,
    st.integers(MB, 2 * MB).map(lambda n: "x" * n),
    st.tuples(st.integers(), _text),
    st.frozensets(st.integers(), max_size=3),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(_text, st.integers(), max_size=3),
    st.builds(object),
)


@FUZZ
@given(run_id=wrong_ids, goal_id=wrong_ids, limit=st.integers())
def test_builder_query_answers_wrong_ids_with_not_found(
    recorded: dict[str, Any], run_id: Any, goal_id: Any, limit: int
) -> None:
    query = od.BuilderQuery(recorded["directory"])
    ask_everything(query, run_id, goal_id)
    assert query.get_full_run(run_id) is None and query.get_run_summary(run_id) is None
    assert query.compare_runs(run_id, run_id) == {"error": "One or both runs not found"}
    assert query.list_runs_for_goal(goal_id) == [] and query.find_patterns(goal_id) is None
    assert len(query.get_recent_failures(limit)) == min(max(0, limit), 2)


# ---------------------------------------------------------------------------------- hostile span files
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_text, children, max_size=3),
    max_leaves=8,
)
_shapes = st.one_of(  # valid JSON, wrong shape, at every level of a TracesData document
    _json,
    _json.map(lambda v: {"resourceSpans": v}),
    _json.map(lambda v: {"resourceSpans": [{"scopeSpans": v}]}),
    _json.map(lambda v: {"resourceSpans": [{"scopeSpans": [{"spans": v}]}]}),
    _json.map(lambda v: {"resource_spans": [{"scope_spans": [{"spans": [v]}]}]}),
).map(lambda v: json.dumps(v).encode())  # stdlib: integers beyond 64 bits too
_junk_lines = st.one_of(
    st.binary(max_size=200),
    st.binary(max_size=100).map(lambda b: b"\xff\xfe" + b),  # not UTF-8
    _text.map(lambda t: t.encode("utf-8", "surrogatepass")),  # lone surrogates, encoded anyway
    _shapes,
).map(lambda b: b.replace(b"\n", b" "))


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        found += _paths(child, (*path, key))
    return found


def _mutated(line: bytes, choices: list[tuple[int, Any]]) -> bytes:
    document = orjson.loads(line)
    paths = _paths(document)
    for index, value in choices:
        path = paths[index % len(paths)]
        if not path:
            return json.dumps(value).encode()
        target = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = copy.deepcopy(value)
        paths = _paths(document)
    return json.dumps(document).encode()


@FUZZ
@given(
    junk=st.lists(_junk_lines, max_size=6),
    mutations=st.lists(
        st.lists(st.tuples(st.integers(0, 10_000), _json), min_size=1, max_size=3), max_size=3
    ),
    order=st.randoms(use_true_random=False),
    torn=st.floats(0, 1),
    run_id=wrong_ids,
)
def test_hostile_lines_in_span_files_leave_every_real_run_readable(
    recorded: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
    junk: list[bytes],
    mutations: list[list[tuple[int, Any]]],
    order: Any,
    torn: float,
    run_id: Any,
) -> None:
    lines, victim = recorded["lines"], recorded["victim"]
    mutated = [_mutated(victim[i % len(victim)], choices) for i, choices in enumerate(mutations)]
    hostile = [*lines, *victim]  # in the order they were written (a run's later lines win)
    for extra in (*junk, *mutated):
        hostile.insert(order.randint(0, len(hostile)), extra)
    tail = lines[0][: int(len(lines[0]) * torn)]  # a writer that died mid-line
    directory = tmp_path_factory.mktemp("hostile-file")
    (directory / FILE_NAME).write_bytes(b"\n".join(hostile) + b"\n" + tail)

    query = od.BuilderQuery(directory)
    for run in (*recorded["runs"], run_id):
        ask_everything(query, run, "keep")
    for real, success in list(recorded["runs"].items())[:2]:
        run = query.get_full_run(real)
        assert run is not None and [d.id for d in run.decisions] == ["dec_0"]
        assert run.status == (od.RunStatus.COMPLETED if success else od.RunStatus.FAILED)
        assert [p.description for p in run.problems] == ["it broke"]
    assert {r.run_id for r in query.list_runs_for_goal("keep")} == set(list(recorded["runs"])[:2])


_WRONG_VALUES = {  # every OTLP AnyValue kind; containers decode to list / dict (unhashable)
    "kvlist": {"kvlistValue": {"values": [{"key": "k", "value": {"stringValue": "v"}}]}},
    "array": {"arrayValue": {"values": [{"stringValue": "v"}]}},
    "int": {"intValue": "7"},
    "bool": {"boolValue": True},
    "double": {"doubleValue": 0.5},
    "bytes": {"bytesValue": "AAE="},
    "empty": {},
}


def _key_values(documents: list[Any]) -> list[dict[str, Any]]:
    """Every attribute key-value pair of the spans and events in decoded OTLP/JSON `documents`."""
    found = []
    for document in documents:
        for resource in document["resourceSpans"]:
            for scope in resource["scopeSpans"]:
                for span in scope["spans"]:
                    found += span.get("attributes", ())
                    for event in span.get("events", ()):
                        found += event.get("attributes", ())
    return found


@pytest.mark.parametrize("kind", list(_WRONG_VALUES))
def test_every_attribute_of_the_wrong_kind_leaves_the_file_readable(
    recorded: dict[str, Any], tmp_path_factory: pytest.TempPathFactory, kind: str
) -> None:
    """Each attribute of the victim run in turn takes a value of another kind (found by the fuzz
    above: a `kvlistValue` decision type or run status once raised `unhashable type: 'dict'`)."""
    victim = [orjson.loads(line) for line in recorded["victim"]]
    keys = sorted({kv["key"] for kv in _key_values(victim)})
    assert len(keys) > 20  # the run, decision, outcome and problem attributes
    victim_run = list(recorded["runs"])[2]
    for key in keys:
        changed = copy.deepcopy(victim)
        for kv in _key_values(changed):
            if kv["key"] == key:
                kv["value"] = _WRONG_VALUES[kind]
        directory = tmp_path_factory.mktemp("wrong-kind")
        hostile = [*recorded["lines"], *(orjson.dumps(document) for document in changed)]
        (directory / FILE_NAME).write_bytes(b"\n".join(hostile) + b"\n")
        query = od.BuilderQuery(directory)
        for run in (*recorded["runs"], victim_run):
            ask_everything(query, run, "keep")
        ask_everything(query, victim_run, "victim")
        kept = {r.run_id for r in query.list_runs_for_goal("keep")}
        assert kept == set(list(recorded["runs"])[:2]), key


# -------------------------------------------------------------------------------------------- configure
@pytest.fixture
def restore_settings() -> Any:
    before = current_settings()
    yield before
    od.configure()


CONFIG_ERRORS = [  # (setting, value) that configure() rejects with ConfigError today
    ("otlp_endpoint", "localhost:4318"),
    ("otlp_endpoint", "\udcff"),
    ("otlp_protocol", "udp"),
    ("otlp_protocol", 5),
    ("otlp_protocol", math.nan),
    ("otlp_timeout", 0),
    ("otlp_timeout", math.nan),
    ("otlp_timeout", "10"),
    ("otlp_timeout", 10**9),
    ("exporters", ["jaeger"]),
    ("exporters", "otlp"),  # a string, not a list: its characters are no exporters
    ("exporters", [1]),
]


@pytest.mark.parametrize(("setting", "value"), CONFIG_ERRORS)
def test_configure_rejects_bad_values_with_config_error(
    restore_settings: Any, setting: str, value: Any
) -> None:
    with pytest.raises(od.ConfigError) as caught:
        od.configure(**{setting: value})
    assert setting in str(caught.value)
    assert current_settings() == restore_settings  # a rejected configure() changes nothing


# ------------------------------------------------------------------------------------- NaN, megabytes
def test_nan_and_infinities_in_json_values_read_back_marked(tmp_path: Path) -> None:
    runtime = od.Runtime(tmp_path)
    odd = {
        "nan": math.nan,
        "inf": math.inf,
        "neg": [-math.inf],
        "none": None,
        "ok": 1.5,
        "in": Model(value=math.nan),
    }
    marked = {
        **{"nan": "<float nan>", "inf": "<float inf>", "neg": ["<float -inf>"], "none": None, "ok": 1.5},
        "in": {"value": "<float nan>"},  # pydantic's own JSON dump would write null
    }
    run_id = runtime.start_run("floats", input_data=odd)
    decision_id = runtime.decide("pick", [{"id": "a"}], "a", "r", context=odd)
    runtime.record_outcome(decision_id, True, result=odd, state_changes=odd)
    runtime.end_run(True, output_data=odd)
    run = od.BuilderQuery(tmp_path).get_full_run(run_id)
    assert run is not None and run.decisions[0].outcome is not None
    assert run.input_data == run.output_data == run.decisions[0].input_context == marked
    assert run.decisions[0].outcome.result == run.decisions[0].outcome.state_changes == marked


def test_a_run_given_5_mb_in_every_argument_writes_bounded_lines(tmp_path: Path) -> None:
    """Bound: every string attribute at most cap + SLACK characters, JSON-escaped at most 2x (quotes):
    the run's lines are bounded by their number of attributes, whatever the size of the input."""
    huge = '"' * (5 * MB)  # quotes: escaping doubles their size, the worst case of text
    runtime = od.Runtime(tmp_path)
    run_id = runtime.start_run(huge, huge, {"k": huge})
    runtime.set_node(huge)
    decision_id = runtime.decide(huge, [{"id": huge, "description": huge}], huge, huge, context={huge: huge})
    runtime.record_outcome(decision_id, False, huge, huge, huge, {"k": huge})
    runtime.report_problem("critical", huge, decision_id, huge, huge)
    runtime.end_run(False, huge, {"k": huge})
    written = (tmp_path / FILE_NAME).read_bytes()
    for line in written.splitlines():
        check_line(line)
    strings = written.count(b'"stringValue":')
    cap = _config.max_value_chars()
    assert len(written) <= strings * 2 * (cap + SLACK) + 64 * 1024
    assert len(written) < MB  # a fifth of one argument, for ~20 arguments of 5 MB each
    run = od.BuilderQuery(tmp_path).get_full_run(run_id)
    assert run is not None and len(run.decisions) == 1 and len(run.problems) == 1
    assert is_marked(run.decisions[0].intent, cap) and is_marked(run.narrative, cap)
    assert run.decisions[0].outcome is not None and run.decisions[0].outcome.result["original_chars"] > 5 * MB
