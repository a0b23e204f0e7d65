"""Reading OTLP/JSON Lines files (ours and the Collector's file exporter's) into `SpanRecord`s.

Accepted: one `{"resourceSpans": [...]}` object per line (also a whole file holding one such object,
and `resource_spans`/`scope_spans` snake_case keys), hex ids, int64 as strings or numbers, non-finite
doubles as strings. Only spans recorded through our span contract are kept: Collector files
hold every service's spans, and the Builder needs ours.

Never fails on bad data: an unparsable line is skipped with a warning; an incomplete last line (a
writer still writing, or a crashed one) is left for the next read, and reported once.

Speed: orjson, with the cyclic garbage collector paused while a file's millions of small dicts are
built (it otherwise rescans them over and over; 2-4x on large files).
"""

from __future__ import annotations

import base64
import gc
import glob
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import orjson

from otel_decisions.contract import EXECUTION_ID, RUN_ID, EventRecord, SpanRecord

__all__ = ["LineSink", "discover_files", "parse_line", "paused_gc", "read_lines", "read_new_lines"]

_logger = logging.getLogger(__name__)

# proto and zstd files (`proto_files.BINARY_SUFFIXES`) are found here too and read by `proto_files`
_SUFFIXES: Final = (".jsonl", ".json", ".ndjson", ".pb", ".binpb", ".zst")


def discover_files(source: str | Path) -> list[Path]:
    """The span files named by `source`: a file, a directory (searched recursively), or a glob."""
    text = str(source)
    if any(ch in text for ch in "*?["):
        return sorted(Path(p) for p in glob.glob(text, recursive=True) if os.path.isfile(p))
    path = Path(source)
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in _SUFFIXES and p.is_file())
    return []


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic GC (parsed JSON has no cycles; reference counting frees it)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _value(v: dict[str, Any]) -> Any:
    for kind, x in v.items():
        if kind == "stringValue":
            return x
        if kind == "intValue":
            return int(x)
        if kind == "boolValue":
            return x
        if kind == "doubleValue":
            return float(x)
        if kind == "arrayValue":
            return [_value(i) for i in x.get("values", ())]
        if kind == "kvlistValue":
            return {kv.get("key", ""): _value(kv.get("value") or {}) for kv in x.get("values", ())}
        if kind == "bytesValue":
            return base64.b64decode(x)
        # snake_case spellings (proto field names) are accepted too
        if kind in _SNAKE:
            return _value({_SNAKE[kind]: x})
    return None


_SNAKE: Final = {
    "string_value": "stringValue",
    "int_value": "intValue",
    "bool_value": "boolValue",
    "double_value": "doubleValue",
    "array_value": "arrayValue",
    "kvlist_value": "kvlistValue",
    "bytes_value": "bytesValue",
}


def _attributes(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not items:
        return out
    for kv in items:
        try:
            value = kv["value"]
        except KeyError:  # an empty AnyValue may be left out
            value = _NO_VALUE
        # most of our attributes are strings: skip the generic decoder for them
        out[kv["key"]] = value["stringValue"] if "stringValue" in value else _value(value)
    return out


_NO_VALUE: Final[dict[str, Any]] = {}


def _hex(value: Any) -> str:
    return value.lower() if type(value) is str else ""


def _span(sp: dict[str, Any]) -> SpanRecord | None:
    attributes = _attributes(sp["attributes"]) if "attributes" in sp else {}
    if RUN_ID not in attributes or EXECUTION_ID not in attributes:  # every span of ours carries both
        return None
    status = sp.get("status") or _NO_VALUE
    code = status.get("code", 0)
    raw_events = sp.get("events")
    raw_links = sp.get("links")
    # ids are hex in any case (OTLP/JSON); a non-string id makes the line unreadable (skipped, logged)
    return SpanRecord(
        sp.get("traceId", "").lower(),
        sp.get("spanId", "").lower(),
        sp.get("parentSpanId", "").lower(),
        sp.get("name", ""),
        int(sp.get("startTimeUnixNano", 0)),
        int(sp.get("endTimeUnixNano", 0)),
        attributes,
        [
            EventRecord(e.get("name", ""), int(e.get("timeUnixNano", 0)), _attributes(e.get("attributes")))
            for e in raw_events
        ]
        if raw_events
        else [],
        code if type(code) is int else (2 if code == "STATUS_CODE_ERROR" else 0),
        status.get("message", ""),
        [
            (_hex(lk.get("traceId")), _hex(lk.get("spanId")), _attributes(lk.get("attributes")))
            for lk in raw_links
        ]
        if raw_links
        else [],
    )


def _snake_to_camel(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {_camel(k): _snake_to_camel(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_snake_to_camel(v) for v in obj]
    return obj


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p.title() for p in rest)


def spans_of(document: Any) -> list[SpanRecord]:
    """Our spans in one decoded `TracesData` object."""
    if not isinstance(document, dict):
        return []
    if "resource_spans" in document:
        document = _snake_to_camel(document)
    out: list[SpanRecord] = []
    for rs in document.get("resourceSpans", ()):
        for ss in rs.get("scopeSpans", ()):
            for sp in ss.get("spans", ()):
                record = _span(sp)
                if record is not None:
                    out.append(record)
    return out


def parse_line(line: bytes | str | memoryview) -> list[SpanRecord]:
    """Our spans in one OTLP/JSON line. Raises ValueError when the line is not a JSON document."""
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(str(exc)) from exc
    try:
        return spans_of(document)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not an OTLP TracesData object: {exc}") from exc


_SPANS_KEY: Final = b'"spans":['
_ONE_SCOPE_END: Final = b"]}]}]}"


class _Prefixes:
    """Skips parsing the resource and scope that every line of a file repeats.

    Our writer puts each span on a line of its own: `{"resourceSpans":[{"resource":…,"scopeSpans":
    [{"scope":…,"spans":[` SPAN `]}]}]}`, the same few hundred bytes of resource and scope before every
    span. A line's prefix is its bytes up to the first `"spans":[`. Once a prefix is known to open one
    resource's one scope's spans array (proved by parsing it closed as `7]}]}]}` and finding the 7
    there, in a document of exactly that shape), a line that starts with it and ends with `]}]}]}`
    holds that array in between: parsing just `[…]` gives the same spans as parsing the line (the
    reader does not use resource or scope). When the middle is not one JSON array (a hostile line),
    the whole line is parsed as before. (One difference: orjson refuses documents nested over 1024
    levels; the shortcut parses 5 levels less deep, so it reads a span nested 1019-1023 deep.)
    """

    __slots__ = ("known",)
    _LIMIT: Final = 256  # distinct resources in one block (each process has its own instance id)

    def __init__(self) -> None:
        self.known: set[bytes] = set()

    def parse(self, data: bytes, start: int, stop: int, view: memoryview) -> list[SpanRecord]:
        """Our spans in `data[start:stop]` (one line; `view` is `memoryview(data)`)."""
        prefix = b""
        if data.endswith(_ONE_SCOPE_END, start, stop):
            at = data.find(_SPANS_KEY, start, stop)
            if at >= 0:
                cut = at + len(_SPANS_KEY)
                prefix = data[start:cut]
                if prefix in self.known:
                    try:
                        spans = orjson.loads(view[cut - 1 : stop - 5])  # from "[" to its "]"
                    except orjson.JSONDecodeError:  # e.g. `…]},{"scope":…,"spans":[…`: more than one
                        spans = None
                    if type(spans) is list:
                        try:
                            return [record for sp in spans if (record := _span(sp)) is not None]
                        except (AttributeError, KeyError, TypeError, ValueError) as exc:
                            raise ValueError(f"not an OTLP TracesData object: {exc}") from exc
                    prefix = b""  # known already: nothing to learn from this line
        spans_read = parse_line(view[start:stop])
        if spans_read and prefix:
            self._learn(prefix)
        return spans_read

    def _learn(self, prefix: bytes) -> None:
        try:
            document = orjson.loads(prefix + b"7" + _ONE_SCOPE_END)
        except orjson.JSONDecodeError:
            return
        if not (
            type(document) is dict
            and list(document) == ["resourceSpans"]
            and type(rs := document["resourceSpans"]) is list
            and len(rs) == 1
            and type(rs[0]) is dict
            and list(rs[0])[-1:] == ["scopeSpans"]
            and type(ss := rs[0]["scopeSpans"]) is list
            and len(ss) == 1
            and type(ss[0]) is dict
            and list(ss[0])[-1:] == ["spans"]
            and ss[0]["spans"] == [7]  # the array the prefix opens is this scope's spans
        ):
            return
        if len(self.known) >= self._LIMIT:
            self.known.clear()
        self.known.add(prefix)


#: Files are read in blocks of this size, so memory stays flat however large a file is.
BLOCK_BYTES: Final = 16 << 20

#: `sink(spans, line_offset, line_length)`: the spans of one line and where the line is in the file.
LineSink = Callable[[list[SpanRecord], int, int], None]


def read_new_lines(
    path: Path,
    offset: int,
    sink: LineSink,
    warned: set[tuple[str, int]],
    on_bytes: Callable[[int], None] | None = None,
) -> int:
    """Parse the complete lines of `path` from byte `offset` into `sink`; return the new offset.

    The file is read block by block (`on_bytes` is told each block's size, for progress bars). An
    incomplete last line is not consumed (the next read retries it once a writer completes it) and is
    reported once; a complete line that does not parse is skipped with a warning.
    """
    position = offset  # file offset of pending[0]
    pending = b""
    parsed_any = False
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            while block := f.read(BLOCK_BYTES):
                if on_bytes is not None:
                    on_bytes(len(block))
                pending = pending + block if pending else block
                end = pending.rfind(b"\n") + 1
                if end == 0:
                    continue  # no complete line yet: a long line spans blocks
                _parse_lines(path, pending, end, position, sink)
                parsed_any = True
                position += end
                pending = pending[end:]
    except OSError as exc:
        _logger.warning("otel_decisions: cannot read %s: %s", path, exc)
        return position
    if pending.strip():
        if offset == 0 and not parsed_any and _whole_document(pending, path, sink):
            return len(pending)
        key = (str(path), position)
        if key not in warned:
            warned.add(key)
            _logger.warning(
                "otel_decisions: skipping an incomplete last line in %s (%d bytes at offset %d)",
                path,
                len(pending),
                position,
            )
    return position


def _parse_lines(path: Path, data: bytes, end: int, position: int, sink: LineSink) -> None:
    view = memoryview(data)  # lines are parsed in place, without a copy each
    prefixes = _Prefixes()
    start = 0
    while start < end:
        stop = data.find(b"\n", start, end)
        if stop > start:
            try:
                spans = prefixes.parse(data, start, stop, view)
            except ValueError as exc:
                if data[start:stop].strip():  # blank lines are fine
                    _logger.warning(
                        "otel_decisions: skipping an unreadable line in %s at offset %d: %s",
                        path,
                        position + start,
                        exc,
                    )
            else:
                if spans:
                    sink(spans, position + start, stop - start)
        start = stop + 1


def read_lines(path: Path, lines: Iterable[tuple[int, int]]) -> Iterator[list[SpanRecord]]:
    """The spans of each line at (offset, length) (from a previous `read_new_lines`), in one open.

    A line that is gone (the file was removed or rewritten) is skipped with a warning.
    """
    prefixes = _Prefixes()
    try:
        with open(path, "rb") as f:
            for offset, length in lines:
                f.seek(offset)
                data = f.read(length)
                try:
                    if len(data) != length:
                        raise ValueError("the file is shorter than when it was read")
                    yield prefixes.parse(data, 0, length, memoryview(data))
                except ValueError as exc:
                    _logger.warning("otel_decisions: cannot re-read %s at offset %d: %s", path, offset, exc)
    except OSError as exc:
        _logger.warning("otel_decisions: cannot re-read %s: %s", path, exc)


def _whole_document(data: bytes, path: Path, sink: LineSink) -> bool:
    """A file that is one JSON document without a final newline (e.g. a saved Jaeger response)."""
    try:
        spans = parse_line(data)
    except ValueError:
        return False
    if spans:
        sink(spans, 0, len(data))
    return True
