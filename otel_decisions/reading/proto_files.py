"""Reading the Collector's binary file-exporter output: `format: proto` and zstd-compressed files.

The Collector's `file` exporter gives these files no fixed extension, so they are selected by name:

- `*.pb`, `*.binpb`: a sequence of messages, each a 4-byte big-endian length followed by
  a `TracesData` (wire-identical to `ExportTraceServiceRequest`) protobuf message (`format: proto`).
- `*.zst`: zstd-compressed output, in either of the Collector's two layouts: a native zstd stream
  (feature gate `exporter.file.nativeCompression`) holding JSON lines or length-prefixed messages,
  or length-prefixed messages each compressed on its own (the legacy layout). zstd needs the optional
  `zstandard` module; without it such a file is skipped with one warning naming it.

A file is read whole each time its size or modification time changes (these formats have no line
boundary to resume at); spans are de-duplicated by span id downstream, so re-reading is harmless.

Protobuf messages go through the same conversion as JSON (`MessageToDict`, base64 ids turned into
hex, then `otlp_files.spans_of`), so both formats yield identical `SpanRecord`s. Never fails on bad
data: an incomplete last message (a writer still writing) or an undecodable one is skipped with a
warning.
"""

from __future__ import annotations

import base64
import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped]
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

from otel_decisions.contract import SpanRecord
from otel_decisions.reading.otlp_files import parse_line, spans_of

__all__ = ["BINARY_SUFFIXES", "is_binary_file", "read_binary_file", "spans_of_protobuf"]

_logger = logging.getLogger(__name__)

PROTO_SUFFIXES: Final = (".pb", ".binpb")  # not ".proto": that is where schemas live
ZSTD_SUFFIX: Final = ".zst"
BINARY_SUFFIXES: Final = (*PROTO_SUFFIXES, ZSTD_SUFFIX)
_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
_PREFIX: Final = 4

Sink = Callable[[list[SpanRecord]], None]


def is_binary_file(path: Path) -> bool:
    """Whether `path` is read by this module (by suffix) rather than as JSON lines."""
    return path.suffix in BINARY_SUFFIXES


def spans_of_protobuf(payload: bytes) -> list[SpanRecord]:
    """Our spans in one serialized `TracesData`. Raises ValueError when it does not decode."""
    from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

    try:
        message = TracesData.FromString(payload)
    except DecodeError as exc:
        raise ValueError(f"not a TracesData message: {exc}") from exc
    document = MessageToDict(message, use_integers_for_enums=True)
    # proto3 JSON writes bytes as base64; OTLP/JSON (and `spans_of`) expects hex ids
    for rs in document.get("resourceSpans", ()):
        for ss in rs.get("scopeSpans", ()):
            for sp in ss.get("spans", ()):
                _hex_ids(sp, ("traceId", "spanId", "parentSpanId"))
                for link in sp.get("links", ()):
                    _hex_ids(link, ("traceId", "spanId"))
    return spans_of(document)


def _hex_ids(obj: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        if key in obj:
            obj[key] = base64.b64decode(obj[key]).hex()


def read_binary_file(path: Path, sink: Sink, warned: set[tuple[str, int]]) -> None:
    """Parse the whole of `path` (proto or zstd, see the module docstring) into `sink`.

    `warned` holds (file, offset) pairs already reported, so an unchanged damaged tail is reported once.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        _logger.warning("otel_decisions: cannot read %s: %s", path, exc)
        return
    if path.suffix != ZSTD_SUFFIX:
        _read_stream(data, path, sink, warned, None)
        return
    zstd = _zstandard()
    if zstd is None:
        _warn_once(warned, path, -1, "otel_decisions: skipping %s: reading zstd needs the 'zstandard' module")
        return
    if data.startswith(_ZSTD_MAGIC):  # a native zstd stream: decompress it, then read what it holds
        try:
            data = _decompress(zstd, data)
        except zstd.ZstdError as exc:
            _logger.warning("otel_decisions: skipping %s: not readable zstd: %s", path, exc)
            return
        _read_stream(data, path, sink, warned, None)
    else:  # legacy: length-prefixed messages, each compressed separately
        _read_stream(data, path, sink, warned, zstd)


def _zstandard() -> Any:
    """The optional `zstandard` module, or None (it is not a dependency of this package)."""
    try:
        return importlib.import_module("zstandard")
    except ImportError:
        return None


def _decompress(zstd: Any, data: bytes) -> bytes:
    """All frames of a zstd stream; an incomplete last frame yields what it holds so far."""
    out: list[bytes] = []
    while data:
        obj = zstd.ZstdDecompressor().decompressobj()
        out.append(obj.decompress(data))
        data = obj.unused_data
    return b"".join(out)


def _read_stream(data: bytes, path: Path, sink: Sink, warned: set[tuple[str, int]], zstd: Any) -> None:
    if data.lstrip()[:1] == b"{":  # JSON lines (JSON inside a zstd stream); a length prefix never is
        _read_json_lines(data, path, sink, warned)
    else:
        _read_messages(data, path, sink, warned, zstd)


def _read_messages(data: bytes, path: Path, sink: Sink, warned: set[tuple[str, int]], zstd: Any) -> None:
    """Length-prefixed messages; with `zstd`, each is zstd-compressed (protobuf or JSON inside)."""
    pos, size = 0, len(data)
    while pos < size:
        length = int.from_bytes(data[pos : pos + _PREFIX], "big")
        end = pos + _PREFIX + length
        if pos + _PREFIX > size or end > size:
            msg = "otel_decisions: skipping an incomplete last message in %s (%d bytes at offset %d)"
            _warn_once(warned, path, pos, msg, size - pos, pos)
            return
        payload = data[pos + _PREFIX : end]
        pos, start = end, pos
        try:
            if zstd is not None:
                payload = zstd.ZstdDecompressor().decompressobj().decompress(payload)
            spans = parse_line(payload) if payload.lstrip()[:1] == b"{" else spans_of_protobuf(payload)
        except Exception as exc:  # zstd, protobuf or JSON errors: one bad message must not hide the rest
            msg = "otel_decisions: skipping an unreadable message in %s at offset %d: %s"
            _warn_once(warned, path, start, msg, start, exc)
            continue
        sink(spans)


def _read_json_lines(data: bytes, path: Path, sink: Sink, warned: set[tuple[str, int]]) -> None:
    end = data.rfind(b"\n") + 1
    if data[end:].strip():
        _warn_once(
            warned, path, end, "otel_decisions: skipping an incomplete last line in %s at offset %d", end
        )
    start = 0
    for line in data[:end].split(b"\n"):
        if line.strip():
            try:
                sink(parse_line(line))
            except ValueError as exc:
                msg = "otel_decisions: skipping an unreadable line in %s at offset %d: %s"
                _warn_once(warned, path, start, msg, start, exc)
        start += len(line) + 1


def _warn_once(warned: set[tuple[str, int]], path: Path, offset: int, message: str, *args: object) -> None:
    """Log `message % (path, *args)` unless this file and offset were reported already."""
    key = (str(path), offset)
    if key not in warned:
        warned.add(key)
        _logger.warning(message, path, *args)
