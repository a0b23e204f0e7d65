"""Privacy, part 1: secrets are scrubbed from every recorded field (peer complaint 14).

research/peers.md §2, 14: redaction gaps, leaks and false positives (langfuse/langfuse-python#1896,
pydantic/logfire#1909 — the scrub marker echoed the secret —, pydantic/logfire#248 and #1344). Scrubbing
is on by default (`OTEL_DECISIONS_SCRUB`, `configure(scrub=...)`).

Every field a run records (`_privacy_recording.FIELDS`: goal description, input and output data, narrative,
intent, option descriptions, parameters, pros and cons, reasoning, constraints, context, result, error,
summary, state changes and the three problem texts) is given every kind of secret (`SECRETS`: Anthropic
and OpenAI `sk-` keys, AWS key ids and secret keys, GitHub tokens, JWTs, `Authorization: Bearer`,
`password=`, values of keys named like `api_key` — strings and ints, lists and dicts —, URL credentials
(with `@` in the password too), Azure SAS signatures, PEM private keys; `_privacy_secrets.py`), through
`Runtime` and through the decorators. Then, reading the raw span file: no 8-character fragment of the
secret is anywhere in it; and reading back through a brand-new `BuilderQuery`: the field is exactly the
ordinary text around the secret with `[REDACTED]` in its place. Exception messages are scrubbed in the
outcome and the span status, and the exception reaches the caller unchanged. The allow-list, the absence
of false positives on ordinary text, the `scrub=False` switch and the `Redactor`'s trigger pre-filter (a
property test against applying every rule) are tested too.
Content capture (complaint 13) is in `test_privacy_capture.py`; URL passwords holding `@`, SAS signatures,
lists and dicts under secret-named keys, and the rules' linear time in `test_privacy_gaps.py`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _readback import attrs, raw_spans, read_run, span_kind
from hypothesis import given, settings
from hypothesis import strategies as st

import otel_decisions as od
from otel_decisions import BuilderQuery, Runtime
from otel_decisions._redaction import REDACTED, Redactor
from reliability._privacy_recording import (
    API,
    FIELDS,
    RAISE_THROUGH,
    Field,
    decision_of,
    file_text,
    leaked_fragments,
    outcome_of,
    raise_through,
    record,
    run_roots,
)
from reliability._privacy_secrets import ANTHROPIC_KEY, AWS_KEY_ID, GITHUB_TOKEN, JWT, PEM, SECRETS, Secret

ERROR_TYPE = "error.type"
SESSION_ID = "abc123def456ghi789jkl012mno345pq"


@pytest.fixture(autouse=True)
def _default_settings() -> Iterator[None]:
    """Tests that `configure()` scrubbing leave the process-wide settings as they found them."""
    yield
    od.configure()


def assert_not_recorded(directory: Path, secret: str) -> None:
    """No 8-character fragment of `secret` is in the span files, raw or with JSON escapes undone, and
    every marker there is the bare `[REDACTED]` (pydantic/logfire#1909: markers echoing the match)."""
    text = file_text(directory)
    assert leaked_fragments(secret, text) == []
    assert_bare_markers(text)


def assert_bare_markers(text: str) -> None:
    markers = {text[m.start() - 1 : m.end() + 1] for m in re.finditer("REDACTED", text)}
    assert markers <= {REDACTED}


def status_message(span: dict[str, Any]) -> str | None:
    return (span.get("status") or {}).get("message")


# =========================================================================== every field, every secret
@pytest.mark.parametrize("api", API)
@pytest.mark.parametrize("secret", SECRETS, ids=str)
@pytest.mark.parametrize("field", FIELDS, ids=str)
def test_complaint_14_field_by_field_secret_is_scrubbed(
    tmp_path: Path, field: Field, secret: Secret, api: str
) -> None:
    run_id = record(api, tmp_path, **{field.name: secret.value(field.shape)})

    assert_not_recorded(tmp_path, secret.secret)
    run = read_run(tmp_path, run_id)
    assert field.read(run) == secret.scrubbed(field.shape)  # ordinary text kept, the marker in place
    spans = raw_spans(tmp_path, run_id)
    if field.name == "narrative":  # a failed run's narrative is its status message too
        [root] = run_roots(tmp_path)
        assert status_message(root) == secret.scrubbed_text
    if field.name == "error":  # a failed outcome's error is its status message too
        [outcome] = [s for s in spans if span_kind(s) == "outcome"]
        assert status_message(outcome) == secret.scrubbed_text


@pytest.mark.parametrize("secret", SECRETS, ids=str)
def test_decorator_arguments_and_set_outcome_result_are_scrubbed(tmp_path: Path, secret: Secret) -> None:
    """The paths `record()` does not take: reasoning given to `decision(...)` itself, and a result given
    to `set_outcome`."""
    result = secret.value("json")
    pick = od.decision("Pick", options=[{"id": "a"}, {"id": "b"}], chosen="a", reasoning=secret.text)
    with od.run("privacy", directory=tmp_path) as handle, pick as d:
        d.set_outcome(True, result=result)
    assert_not_recorded(tmp_path, secret.secret)
    decision = decision_of(read_run(tmp_path, handle.run_id))
    assert decision.reasoning == secret.scrubbed_text
    assert outcome_of(read_run(tmp_path, handle.run_id)).result == secret.scrubbed_data
    assert result == secret.value("json")  # the caller's object is not scrubbed in place


# =============================================================================== exception messages
@pytest.mark.parametrize("how", RAISE_THROUGH)
@pytest.mark.parametrize("secret", SECRETS, ids=str)
def test_complaint_14_exception_message_is_scrubbed_and_reaches_the_caller_unchanged(
    tmp_path: Path, secret: Secret, how: str
) -> None:
    message = f"bad key {secret.text}"
    error = ValueError(message)
    with pytest.raises(ValueError) as caught:
        raise_through(how, tmp_path, error)
    assert caught.value is error  # the very object, never a scrubbed copy
    assert caught.value.args == (message,) and str(caught.value) == message

    assert_not_recorded(tmp_path, secret.secret)
    [run] = od.BuilderQuery(tmp_path).storage.runs()
    outcome = outcome_of(run)
    assert outcome.success is False
    assert outcome.error == f"bad key {secret.scrubbed_text}"
    [span] = [s for s in raw_spans(tmp_path) if span_kind(s) == "outcome"]
    assert status_message(span) == f"bad key {secret.scrubbed_text}"
    assert attrs(span)[ERROR_TYPE] == "ValueError"


# ========================================================================================== allow-list
@pytest.mark.parametrize("api", API)
@pytest.mark.parametrize("allowed", [False, True])
def test_complaint_14_allow_list_keeps_listed_keys(tmp_path: Path, api: str, allowed: bool) -> None:
    """`session_id` names a secret by default; once allowed, its values are kept, in data and in text,
    while other secrets are still scrubbed."""
    if allowed:
        od.configure(scrub_allowed_keys=["session_id"])
    session = {"session_id": SESSION_ID, "api_key": ANTHROPIC_KEY}
    run_id = record(
        api,
        tmp_path,
        input_data=session,
        context=session,
        result=session,
        reasoning=f"Resumed session_id={SESSION_ID} with api_key={ANTHROPIC_KEY}",
    )
    kept = SESSION_ID if allowed else REDACTED
    run = read_run(tmp_path, run_id)
    decision = decision_of(run)
    for data in (run.input_data, decision.input_context, outcome_of(run).result):
        assert data == {"session_id": kept, "api_key": REDACTED}
    assert decision.reasoning == f"Resumed session_id={kept} with api_key={REDACTED}"
    assert_not_recorded(tmp_path, ANTHROPIC_KEY)
    assert (SESSION_ID in file_text(tmp_path)) is allowed


@pytest.mark.parametrize("api", API)
def test_our_own_execution_ids_are_allowed_by_default(tmp_path: Path, api: str) -> None:
    """A result holding the run's 32-hex execution id under `trace_id` / `execution_id` keeps it; the same
    value under a key off the allow-list is taken for an opaque token (which shows the list at work)."""
    if api == "runtime":
        runtime = Runtime(tmp_path)
        run_id = runtime.start_run("privacy")
        execution_id = runtime.execution_id
        result = {"trace_id": execution_id, "execution_id": execution_id, "ref": execution_id}
        decision_id = runtime.decide("Link", [{"id": "a", "description": "A"}], "a", "why")
        runtime.record_outcome(decision_id, True, result=result, summary=f"trace_id={execution_id}")
        runtime.end_run(True)
    else:
        with od.run("privacy", directory=tmp_path) as handle, od.decision("Link") as d:
            execution_id = od.current_run()
            result = {"trace_id": execution_id, "execution_id": execution_id, "ref": execution_id}
            d.set_outcome(True, result=result, summary=f"trace_id={execution_id}")
        run_id = handle.run_id
    assert re.fullmatch(r"[0-9a-f]{32}", execution_id)
    outcome = outcome_of(read_run(tmp_path, run_id))
    assert outcome.result == {"trace_id": execution_id, "execution_id": execution_id, "ref": REDACTED}
    assert outcome.summary == f"trace_id={execution_id}"


# ====================================================================================== false positives
ORDINARY_TEXT = (
    "The customer asked about invoice 4471 twice; we answered in 3 steps with max_tokens=1024, "
    "tokens_used=512, input_tokens=11 output_tokens=7 and temperature=0.7. Use sk-learn-pipelines, "
    "see https://example.com/docs?page=2#faq, run_20250101_120000_ab12cd34, dec_3 and prob_0. "
    "Reset the password via the settings page; the secret to success is patience. The token count: 15. "
    "Bearer of bad news; authorization was granted. primary key: customer_id, cache_key=user-42. "
    "Prices: $19.99 and 20%. Straße, 日本語, 🙂."
)
ORDINARY_DATA: dict[str, Any] = {
    "max_tokens": 1024,
    "tokens_used": 512,
    "total_tokens": 2048,
    "token_count": 15,
    "primary_key": "customer_id",
    "cache_key": "user-42",
    "keywords": ["refund", "late"],
    "passed": 12,
    "ratio": 0.75,
    "note": ORDINARY_TEXT,
    "run": "run_20250101_120000_ab12cd34",
}


@pytest.mark.parametrize("api", API)
def test_complaint_14_ordinary_text_and_numbers_are_left_alone(tmp_path: Path, api: str) -> None:
    values = {
        f.name: {"text": ORDINARY_TEXT, "json": ORDINARY_DATA, "list": [ORDINARY_TEXT, "max_tokens=1024"]}[
            f.shape
        ]
        for f in FIELDS
    }
    run_id = record(api, tmp_path, **values)
    run = read_run(tmp_path, run_id)
    assert {f.name: f.read(run) for f in FIELDS} == values
    assert "REDACTED" not in file_text(tmp_path)


# ============================================================================================ scrub off
@pytest.mark.parametrize("api", API)
def test_scrub_off_records_secrets_verbatim(tmp_path: Path, api: str) -> None:
    """`configure(scrub=False)` does switch scrubbing off (so the tests above test the switch's default)."""
    od.configure(scrub=False)
    secret = SECRETS[0]
    values = {f.name: secret.value(f.shape) for f in FIELDS}
    run_id = record(api, tmp_path, **values)
    run = read_run(tmp_path, run_id)
    assert {f.name: f.read(run) for f in FIELDS} == values
    assert ANTHROPIC_KEY in file_text(tmp_path)
    assert "REDACTED" not in file_text(tmp_path)


# ====================================================================== everything at once (complaint 14)
def test_complaint_14_every_decision_field_redacted_marker_echoes_nothing(tmp_path: Path) -> None:
    """One run with a different kind of secret in every field at once, a secret-bearing exception and
    an allowed key: nothing of any secret is in the file, every marker is the bare `[REDACTED]`, every
    field reads back with the ordinary text around it intact, and the allowed key's value is kept."""
    od.configure(scrub_allowed_keys=["session_id"])
    kinds = {f.name: SECRETS[i % len(SECRETS)] for i, f in enumerate(FIELDS)}
    values: dict[str, Any] = {f.name: kinds[f.name].value(f.shape) for f in FIELDS}
    values["context"] = {**values["context"], "session_id": SESSION_ID}
    run_id = record("decorators", tmp_path, **values)
    with pytest.raises(ValueError), od.run("privacy", directory=tmp_path), od.decision("Deploy"):
        raise ValueError(f"token rejected: {JWT}")

    text = file_text(tmp_path)
    for secret in SECRETS:
        assert leaked_fragments(secret.secret, text) == [], secret.kind
    assert_bare_markers(text)
    assert "token rejected: [REDACTED]" in text
    run = read_run(tmp_path, run_id)
    for f in FIELDS:
        expected = kinds[f.name].scrubbed(f.shape)
        if f.name == "context":
            expected = {**expected, "session_id": SESSION_ID}
        assert f.read(run) == expected, f.name


# ============================================================================ the tool a decision calls
@pytest.mark.parametrize("api", API)
def test_tool_name_from_action_params_is_scrubbed(tmp_path: Path, api: str) -> None:
    options = [
        {
            "id": "web",
            "description": "Search the web",
            "action_type": "tool_call",
            "action_params": {"tool": f"web_search {GITHUB_TOKEN}"},
        }
    ]
    if api == "runtime":
        runtime = Runtime(tmp_path)
        runtime.start_run("privacy")
        runtime.record_outcome(runtime.decide("Search", options, "web", "why"), True)
        runtime.end_run(True)
    else:
        with od.run("privacy", directory=tmp_path), od.decision("Search", options=options, chosen="web"):
            pass
    [outcome] = [s for s in raw_spans(tmp_path) if span_kind(s) == "outcome"]
    assert outcome["name"].startswith("execute_tool web_search")  # the tool is named...
    assert_not_recorded(tmp_path, GITHUB_TOKEN)  # ...but not its secret


# ======================================================================= the Redactor's trigger filter
_REDACTOR = Redactor()


def _every_rule(text: str) -> str:
    """What `Redactor.text` must return: every rule's pattern applied in order, with no trigger filter
    (the keyed rules' replacements, which apply the allow-list, are the Redactor's own)."""
    for rule, replacement in _REDACTOR._rules:
        text = rule.pattern.sub(replacement, text)
    return text


_PIECES = [
    *(s.secret for s in SECRETS),
    *("sk-", "eyJ", "AKIA", "ASIA", "ghp_", "github_pat_", "xoxb-", "AIza", "Zq8vLm2Xw9Rt4Yp7Kc1Nb6"),
    *("password", "passwd", "pwd", "api_key", "x-api-key", "apikey", "token", "secret", "client_secret"),
    *("session_id", "trace_id", "execution_id", "cookie", "credentials", "private_key", "access_key"),
    *("Authorization", "authorization: ", "Bearer ", "bearer ", "Basic ", "Token "),
    *("=", ":", ": ", '"', "'", '\\"', "{", "}", "[", "]", ",", ";", " ", "\n", "\t", "://", "@"),
    *("https://", "user:", "-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----", "MIIEvQIBADAN"),
    *('{"api_key": "', '", "', '"password": ', "token=", "max_tokens", "1024", "the", "run_1", "dec_0"),
    *("0123456789abcdef0123456789abcdef", "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3", REDACTED, "[REDACTED"),
    *("é", "日本語", "🙂", "\u00a0", "Straße", "ΣΑΣ", "\u2028"),
    *("auth", "Auth", "oauth", "author", '{"auth": [', "'pwd': {", "?sv=1&sig=", "sig%3D", "%2B", "%26"),
]
# Characters Unicode case folding equates with ASCII letters although `str.lower()` does not map them
# there (the rules match ASCII case only, see `test_trigger_filter_and_unicode_case_folding`).
_CONFUSABLES = "\u0130\u0131\u017f"
_TEXTS = st.lists(
    st.one_of(
        st.sampled_from(_PIECES),
        st.sampled_from(_CONFUSABLES),
        st.text(st.characters(codec="utf-8"), max_size=5),
    ),
    max_size=14,
).map("".join)


@settings(max_examples=600, deadline=None)
@given(_TEXTS)
def test_trigger_filter_never_changes_the_result(text: str) -> None:
    assert _REDACTOR.text(text) == _every_rule(text)
    assert Redactor().text(text) == _every_rule(text)  # a fresh cache too


@settings(max_examples=300, deadline=None)
@given(_TEXTS)
def test_redaction_is_idempotent(text: str) -> None:
    once = _REDACTOR.text(text)
    assert _REDACTOR.text(once) == once


@pytest.mark.parametrize(
    "text",
    [
        "paſſword=hunter2abc",
        "ſecret: my words",
        "credentıal=hunter2abc",
        "sessıon_id=hunter2abc",
        "authorİzation: Basic abcdef",
    ],
)
def test_trigger_filter_and_unicode_case_folding(text: str) -> None:
    assert _REDACTOR.text(text) == _every_rule(text)


def test_the_reference_is_not_vacuous() -> None:
    """The property tests compare with a reference that does redact (so equality is not trivial)."""
    for secret in (ANTHROPIC_KEY, AWS_KEY_ID, GITHUB_TOKEN, JWT, PEM):
        assert _every_rule(f"x {secret} y") == f"x {REDACTED} y"
    kept = "trace_id=" + "ab" * 16
    assert _every_rule(f"password=hunter2 and {kept}") == f"password={REDACTED} and {kept}"


def test_authorization_headers_and_cookies_in_json_values_are_scrubbed(tmp_path: Path) -> None:
    runtime = Runtime(tmp_path)
    run_id = runtime.start_run("headers")
    decision = runtime.decide(
        "call the API",
        [{"id": "get", "action_params": {"headers": {"Authorization": "Basic dXNlcjpodW50ZXIy"}}}],
        "get",
        "r",
        context={"cookies": "sessionhunter2", "Proxy-Authorization": "Token abc123def"},
    )
    runtime.record_outcome(decision, success=True)
    runtime.end_run(success=True)
    raw = (tmp_path / "traces.jsonl").read_text()
    for secret in ("dXNlcjpodW50ZXIy", "sessionhunter2", "abc123def"):
        assert secret not in raw
    run = BuilderQuery(tmp_path).get_full_run(run_id)
    assert run is not None
    assert run.decisions[0].options[0].action_params == {"headers": {"Authorization": REDACTED}}
    assert run.decisions[0].input_context == {"cookies": REDACTED, "Proxy-Authorization": REDACTED}
