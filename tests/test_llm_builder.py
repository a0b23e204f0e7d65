"""Claude as the Builder LLM, end to end: the real `anthropic` SDK against a local Messages API server.

Runs are really recorded (`Runtime`) and read back (`BuilderQuery`); citations are checked against
that store. The server (`tests/anthropic_server.py`) speaks HTTP like the API, so what is asserted is
what the SDK actually sent and how our code handled what came back: structured answers, invented ids,
secrets, API errors, rate limits and retries. No test sleeps: retries wait the milliseconds the
scripted `retry-after-ms` header asks for.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import anthropic
import pytest
from anthropic.resources.messages.messages import DEPRECATED_MODELS
from anthropic.types import ModelParam
from anthropic_server import AnthropicServer, Received, Reply

import otel_decisions
from otel_decisions import BuilderQuery, ConfigError, Runtime
from otel_decisions._demo.calculator import DEMO_EXPRESSIONS, GOAL_ID, run_calculator
from otel_decisions._redaction import REDACTED, redact_text, redact_value
from otel_decisions.analysis.insights import GoalInsights
from otel_decisions.analysis.llm import (
    DEFAULT_MAX_CHARS,
    DEFAULT_MODEL,
    MODEL_ENV_VAR,
    LLMError,
    LLMResponseError,
    LLMSuggestion,
    build_evidence_pack,
    resolve_model,
    suggest_with_claude,
)
from otel_decisions.analysis.llm._claude import TOOL_NAME, tool_input_schema
from otel_decisions.analysis.llm._evidence_pack import pack_json

ANTHROPIC_KEY = "sk-ant-api03-Qm9vQmFyQmF6MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6-AbCdEf12"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudCIsImFkbWluIjp0cnVlfQ.c2lnbmF0dXJlX3NlY3JldF92YWx1ZQ"
BEARER_TOKEN = "abcDEF123456ghiJKL789mno"
PASSWORD = "hunter2"


# --- recorded runs ---------------------------------------------------------------------------------
class Store:
    """Recorded runs read back, and the existence checks `suggest_with_claude` needs."""

    def __init__(self, path: Path, goal_id: str) -> None:
        self.path = path
        self.query = BuilderQuery(path)
        insights = self.query.insights(goal_id)
        assert insights is not None
        self.insights: GoalInsights = insights

    def run_exists(self, run_id: str) -> bool:
        return self.query.get_full_run(run_id) is not None

    def decision_exists(self, run_id: str, decision_id: str) -> bool:
        run = self.query.get_full_run(run_id)
        return run is not None and any(d.id == decision_id for d in run.decisions)

    def decision_ids(self, run_id: str) -> set[str]:
        run = self.query.get_full_run(run_id)
        assert run is not None
        return {d.id for d in run.decisions}

    def suggest(self, client: anthropic.Anthropic | None, **kwargs: Any) -> Any:
        return suggest_with_claude(
            self.insights,
            run_exists=self.run_exists,
            decision_exists=self.decision_exists,
            client=client,
            **kwargs,
        )

    def cited(self) -> tuple[list[str], list[tuple[str, str]]]:
        """Run ids and decisions the first finding cites (real ones)."""
        evidence = self.insights.suggestions[0]["evidence"]
        return evidence["run_ids"][:2], [(d["run_id"], d["decision_id"]) for d in evidence["decisions"][:2]]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Store:
    path = tmp_path_factory.mktemp("calculator")
    runtime = Runtime(path)
    for _ in range(2):
        for expression in DEMO_EXPRESSIONS:
            run_calculator(runtime, expression)
    return Store(path, GOAL_ID)


@pytest.fixture(scope="module")
def secret_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Runs whose options, intents, context and errors hold an API key, an AWS key, a JWT, a password
    (recorded with scrubbing off, as another recorder may have: the pack must not rely on it)."""
    path = tmp_path_factory.mktemp("secrets")
    otel_decisions.configure(scrub=False)
    try:
        runtime = Runtime(path)
    finally:
        otel_decisions.configure()
    for _ in range(3):
        runtime.start_run("login", f"Log in with {ANTHROPIC_KEY}", input_data={"api_key": ANTHROPIC_KEY})
        runtime.set_node("auth")
        decision_id = runtime.decide(
            intent=f"Authenticate as {AWS_KEY}",
            options=[
                {"id": "key", "description": f"Send {ANTHROPIC_KEY} in the x-api-key header"},
                {"id": "bearer", "description": f"Send Authorization: Bearer {BEARER_TOKEN}"},
            ],
            chosen="key",
            reasoning=f"The token {JWT} expired",
            context={"password": PASSWORD, "note": f"password={PASSWORD}"},
        )
        runtime.record_outcome(decision_id, success=False, error=f"login failed: password={PASSWORD} ({JWT})")
        runtime.end_run(success=False)
    return Store(path, "login")


# --- the server and the SDK client -----------------------------------------------------------------
@pytest.fixture(autouse=True)
def hermetic_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credential, base URL, profile or model from the machine running the tests."""
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "ANTHROPIC_PROFILE",
                 "ANTHROPIC_CUSTOM_HEADERS", "ANTHROPIC_IDENTITY_TOKEN", "ANTHROPIC_IDENTITY_TOKEN_FILE",
                 "ANTHROPIC_FEDERATION_RULE_ID", "ANTHROPIC_ORGANIZATION_ID", "ANTHROPIC_CONFIG_DIR",
                 MODEL_ENV_VAR):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    # The SDK looks for credential profiles under ~/.config/anthropic (%APPDATA% on Windows).
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("APPDATA", str(tmp_path))


@pytest.fixture
def server() -> Iterator[AnthropicServer]:
    with AnthropicServer() as api:
        yield api


@pytest.fixture
def client(server: AnthropicServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key="test-key", base_url=server.url) as sdk_client:
        yield sdk_client


def suggestion(
    title: str = "Parse unary minus with ast",
    run_ids: list[str] | None = None,
    decisions: list[tuple[str, str]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A suggestion as Claude would put it in the tool call."""
    return {
        "title": title,
        "type": "option_choice",
        "target": "parser",
        "reasoning": "The regex tokenizer failed on every expression with a unary minus.",
        "recommendation": "Choose the ast parser when the expression contains a unary minus.",
        "priority": "high",
        "evidence_run_ids": run_ids or [],
        "evidence_decisions": [{"run_id": r, "decision_id": d} for r, d in decisions or []],
        **fields,
    }


def answer(*suggestions: dict[str, Any]) -> Reply:
    return Reply.tool_use(TOOL_NAME, {"suggestions": list(suggestions)}, input_tokens=1234, output_tokens=321)


def evidence_sent(request: Received) -> dict[str, Any]:
    """The evidence pack in the user message of `request`."""
    text = request.body["messages"][0]["content"]
    pack: dict[str, Any] = json.loads(text.split("<evidence>\n", 1)[1].split("\n</evidence>", 1)[0])
    return pack


# --- structured output -----------------------------------------------------------------------------
def test_structured_answer_is_parsed_into_validated_models(
    demo: Store, server: AnthropicServer, client: anthropic.Anthropic
) -> None:
    run_ids, decisions = demo.cited()
    server.script(
        answer(
            suggestion(run_ids=run_ids, decisions=decisions),
            suggestion("Cap tokenizer retries", run_ids=run_ids[:1], priority="Medium", type="control_flow"),
        )
    )

    report = demo.suggest(client, model="claude-opus-4-8", max_tokens=2000)

    assert [s.title for s in report.suggestions] == ["Parse unary minus with ast", "Cap tokenizer retries"]
    first = report.suggestions[0]
    assert isinstance(first, LLMSuggestion)
    assert (first.type, first.target, first.priority) == ("option_choice", "parser", "high")
    assert first.evidence_run_ids == run_ids
    assert [(d.run_id, d.decision_id) for d in first.evidence_decisions] == decisions
    assert report.suggestions[1].priority == "medium"  # "Medium" accepted
    assert (report.dropped_suggestions, report.dropped_ids) == (0, 0)
    assert report.goal_id == GOAL_ID
    assert report.model == "claude-opus-4-8"
    assert report.stop_reason == "tool_use"
    assert report.usage is not None and (report.usage.input_tokens, report.usage.output_tokens) == (1234, 321)
    assert report.to_dict()["suggestions"][0]["evidence_decisions"][0] == {
        "run_id": decisions[0][0],
        "decision_id": decisions[0][1],
    }
    assert "Parse unary minus with ast" in str(report)

    (request,) = server.requests
    assert (request.method, request.path) == ("POST", "/v1/messages")
    assert request.headers["authorization"] == "Bearer test-key"
    assert request.headers["anthropic-version"]
    body = request.body
    assert (body["model"], body["max_tokens"]) == ("claude-opus-4-8", 2000)
    assert body["tool_choice"] == {"type": "tool", "name": TOOL_NAME, "disable_parallel_tool_use": True}
    assert body["tools"][0]["name"] == TOOL_NAME
    assert body["tools"][0]["input_schema"] == tool_input_schema()
    assert "$ref" not in json.dumps(body["tools"])
    assert "never instructions" in body["system"]
    assert evidence_sent(request) == build_evidence_pack(demo.insights)


def test_invented_and_misplaced_ids_are_dropped_and_counted(
    demo: Store, server: AnthropicServer, client: anthropic.Anthropic
) -> None:
    run_ids, decisions = demo.cited()
    # A decision id that exists in one run but not in another: cited under the wrong run, it is invented.
    runs = {r: demo.decision_ids(r) for r in demo.insights.suggestions[0]["evidence"]["run_ids"]}
    longest = max(runs, key=lambda r: len(runs[r]))
    misplaced = next((r, d) for r in runs for d in sorted(runs[longest]) if d not in runs[r])
    server.script(
        answer(
            suggestion(
                run_ids=[run_ids[0], "run_20250101_000000_deadbeef", run_ids[0]],
                decisions=[decisions[0], (run_ids[0], "dec_999"), misplaced, ("run_nope", "dec_0")],
            )
        )
    )

    report = demo.suggest(client)

    (kept,) = report.suggestions
    assert kept.evidence_run_ids == [run_ids[0]]  # the duplicate is merged, not counted
    assert [(d.run_id, d.decision_id) for d in kept.evidence_decisions] == [decisions[0]]
    assert report.dropped_ids == 4
    assert report.dropped_suggestions == 0


def test_suggestions_without_a_valid_citation_are_dropped_and_counted(
    demo: Store, server: AnthropicServer, client: anthropic.Anthropic
) -> None:
    run_ids, _ = demo.cited()
    server.script(
        answer(
            suggestion("Uncited"),
            suggestion("Only invented ids", run_ids=["run_x"], decisions=[("run_x", "dec_0")]),
            suggestion("Backed", run_ids=run_ids[:1]),
        )
    )

    report = demo.suggest(client)

    assert [s.title for s in report.suggestions] == ["Backed"]
    assert (report.dropped_suggestions, report.dropped_ids) == (2, 2)
    assert "2 suggestion(s) without valid evidence" in str(report)


# --- what is sent ----------------------------------------------------------------------------------
def test_no_secret_reaches_the_server(
    secret_store: Store, server: AnthropicServer, client: anthropic.Anthropic
) -> None:
    recorded = json.dumps(secret_store.insights.to_dict())
    for secret in (ANTHROPIC_KEY, AWS_KEY, JWT, BEARER_TOKEN, f"password={PASSWORD}"):
        assert secret in recorded  # the analyses do carry them: the pack must remove them
    run_id = secret_store.insights.suggestions[0]["evidence"]["run_ids"][0]
    server.script(answer(suggestion(run_ids=[run_id])))

    report = secret_store.suggest(client)

    assert len(report.suggestions) == 1
    (request,) = server.requests
    sent = json.dumps(request.body) + json.dumps(request.headers)
    for secret in (ANTHROPIC_KEY, AWS_KEY, JWT, BEARER_TOKEN, PASSWORD, "sk-ant-api03", "eyJhbGci"):
        assert secret not in sent
    pack = json.dumps(evidence_sent(request))
    assert REDACTED in pack
    assert f"password={REDACTED}" in pack
    assert f"Bearer {REDACTED}" in pack
    assert run_id in pack  # ids are not mistaken for secrets


def test_evidence_pack_is_bounded_and_keeps_a_few_ids_per_finding(demo: Store) -> None:
    full = build_evidence_pack(demo.insights)
    assert len(pack_json(full)) <= DEFAULT_MAX_CHARS
    assert full["goal_id"] == GOAL_ID
    assert full["runs"]["total"] == 2 * len(DEMO_EXPRESSIONS)
    assert full["totals"]["findings"] == len(demo.insights.suggestions)
    for finding in full["findings"]:
        assert len(finding["evidence"]["run_ids"]) <= 4
        assert finding["evidence"]["run_count"] >= len(finding["evidence"]["run_ids"])
    priorities = [f["priority"] for f in full["findings"]]
    assert priorities == sorted(priorities, key=["high", "medium", "low"].index)

    for limit in (6000, 2000, 800):
        small = build_evidence_pack(demo.insights, max_chars=limit)
        assert len(pack_json(small)) <= limit
        assert small["truncated"] is True
        assert small["runs"] == full["runs"]


# --- configuration ---------------------------------------------------------------------------------
def test_missing_api_key_is_a_config_error_before_any_request(
    demo: Store, server: AnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        demo.suggest(None)
    assert server.requests == []


def test_key_base_url_and_model_come_from_the_environment(
    demo: Store, server: AnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "env-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv(MODEL_ENV_VAR, "claude-haiku-4-5")
    run_ids, _ = demo.cited()
    server.script(answer(suggestion(run_ids=run_ids)), answer(suggestion(run_ids=run_ids)))

    assert demo.suggest(None).model == "claude-haiku-4-5"
    assert demo.suggest(None, model="claude-opus-4-8").model == "claude-opus-4-8"  # the argument wins

    first, second = server.requests
    assert first.body["model"] == "claude-haiku-4-5"
    assert second.body["model"] == "claude-opus-4-8"
    assert first.headers["authorization"] == "Bearer env-key"


def test_default_model_is_a_current_model_of_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_model() == DEFAULT_MODEL
    monkeypatch.setenv(MODEL_ENV_VAR, "  ")
    assert resolve_model() == DEFAULT_MODEL  # blank counts as unset
    listed = get_args(get_args(ModelParam)[0])  # the Literal of known model ids
    assert DEFAULT_MODEL in listed
    assert DEFAULT_MODEL not in DEPRECATED_MODELS


def test_without_the_sdk_a_config_error_says_what_to_install(
    demo: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "anthropic", None)  # `import anthropic` now raises ImportError
    with pytest.raises(ConfigError, match=r"otel-decisions\[claude\]"):
        demo.suggest(None)
    assert build_evidence_pack(demo.insights)["goal_id"] == GOAL_ID  # the rest works without it


# --- API errors and retries ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "error_type", "message", "attempts"),
    [
        (400, "invalid_request_error", "max_tokens: Field required", 1),  # not retried
        (401, "authentication_error", "invalid x-api-key", 1),
        (500, "api_error", "Internal server error", 2),  # retried once, then reported
        (529, "overloaded_error", "Overloaded", 2),
    ],
)
def test_api_errors_become_one_line_llm_errors(
    demo: Store,
    server: AnthropicServer,
    client: anthropic.Anthropic,
    status: int,
    error_type: str,
    message: str,
    attempts: int,
) -> None:
    server.handler = lambda _request: Reply.error(
        status, error_type, message, headers={"retry-after-ms": "1"}
    )

    with pytest.raises(LLMError) as caught:
        demo.suggest(client, max_retries=1)

    error = caught.value
    assert not isinstance(error, LLMResponseError)
    assert str(error).startswith(f"Claude API error {status} ({error_type}): {message}")
    assert "\n" not in str(error)
    assert (error.status_code, error.error_type) == (status, error_type)
    assert error.request_id is not None and error.request_id.startswith("req_test_")
    assert len(server.requests) == attempts


@pytest.mark.parametrize(
    "reply",
    [Reply.rate_limited(retry_after_ms=40), Reply.rate_limited(retry_after_ms=None, retry_after="0.04")],
    ids=["retry-after-ms", "retry-after"],
)
def test_rate_limit_is_retried_after_the_time_the_api_asks(
    demo: Store, server: AnthropicServer, client: anthropic.Anthropic, reply: Reply
) -> None:
    run_ids, _ = demo.cited()
    server.script(reply, answer(suggestion(run_ids=run_ids)))

    report = demo.suggest(client, max_retries=2)

    assert len(report.suggestions) == 1
    first, second = server.requests
    assert (first.headers["x-stainless-retry-count"], second.headers["x-stainless-retry-count"]) == ("0", "1")
    assert first.body == second.body
    # The API asked for 40 ms; the SDK's own backoff would wait at least 375 ms.
    assert 0.04 <= second.at - first.at < 0.35


def test_endless_rate_limit_gives_up_after_max_retries(
    demo: Store, server: AnthropicServer, client: anthropic.Anthropic
) -> None:
    server.handler = lambda _request: Reply.rate_limited(retry_after_ms=1)

    with pytest.raises(LLMError, match=r"^Claude API error 429 \(rate_limit_error\): .*after 2 retries"):
        demo.suggest(client, max_retries=2)

    assert len(server.requests) == 3


def test_unreachable_api_is_an_llm_error(demo: Store) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (
        anthropic.Anthropic(api_key="test-key", base_url=f"http://127.0.0.1:{port}") as unreachable,
        pytest.raises(LLMError, match=f"^Cannot reach the Claude API at http://127.0.0.1:{port}"),
    ):
        demo.suggest(unreachable, max_retries=0)


# --- malformed answers -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (answer(suggestion(priority="urgent")), r"suggestions\.0\.priority: Input should be 'low', 'medium'"),
        (answer({"title": "No other field"}), r"suggestions\.0\.type: Field required; .*\(and \d+ more\)"),
        (
            Reply.tool_use(TOOL_NAME, {"ideas": []}),
            r"^Claude's suggestions do not match the schema: suggestions",
        ),
        (Reply.tool_use(TOOL_NAME, {"suggestions": "none"}), r"suggestions: Input should be a valid list"),
        (
            Reply.text("I think the parser is fine."),
            r"did not call the submit_suggestions tool .*parser is fine",
        ),
        (Reply.text("Here are", stop_reason="max_tokens"), r"cut off at max_tokens=8192"),
        (Reply.message([], stop_reason="refusal"), r"declined"),
    ],
    ids=["bad-priority", "missing-fields", "wrong-key", "not-a-list", "no-tool-call", "cut-off", "refusal"],
)
def test_malformed_answers_are_llm_response_errors(
    demo: Store, server: AnthropicServer, client: anthropic.Anthropic, reply: Reply, expected: str
) -> None:
    server.script(reply)
    with pytest.raises(LLMResponseError, match=expected) as caught:
        demo.suggest(client)
    assert "\n" not in str(caught.value)


# --- the server itself streams as the API does (reused by the streaming instrumentation tests) -----
def test_server_streams_text_and_tool_input_to_the_sdk(
    server: AnthropicServer, client: anthropic.Anthropic
) -> None:
    tool_input = {"suggestions": [suggestion(run_ids=["run_1"])]}
    server.script(Reply.tool_use(TOOL_NAME, tool_input, text="Looking at the evidence first."))

    with client.messages.stream(
        model="claude-haiku-4-5", max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()

    assert server.requests[0].stream
    assert kinds.count("text") >= 2 and kinds.count("input_json") >= 2
    assert final.stop_reason == "tool_use"
    assert final.model == "claude-haiku-4-5"
    text, call = final.content
    assert text.type == "text" and text.text == "Looking at the evidence first."
    assert call.type == "tool_use" and call.input == tool_input
    assert final.usage.output_tokens == 10


# --- redaction -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"key {ANTHROPIC_KEY} used", f"key {REDACTED} used"),
        ("openai sk-proj-AbCdEfGh1234567890IjKlMnOp", f"openai {REDACTED}"),
        (f"aws {AWS_KEY}.", f"aws {REDACTED}."),
        (f"Authorization: Bearer {BEARER_TOKEN}", f"Authorization: Bearer {REDACTED}"),
        (f"sent bearer {BEARER_TOKEN} to the API", f"sent bearer {REDACTED} to the API"),
        ("authorization=Basic dXNlcjpwYXNzd29yZA==", f"authorization=Basic {REDACTED}"),
        (f"login password={PASSWORD} failed", f"login password={REDACTED} failed"),
        ('{"db_password": "correct horse"}', f'{{"db_password": "{REDACTED}"}}'),
        ("x-api-key: abc123, client_secret='s3cr3t'", f"x-api-key: {REDACTED}, client_secret='{REDACTED}'"),
        (f"jwt {JWT} end", f"jwt {REDACTED} end"),
        ("session=0123456789abcdef0123456789abcdef01", f"session={REDACTED}"),
        ("aws_secret=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", f"aws_secret={REDACTED}"),
        ("postgres://admin:s3cret@db:5432/app", f"postgres://admin:{REDACTED}@db:5432/app"),
        ("ghp_0123456789abcdefghijklmnopqrstuvwxyzAB", REDACTED),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", REDACTED),
        # the whole value, whatever it holds: separators, escaped quotes, several words
        ("password=abc;TOPSECRET x", f"password={REDACTED} x"),
        ('"password": "ab\\"c-TOPSECRET"', f'"password": "{REDACTED}"'),
        ("password: my TOPSECRET phrase", f"password: {REDACTED}"),
        ("password: a b token: c d", f"password: {REDACTED} token: {REDACTED}"),
        # JSON inside a JSON string (an upstream error body quoted in an error message)
        (
            '{"detail": "{\\"password\\": \\"Hunter2TopSecret\\"}"}',
            f'{{"detail": "{{\\"password\\": \\"{REDACTED}\\"}}"}}',
        ),
    ],
)
def test_redact_text_removes_each_kind_of_secret(text: str, expected: str) -> None:
    assert redact_text(text) == expected
    assert redact_text(expected) == expected  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "Tokenize with a regex and apply * / before + -",
        "Node has 33.3% failure rate; max_tokens=1024, total_tokens: 512, tokenizer: regex",
        "run_20250101_120000_ab12cd34 dec_3 dec_12 goal calculator",
        "Fisher p=0.0021 q=0.013 latency_ms=12345678 3.14159 -42 1e-9",
        "The bearer of bad news; a password is required; sk-learn-pipelines; bypass: true",
        "path=/home/user/projects/myproject2/src/module/subpackage",
        "Évaluer avec fractions.Fraction → exact",
    ],
)
def test_redact_text_leaves_ordinary_text_ids_and_numbers_alone(text: str) -> None:
    assert redact_text(text) == text


def test_redact_value_walks_nested_data_keys_included() -> None:
    value = {
        "count": 3,
        "ok": None,
        f"password={PASSWORD}": [f"token: {BEARER_TOKEN}", (AWS_KEY, 1.5)],
        "nested": {"set": frozenset({ANTHROPIC_KEY})},
    }
    assert redact_value(value) == {
        "count": 3,
        "ok": None,
        f"password={REDACTED}": [f"token: {REDACTED}", (REDACTED, 1.5)],
        "nested": {"set": frozenset({REDACTED})},
    }


# --- BuilderQuery and the CLI ----------------------------------------------------------------------
def test_builder_query_asks_claude_with_settings_from_the_environment(
    demo: Store, server: AnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "env-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    run_ids, decisions = demo.cited()
    server.script(answer(suggestion(run_ids=[*run_ids, "run_invented"], decisions=decisions)))

    report = BuilderQuery(demo.path).suggest_with_llm(GOAL_ID, model="claude-opus-4-8")

    assert report is not None
    assert [s.evidence_run_ids for s in report.suggestions] == [run_ids]
    assert report.dropped_ids == 1
    assert BuilderQuery(demo.path).suggest_with_llm("no-such-goal") is None
    assert len(server.requests) == 1  # nothing is sent for a goal without runs


def test_cli_suggest_llm_adds_claudes_validated_suggestions(
    demo: Store, server: AnthropicServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from otel_decisions.cli import main

    monkeypatch.setenv("ANTHROPIC_API_KEY", "env-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    run_ids, decisions = demo.cited()
    server.script(
        answer(suggestion(run_ids=run_ids, decisions=decisions), suggestion("Uncited", run_ids=["x"]))
    )

    code = main(["suggest", GOAL_ID, "--source", str(demo.path), "--llm", "--json"])
    out, err = capsys.readouterr()

    assert (code, err) == (0, "")
    document = json.loads(out)
    assert document["suggestions"] == BuilderQuery(demo.path).suggest_improvements(GOAL_ID)
    llm = document["llm"]
    assert [s["title"] for s in llm["suggestions"]] == ["Parse unary minus with ast"]
    assert (llm["dropped_suggestions"], llm["dropped_ids"]) == (1, 1)


def test_cli_suggest_llm_errors_are_one_line(
    demo: Store, server: AnthropicServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from otel_decisions.cli import main

    code = main(["suggest", GOAL_ID, "--source", str(demo.path), "--llm"])  # no key
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("otel-decisions: error: ") and "ANTHROPIC_API_KEY" in err and err.count("\n") == 1

    monkeypatch.setenv("ANTHROPIC_API_KEY", "env-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    server.script(Reply.error(400, "invalid_request_error", "max_tokens: too large"))
    code = main(["suggest", GOAL_ID, "--source", str(demo.path), "--llm"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert "400" in err and "max_tokens: too large" in err and err.count("\n") == 1


def test_citations_of_another_goals_runs_are_dropped(
    tmp_path: Path, server: AnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = Runtime(tmp_path)
    for _ in range(2):
        for expression in DEMO_EXPRESSIONS:
            run_calculator(runtime, expression)
    other = runtime.start_run("other-goal")
    other_decision = runtime.decide("x", [{"id": "a", "description": "A", "action_type": "t"}], "a", "r")
    runtime.end_run(False)
    query = BuilderQuery(tmp_path)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "env-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    own = query.list_runs_for_goal(GOAL_ID)[0].run_id
    server.script(
        answer(suggestion(run_ids=[own, other], decisions=[(other, other_decision)])),
        answer(suggestion(run_ids=[other], decisions=[(other, other_decision)])),
    )

    report = query.suggest_with_llm(GOAL_ID)
    assert report is not None
    assert [s.evidence_run_ids for s in report.suggestions] == [[own]]
    assert [s.evidence_decisions for s in report.suggestions] == [[]]
    assert report.dropped_ids == 2

    report = query.suggest_with_llm(GOAL_ID)
    assert report is not None and report.suggestions == [] and report.dropped_suggestions == 1
