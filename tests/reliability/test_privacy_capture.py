"""Privacy, part 2: the content-capture switch (peer complaint 13).

research/peers.md §2, 13: content opt-out not honoured (traceloop/openllmetry#2777, #4387). Content
capture is ON by default (`OTEL_DECISIONS_CAPTURE_CONTENT`, `configure(capture_content=...)`): free text
is recorded, scrubbed. Off, no free text is recorded at all: every field of `_privacy_recording.FIELDS`
is given a unique sentinel, through `Runtime` and through the decorators, and the sentinel is absent
from the span file's bytes (and present with capture on, which shows the field is recorded at all);
exception messages too. What stays usable is checked through a brand-new `BuilderQuery`: statuses, ids,
node ids, decision types, counts, success, tokens, latency, `error.type`, problem severities, and
option ids and intents hashed (`h:` + 16 hex digits of BLAKE2b, the same in every run) so that
`find_patterns`, `option_stats` and `risky_options` still count per option over several runs.
The environment variables are tested in real subprocesses. Claude calls: `test_privacy_claude.py`.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _readback import STATUS_ERROR, attrs, raw_spans, read_run, span_kind, status

import otel_decisions as od
from otel_decisions import DecisionType, RunStatus, Runtime
from reliability._privacy_recording import (
    API,
    CONTENT_CAPTURED,
    FIELDS,
    GOAL,
    LATENCY_MS,
    NODE,
    RAISE_THROUGH,
    TOKENS,
    Field,
    capture_off,
    child_environment,
    decision_of,
    every_recorded_string,
    file_text,
    hashed_as,
    leaked_fragments,
    outcome_of,
    raise_through,
    record,
    run_roots,
    sentinel_for,
    sentinel_value,
)
from reliability._privacy_secrets import ANTHROPIC_KEY

h = hashed_as


@pytest.fixture(autouse=True)
def _default_settings() -> Iterator[None]:
    """Tests that `configure()` content capture leave the process-wide settings as they found them."""
    yield
    od.configure()


# ================================================================================ field by field
@pytest.mark.parametrize("capture", [False, True], ids=["capture_off", "capture_on"])
@pytest.mark.parametrize("api", API)
@pytest.mark.parametrize("field", FIELDS, ids=str)
def test_complaint_13_capture_off_records_no_text_field_by_field(
    tmp_path: Path, field: Field, api: str, capture: bool
) -> None:
    if not capture:
        capture_off()
    sentinel = sentinel_for(field)
    value = sentinel_value(field, sentinel)
    run_id = record(api, tmp_path, **{field.name: value})
    assert (sentinel in file_text(tmp_path)) is capture
    if capture:  # the control: this is the field the sentinel was recorded in
        assert field.read(read_run(tmp_path, run_id)) == value
    else:
        [root] = run_roots(tmp_path)
        assert attrs(root)[CONTENT_CAPTURED] is False


@pytest.mark.parametrize("how", RAISE_THROUGH)
def test_complaint_13_exception_message_not_recorded_error_type_kept(tmp_path: Path, how: str) -> None:
    capture_off()
    message = "QzExceptionSentinel7 in the user's words"
    error = ValueError(message)
    with pytest.raises(ValueError) as caught:
        raise_through(how, tmp_path, error)
    assert caught.value is error and str(caught.value) == message  # the caller's exception untouched

    assert "QzExceptionSentinel7" not in file_text(tmp_path)
    [span] = [s for s in raw_spans(tmp_path) if span_kind(s) == "outcome"]
    assert attrs(span)["error.type"] == "ValueError"
    assert status(span) == STATUS_ERROR
    [run] = od.BuilderQuery(tmp_path).storage.runs()
    assert run.status == RunStatus.FAILED
    outcome = outcome_of(run)
    assert (outcome.success, outcome.error) == (False, None)


# ============================================================================== what stays usable
#: The free text `record()` puts in every field not under test: not recorded either.
ORDINARY_DEFAULTS = (
    "Answer the customer",
    "Where is my order?",
    "It ships today",
    "Choose how to answer",
    "Search the order database",
    "Ask the customer",
    "accurate",
    "slower",
    "The question names an order",
    "answer within a minute",
    "shipped",
    "Found the order",
    "order_checked",
    "The lookup was slow",
    "A cold cache",
    "Warm the cache",
)


@pytest.mark.parametrize("api", API)
def test_capture_off_keeps_ids_types_counts_and_hashed_options(tmp_path: Path, api: str) -> None:
    capture_off()
    run_id = record(api, tmp_path, error="Private failure text", narrative="Private narrative")

    [root] = run_roots(tmp_path)
    assert attrs(root)[CONTENT_CAPTURED] is False
    text = file_text(tmp_path)
    assert [t for t in ("Private", *ORDINARY_DEFAULTS) if t in text] == []
    run = read_run(tmp_path, run_id)
    assert (run.id, run.goal_id, run.status) == (run_id, GOAL, RunStatus.FAILED)
    assert (run.goal_description, run.input_data, run.output_data, run.narrative) == ("", {}, {}, "")
    m = run.metrics
    assert (m.total_decisions, m.successful_decisions, m.failed_decisions) == (1, 0, 1)
    assert (m.total_tokens, m.nodes_executed) == (TOKENS, [NODE])
    decision = decision_of(run)
    assert (decision.id, decision.node_id, decision.decision_type) == (
        "dec_0",
        NODE,
        DecisionType.TOOL_SELECTION,
    )
    assert decision.intent == h("Choose how to answer")
    assert [(o.id, o.description, o.confidence) for o in decision.options] == [
        (h("search"), h("search"), 0.8),
        (h("ask"), h("ask"), 0.5),
    ]
    assert decision.chosen_option_id == h("search")
    assert (decision.reasoning, decision.active_constraints, decision.input_context) == ("", [], {})
    outcome = outcome_of(run)
    assert (outcome.success, outcome.tokens_used, outcome.error, outcome.result) == (
        False,
        TOKENS,
        None,
        None,
    )
    if api == "runtime":  # the decorators measure latency themselves: not asserted (no timing assertions)
        assert outcome.latency_ms == m.total_latency_ms == LATENCY_MS
    [outcome_span] = [s for s in raw_spans(tmp_path) if span_kind(s) == "outcome"]
    assert attrs(outcome_span)["error.type"] == "_OTHER"
    [problem] = run.problems
    assert (problem.severity, problem.decision_id, problem.description) == ("warning", "dec_0", "")


INTENT = "Choose a data source QzIntentSentinel"
SOURCES = [
    {"id": "cache", "description": "Read the QzCacheSentinel", "action_type": "execute"},
    {"id": "live", "description": "Query the QzLiveSentinel", "action_type": "execute"},
]


def _record_choice(api: str, directory: Path, fail: bool) -> str:
    """One run choosing `live` (which fails, and so does the run) or `cache` (which succeeds)."""
    chosen = "live" if fail else "cache"
    if api == "runtime":
        runtime = Runtime(directory)
        run_id = runtime.start_run("sources", "Private goal text")
        decision_id = runtime.decide(INTENT, SOURCES, chosen, "Private reasoning", node_id="fetch")
        runtime.record_outcome(decision_id, not fail, error="Private error" if fail else None, latency_ms=5)
        runtime.end_run(not fail, "Private narrative")
        return run_id
    with od.run("sources", "Private goal text", directory=directory) as handle:
        with od.node("fetch"), od.decision(INTENT, options=SOURCES) as d:
            d.choose(chosen, reasoning="Private reasoning")
            d.set_outcome(not fail, error="Private error" if fail else None)
        if fail:
            handle.fail("Private narrative")
    decorated_run_id: str = handle.run_id
    return decorated_run_id


@pytest.mark.parametrize("api", API)
def test_capture_off_hashed_options_still_give_per_option_statistics(tmp_path: Path, api: str) -> None:
    capture_off()
    run_ids = [_record_choice(api, tmp_path, fail=i % 2 == 0) for i in range(8)]

    assert [
        s
        for s in ("Private", "QzIntentSentinel", "QzCacheSentinel", "QzLiveSentinel")
        if s in file_text(tmp_path)
    ] == []
    query = od.BuilderQuery(tmp_path)
    for i, run_id in enumerate(run_ids):  # the same id has the same hash in every run
        run = query.get_full_run(run_id)
        assert run is not None
        decision = decision_of(run)
        assert decision.intent == h(INTENT)
        assert [o.id for o in decision.options] == [h("cache"), h("live")]
        assert decision.chosen_option_id == h("live" if i % 2 == 0 else "cache")
        assert decision.chosen_option_id in [o.id for o in decision.options]

    patterns = query.find_patterns("sources")
    assert patterns is not None
    assert (patterns.run_count, patterns.success_rate) == (8, 0.5)
    stats = {
        s.option: (s.node_id, s.intent, s.chosen, s.succeeded, s.failed, s.runs)
        for s in query.option_stats("sources")
    }
    assert stats == {
        h("cache"): ("fetch", h(INTENT), 4, 4, 0, 4),
        h("live"): ("fetch", h(INTENT), 4, 0, 4, 4),
    }
    [risky] = query.risky_options("sources")
    assert (risky.option, risky.failed_with, risky.completed_with) == (h("live"), 4, 0)
    assert (risky.failed_without, risky.completed_without) == (0, 4)
    assert risky.p_value < 0.05


# ======================================================================= environment, in a subprocess
CHILD = """
import sys
import otel_decisions as od
from otel_decisions import Runtime

directory, secret, sentinel, session = sys.argv[1:5]
data = {"note": sentinel, "session_id": session, "api_key": secret}
options = [{"id": "alpha", "description": f"opt {sentinel}", "action_type": "execute"}]
runtime = Runtime(directory)
runtime.start_run("env", f"goal {sentinel}", data)
reason = f"reason {sentinel} password={secret}"
d = runtime.decide(f"intent {sentinel}", options, "alpha", reason, context=data)
runtime.record_outcome(d, False, result=data, error=f"error {sentinel} {secret}", summary=f"sum {sentinel}")
runtime.report_problem("warning", f"problem {sentinel} {secret}", d, f"cause {sentinel}", f"fix {sentinel}")
runtime.end_run(False, f"narrative {sentinel} {secret}", data)
with od.run("env", f"goal {sentinel}", data, directory=directory) as run:
    with od.decision(f"intent {sentinel}", options=options, context=data) as decision:
        decision.choose("alpha", reasoning=f"reason {sentinel} {secret}")
    try:
        with od.decision("raise"):
            raise ValueError(f"boom {sentinel} {secret}")
    except ValueError:
        pass
    run.report_problem("error", f"problem {sentinel}")
    run.set_output(data)
"""
SESSION_ID = "abc123def456ghi789jkl012mno345pq"
ENVIRONMENTS = {
    "defaults": {},
    "capture_off": {"OTEL_DECISIONS_CAPTURE_CONTENT": "false"},
    "scrub_off": {"OTEL_DECISIONS_SCRUB": "false"},
    "allowed_keys": {"OTEL_DECISIONS_SCRUB_ALLOWED_KEYS": "request_ref, session_id"},
}


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_environment_variables_in_a_real_process(tmp_path: Path, name: str) -> None:
    sentinel = "QzEnvSentinel7"
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", CHILD, str(tmp_path), ANTHROPIC_KEY, sentinel, SESSION_ID],
        env=child_environment(**ENVIRONMENTS[name]),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    text = file_text(tmp_path)
    captured, scrubbed = name != "capture_off", name != "scrub_off"
    assert (sentinel in text) is captured
    assert (leaked_fragments(ANTHROPIC_KEY, text) == []) is scrubbed
    assert (SESSION_ID in text) is (name in ("allowed_keys", "scrub_off"))
    roots = run_roots(tmp_path)
    assert len(roots) == 2
    assert all((CONTENT_CAPTURED in attrs(r)) is not captured for r in roots)
    chosen = {
        attrs(s)["otel_decisions.decision.chosen_option"]
        for s in raw_spans(tmp_path)
        if span_kind(s) == "decision"
    }
    assert chosen >= ({"alpha"} if captured else {h("alpha")})
    if captured:
        assert h("alpha") not in text


# ============================================================================ everything (complaint 13)
def test_complaint_13_capture_off_no_text_in_attributes_events_or_exception_messages(tmp_path: Path) -> None:
    """Capture off, every field given a sentinel through both APIs, and an exception with one: no sentinel
    in any attribute, event, status message or span name, nor in the file's bytes; the statistics of
    the runs are there."""
    capture_off()
    values = {f.name: sentinel_value(f, sentinel_for(f)) for f in FIELDS}
    run_ids = [record(api, tmp_path, **values) for api in API]
    with pytest.raises(ValueError), od.run("raises", directory=tmp_path), od.decision("Deploy"):
        raise ValueError("QzExceptionSentinel7")

    sentinels = [sentinel_for(f) for f in FIELDS] + ["QzExceptionSentinel7"]
    recorded = "\n".join(every_recorded_string(tmp_path))
    assert [s for s in sentinels if s in recorded] == []
    text = file_text(tmp_path)
    assert [s for s in sentinels if s in text] == []
    roots = run_roots(tmp_path)
    assert len(roots) == 3 and all(attrs(r)[CONTENT_CAPTURED] is False for r in roots)
    for run_id in run_ids:
        run = read_run(tmp_path, run_id)
        assert (run.status, run.metrics.total_decisions, len(run.problems)) == (RunStatus.FAILED, 1, 1)
        assert decision_of(run).chosen_option_id == h("search")


# ======================================================================= the tool a decision calls
@pytest.mark.parametrize("named_by", ["option_id", "action_params"])
@pytest.mark.parametrize("api", API)
def test_capture_off_tool_name_is_not_recorded_in_clear(tmp_path: Path, api: str, named_by: str) -> None:
    capture_off()
    option: dict[str, Any] = {"id": "QzToolSentinel7", "description": "Search", "action_type": "tool_call"}
    if named_by == "action_params":
        option = {**option, "id": "web", "action_params": {"tool": "QzToolSentinel7"}}
    if api == "runtime":
        runtime = Runtime(tmp_path)
        runtime.start_run("tools")
        runtime.record_outcome(runtime.decide("Search", [option], option["id"], "why"), True)
        runtime.end_run(True)
    else:
        with (
            od.run("tools", directory=tmp_path),
            od.decision("Search", options=[option], chosen=option["id"]),
        ):
            pass
    [outcome] = [s for s in raw_spans(tmp_path) if span_kind(s) == "outcome"]
    assert attrs(outcome)["gen_ai.operation.name"] == "execute_tool"  # still a tool call...
    assert "QzToolSentinel7" not in file_text(tmp_path)  # ...that does not name the tool in clear
