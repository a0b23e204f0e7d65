"""What of an agent's values may be recorded: secrets scrubbed, free text captured only when allowed.

Every value the span contract writes goes through one `ContentPolicy`, so the two guarantees hold for
every field, whichever API recorded it (`Runtime`, the decorators, integrations):

* **Scrubbing** (`scrub`, default on): secret-looking substrings and the values of secret-named keys
  become ``[REDACTED]`` (`otel_decisions._redaction`), in text fields, in JSON values (keys included)
  and in status messages. The marker never echoes the secret. Keys on the allow-list are left alone.
* **Content capture** (`capture`, default on): when off, no free text is recorded at all — no goal
  description, input or output, intent or reasoning text, option descriptions, parameters, pros or
  cons, context, constraints, results, errors, summaries, state changes, narratives, problem texts or
  evaluation explanations. What stays is what statistics need: ids, types, counts, success, tokens,
  latency, severities, and *hashed* option ids and intents (``h:`` + 16 hex digits of BLAKE2b, the same
  for the same text in every run; an option's hashed id is its description too), so decision points
  and option outcomes still group and compare.

Values are capped (`max_chars`) before scrubbing, with a margin, so a megabyte of text costs a bounded
amount of work and a secret cut by the cap is still recognised whole.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from otel_decisions._redaction import DEFAULT_ALLOWED_KEYS, REDACTED, Redactor
from otel_decisions._values import DEFAULT_MAX_VALUE_CHARS, TRUNCATED_KEY, as_text, cap_text, encode_json

__all__ = ["DEFAULT_POLICY", "HASH_PREFIX", "ContentPolicy", "hashed"]

HASH_PREFIX: Final = "h:"
#: Scrubbing looks this far past the cap, so a secret straddling the cut is still matched whole.
_MARGIN: Final = 512
#: Option fields kept when content is not captured (the id is hashed).
_OPTION_STATS: Final[tuple[str, ...]] = ("action_type", "confidence")
#: Evaluation fields kept when content is not captured (`better_option_id` is hashed).
_EVALUATION_STATS: Final = (
    "goal_aligned",
    "alignment_score",
    "better_option_existed",
    "outcome_quality",
    "contributed_to_success",
)
_hashes: dict[str, str] = {}


def hashed(text: str) -> str:
    """A stable stand-in for `text` that reveals nothing of it: ``h:`` + 16 hex digits of BLAKE2b."""
    found = _hashes.get(text)
    if found is None:
        digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
        found = HASH_PREFIX + digest
        if len(_hashes) >= 8192:
            _hashes.clear()
        _hashes[text] = found
    return found


@dataclass(frozen=True, slots=True)
class ContentPolicy:
    """How values become attributes: capped at `max_chars`, scrubbed, or left out (see the module doc).

    The methods returning `str | None` return None when the value must not be recorded."""

    max_chars: int = DEFAULT_MAX_VALUE_CHARS
    capture: bool = True
    scrub: bool = True
    allowed_keys: frozenset[str] = DEFAULT_ALLOWED_KEYS
    redactor: Redactor = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "redactor", Redactor(self.allowed_keys))

    # --- free text -------------------------------------------------------------------------------
    def scrubbed(self, text: str) -> str:
        """`text` capped and scrubbed, whatever the capture switch (for text that is not content)."""
        if not self.scrub:
            return cap_text(text, self.max_chars)
        cut = len(text) - self.max_chars  # what the cap will remove, reported in its marker
        if cut > _MARGIN:
            kept = self.redactor.text(text[: self.max_chars + _MARGIN])[: self.max_chars]
            return f"{kept}…[truncated {cut} chars]"
        return cap_text(self.redactor.text(text), self.max_chars)

    def text(self, value: Any) -> str | None:
        """A free-text field: capped and scrubbed, or None when content is not captured."""
        if not self.capture:
            return None
        return self.scrubbed(value if isinstance(value, str) else as_text(value))

    def texts(self, values: Iterable[Any], max_items: int) -> list[str] | None:
        """A list of free-text items (constraints), each as `text`; None when not captured."""
        if not self.capture:
            return None
        return [self.scrubbed(as_text(v)) for v in list(values)[:max_items]]

    def message(self, value: Any, max_chars: int) -> str | None:
        """A span status message (an error, a narrative): short, scrubbed; None when not captured."""
        if not value or not self.capture:
            return None
        text = value if isinstance(value, str) else as_text(value)
        if self.scrub:  # scrubbed before it is cut, so a secret at the cut is still seen whole
            text = self.redactor.text(text[: max_chars + _MARGIN])
        return text if len(text) <= max_chars else text[:max_chars] + "…"

    # --- identifiers that may be content ---------------------------------------------------------
    def ident(self, value: str) -> str:
        """An option id: as is when content is captured, else `hashed`."""
        return value if self.capture else hashed(value)

    def tool(self, name: str) -> str:
        """A tool's name (from the chosen option: its id or `action_params["tool"]`), which names
        the outcome span too: scrubbed, or `hashed` when content is not captured."""
        if not self.capture:
            return hashed(name)
        return self.scrubbed(name)

    def intent(self, value: str) -> str:
        """A decision's intent, which names its decision point: scrubbed text, else `hashed`."""
        return self.scrubbed(value) if self.capture else hashed(value)

    # --- JSON values -----------------------------------------------------------------------------
    def json(self, value: Any) -> str | None:
        """A JSON field (input, context, result, ...): capped JSON, scrubbed; None when not captured."""
        if not self.capture:
            return None
        if not self.scrub:
            return encode_json(value, self.max_chars)
        # encoded with room to spare, so a secret the cap would cut is scrubbed whole before the cut
        return self._scrub_json(encode_json(value, self.max_chars + _MARGIN))

    def _scrub_json(self, encoded: str) -> str:
        """`encoded` (JSON capped at `max_chars + _MARGIN`) scrubbed, then capped at `max_chars`."""
        if not self.redactor.suspect(encoded):  # nothing secret-looking anywhere: the common case
            return encoded if len(encoded) <= self.max_chars else self._recap(encoded)
        data = orjson.loads(encoded)
        if isinstance(data, dict) and data.get(TRUNCATED_KEY) is True:  # the preview is JSON text, cut
            preview = data.get("preview")
            if isinstance(preview, str):
                data["preview"] = self.redactor.text(preview)
            return self._recap(orjson.dumps(data).decode("utf-8"))
        return encode_json(self.redactor.data(data), self.max_chars)

    def _recap(self, encoded: str) -> str:
        """JSON encoded with the margin, capped at `max_chars` as `encode_json` would have."""
        data = orjson.loads(encoded)
        if isinstance(data, dict) and data.get(TRUNCATED_KEY) is True:
            preview = data.get("preview")
            if isinstance(preview, str):
                data["preview"] = preview[: max(0, len(preview) - _MARGIN)]
            return orjson.dumps(data).decode("utf-8")
        return encode_json(data, self.max_chars)

    def options(self, options: list[dict[str, Any]]) -> str:
        """The options of a decision: scrubbed (ids and action types kept as they are), or, when
        content is not captured, only hashed ids, action types and confidences."""
        if not self.capture:  # the hashed id labels the option too: statistics group by label
            stats: list[dict[str, Any]] = []
            for option in options:
                label = hashed(as_text(option.get("id", "")))
                kept = {k: option[k] for k in _OPTION_STATS if k in option}
                stats.append({"id": label, "description": label, **kept})
            return encode_json(stats, self.max_chars)
        encoded = encode_json(options, self.max_chars)
        if encoded.startswith(_TRUNCATED_PREFIX):  # too big: keep every option, shortened, not none
            shortened = _shortened(options, self.max_chars, self.redactor if self.scrub else None)
            encoded = encode_json(shortened, self.max_chars)
        if not self.scrub or not self.redactor.suspect(encoded):
            return encoded
        data = orjson.loads(encoded)
        if not isinstance(data, list):  # the truncation marker
            return self._scrub_json(encoded)
        return encode_json([self._option(o) for o in data], self.max_chars)

    def _option(self, option: Any) -> Any:
        if not isinstance(option, dict):
            return self.redactor.data(option)
        out: dict[str, Any] = {}
        for key, value in option.items():
            if key in ("id", "action_type"):
                out[key] = value
            elif self.redactor.secret_key(key):
                out[key] = REDACTED
            else:
                out[key] = self.redactor.data(value, key)
        return out

    def evaluation(self, evaluation: Mapping[str, Any]) -> str:
        """A decision's evaluation: scrubbed, or only its scores and flags when not captured."""
        if self.capture:
            encoded = self.json(evaluation)
            assert encoded is not None
            return encoded
        kept: dict[str, Any] = {k: evaluation[k] for k in _EVALUATION_STATS if k in evaluation}
        better = evaluation.get("better_option_id")
        if isinstance(better, str):
            kept["better_option_id"] = hashed(better)
        return encode_json(kept, self.max_chars)

    # --- spans of other instrumentations joined to a run (LLM calls) -----------------------------
    def foreign_attributes(self, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """Another instrumentation's attributes, with every string scrubbed (ids are left alone by
        the patterns), the text of a key naming a secret (`db.password`, `http.auth`) redacted
        whole; content keys (`gen_ai.*messages`, prompts, completions, tool arguments and results)
        are dropped when content is not captured."""
        out: dict[str, Any] = {}
        for key, value in attributes.items():
            if not self.capture and _is_content_key(key):
                continue
            if self.scrub and isinstance(value, str | bytes | tuple | list) and self.redactor.secret_key(key):
                value = REDACTED
            elif self.scrub and isinstance(value, str):
                value = self.scrubbed(value)
            elif self.scrub and isinstance(value, tuple | list):
                value = [self.scrubbed(v) if isinstance(v, str) else v for v in value]
            out[key] = value
        return out


_TRUNCATED_PREFIX: Final = '{"' + TRUNCATED_KEY + '"'


def _shortened(
    options: list[dict[str, Any]], max_chars: int, redactor: Redactor | None
) -> list[dict[str, Any]]:
    """Options too big for the cap as a whole: each keeps its id, action type, confidence and the
    start of its description (parameters, pros and cons go), marked truncated, so the decision still
    names every option it weighed."""
    budget = max(0, (max_chars - 64) // max(1, len(options)) - 120)
    shortened = []
    for option in options:
        if not isinstance(option, dict):
            continue
        kept = {k: option[k] for k in ("id", *_OPTION_STATS) if k in option}
        description = as_text(option.get("description", ""))
        if redactor is not None:  # scrubbed before it is cut: a secret at the cut is seen whole
            description = redactor.text(description[: budget + _MARGIN])
        kept["description"] = description[:budget]
        kept[TRUNCATED_KEY] = True
        shortened.append(kept)
    return shortened


_CONTENT_MARKERS: Final = (
    "messages",
    "prompt",
    "completion",
    "system_instructions",
    "tool.call.arguments",
    "tool.call.result",
    "content",
)


def _is_content_key(key: str) -> bool:
    return key.startswith("gen_ai.") and any(marker in key for marker in _CONTENT_MARKERS)


DEFAULT_POLICY: Final = ContentPolicy()
