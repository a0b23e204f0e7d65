"""Privacy, part 3: Claude calls recorded into a run (peer complaints 13 and 14).

Through the real `anthropic` SDK against a local Messages API (`tests/anthropic_server.py`), as in
`test_anthropic_instrumentation.py`: with GenAI content capture requested (`instrument_anthropic(
capture_content=True)` or `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`, the latter in a
real subprocess), a call whose prompt and reply hold secrets is recorded with the secrets scrubbed and
the rest of the content kept; with our own capture off (`configure(capture_content=False)` or
`OTEL_DECISIONS_CAPTURE_CONTENT=false`) no message content at all is recorded — prompts, replies,
API error messages — even though GenAI capture was requested, while tokens still roll up.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
from _readback import attrs, raw_spans, read_run
from anthropic_server import AnthropicServer, Reply, hermetic_anthropic

import otel_decisions as od
from otel_decisions import Runtime
from otel_decisions.integrations import anthropic_calls
from reliability._privacy_recording import (
    API,
    CONTENT_CAPTURED,
    capture_off,
    child_environment,
    every_recorded_string,
    file_text,
    leaked_fragments,
    outcome_of,
    run_roots,
)
from reliability._privacy_secrets import ANTHROPIC_KEY, GITHUB_TOKEN, OPENAI_KEY, PASSWORD

MODEL = "claude-sonnet-5-5"


@pytest.fixture(autouse=True)
def _default_settings() -> Iterator[None]:
    """Tests that `configure()` content capture leave the process-wide settings as they found them."""
    yield
    od.configure()


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    yield from hermetic_anthropic(monkeypatch, tmp_path)


@pytest.fixture
def server() -> Iterator[AnthropicServer]:
    with AnthropicServer() as api:
        yield api


@pytest.fixture
def clients() -> Iterator[list[anthropic.Anthropic]]:
    """Clients the test opens, closed after it (an open connection is a ResourceWarning later)."""
    opened: list[anthropic.Anthropic] = []
    yield opened
    for client in opened:
        client.close()


def open_client(server: AnthropicServer, clients: list[anthropic.Anthropic]) -> anthropic.Anthropic:
    client = anthropic.Anthropic(api_key=OPENAI_KEY, base_url=server.url, max_retries=0)
    clients.append(client)
    return client


def ask(client: anthropic.Anthropic, text: str) -> Any:
    return client.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": text}])


PROMPT = f"Deploy with password={PASSWORD} and key {ANTHROPIC_KEY} please"
REPLY = f"Noted, I will use {GITHUB_TOKEN} now"


def _call_claude_in_a_run(api: str, directory: Path, client: anthropic.Anthropic, prompt: str) -> str:
    if api == "runtime":
        runtime = Runtime(directory)
        run_id = runtime.start_run("claude")
        decision_id = runtime.decide("Ask Claude", [{"id": "llm", "description": "Ask"}], "llm", "why")
        ask(client, prompt)
        runtime.record_outcome(decision_id, True)
        runtime.end_run(True)
        return run_id
    with od.run("claude", directory=directory) as handle, od.decision("Ask Claude", options=[{"id": "llm"}]):
        ask(client, prompt)
    decorated_run_id: str = handle.run_id
    return decorated_run_id


@pytest.mark.parametrize("api", API)
def test_complaint_14_claude_call_with_genai_capture_on_is_scrubbed(
    server: AnthropicServer, clients: list[anthropic.Anthropic], tmp_path: Path, api: str
) -> None:
    od.instrument_anthropic(capture_content=True)
    server.script(
        Reply.text(REPLY, input_tokens=3, output_tokens=4),
        Reply.error(400, "invalid_request_error", f"bad api_key={ANTHROPIC_KEY} given"),
    )
    client = open_client(server, clients)
    run_id = _call_claude_in_a_run(api, tmp_path, client, PROMPT)
    with od.run("claude-error", directory=tmp_path), pytest.raises(anthropic.BadRequestError):
        ask(client, "again")

    text = file_text(tmp_path)
    for secret in (PASSWORD, ANTHROPIC_KEY, GITHUB_TOKEN, OPENAI_KEY):  # OPENAI_KEY: the client's api_key
        assert leaked_fragments(secret, text) == [], secret
    assert "Deploy with password=[REDACTED] and key [REDACTED] please" in text  # content was captured
    assert "Noted, I will use [REDACTED] now" in text
    assert outcome_of(read_run(tmp_path, run_id)).tokens_used == 7
    assert server.requests[0].body["messages"][0]["content"] == PROMPT  # the request is not altered


@pytest.mark.parametrize("client_created", ["before_configure", "after_configure"])
@pytest.mark.parametrize("api", API)
def test_claude_call_holds_no_content_when_our_capture_is_off(
    server: AnthropicServer,
    clients: list[anthropic.Anthropic],
    tmp_path: Path,
    api: str,
    client_created: str,
) -> None:
    """GenAI capture is requested, ours is off: ours wins, also for a client created before `configure`."""
    od.instrument_anthropic(capture_content=True)
    early = open_client(server, clients) if client_created == "before_configure" else None
    capture_off()
    client = early or open_client(server, clients)
    server.script(
        Reply.text("QzReplySentinel7", input_tokens=3, output_tokens=4),
        Reply.error(400, "invalid_request_error", "QzApiErrorSentinel7 in the message"),
    )
    run_id = _call_claude_in_a_run(api, tmp_path, client, "QzPromptSentinel7")
    with od.run("claude-error", directory=tmp_path), pytest.raises(anthropic.BadRequestError):
        ask(client, "QzPromptSentinel7 again")

    text = file_text(tmp_path)
    assert [s for s in ("QzReplySentinel7", "QzPromptSentinel7", "QzApiErrorSentinel7") if s in text] == []
    assert "gen_ai.input.messages" not in text and "gen_ai.output.messages" not in text
    chats = [s for s in raw_spans(tmp_path) if attrs(s).get("gen_ai.operation.name") == "chat"]
    assert len(chats) == 2
    assert attrs(chats[0])["gen_ai.usage.input_tokens"] == 3  # metadata is still recorded
    assert outcome_of(read_run(tmp_path, run_id)).tokens_used == 7


CLAUDE_CHILD = """
import sys
import anthropic
import otel_decisions as od

directory, url, prompt = sys.argv[1:4]
od.instrument_anthropic()
client = anthropic.Anthropic(api_key="test-key", base_url=url, max_retries=0)
with od.run("claude", directory=directory), od.decision("Ask", options=[{"id": "llm"}]):
    client.messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": prompt}])
client.close()
"""


@pytest.mark.parametrize("ours", ["capture_on", "capture_off"])
def test_claude_capture_from_the_environment_in_a_real_process(
    server: AnthropicServer, tmp_path: Path, ours: str
) -> None:
    """`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true` asks for content: it is recorded
    scrubbed, or not at all when `OTEL_DECISIONS_CAPTURE_CONTENT=false`."""
    server.script(Reply.text("QzReplySentinel7", input_tokens=2, output_tokens=2))
    env = {anthropic_calls.CAPTURE_CONTENT_ENV: "true", "HOME": str(tmp_path)}
    if ours == "capture_off":
        env["OTEL_DECISIONS_CAPTURE_CONTENT"] = "false"
    prompt = f"QzPromptSentinel7 {ANTHROPIC_KEY}"
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", CLAUDE_CHILD, str(tmp_path), server.url, prompt],
        env=child_environment(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    text = file_text(tmp_path)
    assert leaked_fragments(ANTHROPIC_KEY, text) == []
    captured = ours == "capture_on"
    assert ("QzPromptSentinel7 [REDACTED]" in text) is captured
    assert ("QzReplySentinel7" in text) is captured
    assert '"gen_ai.usage.input_tokens"' in text


# ============================================================================ everything (complaint 13)
def test_complaint_13_claude_call_content_absent_from_attributes_events_and_status(
    server: AnthropicServer, clients: list[anthropic.Anthropic], tmp_path: Path
) -> None:
    """Capture off, GenAI capture requested: the prompt, the reply, an API error's message and an
    exception raised after the call are in no attribute, event, status message or span name."""
    od.instrument_anthropic(capture_content=True)
    capture_off()
    client = open_client(server, clients)
    server.script(
        Reply.text("QzReplySentinel7", input_tokens=1, output_tokens=1),
        Reply.error(529, "overloaded_error", "QzApiErrorSentinel7 overloaded"),
    )
    with pytest.raises(ValueError), od.run("claude", directory=tmp_path), od.decision("Ask"):
        ask(client, "QzPromptSentinel7")
        with pytest.raises(anthropic.APIStatusError):
            ask(client, "QzPromptSentinel7 again")
        raise ValueError("QzExceptionSentinel7")

    sentinels = ["QzReplySentinel7", "QzPromptSentinel7", "QzApiErrorSentinel7", "QzExceptionSentinel7"]
    chats = [s for s in raw_spans(tmp_path) if attrs(s).get("gen_ai.operation.name") == "chat"]
    assert len(chats) == 2  # the calls' spans are there...
    recorded = "\n".join(every_recorded_string(tmp_path))
    assert [s for s in sentinels if s in recorded] == []  # ...without their content
    assert [s for s in sentinels if s in file_text(tmp_path)] == []
    [root] = run_roots(tmp_path)
    assert attrs(root)[CONTENT_CAPTURED] is False
