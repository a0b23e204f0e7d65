"""Spans as typed records (`RawSpan`), exactly as the OTLP/JSON lines of every span file hold them.

Unlike `_readback.raw_spans`, this reads every `traces*.jsonl` file of a directory (rotated files too) and
keeps each span's instrumentation scope and links. Shared by `test_context_propagation.py` and the
context tests of the reliability suite (`tests/reliability/`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _readback import DECISION_ID, RUN_ID, SPAN_OPEN

OP = "gen_ai.operation.name"
EXECUTION_ID = "otel_decisions.execution_id"
DECISION_REMOTE = "otel_decisions.decision.remote"
DELEGATED_RUN_IDS = "otel_decisions.decision.delegated_run_ids"
LINK_TYPE = "otel_decisions.link.type"


@dataclass(frozen=True, slots=True)
class RawLink:
    trace_id: str
    span_id: str
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RawSpan:
    """One span exactly as the OTLP/JSON line holds it."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    scope: str
    attributes: dict[str, Any]
    links: list[RawLink] = field(default_factory=list)


def _value(value: dict[str, Any]) -> Any:
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "arrayValue" in value:
        return [_value(v) for v in value["arrayValue"].get("values", [])]
    return None


def _attributes(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {item["key"]: _value(item.get("value", {})) for item in items}


def raw_spans(directory: Path) -> list[RawSpan]:
    """Every ended span in every span file under `directory` (snapshots of spans that were still
    open, `SPAN_OPEN`, written for crash safety, are left out)."""
    spans: list[RawSpan] = []
    for path in sorted(directory.glob("traces*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            for resource_spans in json.loads(line).get("resourceSpans", []):
                for scope_spans in resource_spans.get("scopeSpans", []):
                    scope = str(scope_spans.get("scope", {}).get("name", ""))
                    for s in scope_spans.get("spans", []):
                        if {"key": SPAN_OPEN, "value": {"boolValue": True}} in s.get("attributes", []):
                            continue
                        spans.append(
                            RawSpan(
                                trace_id=s["traceId"],
                                span_id=s["spanId"],
                                parent_span_id=s.get("parentSpanId", ""),
                                name=s["name"],
                                scope=scope,
                                attributes=_attributes(s.get("attributes", [])),
                                links=[
                                    RawLink(
                                        link["traceId"],
                                        link["spanId"],
                                        _attributes(link.get("attributes", [])),
                                    )
                                    for link in s.get("links", [])
                                ],
                            )
                        )
    return spans


def root_span(spans: list[RawSpan], run_id: str) -> RawSpan:
    """The root (`invoke_agent`) span of run `run_id`; fails unless there is exactly one."""
    found = [
        s
        for s in spans
        if s.attributes.get(OP) == "invoke_agent"
        and s.attributes.get(RUN_ID) == run_id
        and not s.parent_span_id
    ]
    assert len(found) == 1, f"expected one root span for {run_id}, found {len(found)}"
    return found[0]


def decision_span(spans: list[RawSpan], run_id: str, decision_id: str) -> RawSpan:
    """The `plan` span of decision `decision_id` of run `run_id`; fails unless there is exactly one."""
    found = [
        s
        for s in spans
        if s.attributes.get(RUN_ID) == run_id and s.attributes.get(DECISION_ID) == decision_id
    ]
    assert len(found) == 1, f"expected one span for decision {decision_id} of {run_id}, found {len(found)}"
    return found[0]
