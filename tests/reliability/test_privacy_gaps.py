"""Privacy, part 1b: three gaps of the secret scrubber, and its linear time (see `test_privacy.py`).

- A URL password holding `@` (``https://alice:p@ss@w0rd@db.example.com``) is redacted whole: everything
  from the first `:` after the user to the last `@` before the host.
- The signature of a URL-encoded Azure SAS URL (``...&sig=AbC%2Bdef%2F123%3D``) is redacted whole, in a
  URL, in plain text and in JSON, with the other query parameters kept.
- The value of a secret-named key (``auth``, ``credentials``, ``password``, ``passwd``, ``pwd``, ...) is
  replaced whole whatever its type (a list, a dict), in data and in JSON or Python text; keys that only
  look alike (``author``, ``authority``, ``oauth_provider_name``) are left alone.

These kinds are also among `_privacy_secrets.SECRETS`, so `test_privacy.py` records each of them in
every field, through both APIs. Every rule runs over 100 KB of adversarial text in well under a second.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from otel_decisions._privacy import ContentPolicy
from otel_decisions._redaction import REDACTED, RULES, Redactor

R = REDACTED
_REDACTOR = Redactor()


def scrub(text: str) -> str:
    """`Redactor.text`, checked to be idempotent and the same with a fresh cache."""
    once = _REDACTOR.text(text)
    assert _REDACTOR.text(once) == once
    assert Redactor().text(text) == once
    return once


def assert_gone(out: str, *pieces: str) -> None:
    """None of `pieces` (parts of a secret) is in `out`, and the marker is."""
    assert [p for p in pieces if p in out] == []
    assert R in out


# ======================================================================== 1. a URL password with `@`
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "https://alice:p@ss@w0rd@db.example.com:5432/app",
            f"https://alice:{R}@db.example.com:5432/app",
        ),
        ("postgres://u:a@b@c@host/db?sslmode=require", f"postgres://u:{R}@host/db?sslmode=require"),
        ("see redis://:p@ss@w0rd@cache:6379 now", f"see redis://:{R}@cache:6379 now"),
        ("mysql://u:p@ss@w0rd@[::1]:3306/x", f"mysql://u:{R}@[::1]:3306/x"),
        # an `@` in the query belongs to the query, not the password
        (
            "https://u:p@ss@w0rd@api.example.com?email=bob@example.com",
            f"https://u:{R}@api.example.com?email=bob@example.com",
        ),
        # `?` and `#` in a password (not valid in a URL, but written by hand) are redacted too
        ("https://u:p?ss@host/x", f"https://u:{R}@host/x"),
        ("https://u:p#s@s@w0rd@host/x", f"https://u:{R}@host/x"),
        # in JSON text, compact: the password ends at its URL's last `@`, not at a later string's
        (
            '{"a":"https://u:p@ss@w0rd@h/x","b":"c@d"}',
            f'{{"a":"https://u:{R}@h/x","b":"c@d"}}',
        ),
    ],
)
def test_url_password_with_at_signs_is_redacted_whole(text: str, expected: str) -> None:
    out = scrub(text)
    assert out == expected
    assert_gone(out, "w0rd", "ss@", "@ss", "p@")


@pytest.mark.parametrize(
    "text",
    [
        "https://example.com:8443/path?q=a@b",
        "ssh://git@github.com:22/org/repo",
        "mailto:bob@example.com and bob@example.com:25",
        "https://example.com/?q=a@b:c@d",
        "see https://example.com/docs?page=2#faq",
    ],
)
def test_urls_without_a_password_are_left_alone(text: str) -> None:
    assert scrub(text) == text


def test_url_password_with_at_signs_in_data() -> None:
    dsn = "postgres://alice:p@ss@w0rd@db.example.com:5432/app"
    out = _REDACTOR.data({"dsn": dsn, "hosts": [dsn]})
    expected = f"postgres://alice:{R}@db.example.com:5432/app"
    assert out == {"dsn": expected, "hosts": [expected]}


# ================================================================== 2. a URL-encoded Azure SAS signature
SAS = "https://acct.blob.core.windows.net/c/b?sv=2022-11-02&se=2026-01-01&sp=r&sig=AbC%2Bdef%2F123%3D"
SAS_SCRUBBED = f"https://acct.blob.core.windows.net/c/b?sv=2022-11-02&se=2026-01-01&sp=r&sig={R}"
SIG_PIECES = ("AbC", "%2Bdef", "%2F123", "123%3D")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (SAS, SAS_SCRUBBED),
        (f"Download {SAS} now.", f"Download {SAS_SCRUBBED} now."),
        ("go &sig=AbC%2Bdef%2F123%3D now", f"go &sig={R} now"),
        ("sig=AbC%2Bdef%2F123%3D&sp=r", f"sig={R}&sp=r"),
        ("https://a.blob.core.windows.net/c?sig=AbC%2Bdef%2F123%3D&sv=2022-11-02", None),
        (
            "<a href='https://a/c?sv=1&amp;sig=AbC%2Bdef%2F123%3D&amp;sp=r'>",
            f"<a href='https://a/c?sv=1&amp;sig={R}&amp;sp=r'>",
        ),
        # a SAS URL inside a URL (double-encoded) and in JSON written with `\u0026` for `&`
        ("next=https%3A%2F%2Fa%2Fc%3Fsv%3D1%26sig%3DAbC%252Bdef%252F123%253D%26sp%3Dr", None),
        (
            '{"url": "https://a/c?sv=1\\u0026sig=AbC%2Bdef%2F123%3D"}',
            f'{{"url": "https://a/c?sv=1\\u0026sig={R}"}}',
        ),
        # JSON text, and JSON inside a JSON string
        (f'{{"url": "{SAS}"}}', f'{{"url": "{SAS_SCRUBBED}"}}'),
        (
            f'{{"detail": "{{\\"url\\": \\"{SAS}\\"}}"}}',
            f'{{"detail": "{{\\"url\\": \\"{SAS_SCRUBBED}\\"}}"}}',
        ),
    ],
)
def test_sas_signature_is_redacted_whole(text: str, expected: str | None) -> None:
    out = scrub(text)
    if expected is not None:
        assert out == expected
    assert_gone(out, *SIG_PIECES, "%252Bdef")
    for kept in ("sv=2022-11-02", "se=2026-01-01", "sp=r", "sv=1", "sv%3D1", "sp%3Dr", "https://a"):
        assert (kept in out) is (kept in text), kept  # the other parameters and the host are kept


def test_sas_signature_in_a_json_string_value() -> None:
    value = {"blob": {"url": SAS, "expires": "2026-01-01"}, "urls": [SAS]}
    assert _REDACTOR.data(value) == {
        "blob": {"url": SAS_SCRUBBED, "expires": "2026-01-01"},
        "urls": [SAS_SCRUBBED],
    }
    encoded = ContentPolicy().json(value)
    assert encoded is not None
    assert_gone(encoded, *SIG_PIECES)
    assert "sv=2022-11-02&se=2026-01-01&sp=r&sig=" in encoded


@pytest.mark.parametrize(
    "text",
    [
        "significance: p<0.05 (sig=0.01), sig=true, sig=yes",
        "design=abcdefgh12345678 and config_sig=abcdefgh12345678",
        "signature verified; the sig is fine",
    ],
)
def test_sig_lookalikes_are_left_alone(text: str) -> None:
    assert scrub(text) == text


# ============================================================= 3. secret-named keys holding lists or dicts
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"auth": ["alice", "hunter2"]}, {"auth": R}),
        ({"credentials": {"user": "a", "pass": "b"}}, {"credentials": R}),
        ({"password": ["x"]}, {"password": R}),
        ({"passwd": {"old": "x", "new": "y"}}, {"passwd": R}),
        ({"pwd": ("x", "y")}, {"pwd": R}),
        ({"Auth": {"type": "basic", "value": "x"}, "n": 1}, {"Auth": R, "n": 1}),
        ({"basic_auth": ["alice", "hunter2"], "proxy-auth": ["x"]}, {"basic_auth": R, "proxy-auth": R}),
        ({"http.auth": {"user": "a"}}, {"http.auth": R}),
        ({"config": {"db": {"auth": {"user": "a", "password": "b"}}}}, {"config": {"db": {"auth": R}}}),
        ([{"auth": ["a", "b"]}, {"credential": [1, 2]}], [{"auth": R}, {"credential": R}]),
        ({"auth": None, "pwd": 0, "credentials": {}}, {"auth": R, "pwd": R, "credentials": R}),
    ],
)
def test_secret_named_key_value_is_redacted_whole_whatever_its_type(value: Any, expected: Any) -> None:
    assert _REDACTOR.data(value) == expected


@pytest.mark.parametrize(
    "key",
    [
        "author",
        "authors",
        "authority",
        "oauth",
        "oauth_provider_name",
        "authorized",
        "auth_method",
        "authentication",
        "co_author",
        "passed",
        "password_policy",
        "credential_type",
        "max_tokens",
    ],
)
def test_keys_that_only_look_secret_are_left_alone(key: str) -> None:
    assert not _REDACTOR.secret_key(key)
    value = {key: ["Jane", "Doe"]}
    assert _REDACTOR.data(value) == value


@pytest.mark.parametrize(
    "key", ["auth", "AUTH", "x-auth", "basic_auth", "credentials", "passwd", "pwd", "db_pwd"]
)
def test_auth_credentials_passwd_pwd_are_secret_named(key: str) -> None:
    assert _REDACTOR.secret_key(key)
    assert not Redactor(allowed_keys=[key.lower()]).secret_key(key)  # the allow-list still wins


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"auth": ["alice", "hunter2"]}', f'{{"auth": {R}}}'),
        ('{"credentials": {"user": "alice", "pass": "hunter2"}}', f'{{"credentials": {R}}}'),
        ('{"password": ["hunter2"], "n": 1}', f'{{"password": {R}, "n": 1}}'),
        ("{'pwd': ['alice', 'hunter2'], 'n': 1}", f"{{'pwd': {R}, 'n': 1}}"),
        ("password: [alice, hunter2] next", f"password: {R} next"),
        ("auth={user: alice, pass: hunter2} next", f"auth={R} next"),
        # brackets and quotes inside the strings, nesting, pretty-printed JSON
        (
            '{"credentials": {"pass": "x}]hunter2", "user": "alice"}, "n": 1}',
            f'{{"credentials": {R}, "n": 1}}',
        ),
        ('{"auth": [{"u": "alice", "p": ["hunter2", {"k": "v"}]}], "n": 1}', f'{{"auth": {R}, "n": 1}}'),
        ('{"auth": {\n  "user": "alice",\n  "pass": "hunter2"\n},\n"n": 1}', f'{{"auth": {R},\n"n": 1}}'),
        # JSON inside a JSON string (an error body quoted in an error message)
        (
            '{"detail": "{\\"auth\\": [\\"alice\\", \\"hun]ter2\\"], \\"n\\": 1}"}',
            f'{{"detail": "{{\\"auth\\": {R}, \\"n\\": 1}}"}}',
        ),
        # cut short (a capped value): everything after the opening bracket goes
        ('{"auth": ["alice", "hunter2', f'{{"auth": {R}'),
    ],
)
def test_secret_named_key_with_a_list_or_dict_in_text_is_redacted_whole(text: str, expected: str) -> None:
    out = scrub(text)
    assert out == expected
    assert_gone(out, "alice", "hunter2", "hun")


@pytest.mark.parametrize(
    "text",
    [
        "author: Jane Doe, authority=https://login.example.com, oauth_provider_name=google",
        '{"author": ["Jane", "Doe"], "authority": {"url": "x"}, "oauth_provider_name": "google"}',
        "Two-factor authentication is on; the author signed it.",
    ],
)
def test_auth_lookalikes_in_text_are_left_alone(text: str) -> None:
    assert scrub(text) == text


def test_attributes_of_other_instrumentations_under_secret_named_keys_are_redacted_whole() -> None:
    """Claude-call spans copy the Anthropic instrumentation's attributes (`foreign_attributes`):
    a secret-named key's text goes whole; counts and ordinary GenAI attributes stay."""
    kept = {
        "gen_ai.usage.input_tokens": 5,
        "gen_ai.request.max_tokens": 10,
        "gen_ai.response.id": "msg_01",
        "gen_ai.token.type": "input",
        "gen_ai.response.finish_reasons": ["end_turn"],
    }
    secret = {
        "db.password": "hunter2",
        "http.auth": ["alice", "hunter2"],
        "http.request.header.authorization": ["Bearer abc"],
    }
    out = ContentPolicy().foreign_attributes({**kept, **secret})
    assert out == {**kept, **dict.fromkeys(secret, R)}
    assert ContentPolicy(scrub=False).foreign_attributes(secret) == secret


def test_secret_named_key_with_a_list_is_scrubbed_when_recorded_as_json() -> None:
    """The pre-filter (`suspect`) lets the JSON through to the key-aware walk: `auth` is a trigger."""
    policy = ContentPolicy()
    assert policy.redactor.suspect('{"auth":["alice","hunter2"]}')
    encoded = policy.json({"auth": ["alice", "hunter2"], "author": "Jane"})
    assert encoded == f'{{"auth":"{R}","author":"Jane"}}'


# ============================================================================================ linear time
N = 100_000
ADVERSARIAL = {
    "url_many_at": "https://u:" + "@" * N,
    "url_p_at": "https://u:" + "p@" * N,
    "url_query_at": "https://u:p" + "?@" * N,
    "url_repeated": ("a://u:" + "p" * 300) * (N // 300),
    "url_schemes": "a://" * N,
    "url_colons": "://:@" * N,
    "sig_repeated": "&sig=" * N,
    "sig_percent": "sig=" + "%" * N,
    "sig_encoded_amp": "sig=%26" * N,
    "sig_encoded": "sig%3D" * N,
    "auth_open_lists": '{"auth": [' * N,
    "auth_open_strings": '{"auth": ["' * N,
    "auth_escaped_quotes": 'auth: [\\"' * N,
    "password_deep": '"password": {' + "[" * N,
    "pwd_quotes": "pwd=[" + '"' * N,
    "password_apostrophes": "password: [" + "'" * N,
    "auth_backslashes": "auth=[" + "\\" * N,
    "credentials_escaped": "credentials: {" + '\\"' * N,
    "credentials_mixed": "credentials: {" + '[\\"a"\'\\\\]{' * N,
    "auth_balanced": "auth: [" + "[] " * N,
    "password_words": "password: " + "a " * N,
    "password_unclosed": 'password="' + "a" * N,
    "password_repeated": "password" * N,
    "auth_repeated": "auth" * N,
    "key_prefixes": "a." * 40 + "auth: [" + "x" * N,
    "pem": "-----BEGIN PRIVATE KEY-----" * N,
    "jwt": "eyJaaaa." * N,
    "sk": "sk-" * N,
    "sk_long": "sk-" + "a" * N,
    "bearer": "Bearer " * N,
    "authorization": "authorization: " * N,
    "opaque": "k=" + "a" * N,
    "letters": "a" * N,
}


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_every_rule_is_linear_on_100kb_of_adversarial_text(name: str) -> None:
    text = ADVERSARIAL[name][:N]
    rules = Redactor()._rules
    assert len(rules) == len(RULES)
    start = time.process_time()  # CPU time of this process: another busy process does not count
    for rule, replacement in rules:
        rule.pattern.sub(replacement, text)
    assert time.process_time() - start < 1.0
