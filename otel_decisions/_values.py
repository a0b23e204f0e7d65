"""Turning arbitrary agent values into bounded span attribute strings, and back.

Agents hand us whatever they have: pydantic models, dataclasses, sets, bytes, cycles, objects whose
`__repr__` raises, megabyte strings. A span attribute must be a bounded string that never raises while
being built. The rules:

* JSON-compatible values become compact JSON (orjson; dataclasses, datetimes and UUIDs natively,
  pydantic models through `model_dump`, sets as lists).
* Anything else becomes a marked string, `"<unserializable TypeName: repr>"`, so the reader sees that it
  was not the value itself. Bytes become `"<bytes N: base64>"`, non-finite floats `"<float nan>"`,
  `"<float inf>"` and `"<float -inf>"` (JSON has no such numbers, and orjson would write `null`: a
  silent loss), integers beyond 64 bits their decimal digits.
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
from pydantic import BaseModel

__all__ = [
    "DEFAULT_MAX_VALUE_CHARS",
    "TRUNCATED_KEY",
    "UNDECODABLE_KEY",
    "as_key",
    "as_text",
    "cap_text",
    "decode_json",
    "encode_json",
    "fit_text",
    "short_repr",
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
_MAX_ORJSON_DEPTH: Final = 255  # orjson refuses deeper values
_MARKER_CHARS: Final = len(f'{{"{TRUNCATED_KEY}":true,"original_chars":,"preview":""}}')


def _default(value: Any) -> Any:
    """orjson fallback for types it does not know; must return something orjson can encode."""
    if isinstance(value, set | frozenset):
        return list(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        return f"<bytes {len(raw)}: {base64.b64encode(raw[:_REPR_CHARS]).decode('ascii')}>"
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        result = _model_dump(value, dump)
        if isinstance(result, dict):
            return result
    if isinstance(value, tuple):  # namedtuple subclasses land here
        return list(value)
    return _marked(value)


def _model_dump(value: Any, dump: Any) -> Any:
    """A model as JSON-ready data (`mode="json"`), unless it holds an iterator or a NaN or infinity:
    in JSON mode pydantic reads iterators to their end (an endless generator never ends) and writes
    non-finite floats as null. Then the Python-mode dump, where iterators stay unread and floats stay
    floats (`encode_json` marks both)."""
    if not isinstance(value, BaseModel):
        return dump(mode="json")
    lazy = value.model_dump()
    return lazy if _python_mode_needed(lazy, 0) else dump(mode="json")


def _python_mode_needed(value: Any, depth: int) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if type(value).__name__ == "SerializationIterator" or depth > _MAX_DEPTH:
        return True
    if isinstance(value, dict):
        return any(_python_mode_needed(v, depth + 1) for v in value.values())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_python_mode_needed(v, depth + 1) for v in value)
    return False


def _marked(value: Any) -> str:
    name = type(value).__qualname__
    try:
        text = repr(value)
    except Exception:  # a user __repr__ may raise anything (RecursionError too); we must not.
        return f"<unserializable {name}: repr failed>"
    if len(text) > _REPR_CHARS:
        text = text[:_REPR_CHARS] + "…"
    return f"<unserializable {name}: {_valid_text(text)}>"


def short_repr(value: Any) -> str:
    """`repr(value)` cut to 200 characters, for log messages; never raises."""
    try:
        text = repr(value)
    except Exception:
        return f"<{type(value).__qualname__}: repr failed>"
    return text if len(text) <= _REPR_CHARS else text[:_REPR_CHARS] + "…"


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
        return _valid_text(str.__str__(key) if isinstance(key, str) else str(key))
    except Exception:
        return _marked(key)


def as_key(key: Any) -> str:
    """A dict key as text: itself if it is a str, else `str(key)` (never raises)."""
    return key if type(key) is str else _key(key)


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
        data = _careful(value)
    else:
        if _too_long(data, max_chars):
            if b"null" in data and _has_nonfinite(value):
                data = _careful(value)
            return _truncated(data, max_chars)
        text = data.decode("utf-8")
        # orjson writes NaN and ±inf as `null`. Most values hold no `null` at all (a search of the
        # text is cheap), so only those that do are walked for such a float.
        if "null" not in text or not _has_nonfinite(value):
            return text
        data = _careful(value)
    if _too_long(data, max_chars):
        return _truncated(data, max_chars)
    return data.decode("utf-8")


def _too_long(data: bytes, max_chars: int) -> bool:
    """Whether UTF-8 `data` holds more than `max_chars` characters (the cap counts characters; a
    character is 1-4 bytes, so only data over the cap in bytes needs counting)."""
    return len(data) > max_chars and len(data.decode("utf-8", errors="replace")) > max_chars


def _careful(value: Any) -> bytes:
    try:
        return orjson.dumps(_sanitize(value, 0, set()), option=_OPTIONS)
    except Exception:  # last resort: nothing about this value can be trusted
        return orjson.dumps(_marked(value))


def _has_nonfinite(value: Any) -> bool:
    """Whether `value`, which orjson encoded, holds a NaN or infinity that it wrote as `null`.

    Walks what orjson walks itself (dicts, lists, tuples, dataclasses, and the sets and pydantic
    models `_default` turned into lists and dicts). A value that cannot be walked counts as holding
    one, so the careful path decides."""
    try:
        return _nonfinite(value, 0)
    except Exception:
        return True


_PLAIN: Final = frozenset({str, int, bool, type(None)})


def _nonfinite(value: Any, depth: int) -> bool:
    kind = type(value)
    if kind is float:
        return not math.isfinite(value)
    if kind in _PLAIN:
        return False
    if depth > _MAX_ORJSON_DEPTH:
        return True
    if kind is dict or kind is list or kind is tuple:  # the usual containers, their scalars inline
        for key, item in value.items() if kind is dict else enumerate(value):
            if type(key) is float and not math.isfinite(key):
                return True
            item_kind = type(item)
            if item_kind in _PLAIN:
                continue
            if item_kind is float:
                if not math.isfinite(item):
                    return True
            elif _nonfinite(item, depth + 1):
                return True
        return False
    if isinstance(value, dict):
        return any(type(k) is float and not math.isfinite(k) for k in value) or any(
            _nonfinite(item, depth + 1) for item in value.values()
        )
    if isinstance(value, list | tuple | set | frozenset):
        return any(_nonfinite(item, depth + 1) for item in value)
    if isinstance(value, float):
        return not math.isfinite(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(_nonfinite(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value))
    if isinstance(value, BaseModel):
        return _nonfinite(value.model_dump(), depth + 1)
    return False  # str and int subclasses, datetimes, UUIDs, enums, bytes: no float lost


def _truncated(data: bytes, max_chars: int) -> str:
    """The marker object for `data`, at most `max_chars` long. Its preview is escaped a second time
    (quotes, backslashes, control characters), so it is cut further until the marker fits."""
    text = data.decode("utf-8", errors="replace")
    preview = text[: max(0, max_chars - 120)]
    while True:
        encoded = orjson.dumps({TRUNCATED_KEY: True, "original_chars": len(text), "preview": preview})
        marker = encoded.decode("utf-8")
        excess = len(marker) - max_chars
        if excess <= 0 or not preview:
            return marker
        per_char = max(1.0, (len(marker) - _MARKER_CHARS) / len(preview))  # escaped chars per character
        preview = preview[: max(0, len(preview) - math.ceil(excess / per_char))]


def cap_text(text: str, max_chars: int = DEFAULT_MAX_VALUE_CHARS) -> str:
    """`text` cut to `max_chars`, with a visible `…[truncated N chars]` suffix when cut."""
    if len(text) <= max_chars:
        return text
    return f"{text[:max_chars]}…[truncated {len(text) - max_chars} chars]"


def fit_text(text: str, max_chars: int = DEFAULT_MAX_VALUE_CHARS) -> str:
    """`text` cut so that it is at most `max_chars` long, `…[truncated N chars]` suffix included
    (so `cap_text` with the same cap leaves it alone)."""
    if len(text) <= max_chars:
        return text
    room = max_chars - len(f"…[truncated {len(text)} chars]")  # N has at most as many digits
    keep = max(0, room)
    return f"{text[:keep]}…[truncated {len(text) - keep} chars]"


def as_text(value: Any) -> str:
    """A string for a field that should be text but may not be (never raises)."""
    if type(value) is str:
        return value
    if isinstance(value, str):  # a subclass, whose own methods may raise: its characters as a str
        return str.__str__(value)
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
