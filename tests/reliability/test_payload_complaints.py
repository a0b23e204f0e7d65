"""Peer complaint 9 (research/peers.md §2): huge payloads dropped, rejected or slow.

traceloop/openllmetry#2252 (values over 1 MB skipped), openai/openai-agents-python#260 (a 100 KB limit),
NVIDIA-NeMo/labs-OO-Agents#342 (57 s of argument serialization before the method ran). A megabyte
handed to any text or JSON field, through `Runtime` or the decorators, is kept but capped: a JSON value
becomes the marker `{"otel_decisions.truncated": true, "original_chars": N, "preview": ...}`, a text
gets a visible `…[truncated N chars]` suffix, the span file stays a small fraction of what was handed
over, and the run reads back. A decorated call's arguments are never serialized at all. Sizes are
measured, never time.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from _readback import (
    CHOSEN,
    REASONING,
    RESULT,
    STATUS_ERROR,
    SUCCESS,
    TRUNCATED,
    Span,
    attrs,
    decision_pairs,
    only_outcome,
    outcome_result,
    raw_spans,
    read_run,
    span_kind,
    status,
)

import otel_decisions as od
from otel_decisions import RunStatus, Runtime
from otel_decisions._values import TRUNCATED_KEY

pytestmark = pytest.mark.usefixtures("no_error_logs")  # no test may log at ERROR

_MAX_ATTRIBUTE_CHARS = 17_000


@pytest.mark.parametrize(
    "huge",
    [pytest.param("x" * 1_000_000, id="1MB-string"), pytest.param(list(range(100_000)), id="100k-list")],
)
def test_complaint_9_huge_result_is_capped_with_the_truncation_marker(
    runtime: Runtime, tmp_path: Path, huge: Any
) -> None:
    run_id = runtime.start_run("goal")
    d = runtime.decide("fetch everything", [{"id": "a"}], "a", "r")
    runtime.record_outcome(d, success=True, result=huge)
    runtime.end_run(success=True)

    (span,) = [s for s in raw_spans(tmp_path, run_id) if span_kind(s) == "outcome"]
    raw = attrs(span)["otel_decisions.outcome.result"]
    assert isinstance(raw, str)
    assert len(raw) < _MAX_ATTRIBUTE_CHARS
    marker = json.loads(raw)
    assert marker[TRUNCATED_KEY] is True
    result = only_outcome(read_run(tmp_path, run_id).decisions[0]).result
    assert isinstance(result, dict) and result[TRUNCATED_KEY] is True


def test_complaint_9_huge_context_and_intent_are_capped(runtime: Runtime, tmp_path: Path) -> None:
    run_id = runtime.start_run("goal")
    runtime.decide("i" * 1_000_000, [{"id": "a"}], "a", "r" * 1_000_000, context={"blob": "y" * 1_000_000})
    runtime.end_run(success=True)

    (span,) = [s for s in raw_spans(tmp_path, run_id) if span_kind(s) == "decision"]
    a = attrs(span)
    for key in (
        "otel_decisions.decision.context",
        "otel_decisions.decision.intent",
        "otel_decisions.decision.reasoning",
    ):
        assert len(a[key]) < _MAX_ATTRIBUTE_CHARS, key
    assert json.loads(a["otel_decisions.decision.context"])[TRUNCATED_KEY] is True
    decision = read_run(tmp_path, run_id).decisions[0]
    assert decision.intent.startswith("iiii")
    assert decision.input_context[TRUNCATED_KEY] is True


def test_complaint_9_return_value_is_the_same_object_and_a_huge_result_is_capped_with_a_marker(
    tmp_path: Path,
) -> None:
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


# ------------------------------------------------------------------------------ a megabyte everywhere
MB = "x" * 1_000_000
TRUNCATED_TEXT = re.compile(r"^x+…\[truncated [1-9][0-9]* chars\]$")


def _capped_text(text: str | None) -> bool:
    """`text` is the start of `MB` with the visible truncation suffix, within the attribute cap."""
    return text is not None and len(text) < _MAX_ATTRIBUTE_CHARS and TRUNCATED_TEXT.match(text) is not None


def _capped_json(value: Any) -> bool:
    """`value` is the truncation marker of a JSON value of more than a megabyte."""
    return isinstance(value, dict) and value.get(TRUNCATED_KEY) is True and value["original_chars"] > len(MB)


def _longest_text(span: Span) -> int:
    """The length of the longest string of `span`: name, status message, attribute and event values."""
    texts = [span["name"], (span.get("status") or {}).get("message", "")]
    for item in [span, *span.get("events", [])]:
        for value in attrs(item).values():
            texts.extend(v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str))
    return max(len(text) for text in texts)


def test_complaint_9_a_megabyte_in_every_field_is_kept_capped_and_the_file_stays_small(
    runtime: Runtime, tmp_path: Path
) -> None:
    """Every text and JSON field an agent fills gets a megabyte, through the decorators (context, chosen
    reasoning, return value, exception message, `set_outcome`, problem, output, `fail`) and through
    `Runtime` (about 30 MB in all). Nothing is dropped or rejected: every field reads back capped with
    its marker, no string in the span file exceeds the attribute cap, and the file stays under 1 MB."""

    @od.decision("Fetch everything", context={"blob": MB})
    def fetch() -> list[str]:
        od.current_decision().choose("action", reasoning=MB)
        return [MB, MB, MB]

    @od.decision("Parse it")
    def parse() -> None:
        raise ValueError(MB)

    with od.run("decorated", MB, {"blob": MB}, directory=tmp_path) as handle:
        assert fetch() == [MB, MB, MB]
        with pytest.raises(ValueError):
            parse()
        with od.decision(MB, options=[{"id": "a"}], chosen="a") as explicit:
            explicit.explain(MB)
            explicit.set_outcome(
                success=False, result={"blob": MB}, error=MB, summary=MB, state_changes={"blob": MB}
            )
        handle.report_problem("warning", MB, explicit.decision_id, MB, MB)
        handle.set_output({"blob": MB})
        handle.fail(MB)
    run_id = runtime.start_run("with_runtime", MB, {"blob": MB})
    decision_id = runtime.decide(MB, [{"id": "a"}], "a", MB, context={"blob": MB})
    runtime.record_outcome(decision_id, False, result=MB, error=MB, state_changes={"blob": MB})
    runtime.report_problem("critical", MB, decision_id, MB, MB)
    runtime.end_run(False, narrative=MB, output_data={"blob": MB})

    spans = raw_spans(tmp_path)
    assert len({s["spanId"] for s in spans}) == 10  # two runs: 1 + 3 × 2 spans and 1 + 1 × 2 spans
    for span in spans:
        assert _longest_text(span) < _MAX_ATTRIBUTE_CHARS, span["name"][:80]
    assert sum(p.stat().st_size for p in tmp_path.glob("traces*.jsonl")) < 1_000_000

    decorated, seed = read_run(tmp_path, handle.run_id), read_run(tmp_path, run_id)
    for run in (decorated, seed):
        assert run.status == RunStatus.FAILED
        assert _capped_text(run.goal_description) and _capped_text(run.narrative)
        assert _capped_json(run.input_data) and _capped_json(run.output_data)
        [problem] = run.problems
        assert all(_capped_text(t) for t in (problem.description, problem.root_cause, problem.suggested_fix))
        decision = run.decisions[-1]
        assert _capped_text(decision.intent) and _capped_text(decision.reasoning)
        outcome = only_outcome(decision)
        assert _capped_json(outcome.result) and _capped_json(outcome.state_changes)
        assert _capped_text(outcome.error)
    assert _capped_json(seed.decisions[0].input_context)
    fetched, parsed, _ = decorated.decisions
    assert _capped_json(fetched.input_context) and _capped_text(fetched.reasoning)
    assert _capped_json(only_outcome(fetched).result)
    assert _capped_text(only_outcome(parsed).error)
    assert _capped_text(only_outcome(decorated.decisions[2]).summary)


# ------------------------------------------------------------------------- arguments are not touched
class Probe:
    """An argument that notes every way it is looked at: repr, str, len, iteration, attribute look-ups
    (a serializer, a copier or a size estimate would do at least one of these)."""

    def __init__(self) -> None:
        self.looks: list[str] = []

    def __repr__(self) -> str:
        self.looks.append("repr")
        return "Probe()"

    def __str__(self) -> str:
        self.looks.append("str")
        return "probe"

    def __len__(self) -> int:
        self.looks.append("len")
        return 1_000_000_000

    def __iter__(self) -> Iterator[int]:
        self.looks.append("iter")
        return iter(range(1_000_000_000))

    def __getattr__(self, name: str) -> Any:
        self.looks.append(name)
        raise AttributeError(name)


def test_complaint_9_arguments_of_decorated_calls_are_never_serialized(tmp_path: Path) -> None:
    """NeMo#342: 57 s went into serializing arguments before the method ran. A decorated run, node and
    decision (sync, coroutine, generator) never look at their arguments, so their cost does not grow
    with them: only the result is recorded."""
    probe = Probe()

    @od.decision("Read a document")
    def read(document: Probe, *, notes: Probe) -> int:
        return 1

    @od.decision("Read it asynchronously")
    async def read_async(document: Probe, *, notes: Probe) -> int:
        await asyncio.sleep(0)
        return 2

    @od.decision("Stream it")
    def stream(document: Probe, *, notes: Probe) -> Generator[int, None, None]:
        yield 3

    @od.run("arguments", directory=tmp_path)
    @od.node("reader")
    def agent(document: Probe, *, notes: Probe) -> list[int]:
        first = read(document, notes=notes)
        second = asyncio.run(read_async(document, notes=notes))
        return [first, second, *stream(document, notes=notes)]

    assert agent(probe, notes=probe) == [1, 2, 3]
    assert probe.looks == []
    [run] = od.BuilderQuery(tmp_path).storage.runs()
    assert [outcome_result(d) for d in run.decisions] == [1, 2, None]
    assert [d.node_id for d in run.decisions] == ["reader"] * 3


# ------------------------------------------------------------------------------------ lists of text
def test_complaint_9_huge_constraints_are_capped(runtime: Runtime, tmp_path: Path) -> None:
    """Constraints are free text too: each item is capped like any other text field."""
    run_id = runtime.start_run("goal")
    runtime.decide("d", [{"id": "a"}], "a", "r", constraints=[MB, "be quick"])
    runtime.end_run(success=True)

    (span,) = [s for s in raw_spans(tmp_path, run_id) if span_kind(s) == "decision"]
    assert _longest_text(span) < _MAX_ATTRIBUTE_CHARS
    huge, small = read_run(tmp_path, run_id).decisions[0].active_constraints
    assert _capped_text(huge) and small == "be quick"


def test_complaint_9_options_over_the_cap_are_not_dropped(runtime: Runtime, tmp_path: Path) -> None:
    """100 tools of 300-character descriptions (about 33 KB of options) for one decision."""
    options = [{"id": f"tool_{i}", "description": "d" * 300} for i in range(100)]
    run_id = runtime.start_run("goal")
    runtime.decide("Pick a tool", options, "tool_7", "r")
    runtime.end_run(success=True)

    decision = read_run(tmp_path, run_id).decisions[0]
    assert decision.chosen_option_id == "tool_7"
    assert "tool_7" in [o.id for o in decision.options]
    assert [o.id for o in decision.options] == [f"tool_{i}" for i in range(100)]  # every one, in order
    for option in decision.options:  # shortened, and marked so
        assert (option.model_extra or {}).get(TRUNCATED_KEY) is True
        assert 0 < len(option.description) < 300 and set(option.description) == {"d"}
