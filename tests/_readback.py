"""Reading recorded runs back in tests: the raw OTLP/JSON spans of `traces.jsonl` as parsed dicts, runs
through a brand-new `BuilderQuery`, and spans another instrumentation handed to an in-memory exporter.

Shared by `test_runtime.py`, `test_decorators.py` and the reliability suite (`tests/reliability/`).
Attribute keys are spelled out here rather than taken from `otel_decisions.contract`, so that a renamed
key fails the tests instead of silently following the rename.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_decisions import BuilderQuery, Decision, Outcome, Run

LOGGER = "otel_decisions"
RUN_ID = "otel_decisions.run.id"
DECISION_ID = "otel_decisions.decision.id"
OUTCOME_DECISION_ID = "otel_decisions.outcome.decision_id"
SPAN_OPEN = "otel_decisions.span.open"  # a snapshot of a span still open (crash safety)
SUCCESS = "otel_decisions.outcome.success"
RESULT = "otel_decisions.outcome.result"
NODE = "otel_decisions.node.id"
CHOSEN = "otel_decisions.decision.chosen_option"
REASONING = "otel_decisions.decision.reasoning"
TRUNCATED = "otel_decisions.truncated"
STATUS_ERROR = 2
Span = dict[str, Any]


# ------------------------------------------------------------------------------------ raw OTLP/JSON
def _value(v: dict[str, Any]) -> Any:
    """An OTLP/JSON AnyValue as a Python value."""
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "boolValue" in v:
        return v["boolValue"]
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "arrayValue" in v:
        return [_value(x) for x in v["arrayValue"].get("values", [])]
    raise AssertionError(f"unexpected attribute value {v!r}")


def attrs(item: Span) -> dict[str, Any]:
    """The attributes of a raw span, event or link."""
    return {kv["key"]: _value(kv["value"]) for kv in item.get("attributes", [])}


def raw_spans(directory: Path, run_id: str | None = None) -> list[Span]:
    """Every ended span in `traces.jsonl` (of run `run_id` when given), parsed with the json module;
    snapshots of spans that were still open (`SPAN_OPEN`, written for crash safety) are left out."""
    spans: list[Span] = []
    for line in (directory / "traces.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        for resource_spans in json.loads(line)["resourceSpans"]:
            for scope_spans in resource_spans["scopeSpans"]:
                spans.extend(s for s in scope_spans["spans"] if attrs(s).get(SPAN_OPEN) is not True)
    if run_id is not None:
        spans = [s for s in spans if attrs(s).get(RUN_ID) == run_id]
    return spans


def span_kind(span: Span) -> str:
    """Which of our three span kinds `span` is: `decision`, `outcome` or `run`."""
    a = attrs(span)
    if DECISION_ID in a:
        return "decision"
    if OUTCOME_DECISION_ID in a:
        return "outcome"
    return "run"


def root(spans: list[Span]) -> Span:
    roots = [s for s in spans if not s.get("parentSpanId")]
    assert len(roots) == 1, [s["name"] for s in roots]
    return roots[0]


def status(span: Span) -> int:
    return int((span.get("status") or {}).get("code", 0))


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


# ------------------------------------------------------------------------------ through BuilderQuery
def read_run(directory: Path, run_id: str) -> Run:
    """The run as a brand-new BuilderQuery sees it (fails the test when it is not readable)."""
    run = BuilderQuery(directory).get_full_run(run_id)
    assert run is not None, f"run {run_id} is not readable from {directory}"
    return run


def only_run(directory: Path) -> Run:
    [run] = BuilderQuery(directory).storage.runs()
    return run


def by_id(run: Run) -> dict[str, Decision]:
    """The run's decisions by id; fails when two decisions share an id."""
    ids = [d.id for d in run.decisions]
    assert len(ids) == len(set(ids)), f"duplicate decision ids in {run.id}: {ids}"
    return {d.id: d for d in run.decisions}


def only_outcome(decision: Decision) -> Outcome:
    assert decision.outcome is not None, f"decision {decision.id} has no outcome"
    return decision.outcome


def outcome_result(decision: Decision) -> Any:
    assert decision.outcome is not None, f"decision {decision.id} has no outcome"
    assert decision.outcome.success, f"decision {decision.id} failed: {decision.outcome.error}"
    return decision.outcome.result


# ------------------------------------------------------------------------------------------ logging
def warnings_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith(LOGGER)
    ]


# ------------------------------------------------------------------- other instrumentations' spans
def other(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    """The one span called `name` that `exporter` holds."""
    found = [s for s in exporter.get_finished_spans() if s.name == name]
    assert len(found) == 1, f"{name}: {[s.name for s in exporter.get_finished_spans()]}"
    return found[0]


def parent_hex(span: ReadableSpan) -> str | None:
    return f"{span.parent.span_id:016x}" if span.parent is not None else None
