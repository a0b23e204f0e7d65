"""Peer complaints 12, 15 and 17 (research/peers.md §2): our context among other instrumentations'.

12. Global TracerProvider hijack pulls in unrelated spans: langflow-ai/langflow#13344,
    langfuse/langfuse#7212. Another instrumentation's spans inside a decision stay out of our file, and
    the global provider is never replaced.
15. Scoped attributes leak after scope exit: traceloop/openllmetry#4378 (`gen_ai.agent.name` on later
    spans). After a run or decision block (left normally or by an exception) nothing of it is current,
    later spans carry none of its attributes, and a decision handle keeps nothing for the next block.
17. Parenting with other OTel libraries: mlflow/mlflow#24105, AgentOps-AI/agentops#894. Spans of
    OpenTelemetry-native libraries made inside a decision (sync or async) nest under the decision span,
    in the run's trace, and our decisions nest under theirs.

Runs record into `tmp_path`; checks read the raw OTLP/JSON lines, a brand-new `BuilderQuery`, and the
other library's spans from an in-memory exporter (`other_spans`, reliability/conftest.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from _readback import CHOSEN, REASONING, RUN_ID, attrs, by_id, decision_pairs, other, parent_hex, read_run
from _span_records import decision_span, raw_spans
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_decisions
import otel_decisions as od
from otel_decisions import RunHandle

pytestmark = pytest.mark.usefixtures("no_error_logs")  # no test may log at ERROR


# ==================================================================================== complaint 12
def test_complaint_12_file_holds_only_our_spans_when_other_instrumentations_trace_inside_a_decision(
    tmp_path: Path,
) -> None:
    """langflow#13344, langfuse#7212: another instrumentation with a TracerProvider of its own (and one
    going through the global API) creates spans inside a decision. Our file holds only our spans; the
    other spans nest under the decision span (complaint 17) in their own pipeline; the global provider
    is never replaced."""
    global_before = trace.get_tracer_provider()
    exporter = InMemorySpanExporter()
    other = SdkTracerProvider(shutdown_on_exit=False)
    other.add_span_processor(SimpleSpanProcessor(exporter))
    http_tracer = other.get_tracer("some.http.instrumentation")
    try:
        handle: RunHandle
        with (
            otel_decisions.run("mixed_tracing", directory=tmp_path) as handle,
            otel_decisions.decision("Call the weather API", node_id="tools") as call,
            http_tracer.start_as_current_span("GET /weather"),
            trace.get_tracer("some.global.library").start_as_current_span("global work"),
        ):
            pass
    finally:
        other.shutdown()
    assert trace.get_tracer_provider() is global_before

    spans = raw_spans(tmp_path)
    assert spans
    names = {s.name for s in spans}
    assert "GET /weather" not in names and "global work" not in names
    for span in spans:
        assert span.scope == "otel_decisions", span
        assert span.trace_id == handle.execution_id, span
        assert span.attributes[RUN_ID] == handle.run_id, span
    assert len(spans) == 3  # run root, decision, its outcome

    (http_span,) = exporter.get_finished_spans()
    assert http_span.name == "GET /weather"
    assert http_span.parent is not None
    decision_span_id = decision_span(spans, handle.run_id, call.decision_id).span_id
    assert f"{http_span.context.trace_id:032x}" == handle.execution_id
    assert f"{http_span.parent.span_id:016x}" == decision_span_id
    run = read_run(tmp_path, handle.run_id)
    assert list(by_id(run)) == [call.decision_id]


# ==================================================================================== complaint 15
def test_complaint_15_decision_handle_outside_a_run_keeps_nothing_after_its_block() -> None:
    with od.decision("first") as d:
        d.choose("ask", reasoning="said by the first block only")
        d.add_tokens(7)
    with od.decision("second") as later:
        assert (later.chosen, later.reasoning, later.tokens_used) == (None, None, 0)
    handle = od.current_decision()
    assert (handle.chosen, handle.reasoning, handle.tokens_used) == (None, None, 0)


def test_complaint_15_run_and_decision_context_does_not_leak_after_the_block(
    tmp_path: Path, other_spans: InMemorySpanExporter
) -> None:
    tracer = trace.get_tracer("other-lib")

    @od.decision("Fails")
    def fails() -> None:
        raise OSError("disk")

    reusable = od.decision("Reused", options=[{"id": "a"}, {"id": "b"}])
    with tracer.start_as_current_span("outer") as outer:
        with od.run("goal", directory=tmp_path), od.node("n"):
            run_span = trace.get_current_span()
            with reusable as d:
                d.choose("a", reasoning="first call only")
            with pytest.raises(OSError):
                fails()
            assert trace.get_current_span() is run_span
            assert od.current_decision().decision_id == ""
            with reusable:
                pass
        assert trace.get_current_span() is outer
        assert od.current_run() == "" and od.current_decision().decision_id == ""
        with tracer.start_as_current_span("after outer"):
            pass
    with tracer.start_as_current_span("after all"):
        pass

    assert trace.get_current_span() is trace.INVALID_SPAN
    assert parent_hex(other(other_spans, "after outer")) == f"{outer.get_span_context().span_id:016x}"
    assert other(other_spans, "after all").parent is None
    for span in other_spans.get_finished_spans():
        if span.instrumentation_scope is not None and span.instrumentation_scope.name == "otel_decisions":
            continue  # ours, handed to the user's provider on purpose (we join it)
        assert not [k for k in (span.attributes or {}) if k.startswith("otel_decisions")], span.name
    first, _, third = (attrs(p) for p, _ in decision_pairs(tmp_path))
    assert (first[CHOSEN], first[REASONING]) == ("a", "first call only")
    assert third.get(CHOSEN, "") == "" and REASONING not in third  # as on a fresh decision


# ==================================================================================== complaint 17
def test_complaint_17_spans_of_other_instrumentations_nest_under_the_decision(
    tmp_path: Path, other_spans: InMemorySpanExporter
) -> None:
    tracer = trace.get_tracer("other-lib")

    @od.decision("Call the tool")
    def call_tool() -> None:
        with tracer.start_as_current_span("http GET"), od.decision("Inner choice"):
            pass

    @od.decision("Async call")
    async def async_call() -> None:
        await asyncio.sleep(0)
        with tracer.start_as_current_span("db query"):
            pass

    with od.run("goal", directory=tmp_path) as handle:
        call_tool()
        asyncio.run(async_call())

    pairs = {attrs(p)["otel_decisions.decision.intent"]: p for p, _ in decision_pairs(tmp_path)}
    http, db = other(other_spans, "http GET"), other(other_spans, "db query")
    assert parent_hex(http) == pairs["Call the tool"]["spanId"]
    assert parent_hex(db) == pairs["Async call"]["spanId"]
    for span in (http, db):
        assert f"{span.context.trace_id:032x}" == handle.execution_id
    assert pairs["Inner choice"]["parentSpanId"] == f"{http.context.span_id:016x}"
