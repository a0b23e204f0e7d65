"""`instrument_anthropic()`: Claude calls become GenAI `chat` spans of the run, tokens roll up.

The real `anthropic` SDK talks to a local server that speaks the Messages API (`anthropic_server.py`);
spans are read back from the span files with `BuilderQuery`, as a Builder would.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
from anthropic_server import AnthropicServer, Reply, hermetic_anthropic
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_decisions as od
from otel_decisions.contract import LLM_DECISION_ID, SpanRecord
from otel_decisions.integrations import anthropic_calls

MODEL = "claude-sonnet-5-5"
SECRET_PROMPT = "the launch code is 0000-confidential"
TOOL = [{"id": "llm", "description": "Ask Claude", "action_type": "tool_call"}]


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    yield from hermetic_anthropic(monkeypatch, tmp_path)


@pytest.fixture
def server() -> Iterator[AnthropicServer]:
    with AnthropicServer() as api:
        yield api


_clients: list[anthropic.Anthropic] = []


@pytest.fixture(autouse=True)
def closed_clients() -> Iterator[None]:
    """Every client a test opens is closed after it (an open connection is a ResourceWarning later)."""
    yield
    while _clients:
        _clients.pop().close()


def client(server: AnthropicServer, **kwargs: Any) -> anthropic.Anthropic:
    api = anthropic.Anthropic(api_key="test-key", base_url=server.url, **kwargs)
    _clients.append(api)
    return api


def ask(api: anthropic.Anthropic, text: str = "What is 2 + 2?") -> Any:
    return api.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": text}])


def chat_spans(directory: Path, run_id: str) -> list[SpanRecord]:
    spans = od.BuilderQuery(directory).storage.spans(run_id)
    return [s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat"]


def by_name(directory: Path, run_id: str) -> dict[str, SpanRecord]:
    return {s.name: s for s in od.BuilderQuery(directory).storage.spans(run_id)}


def test_runtime_decision_gets_the_chat_span_and_its_tokens(server: AnthropicServer, tmp_path: Path) -> None:
    od.instrument_anthropic()
    server.script(
        Reply.text("4", input_tokens=11, output_tokens=7), Reply.text("ok", input_tokens=2, output_tokens=1)
    )
    api = client(server)
    runtime = od.Runtime(tmp_path)
    run_id = runtime.start_run("calculator", "add")
    decision = runtime.decide("How to add", TOOL, "llm", "Claude adds", node_id="solver")
    answer = ask(api)
    runtime.record_outcome(decision, True, result=answer.content[0].text)
    ask(api, "Say ok")  # in the run, for no decision: counts towards the run only
    runtime.end_run(True)

    run = od.BuilderQuery(tmp_path).get_full_run(run_id)
    assert run is not None and run.decisions[0].outcome is not None
    assert run.decisions[0].outcome.tokens_used == 18  # 11 in + 7 out, with no user code
    assert run.metrics.total_tokens == 18 + 3
    first, second = chat_spans(tmp_path, run_id)
    root = by_name(tmp_path, run_id)["invoke_agent calculator"]
    assert first.parent_span_id == second.parent_span_id == root.span_id  # the run's trace, under its root
    assert first.attributes[LLM_DECISION_ID] == decision
    assert LLM_DECISION_ID not in second.attributes
    attributes = first.attributes
    assert (attributes["gen_ai.request.model"], attributes["gen_ai.response.model"]) == (MODEL, MODEL)
    assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == (11, 7)
    assert attributes["gen_ai.response.finish_reasons"] == ["end_turn"]
    assert attributes["otel_decisions.run.id"] == run_id


def test_tokens_the_agent_reports_win_over_counted_ones(server: AnthropicServer, tmp_path: Path) -> None:
    od.instrument_anthropic()
    server.script(Reply.text("4", input_tokens=11, output_tokens=7))
    runtime = od.Runtime(tmp_path)
    run_id = runtime.start_run("calculator")
    decision = runtime.decide("How to add", TOOL, "llm", "Claude adds")
    ask(client(server))
    runtime.record_outcome(decision, True, tokens_used=5)
    runtime.end_run(True)

    run = od.BuilderQuery(tmp_path).get_full_run(run_id)
    assert run is not None and run.decisions[0].outcome is not None
    assert run.decisions[0].outcome.tokens_used == 5
    assert run.metrics.total_tokens == 5


def test_decorated_decision_is_the_parent_of_streamed_calls(server: AnthropicServer, tmp_path: Path) -> None:
    od.instrument_anthropic()
    server.script(
        Reply.text("streamed answer", input_tokens=5, output_tokens=3),
        Reply.text("raw stream", input_tokens=4, output_tokens=2),
    )
    api = client(server)

    @od.run("streaming", directory=tmp_path)
    def agent() -> str:
        with od.decision("Draft a reply", options=[{"id": "claude"}]):
            with api.messages.stream(
                model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
            ) as s:
                text = "".join(s.text_stream)
            events = ask_stream(api)
        return text + events

    assert agent() == "streamed answer" + "raw stream"  # return values unchanged
    (run,) = od.BuilderQuery(tmp_path).storage.runs()
    assert run.decisions and run.metrics.total_tokens == 14
    spans = chat_spans(tmp_path, run.id)
    plan = by_name(tmp_path, run.id)["plan"]
    assert len(spans) == 2 and {s.parent_span_id for s in spans} == {plan.span_id}
    assert all(s.attributes["gen_ai.request.stream"] is True for s in spans)


def ask_stream(api: anthropic.Anthropic) -> str:
    stream = api.messages.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    return "".join(
        e.delta.text for e in stream if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )


def test_async_calls_roll_up_into_the_runtime_decision(server: AnthropicServer, tmp_path: Path) -> None:
    od.instrument_anthropic()
    server.script(
        Reply.text("a", input_tokens=3, output_tokens=4), Reply.text("b", input_tokens=1, output_tokens=1)
    )

    async def agent() -> None:
        api = anthropic.AsyncAnthropic(api_key="test-key", base_url=server.url)
        runtime = od.Runtime(tmp_path)
        runtime.start_run("async")
        decision = runtime.decide("Ask twice", TOOL, "llm", "why not")
        await api.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "a"}])
        async with api.messages.stream(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "b"}]
        ) as s:
            await s.get_final_message()
        runtime.record_outcome(decision, True)
        runtime.end_run(True)
        await api.close()

    asyncio.run(agent())
    (run,) = od.BuilderQuery(tmp_path).storage.runs()
    assert run.decisions[0].outcome is not None and run.decisions[0].outcome.tokens_used == 9
    root = by_name(tmp_path, run.id)["invoke_agent async"]
    assert [s.parent_span_id for s in chat_spans(tmp_path, run.id)] == [root.span_id, root.span_id]


@pytest.mark.parametrize("capture", [False, True])
def test_message_content_is_recorded_only_when_capture_is_on(
    server: AnthropicServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capture: bool
) -> None:
    if capture:
        monkeypatch.setenv(anthropic_calls.CAPTURE_CONTENT_ENV, "true")
    od.instrument_anthropic()
    server.script(Reply.text("the reply text", input_tokens=1, output_tokens=1))

    @od.run("content", directory=tmp_path)
    def agent() -> None:
        with od.decision("Ask", options=[{"id": "claude"}]):
            ask(client(server), SECRET_PROMPT)

    agent()
    written = "\n".join(p.read_text() for p in tmp_path.rglob("*.jsonl"))
    assert (SECRET_PROMPT in written) is capture
    assert ("the reply text" in written) is capture
    assert '"gen_ai.usage.input_tokens"' in written  # the metadata is there either way


def test_api_errors_reach_the_agent_unchanged_and_the_span_records_them(
    server: AnthropicServer, tmp_path: Path
) -> None:
    od.instrument_anthropic()
    server.script(Reply.error(400, "invalid_request_error", "max_tokens: too large"))
    runtime = od.Runtime(tmp_path)
    run_id = runtime.start_run("errors")
    decision = runtime.decide("Ask", TOOL, "llm", "why")
    with pytest.raises(anthropic.BadRequestError, match="max_tokens: too large"):
        ask(client(server))
    runtime.record_outcome(decision, False, error="bad request")
    runtime.end_run(False)

    (span,) = chat_spans(tmp_path, run_id)
    assert span.status_code == 2
    assert span.attributes["error.type"]


def test_calls_outside_runs_go_to_the_applications_provider(
    server: AnthropicServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    od.instrument_anthropic()
    server.script(Reply.text("x", input_tokens=1, output_tokens=1))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)  # as if the application set it

    ask(client(server))

    (span,) = exporter.get_finished_spans()
    assert span.attributes is not None and span.attributes["gen_ai.operation.name"] == "chat"
    assert "otel_decisions.run.id" not in span.attributes
    assert not list(tmp_path.rglob("*.jsonl"))


def test_the_callers_own_open_telemetry_option_wins(server: AnthropicServer, tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    od.instrument_anthropic()
    server.script(Reply.text("x", input_tokens=1, output_tokens=1))
    api = client(server, open_telemetry={"tracer_provider": provider})
    runtime = od.Runtime(tmp_path)
    runtime.start_run("own")
    runtime.decide("Ask", TOOL, "llm", "why")
    ask(api)
    runtime.end_run(True)
    assert len(exporter.get_finished_spans()) == 1


def test_uninstrument_restores_the_sdk(server: AnthropicServer, tmp_path: Path) -> None:
    od.instrument_anthropic()
    od.uninstrument_anthropic()
    server.script(Reply.text("x", input_tokens=5, output_tokens=5))
    runtime = od.Runtime(tmp_path)
    run_id = runtime.start_run("plain")
    decision = runtime.decide("Ask", TOOL, "llm", "why")
    ask(client(server))
    runtime.record_outcome(decision, True)
    runtime.end_run(True)
    assert chat_spans(tmp_path, run_id) == []
    run = od.BuilderQuery(tmp_path).get_full_run(run_id)
    assert run is not None and run.metrics.total_tokens == 0


def test_bad_configuration_is_a_config_error() -> None:
    with pytest.raises(od.ConfigError, match="capture_content"):
        od.instrument_anthropic(capture_content="yes")  # type: ignore[arg-type]


def test_request_body_is_what_the_agent_sent(server: AnthropicServer, tmp_path: Path) -> None:
    od.instrument_anthropic()
    server.script(Reply.text("4", input_tokens=1, output_tokens=1))
    runtime = od.Runtime(tmp_path)
    runtime.start_run("body")
    ask(client(server), "exact text")
    runtime.end_run(True)
    (request,) = server.requests
    assert request.body["messages"] == [{"role": "user", "content": "exact text"}]
    assert json.dumps(request.body).count("otel_decisions") == 0
