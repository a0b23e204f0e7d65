"""Our OTLP/JSON encoder against the official one (`opentelemetry-exporter-otlp-json-file`).

The official encoder is the reference: for the same SDK spans, both lines must parse to the same
JSON document. Also checks the OTLP/JSON rules the Collector's file exporter follows.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.json.file import FileSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from otel_decisions.export.otlp_json import encode_line, encode_one


def official_line(spans: list[ReadableSpan]) -> str:
    stream = io.StringIO()
    FileSpanExporter(stream=stream).export(spans)
    return stream.getvalue()


def _normalise(value: Any) -> Any:
    """NaN != NaN; compare its JSON spelling instead."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def assert_same(spans: list[ReadableSpan]) -> dict[str, Any]:
    ours = encode_line(spans)
    theirs = official_line(spans)
    assert ours.endswith(b"\n") and ours.count(b"\n") == 1
    assert theirs.endswith("\n")
    parsed = json.loads(ours)
    assert _normalise(parsed) == _normalise(json.loads(theirs))
    if len(spans) == 1:  # the recorder's one-span-per-line path writes exactly the same bytes
        assert encode_one(spans[0]) == ours
    return dict(parsed)


def make_provider(resource: Resource | None = None) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=resource or Resource.create({"service.name": "encoder-test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_encoder_matches_official_for_every_span_feature() -> None:
    provider, exporter = make_provider()
    tracer = provider.get_tracer("otel_decisions", "0.1.0", attributes={"scope.attr": "x"})
    other = provider.get_tracer("other-lib")
    attrs: dict[str, Any] = {
        "s": 'text with "quotes", \\ backslash, \n newline, é, 🙂',
        "i": 7,
        "big": 2**62,
        "neg": -3,
        "f": 1.5,
        "whole": 2.0,
        "nan": float("nan"),
        "inf": float("inf"),
        "ninf": float("-inf"),
        "b": True,
        "bf": False,
        "strs": ["a", "b"],
        "ints": [1, 2],
        "empty": [],
        "bytes": b"\x00\xff",
        "map": {"k": "v", "n": {"deep": 1}},
        "none": None,
        "mixed": ["a", 1, 2.5, True],
    }
    with tracer.start_as_current_span("root", attributes=attrs, kind=SpanKind.SERVER) as root:
        root.add_event("ev", {"k": "v", "n": 1})
        root.add_event("bare-event")
        child = tracer.start_span("child", links=[Link(root.get_span_context(), {"why": "link"})])
        child.set_status(Status(StatusCode.ERROR, "boom"))
        child.end()
        with other.start_as_current_span("foreign", kind=SpanKind.CLIENT):
            pass
    parsed = assert_same(list(exporter.get_finished_spans()))
    spans = [s for rs in parsed["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    assert len(spans) == 3
    assert all(len(s["traceId"]) == 32 and s["traceId"] == s["traceId"].lower() for s in spans)
    assert all(isinstance(s["kind"], int) and isinstance(s["startTimeUnixNano"], str) for s in spans)
    assert len(parsed["resourceSpans"][0]["scopeSpans"]) == 2


def test_encoder_matches_official_for_status_variants_and_remote_parent() -> None:
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    provider, exporter = make_provider()
    tracer = provider.get_tracer("t")
    remote = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(1))
    with tracer.start_as_current_span(
        "remote-child", context=trace.set_span_in_context(NonRecordingSpan(remote))
    ):
        pass
    s = tracer.start_span("unset-with-message")
    s.set_status(Status(StatusCode.UNSET))
    s.end()
    s = tracer.start_span("ok")
    s.set_status(Status(StatusCode.OK))
    s.end()
    parsed = assert_same(list(exporter.get_finished_spans()))
    first = parsed["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert first["flags"] == 0x300 and first["parentSpanId"] == "0000000000005678"


def test_encoder_groups_spans_by_resource() -> None:
    p1, e1 = make_provider(Resource.create({"service.name": "a"}))
    p2, e2 = make_provider(Resource.create({"service.name": "b"}))
    p1.get_tracer("t").start_span("one").end()
    p2.get_tracer("t").start_span("two").end()
    parsed = assert_same([*e1.get_finished_spans(), *e2.get_finished_spans()])
    assert len(parsed["resourceSpans"]) == 2


def test_encoder_writes_nothing_for_no_spans() -> None:
    assert encode_line([]) == b""


attribute_values = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.lists(st.text(max_size=10), max_size=4),
    st.lists(st.integers(min_value=-(2**31), max_value=2**31), max_size=4),
)


@settings(max_examples=150, deadline=None)
@given(
    attributes=st.dictionaries(st.text(min_size=1, max_size=20), attribute_values, max_size=8),
    name=st.text(max_size=30),
    event_name=st.text(max_size=10),
)
def test_encoder_matches_official_for_arbitrary_attributes(
    attributes: dict[str, Any], name: str, event_name: str
) -> None:
    provider, exporter = make_provider()
    with provider.get_tracer("prop").start_as_current_span(name, attributes=attributes) as span:
        span.add_event(event_name, attributes)
    assert_same(list(exporter.get_finished_spans()))


@pytest.mark.parametrize("count", [1, 7, 600])
def test_encoder_matches_official_for_batches(count: int) -> None:
    provider, exporter = make_provider()
    tracer = provider.get_tracer("batch")
    with tracer.start_as_current_span("run"):
        for i in range(count - 1):
            tracer.start_span("decision", attributes={"i": i, "s": f"value {i}"}).end()
    assert_same(list(exporter.get_finished_spans()))
