"""ReadableSpan -> one OTLP/JSON line, as the OpenTelemetry Collector's file exporter writes it.

Why not the official encoder (`opentelemetry-exporter-otlp-json-common`)? It builds intermediate
message objects and serialises with the stdlib; on our runs it costs about twice our whole per-decision
budget (see `benchmarks/`). This encoder builds the proto3-JSON dicts directly and serialises them with
orjson. `tests/test_otlp_json_encoder.py` proves its output equal (after parsing) to the official one.

OTLP/JSON rules followed: lowerCamelCase keys, trace and span ids as lowercase hex, enums as integers,
64-bit integers as decimal strings, non-finite doubles as "NaN"/"Infinity"/"-Infinity", bytes as base64,
default values omitted except `status`, which is always present.
"""

from __future__ import annotations

import base64
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import orjson
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind

__all__ = ["LineBuilder", "encode_line", "encode_one"]

_logger = logging.getLogger(__name__)
_dumps = orjson.dumps
_HAS_IS_REMOTE: Final = 0x100
_IS_REMOTE: Final = 0x200


def _double(value: float) -> Any:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _any_value(value: Any) -> dict[str, Any]:
    kind = type(value)
    if kind is str:
        return {"stringValue": value}
    if kind is bool:
        return {"boolValue": value}
    if kind is int:
        return {"intValue": str(value)}
    if kind is float:
        return {"doubleValue": _double(value)}
    return _any_value_slow(value)


def _any_value_slow(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": bool(value)}
    if isinstance(value, str):
        return {"stringValue": str(value)}
    if isinstance(value, int):
        return {"intValue": str(int(value))}
    if isinstance(value, float):
        return {"doubleValue": _double(float(value))}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, Sequence):
        values = [_any_value(v) for v in value]
        return {"arrayValue": {"values": values} if values else {}}
    if isinstance(value, Mapping):
        pairs = [{"key": str(k), "value": _any_value(v)} for k, v in value.items()]
        return {"kvlistValue": {"values": pairs} if pairs else {}}
    return {"stringValue": str(value)}


def _items(attributes: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    # The SDK's BoundedAttributes iterates through Mapping.__iter__ + __getitem__ (slow); its plain
    # dict is `_dict`. The equality test against the official encoder guards this shortcut.
    inner = getattr(attributes, "_dict", None)
    return inner.items() if type(inner) is dict else attributes.items()


_key_prefixes: dict[str, bytes] = {}
_fragments: dict[tuple[str, str], bytes] = {}


def _key_prefix(key: str) -> bytes:
    prefix = _key_prefixes.get(key)
    if prefix is None:
        prefix = b'{"key":' + _dumps(key) + b',"value":'
        if len(_key_prefixes) < 4096:  # attribute keys are few; never let odd ones grow this
            _key_prefixes[key] = prefix
    return prefix


def _text(value: str) -> bytes:
    """A JSON string; lone surrogates (not valid UTF-8) become U+FFFD instead of failing."""
    try:
        return _dumps(value)
    except TypeError:
        return _dumps(value.encode("utf-8", "replace").decode("utf-8"))


def _attributes(attributes: Mapping[str, Any]) -> bytes:
    try:
        return _attributes_fast(attributes)
    except TypeError:  # e.g. a lone surrogate: redo this span's attributes the careful way
        return _dumps(
            [{"key": _clean(k), "value": _any_value(_clean_value(v))} for k, v in _items(attributes)]
        )


def _clean(text: str) -> str:
    return text.encode("utf-8", "replace").decode("utf-8")


def _clean_value(value: Any) -> Any:
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, list | tuple):
        return [_clean_value(v) for v in value]
    if isinstance(value, Mapping):
        return {_clean(str(k)): _clean_value(v) for k, v in value.items()}
    return value


def _attributes_fast(attributes: Mapping[str, Any]) -> bytes:
    """`[{"key":…,"value":{…}},…]` built as bytes: no intermediate dicts for the GC to track."""
    parts: list[bytes] = []
    append = parts.append
    prefixes = _key_prefixes
    fragments = _fragments
    for key, value in _items(attributes):
        kind = type(value)
        if kind is str and len(value) <= 64:  # ids, names, enums: the same few recur on every span
            fragment = fragments.get((key, value))
            if fragment is None:
                fragment = (
                    (prefixes.get(key) or _key_prefix(key)) + b'{"stringValue":' + _dumps(value) + b"}}"
                )
                if len(fragments) >= 8192:
                    fragments.clear()
                fragments[key, value] = fragment
            append(fragment)
            continue
        prefix = prefixes.get(key) or _key_prefix(key)
        if kind is str:
            append(prefix + b'{"stringValue":' + _dumps(value) + b"}}")
        elif kind is bool:
            append(prefix + (b'{"boolValue":true}}' if value else b'{"boolValue":false}}'))
        elif kind is int:
            append(prefix + b'{"intValue":"%d"}}' % value)
        else:
            append(prefix + _dumps(_any_value(value)) + b"}")
    return b"[" + b",".join(parts) + b"]"


def _flags(context: SpanContext | None) -> int:
    return _HAS_IS_REMOTE | _IS_REMOTE if context is not None and context.is_remote else _HAS_IS_REMOTE


_KIND: Final = {kind: kind.value + 1 for kind in SpanKind}


def _span(span: ReadableSpan) -> bytes:
    # Reads the SDK span's own fields: its public properties copy (events, links) or wrap (attributes)
    # them on every access, which doubled this function's cost. The SDK minor is pinned and
    # tests/test_otlp_json_encoder.py compares every field with the official encoder.
    ctx: SpanContext = span._context  # type: ignore[assignment]
    parent: SpanContext | None = span._parent
    name = span._name
    parts = [
        b'{"traceId":"%032x","spanId":"%016x"' % (ctx.trace_id, ctx.span_id),
        b',"traceState":' + _dumps(",".join(f"{k}={v}" for k, v in ctx.trace_state.items()))
        if ctx.trace_state
        else b"",
        b',"parentSpanId":"%016x"' % parent.span_id if parent is not None else b"",
        b',"flags":%d%s,"kind":%d,"startTimeUnixNano":"%d","endTimeUnixNano":"%d"'
        % (
            _flags(parent),
            b',"name":' + _text(name) if name else b"",  # proto3 JSON omits default values
            _KIND[span._kind],
            span._start_time or 0,
            span._end_time or 0,
        ),
    ]
    attributes = span._attributes
    if attributes:
        parts.append(b',"attributes":' + _attributes(attributes))
        dropped = getattr(attributes, "dropped", 0)
        if dropped:
            parts.append(b',"droppedAttributesCount":%d' % dropped)
    events = span._events
    if events:
        encoded_events = []
        for event in events:
            e = b'{"timeUnixNano":"%d"' % event.timestamp
            if event.name:
                e += b',"name":' + _text(event.name)
            if event.attributes:
                e += b',"attributes":' + _attributes(event.attributes)
            if event.dropped_attributes:
                e += b',"droppedAttributesCount":%d' % event.dropped_attributes
            encoded_events.append(e + b"}")
        parts.append(b',"events":[' + b",".join(encoded_events) + b"]")
    dropped = getattr(events, "dropped", 0)
    if dropped:
        parts.append(b',"droppedEventsCount":%d' % dropped)
    links = span._links
    if links:
        encoded_links = []
        for link in links:
            lc = link.context
            ld = b'{"traceId":"%032x","spanId":"%016x"' % (lc.trace_id, lc.span_id)
            if link.attributes:
                ld += b',"attributes":' + _attributes(link.attributes)
            if link.dropped_attributes:
                ld += b',"droppedAttributesCount":%d' % link.dropped_attributes
            encoded_links.append(ld + b',"flags":%d}' % _flags(lc))
        parts.append(b',"links":[' + b",".join(encoded_links) + b"]")
    dropped = getattr(links, "dropped", 0)
    if dropped:
        parts.append(b',"droppedLinksCount":%d' % dropped)
    status = span._status
    code = status.status_code.value
    if status.description and code:
        parts.append(b',"status":{"message":%s,"code":%d}}' % (_text(status.description), code))
    elif code:
        parts.append(b',"status":{"code":%d}}' % code)
    elif status.description:
        parts.append(b',"status":{"message":%s}}' % _text(status.description))
    else:
        parts.append(b',"status":{}}')
    return b"".join(parts)


class _Cache:
    """Resources and scopes are shared by thousands of spans: encode each once."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[object, bytes]] = {}

    def get(self, obj: object, encode: Any) -> bytes:
        hit = self._entries.get(id(obj))
        if hit is None or hit[0] is not obj:
            hit = (obj, encode(obj))
            if len(self._entries) > 256:
                self._entries.clear()
            self._entries[id(obj)] = hit
        return hit[1]


_CACHE = _Cache()


def _resource(resource: Resource) -> bytes:
    body = b'{"attributes":' + _attributes(resource.attributes) + b"}" if resource.attributes else b"{}"
    return b'{"resource":' + body


def _scope(scope: InstrumentationScope | None) -> bytes:
    if scope is None:
        return b'{"scope":{}'
    fields = []
    if scope.name:
        fields.append(b'"name":' + _dumps(scope.name))
    if scope.version:
        fields.append(b'"version":' + _dumps(scope.version))
    if scope.attributes:
        fields.append(b'"attributes":' + _attributes(scope.attributes))
    return b'{"scope":{' + b",".join(fields) + b"}"


class LineBuilder:
    """Collects encoded spans grouped by resource and scope, then emits them as one line.

    Encoding each span as it ends (rather than keeping the SDK span objects until a flush) lets those
    objects die young, which keeps the cyclic GC's full collections, and their cost to the agent, rare.
    """

    __slots__ = ("_groups", "count", "skipped")

    def __init__(self) -> None:
        self._groups: dict[tuple[int, Any], tuple[Resource, InstrumentationScope | None, list[bytes]]] = {}
        self.count = 0
        self.skipped = 0

    def add(self, span: ReadableSpan) -> None:
        """Encode `span` into this line; a span that cannot be encoded is logged and left out alone."""
        try:
            encoded = _span(span)
        except Exception:
            _logger.exception("otel_decisions: cannot encode span %r; it is left out", span.name)
            self.skipped += 1
            return
        resource = span.resource
        scope = span.instrumentation_scope
        key = (id(resource), (scope.name, scope.version, scope.schema_url) if scope is not None else None)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = (resource, scope, [])
        group[2].append(encoded)
        self.count += 1

    def line(self) -> bytes:
        """The `{"resourceSpans": [...]}` line with a final newline (b"" when empty)."""
        if not self.count:
            return b""
        if len(self._groups) == 1:  # the common case (one resource, one scope): no regrouping
            resource, scope, encoded = next(iter(self._groups.values()))
            if not resource.schema_url and (scope is None or not scope.schema_url):
                return b"".join(
                    (
                        b'{"resourceSpans":[',
                        _CACHE.get(resource, _resource),
                        b',"scopeSpans":[',
                        _CACHE.get(scope, _scope),
                        b',"spans":[',
                        b",".join(encoded),
                        b"]}]}]}\n",
                    )
                )
        by_resource: dict[int, tuple[Resource, list[bytes]]] = {}
        for resource, scope, encoded in self._groups.values():
            part = _CACHE.get(scope, _scope) + b',"spans":[' + b",".join(encoded) + b"]"
            if scope is not None and scope.schema_url:
                part += b',"schemaUrl":' + _dumps(scope.schema_url)
            by_resource.setdefault(id(resource), (resource, []))[1].append(part + b"}")
        resource_parts = []
        for resource, scope_parts in by_resource.values():
            part = _CACHE.get(resource, _resource) + b',"scopeSpans":[' + b",".join(scope_parts) + b"]"
            if resource.schema_url:
                part += b',"schemaUrl":' + _dumps(resource.schema_url)
            resource_parts.append(part + b"}")
        return b'{"resourceSpans":[' + b",".join(resource_parts) + b"]}\n"


_prefixes: dict[tuple[int, int], tuple[Resource, InstrumentationScope | None, bytes]] = {}


def encode_one(span: ReadableSpan) -> bytes:
    """`encode_line([span])`, faster: the recorder writes each span as it ends, so the line's
    resource-and-scope prefix is built once per (resource, scope) pair. Raises if `span` cannot be
    encoded."""
    resource, scope = span.resource, span.instrumentation_scope
    if resource.schema_url or (scope is not None and scope.schema_url):
        return encode_line([span])
    key = (id(resource), id(scope))
    hit = _prefixes.get(key)
    if hit is None or hit[0] is not resource or hit[1] is not scope:
        prefix = b"".join(
            (b'{"resourceSpans":[', _resource(resource), b',"scopeSpans":[', _scope(scope), b',"spans":[')
        )
        if len(_prefixes) > 256:
            _prefixes.clear()
        hit = _prefixes[key] = (resource, scope, prefix)
    return hit[2] + _span(span) + b"]}]}]}\n"


def encode_line(spans: Sequence[ReadableSpan]) -> bytes:
    """One newline-terminated `{"resourceSpans": [...]}` line holding `spans` (b"" for none).

    Spans are grouped by resource, then by instrumentation scope, as the OTLP encoders do.
    """
    builder = LineBuilder()
    for span in spans:
        builder.add(span)
    return builder.line()
