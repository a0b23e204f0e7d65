"""Turning arbitrary agent values into bounded span attribute strings, and back.

Agents hand us whatever they have: pydantic models, dataclasses, sets, bytes, cycles, objects whose
`__repr__` raises, megabyte strings. A span attribute must be a bounded string that never raises while
being built. The rules:

* JSON-compatible values become compact JSON (orjson; dataclasses, datetimes and UUIDs natively,
  pydantic models through `model_dump`, sets as lists).
* Anything else becomes a marked string, `"<unserializable TypeName: repr>"`, so the reader sees that it
  was not the value itself. Bytes become `"<bytes N: base64>"`.
* Values whose JSON exceeds the cap become a marker object (`TRUNCATED_KEY`) that keeps the original size
  and a prefix of the JSON text: valid JSON, clearly truncated, never cut mid-token.
* Plain strings are capped the same way with a visible suffix.

The reader side (`decode_json`) never raises either: undecodable text comes back as a marked dict.
"""

from __future__ import annotations

import base64
import dataclasses
import math
from typing import Any, Final

import orjson

__all__ = [
    "DEFAULT_MAX_VALUE_CHARS",
    "TRUNCATED_KEY",
    "UNDECODABLE_KEY",
    "cap_text",
    "decode_json",
    "encode_json",
]

DEFAULT_MAX_VALUE_CHARS: Final = 16_384
"""Cap for one JSON or text attribute, in characters (OTEL_DECISIONS_MAX_VALUE_CHARS)."""

TRUNCATED_KEY: Final = "otel_decisions.truncated"
"""Key of the marker object that replaces a JSON value larger than the cap."""

UNDECODABLE_KEY: Final = "otel_decisions.undecodable"
"""Key of the marker object the reader returns for attribute text that is not valid JSON."""

_OPTIONS: Final = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
_REPR_CHARS: Final = 200
_MAX_DEPTH: Final = 64


def _default(value: Any) -> Any:
    """orjson fallback for types it does not know; must return something orjson can encode."""
    if isinstance(value, set | frozenset):
        return list(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        return f"<bytes {len(raw)}: {base64.b64encode(raw[:_REPR_CHARS]).decode('ascii')}>"
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        result = dump(mode="json")
        if isinstance(result, dict):
            return result
    if isinstance(value, tuple):  # namedtuple subclasses land here
        return list(value)
    return _marked(value)


def _marked(value: Any) -> str:
    name = type(value).__qualname__
    try:
        text = repr(value)
    except Exception:  # a user __repr__ may raise anything; we must not.
        return f"<unserializable {name}: repr failed>"
    if len(text) > _REPR_CHARS:
        text = text[:_REPR_CHARS] + "…"
    return f"<unserializable {name}: {text}>"


def _sanitize(value: Any, depth: int, seen: set[int]) -> Any:
    """Slow path: walk a value orjson refused (cycles, deep nesting, non-finite floats, odd keys)."""
    if depth > _MAX_DEPTH:
        return "<too deep>"
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return str(value)  # JSON allows it, orjson (and most readers) do not: keep the digits
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return _valid_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else f"<float {value!r}>"
    if isinstance(value, dict | list | tuple | set | frozenset) or dataclasses.is_dataclass(value):
        key = id(value)
        if key in seen:
            return "<cycle>"
        seen.add(key)
        try:
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                value = {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
            if isinstance(value, dict):
                return {
                    (k if isinstance(k, str) else _key(k)): _sanitize(v, depth + 1, seen)
                    for k, v in value.items()
                }
            return [_sanitize(v, depth + 1, seen) for v in value]
        finally:
            seen.discard(key)
    try:
        converted = _default(value)
    except Exception:
        return _marked(value)
    if isinstance(converted, str):
        return converted
    return _sanitize(converted, depth + 1, seen)


def _key(key: Any) -> str:
    try:
        return _valid_text(str(key))
    except Exception:
        return _marked(key)


def _valid_text(text: str) -> str:
    """`text`, with lone surrogates (not encodable as UTF-8) replaced by U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def encode_json(value: Any, max_chars: int = DEFAULT_MAX_VALUE_CHARS) -> str:
    """Compact JSON for `value`, at most about `max_chars` long; never raises."""
    try:
        data = orjson.dumps(value, default=_default, option=_OPTIONS)
    except Exception:
        try:
            data = orjson.dumps(_sanitize(value, 0, set()), option=_OPTIONS)
        except Exception:  # last resort: nothing about this value can be trusted
            data = orjson.dumps(_marked(value))
    if len(data) > max_chars:
        return _truncated(data, max_chars)
    return data.decode("utf-8")


def _truncated(data: bytes, max_chars: int) -> str:
    preview = data[: max(0, max_chars - 120)].decode("utf-8", errors="ignore")
    marker = {TRUNCATED_KEY: True, "original_chars": len(data), "preview": preview}
    return orjson.dumps(marker).decode("utf-8")


def cap_text(text: str, max_chars: int = DEFAULT_MAX_VALUE_CHARS) -> str:
    """`text` cut to `max_chars`, with a visible `…[truncated N chars]` suffix when cut."""
    if len(text) <= max_chars:
        return text
    return f"{text[:max_chars]}…[truncated {len(text) - max_chars} chars]"


def as_text(value: Any) -> str:
    """A string for a field that should be text but may not be (never raises)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    try:
        return str(value)
    except Exception:
        return _marked(value)


def decode_json(text: str) -> Any:
    """The value `encode_json` wrote; invalid JSON comes back as `{UNDECODABLE_KEY: text}`."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return {UNDECODABLE_KEY: text}
