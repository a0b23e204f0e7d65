"""Scrub secret-looking strings from text before it leaves the machine.

Agents record what they saw: prompts, tool arguments, error messages. Those can hold API keys or
passwords, and the Builder may send a summary of them to a third party (Claude, for `suggest --llm`).
`redact_text` replaces every secret-looking substring with `REDACTED` and `redact_value` does so for
every string in nested data (dict keys included), so one call makes a payload safe to send or show.

The rules are patterns, not a proof: they aim at the secrets agents actually leak and accept a few
false positives (a redacted harmless token) over a leaked key. The marker never echoes the secret,
not even a prefix or a length. What is recognised (`RULES`, applied in order):

- provider keys by their documented prefixes: Anthropic / OpenAI ``sk-...`` (``sk-ant-api03-...``,
  ``sk-proj-...``), AWS access key ids ``AKIA...``/``ASIA...``, GitHub ``ghp_...`` and friends, Slack
  ``xox?-...``, Google ``AIza...``;
- JSON Web Tokens (``eyJ...eyJ....``) and PEM private key blocks;
- ``Bearer <token>`` and ``Authorization: <scheme> <credentials>``;
- credentials in URLs (``https://user:secret@host``);
- ``key=value`` / ``key: value`` / ``"key": "value"`` where the key names a secret (password, passwd, pwd,
  secret, token, api_key, access_key, private_key, credential(s), ...); the key and separator are kept so
  a reader still sees *what* was removed;
- a long opaque value in any ``key=value`` (32+ hex or base64 characters mixing letters and digits),
  which catches keys whose name gives nothing away. A trace id written as ``trace_id=<32 hex>`` is
  redacted too: the price of the rule.

Ordinary prose, run and decision ids (``run_20250101_120000_ab12cd34``, ``dec_3``), numbers and
counters such as ``max_tokens=1024`` are left alone. Redaction is idempotent: redacting twice gives the
same text as once.

To extend: add a `Rule` to `RULES` (a compiled pattern and its replacement), with a test for both the
secret it catches and the ordinary text it must leave alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["REDACTED", "RULES", "Rule", "redact_text", "redact_value"]

#: What a secret is replaced with.
REDACTED: Final = "[REDACTED]"

#: Names of keys whose value is a secret, as a regex alternation (matched case-insensitively, as the
#: last part of a key: `db_password`, `x-api-key` and `client_secret` count, `max_tokens` does not).
_SECRET_KEYS: Final = (
    r"pass(?:word|wd|phrase)|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|secret[_-]?key"
    r"|private[_-]?key|credentials?|session[_-]?id|cookie"
)
#: A value not already redacted (keeps redaction idempotent).
_NOT_REDACTED: Final = r"(?!" + re.escape(REDACTED) + r")"

Replacement = str | Callable[[re.Match[str]], str]


@dataclass(frozen=True, slots=True)
class Rule:
    """One kind of secret: `pattern` finds it, `replacement` (as for `re.sub`) says what stays."""

    name: str
    pattern: re.Pattern[str]
    replacement: Replacement = REDACTED


def _keep_prefix(match: re.Match[str]) -> str:
    """Keep group 1 (a key and its separator, a scheme, ...), redact the rest of the match."""
    return match.group(1) + REDACTED


def _keep_quotes(match: re.Match[str]) -> str:
    """Keep group 1 (a key and its separator) and the quotes around the value in group 2 (a quoted
    value is removed whole, spaces included)."""
    value = match.group(2)
    quote = '\\"' if value.startswith('\\"') else value[0] if value[0] in "\"'" else ""
    return match.group(1) + quote + REDACTED + quote


RULES: Final[tuple[Rule, ...]] = (
    Rule(
        "pem_private_key",
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.DOTALL
        ),
    ),
    Rule("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")),
    # sk-ant-api03-..., sk-proj-..., sk-...: at least 20 characters with a digit among them, so words
    # such as "sk-learn-pipelines" stay.
    Rule("sk_key", re.compile(r"\bsk-(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{20,}")),
    Rule("aws_access_key_id", re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA)[0-9A-Z]{16}\b")),
    Rule("github_token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})")),
    Rule("slack_token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    Rule("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    Rule(
        "authorization_header",
        re.compile(
            # `?+` (possessive): a scheme followed by the marker is never re-read as the credential.
            r"(?i)(\bauthorization\s*[:=]\s*[\"']?(?:(?:basic|bearer|token|digest)\s+)?+)"
            + _NOT_REDACTED
            + r"[^\s\"',;]+"
        ),
        _keep_prefix,
    ),
    Rule(
        "bearer_token",
        re.compile(r"(?i)(\bbearer\s+)" + _NOT_REDACTED + r"[A-Za-z0-9\-._~+/]{8,}=*"),
        _keep_prefix,
    ),
    Rule(
        "url_credentials", re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]+:)[^\s/@]+(?=@)"), _keep_prefix
    ),
    Rule(
        # `password: my secret phrase` (prose, logs, YAML): every word of the value, up to a comma,
        # a semicolon, a quote or the next `key: value`.
        "secret_key_colon_text",
        re.compile(
            r"(?i)(\b[\w.-]*?(?:"
            + _SECRET_KEYS
            + r")(?:\\?[\"'])?[ \t]*:[ \t]+)"
            + _NOT_REDACTED
            # words up to punctuation that ends a field, or a word that starts another `key=`/`key:`
            + r"([^\s\"'\\{}\[\],;]+(?:[ \t]+(?![^\s\"']*[:=])[^\s\"'\\{}\[\],;]+)*)"
        ),
        _keep_prefix,
    ),
    Rule(
        "secret_key_value",
        re.compile(
            r"(?i)(\b[\w.-]*?(?:"
            + _SECRET_KEYS
            + r")(?:\\?[\"'])?\s*[:=]\s*)(?!(?:\\?[\"'])?"
            + re.escape(REDACTED)
            + r")"
            # an escaped quoted value (JSON inside a JSON string), a quoted value (escapes inside), or
            # everything up to the next space: `password=abc;rest` loses `abc;rest`, not just `abc`
            + r"(\\\"(?:[^\"\\]|\\[^\"])*\\\"|\"(?:\\.|[^\"\\\n])*\"|'[^'\n]*'|[^\s\"']+)"
        ),
        _keep_quotes,
    ),
    Rule(
        "opaque_key_value",
        re.compile(
            r"(\b[\w.-]+[\"']?\s*[:=]\s*[\"']?)(?!/)"
            r"(?=[A-Za-z0-9+/_-]*[0-9])(?=[A-Za-z0-9+/_-]*[A-Za-z])[A-Za-z0-9+/_-]{32,}={0,2}"
        ),
        _keep_prefix,
    ),
)


def redact_text(text: str) -> str:
    """`text` with every secret-looking substring replaced by `REDACTED` (see the module docstring)."""
    for rule in RULES:
        text = rule.pattern.sub(rule.replacement, text)
    return text


def redact_value(value: Any) -> Any:
    """`value` with `redact_text` applied to every string in it, recursively.

    Dicts (their string keys too), lists, tuples, sets and frozensets are rebuilt with the same type
    (any other mapping becomes a dict); everything else (numbers, None, objects) is returned as is.
    When two keys redact to the same text the later one wins, which only happens to keys that were
    secrets.
    """
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {(redact_text(k) if isinstance(k, str) else k): redact_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(redact_value(v) for v in value)
    if isinstance(value, set | frozenset):
        return type(value)(redact_value(v) for v in value)
    return value
