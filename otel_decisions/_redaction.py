"""Scrub secret-looking strings from text and data before they are recorded or leave the machine.

Agents record what they saw: prompts, tool arguments, error messages. Those can hold API keys or
passwords; the recorder writes them to files and backends, and the Builder may send a summary of them
to a third party (Claude, for `suggest --llm`). `Redactor.text` replaces every secret-looking substring
with `REDACTED`; `Redactor.data` does so for every string in nested data (dict keys included) and also
replaces, whole, the value of any key that names a secret, whatever its type (`{"api_key": ...}`,
`{"password": 1234}`, `{"auth": ["alice", "hunter2"]}`), and any long opaque token held by a key.
`redact_text` / `redact_value` are the same with the default allow-list.

Speed: recording calls this on every decision, so each rule has trigger literals (``sk-``, ``token``,
``://``, ...) looked for in the lower-cased text first, and only the rules whose triggers occur run their
pattern; short texts seen before come from a bounded cache.

The rules are patterns, not a proof: they aim at the secrets agents actually leak and accept a few
false positives (a redacted harmless token) over a leaked key. The marker never echoes the secret,
not even a prefix or a length. What is recognised (`RULES`, applied in order):

- provider keys by their documented prefixes: Anthropic / OpenAI ``sk-...`` (``sk-ant-api03-...``,
  ``sk-proj-...``), AWS access key ids ``AKIA...``/``ASIA...``, GitHub ``ghp_...`` and friends, Slack
  ``xox?-...``, Google ``AIza...``;
- JSON Web Tokens (``eyJ...eyJ....``) and PEM private key blocks;
- ``Bearer <token>`` and ``Authorization: <scheme> <credentials>``;
- credentials in URLs (``https://user:secret@host``; a password holding ``@`` ends at the last one);
- Azure SAS signatures in URLs (``?sv=...&sig=AbC%2Bdef%3D``, percent-escapes included);
- ``key=value`` / ``key: value`` / ``"key": "value"`` where the key names a secret (password, passwd, pwd,
  secret, token, api_key, access_key, private_key, credential(s), auth, ...), the value being a word, a
  quoted string, or a list or dict written as JSON or Python (removed whole); the key and separator are
  kept so a reader still sees *what* was removed;
- a long opaque value in any ``key=value`` (32+ hex or base64 characters mixing letters and digits),
  which catches keys whose name gives nothing away. Keys on the allow-list (`DEFAULT_ALLOWED_KEYS`:
  trace, span and execution ids, plus any the caller adds) are never redacted by name or by this rule.

Ordinary prose, run and decision ids (``run_20250101_120000_ab12cd34``, ``dec_3``), numbers and
counters such as ``max_tokens=1024`` are left alone. Redaction is idempotent: redacting twice gives the
same text as once.

To extend: add a `Rule` to `RULES` (a compiled pattern, its replacement and its trigger literals), with
a test for both the secret it catches and the ordinary text it must leave alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["DEFAULT_ALLOWED_KEYS", "REDACTED", "RULES", "Redactor", "Rule", "redact_text", "redact_value"]

#: What a secret is replaced with.
REDACTED: Final = "[REDACTED]"

#: Names of keys whose value is a secret, as a regex alternation (matched case-insensitively, as the
#: last part of a key: `db_password`, `x-api-key` and `client_secret` count, `max_tokens` does not).
#: Every name is anchored at the end of the key (followed by its separator in text, by the end of a dict
#: key), so `author`, `authority`, `password_policy` and `credential_type` are not secret-named. `auth`
#: (`{"auth": ["alice", "hunter2"]}`, `basic_auth`, `x-auth`) is also anchored at its start: it must begin
#: the key or follow a non-alphanumeric character, so `oauth` is not a secret name either (its value, if
#: a token, is caught by the other rules). `pass` alone (test passes, pipeline passes) is not a name.
_SECRET_KEYS: Final = (
    # password passwd passphrase pwd private_key / secret secret_key session_id / token / credential(s)
    # cookie / api_key apikey access_key auth: grouped by first letter, so that the key rules, which try
    # this at every position of a word, try one branch per position, not one per name.
    r"p(?:ass(?:word|wd|phrase)|wd|rivate[_-]?key)|se(?:cret(?:[_-]?key)?|ssion[_-]?id)|token"
    r"|c(?:redentials?|ookie)|a(?:pi[_-]?key|ccess[_-]?key|(?<![A-Za-z0-9]a)uth)"
)
#: A value not already redacted (keeps redaction idempotent).
_NOT_REDACTED: Final = r"(?!" + re.escape(REDACTED) + r")"

Replacement = str | Callable[[re.Match[str]], str]


#: Lower-cased words whose presence in a text may mean a `key=secret` pair. Case-insensitive rules
#: match ASCII letters only (`(?a)`), as `str.lower()` does for these words: Unicode case folding
#: would let `paſſword` match a rule whose trigger `pass` is not in the text.
_KEY_TRIGGERS: Final = ("pass", "pwd", "secret", "token", "key", "credential", "session", "cookie", "auth")


@dataclass(frozen=True, slots=True)
class Rule:
    """One kind of secret: `pattern` finds it, `replacement` (as for `re.sub`) says what stays.

    `triggers`: lower-cased literals, one of which occurs in any text the pattern matches (the pattern
    only runs when one does); `keyed`: group 1 starts with the key the secret belongs to (the allow-list
    applies); `long_token`: the rule needs a run of 32+ token characters instead of a literal."""

    name: str
    pattern: re.Pattern[str]
    replacement: Replacement = REDACTED
    triggers: tuple[str, ...] = ()
    keyed: bool = False
    long_token: bool = False


def _bracketed(depth: int) -> str:
    """A value in brackets or braces (a JSON or Python list or dict, as text), nested up to `depth` deep.

    Strings inside (``"..."``, ``'...'``, and ``\\"...\\"`` in JSON quoted inside a JSON string) are
    skipped whole, so brackets in them do not count. Every loop is possessive and every closing bracket
    optional: the pattern never fails once it has seen the opening bracket, so it is never retried from
    a later position (linear time), and a value cut short (a capped text) or unbalanced is removed up
    to the end of the text rather than leaked. Brackets nested deeper than `depth` are read as siblings
    at the deepest level: nothing inside is left, only a stray closing bracket or two after the marker.
    """
    atoms = "|".join(
        (
            r"[^\[\]{}\"'\\]++",  # anything but brackets, quotes and backslashes
            r'"(?:[^"\\\n]|\\.)*+"',  # a JSON string
            r"'(?:[^'\\\n]|\\.)*+'",  # a Python string
            # a string of JSON inside a JSON string: \"...\", with \\\" (an escaped quote) and \n inside
            r'\\"(?:[^"\\\n]|\\\\(?:\\[\\"]|[^"\\\n])|\\[^"\\\n])*+\\"',
            r"\\[\s\S]?",  # any other escape
            r"[\"']",  # a lone quote (an apostrophe in prose)
        )
    )
    pattern = r"[\[{](?:" + atoms + r")*+[\]}]?"
    for _ in range(depth - 1):
        pattern = r"[\[{](?:" + atoms + "|" + pattern + r")*+[\]}]?"
    return pattern


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
        triggers=("-----begin",),
    ),
    Rule(
        "jwt",
        re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}+\.eyJ[A-Za-z0-9_-]{4,}+\.[A-Za-z0-9_-]*+"),
        triggers=("eyj",),
    ),
    # sk-ant-api03-..., sk-proj-..., sk-...: at least 20 characters with a digit among them, so words
    # such as "sk-learn-pipelines" stay.
    Rule(
        "sk_key",
        re.compile(r"(?<![A-Za-z0-9_-])sk-(?=[A-Za-z0-9_-]{0,256}\d)[A-Za-z0-9_-]{20,}+"),
        triggers=("sk-",),
    ),
    Rule(
        "aws_access_key_id",
        re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA)[0-9A-Z]{16}\b"),
        triggers=("akia", "asia", "aida", "aroa"),
    ),
    Rule(
        "github_token",
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})"),
        triggers=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    Rule("slack_token", re.compile(r"(?<![A-Za-z0-9-])xox[abposr]-[A-Za-z0-9-]{10,}+"), triggers=("xox",)),
    Rule("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}"), triggers=("aiza",)),
    Rule(
        "authorization_header",
        re.compile(
            # `?+` (possessive): a scheme followed by the marker is never re-read as the credential.
            r"(?ai)(\bauthorization(?:\\?[\"'])?\s*[:=]\s*(?:\\?[\"'])?(?:(?:basic|bearer|token|digest)\s+)?+)"
            + _NOT_REDACTED
            + r"[^\s\"',;]+"
        ),
        _keep_prefix,
        triggers=("authorization",),
    ),
    Rule(
        "bearer_token",
        re.compile(r"(?ai)(\bbearer\s+)" + _NOT_REDACTED + r"[A-Za-z0-9\-._~+/]{8,}=*"),
        _keep_prefix,
        triggers=("bearer",),
    ),
    # `scheme://user:password@host`: the password runs from the first `:` after the user to the LAST
    # `@` before the host (`https://alice:p@ss@w0rd@db:5432` loses `p@ss@w0rd`). First the last `@`
    # before the end of the authority (`/`, `?`, `#`, a space, or `"<>\` which no URL holds), so an `@`
    # in the query or in a later JSON string stays; failing that (a `?`, `#` or `"` written in the
    # password), the last `@` before the path. Each try is a greedy run of at most 256 characters that
    # backs off to an `@`: bounded work per `://`.
    Rule(
        "url_credentials",
        re.compile(
            r"(\b[a-zA-Z][a-zA-Z0-9+.-]{0,31}://[^\s:/@]{0,256}:)"
            r"(?:[^\s/?#\"<>\\]{1,256}(?=@)|[^\s/]{1,256}(?=@))"
        ),
        _keep_prefix,
        triggers=("://",),
    ),
    # Azure SAS signatures, `?sv=...&sig=AbC%2Bdef%2F123%3D`: the whole value, %XX escapes included,
    # up to the next `&` (also `sig%3D...%26` in a URL inside a URL, and `\u0026sig=` in JSON). `sig` must
    # start a parameter (`config_sig=`, `design=` stay), and 8+ characters (`sig=0.01`, `sig=true` stay).
    Rule(
        "sas_signature",
        re.compile(
            r"(?ai)((?:(?<![A-Za-z0-9_.-])|(?<=%26)|(?<=%3f)|(?<=\\u0026))sig(?:=|%3d))"
            r"(?:[A-Za-z0-9+/=_-]|%(?!26)){8,}+"
        ),
        _keep_prefix,
        triggers=("sig=", "sig%3d"),
        keyed=True,
    ),
    Rule(
        # `password: my secret phrase` (prose, logs, YAML): every word of the value, up to a comma,
        # a semicolon, a quote or the next `key: value`.
        "secret_key_colon_text",
        re.compile(
            r"(?ai)(\b[\w.-]{0,64}?(?:"
            + _SECRET_KEYS
            + r")(?:\\?[\"'])?[ \t]*:[ \t]+)"
            + _NOT_REDACTED
            # words up to punctuation that ends a field, or a word that starts another `key=`/`key:`
            + r"([^\s\"'\\{}\[\],;]+(?:[ \t]+(?![^\s\"']*[:=])[^\s\"'\\{}\[\],;]+)*)"
        ),
        _keep_prefix,
        triggers=_KEY_TRIGGERS,
        keyed=True,
    ),
    Rule(
        "secret_key_value",
        re.compile(
            r"(?ai)(\b[\w.-]{0,64}?(?:"
            + _SECRET_KEYS
            + r")(?:\\?[\"'])?\s*[:=]\s*)(?!(?:\\?[\"'])?"
            + re.escape(REDACTED)
            + r")"
            # an escaped quoted value (JSON inside a JSON string), a quoted value (escapes inside), a
            # list or dict (`{"auth": ["alice", "hunter2"]}`: all of it), or everything up to the next
            # space: `password=abc;rest` loses `abc;rest`, not just `abc`. Quoted values are bounded,
            # so an unclosed quote costs a bounded scan, not the whole text.
            + r"(\\\"(?:[^\"\\]|\\[^\"]){0,4096}\\\"|\"(?:\\.|[^\"\\\n]){0,4096}\""
            + r"|'[^'\n]{0,4096}'|"
            + _bracketed(6)
            + r"|[^\s\"']+)"
        ),
        _keep_quotes,
        triggers=_KEY_TRIGGERS,
        keyed=True,
    ),
    Rule(
        "opaque_key_value",
        re.compile(
            r"(\b[\w.-]{1,64}[\"']?\s*[:=]\s*[\"']?)(?!/)"
            r"(?=[A-Za-z0-9+/_-]*[0-9])(?=[A-Za-z0-9+/_-]*[A-Za-z])[A-Za-z0-9+/_-]{32,}={0,2}"
        ),
        _keep_prefix,
        keyed=True,
        long_token=True,
    ),
)


#: Keys never redacted by name or by the opaque-value rule: our own ids are long hex strings.
DEFAULT_ALLOWED_KEYS: Final = frozenset(
    {"execution_id", "trace_id", "span_id", "parent_span_id", "traceid", "spanid", "parentspanid"}
)
#: A dict key naming a secret (its last part, case-insensitive): its whole value is redacted.
_SECRET_KEY_NAME: Final = re.compile(r"(?ai)(?:" + _SECRET_KEYS + r"|authorization|cookies)$")
_OPAQUE_VALUE: Final = re.compile(
    r"(?=[A-Za-z0-9+/_-]*[0-9])(?=[A-Za-z0-9+/_-]*[A-Za-z])[A-Za-z0-9+/_-]{32,}={0,2}"
)
_KEY_OF_PREFIX: Final = re.compile(r"[\w.-]+")
#: Everything but token characters becomes a space, so `split()` yields the token runs.
_TOKEN_RUNS: Final = str.maketrans(
    {chr(i): " " for i in range(128) if not (chr(i).isalnum() or chr(i) in "+/_-")}
)
#: Every rule's triggers, and the words of secret-named keys (`Redactor.data` redacts their values).
_ALL_TRIGGERS: Final = tuple(
    dict.fromkeys([t for rule in RULES for t in rule.triggers] + ["authorization", "cookie"])
)
_TRIGGER: Final = re.compile("|".join(map(re.escape, _ALL_TRIGGERS)))
_CACHED_CHARS: Final = 2048
_CACHE_SIZE: Final = 4096


def _has_long_token(text: str) -> bool:
    return len(text) >= 32 and max(map(len, text.translate(_TOKEN_RUNS).split()), default=0) >= 32


class Redactor:
    """`RULES` with an allow-list of keys (lower-cased) whose values are never redacted."""

    __slots__ = ("_allowed", "_cache", "_keyed", "_rules", "_suspects")

    def __init__(self, allowed_keys: Iterable[str] = DEFAULT_ALLOWED_KEYS) -> None:
        self._allowed = frozenset(k.lower() for k in allowed_keys)
        self._cache: dict[str, str] = {}
        self._suspects: dict[str, bool] = {}
        self._rules = tuple(
            (rule, self._allowing(rule) if rule.keyed else rule.replacement) for rule in RULES
        )

    @property
    def allowed_keys(self) -> frozenset[str]:
        return self._allowed

    def suspect(self, text: str) -> bool:
        """Whether `text` may hold a secret or a secret-named key (some rule's trigger occurs in it,
        or a long opaque token): when False, neither `text` nor `data` would change anything in it."""
        cached = len(text) <= _CACHED_CHARS  # the same options and contexts recur decision after decision
        if cached:
            hit = self._suspects.get(text)
            if hit is not None:
                return hit
        found = _TRIGGER.search(text.lower()) is not None or _has_long_token(text)
        if cached:
            if len(self._suspects) >= _CACHE_SIZE:
                self._suspects.clear()
            self._suspects[text] = found
        return found

    def _allowing(self, rule: Rule) -> Callable[[re.Match[str]], str]:
        replacement, allowed = rule.replacement, self._allowed

        def replace(match: re.Match[str]) -> str:
            key = _KEY_OF_PREFIX.search(match.group(1))
            if key is not None and key.group(0).lower() in allowed:
                return match.group(0)
            return replacement(match) if callable(replacement) else replacement

        return replace

    def text(self, text: str) -> str:
        """`text` with every secret-looking substring replaced by `REDACTED`."""
        if len(text) < 5:
            return text
        cached = len(text) <= _CACHED_CHARS
        if cached:
            hit = self._cache.get(text)
            if hit is not None:
                return hit
        low = text.lower()
        long_token: bool | None = None
        result = text
        for rule, replacement in self._rules:
            if rule.long_token:
                if long_token is None:
                    long_token = _has_long_token(text)
                if not long_token:
                    continue
            elif not any(t in low for t in rule.triggers):
                continue
            result = rule.pattern.sub(replacement, result)
        if cached:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            self._cache[text] = result
        return result

    def secret_key(self, key: str) -> bool:
        """Whether `key` names a secret (and is not allowed): its value is redacted whole."""
        return _SECRET_KEY_NAME.search(key) is not None and key.lower() not in self._allowed

    def data(self, value: Any, key: str | None = None) -> Any:
        """`value` with every string redacted, recursively; the value of a key naming a secret, and a
        long opaque string held by a key, become `REDACTED` whole.

        Dicts (their string keys too), lists, tuples, sets and frozensets are rebuilt with the same
        type (any other mapping becomes a dict); other values (numbers, None, objects) are returned as
        they are. When two keys redact to the same text the later one wins (only keys that were secrets).
        """
        if isinstance(value, str):
            text = self.text(value)
            if (
                key is not None
                and len(text) >= 32
                and _OPAQUE_VALUE.fullmatch(text)
                and key.lower() not in self._allowed
            ):
                return REDACTED
            return text
        if isinstance(value, Mapping):
            out = {}
            for k, v in value.items():
                if isinstance(k, str):
                    out[self.text(k)] = REDACTED if self.secret_key(k) else self.data(v, k)
                else:
                    out[k] = self.data(v)
            return out
        if isinstance(value, list):
            return [self.data(v, key) for v in value]
        if isinstance(value, tuple):
            return tuple(self.data(v, key) for v in value)
        if isinstance(value, set | frozenset):
            return type(value)(self.data(v, key) for v in value)
        return value


_DEFAULT: Final = Redactor()


def redact_text(text: str) -> str:
    """`text` with every secret-looking substring replaced by `REDACTED` (see the module docstring)."""
    return _DEFAULT.text(text)


def redact_value(value: Any) -> Any:
    """`value` with secrets redacted in every string in it and under every secret-named key
    (`Redactor.data`, default allow-list)."""
    return _DEFAULT.data(value)
