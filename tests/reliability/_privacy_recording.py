"""Shared by the privacy tests (`test_privacy.py`, `test_privacy_capture.py`, `test_privacy_claude.py`):
recording one value into one field of a run, through `Runtime` or the decorators; finding text anywhere
in the span files.

`record(api, directory, **{field: value})` records a complete run (a decision with two options, its
outcome, a problem, output) whose every field holds an ordinary default value except the ones given;
`FIELDS` says how to read each field back from the `Run` a `BuilderQuery` rebuilds. The kinds of secret
are in `_privacy_secrets.py`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _readback import attrs, raw_spans

import otel_decisions as od
from otel_decisions import Decision, DecisionType, Option, Outcome, Run, Runtime
from reliability._privacy_secrets import Shape

GOAL = "privacy"
NODE = "lookup"
TOKENS = 42
LATENCY_MS = 17
API = ("runtime", "decorators")

#: Every free-text or data field of a run, with the ordinary value it holds when it is not under test.
DEFAULTS: dict[str, Any] = {
    "goal_description": "Answer the customer",
    "input_data": {"question": "Where is my order?"},
    "output_data": {"answer": "It ships today"},
    "narrative": "",  # given: the run fails with it
    "intent": "Choose how to answer",
    "option_description": "Search the order database",
    "action_params": {"table": "orders"},
    "pros": ["accurate"],
    "cons": ["slower"],
    "reasoning": "The question names an order",
    "constraints": ["answer within a minute"],
    "context": {"channel": "email"},
    "result": {"status": "shipped"},
    "error": None,  # given: the outcome fails with it
    "summary": "Found the order",
    "state_changes": {"order_checked": True},
    "problem_description": "The lookup was slow",
    "root_cause": "A cold cache",
    "suggested_fix": "Warm the cache",
}


def _options(v: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "id": "search",
            "description": v["option_description"],
            "action_type": "execute",  # not `tool_call`: see the tool-name tests
            "action_params": v["action_params"],
            "pros": v["pros"],
            "cons": v["cons"],
            "confidence": 0.8,
        },
        {"id": "ask", "description": "Ask the customer", "action_type": "execute"},
    ]


def _via_runtime(directory: Path, v: dict[str, Any]) -> str:
    runtime = Runtime(directory)
    run_id = runtime.start_run(GOAL, v["goal_description"], v["input_data"])
    decision_id = runtime.decide(
        intent=v["intent"],
        options=_options(v),
        chosen="search",
        reasoning=v["reasoning"],
        node_id=NODE,
        decision_type=DecisionType.TOOL_SELECTION,
        constraints=v["constraints"],
        context=v["context"],
    )
    runtime.record_outcome(
        decision_id,
        success=v["error"] is None,
        result=v["result"],
        error=v["error"],
        summary=v["summary"],
        state_changes=v["state_changes"],
        tokens_used=TOKENS,
        latency_ms=LATENCY_MS,
    )
    runtime.report_problem(
        "warning", v["problem_description"], decision_id, v["root_cause"], v["suggested_fix"]
    )
    runtime.end_run(not v["narrative"], narrative=v["narrative"], output_data=v["output_data"])
    return run_id


def _via_decorators(directory: Path, v: dict[str, Any], explicit_outcome: bool) -> str:
    decision_ids: list[str] = []
    with od.run(GOAL, v["goal_description"], v["input_data"], directory=directory) as handle:

        @od.node(NODE)
        @od.decision(
            v["intent"],
            options=_options(v),
            chosen="ask",
            decision_type=DecisionType.TOOL_SELECTION,
            constraints=v["constraints"],
            context=v["context"],
        )
        def work() -> Any:
            current = od.current_decision()
            decision_ids.append(current.decision_id)
            current.choose("search", reasoning=v["reasoning"])
            current.add_tokens(TOKENS)
            if explicit_outcome:
                current.set_outcome(
                    success=v["error"] is None,
                    result=v["result"],
                    error=v["error"],
                    summary=v["summary"],
                    state_changes=v["state_changes"],
                )
            return v["result"]

        returned = work()
        assert returned is v["result"]  # the caller gets its own object back, never a scrubbed copy
        handle.report_problem(
            "warning", v["problem_description"], decision_ids[0], v["root_cause"], v["suggested_fix"]
        )
        handle.set_output(v["output_data"])
        if v["narrative"]:
            handle.fail(v["narrative"])
    run_id: str = handle.run_id
    return run_id


def record(api: str, directory: Path, **values: Any) -> str:
    """Record a run holding `values` in their fields (the defaults elsewhere); returns the run id.

    With the decorators the outcome is the decorated call's (its return value is the result) unless
    `error`, `summary` or `state_changes` is given, which only `set_outcome` can set."""
    unknown = set(values) - set(DEFAULTS)
    assert not unknown, unknown
    v = {**DEFAULTS, **values}
    if api == "runtime":
        return _via_runtime(directory, v)
    assert api == "decorators", api
    return _via_decorators(directory, v, bool({"error", "summary", "state_changes"} & set(values)))


RAISE_THROUGH = ("decorated_function", "with_block", "runtime_decide_and_execute")


def raise_through(how: str, directory: Path, error: ValueError) -> None:
    """Let `error` escape a decision recorded `how` (and the run around it)."""
    if how == "runtime_decide_and_execute":
        runtime = Runtime(directory)
        runtime.start_run("privacy")

        def executor() -> None:
            raise error

        try:
            runtime.decide_and_execute(
                "Deploy", [{"id": "go", "description": "Deploy"}], "go", "ok", executor
            )
        finally:
            runtime.end_run(False)
        return

    @od.decision("Deploy", options=[{"id": "go"}], chosen="go")
    def deploy() -> None:
        raise error

    with od.run("privacy", directory=directory):
        if how == "decorated_function":
            deploy()
        else:
            with od.decision("Deploy", options=[{"id": "go"}], chosen="go"):
                raise error


# ------------------------------------------------------------------------------------ reading back
def decision_of(run: Run) -> Decision:
    [decision] = run.decisions
    return decision


def option_of(run: Run) -> Option:
    [option] = [o for o in decision_of(run).options if o.id == "search"]
    return option


def outcome_of(run: Run) -> Outcome:
    outcome = decision_of(run).outcome
    assert outcome is not None
    return outcome


@dataclass(frozen=True)
class Field:
    name: str
    shape: Shape
    read: Callable[[Run], Any]

    def __str__(self) -> str:
        return self.name


FIELDS: tuple[Field, ...] = (
    Field("goal_description", "text", lambda r: r.goal_description),
    Field("input_data", "json", lambda r: r.input_data),
    Field("output_data", "json", lambda r: r.output_data),
    Field("narrative", "text", lambda r: r.narrative),
    Field("intent", "text", lambda r: decision_of(r).intent),
    Field("option_description", "text", lambda r: option_of(r).description),
    Field("action_params", "json", lambda r: option_of(r).action_params),
    Field("pros", "list", lambda r: option_of(r).pros),
    Field("cons", "list", lambda r: option_of(r).cons),
    Field("reasoning", "text", lambda r: decision_of(r).reasoning),
    Field("constraints", "list", lambda r: decision_of(r).active_constraints),
    Field("context", "json", lambda r: decision_of(r).input_context),
    Field("result", "json", lambda r: outcome_of(r).result),
    Field("error", "text", lambda r: outcome_of(r).error),
    Field("summary", "text", lambda r: outcome_of(r).summary),
    Field("state_changes", "json", lambda r: outcome_of(r).state_changes),
    Field("problem_description", "text", lambda r: r.problems[0].description),
    Field("root_cause", "text", lambda r: r.problems[0].root_cause),
    Field("suggested_fix", "text", lambda r: r.problems[0].suggested_fix),
)
assert {f.name for f in FIELDS} == set(DEFAULTS)


# ------------------------------------------------------------------------------------ the span file
def _strings(value: Any) -> Iterator[str]:
    """Every string in parsed JSON (keys too), and in JSON held by those strings, recursively."""
    if isinstance(value, str):
        yield value
        if value[:1] in ("{", "["):
            try:
                inner = json.loads(value)
            except ValueError:
                return
            yield from _strings(inner)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def file_text(directory: Path) -> str:
    """Every byte of every span file, and every string in them with its JSON escapes undone (so a
    secret spanning a line break is found whole)."""
    raw = "\n".join(p.read_text(encoding="utf-8") for p in sorted(directory.rglob("*.jsonl")))
    assert raw, f"nothing recorded in {directory}"
    decoded = [s for line in raw.splitlines() if line.strip() for s in _strings(json.loads(line))]
    return raw + "\n" + "\n".join(decoded)


def leaked_fragments(secret: str, text: str, width: int = 8) -> list[str]:
    """The `width`-character substrings of `secret` (all of it when shorter) found in `text`."""
    fragments = {secret[i : i + width] for i in range(max(1, len(secret) - width + 1))}
    return sorted(f for f in fragments if f in text)


# ------------------------------------------------------------------------------- shared helpers
CONTENT_CAPTURED = "otel_decisions.content_captured"
SPAN_OPEN = "otel_decisions.span.open"


def hashed_as(text: str) -> str:
    """The documented stand-in for `text` (computed here, not by the package)."""
    return "h:" + hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def capture_off() -> None:
    od.configure(capture_content=False)


def sentinel_for(field: Field) -> str:
    return f"Qz{field.name.replace('_', '')}Sentinel7"


def sentinel_value(field: Field, sentinel: str) -> Any:
    """The sentinel in the field's shape; in data it is a key as well as a value (keys are content)."""
    return {
        "text": f"Private note {sentinel} here",
        "json": {"note": sentinel, f"k{sentinel}": 1},
        "list": [sentinel],
    }[field.shape]


def run_roots(directory: Path) -> list[dict[str, Any]]:
    """The runs' root spans as they ended (not snapshots written while they were open)."""
    return [s for s in raw_spans(directory) if not s.get("parentSpanId") and SPAN_OPEN not in attrs(s)]


def every_recorded_string(directory: Path) -> list[str]:
    """Span and event names and attribute values, and status messages, of every span."""
    found: list[str] = []
    for span in raw_spans(directory):
        found += [span["name"], str((span.get("status") or {}).get("message", ""))]
        found += [str(v) for v in attrs(span).values()]
        for event in span.get("events", []):
            found += [event["name"], *(str(v) for v in attrs(event).values())]
    return found


def child_environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ANTHROPIC_"))}
    return {**env, **extra}
