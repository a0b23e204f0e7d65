"""More sources for `BuilderQuery`: each must rebuild the runs `Runtime` recorded exactly as read from
its JSON-lines file. Proto/zstd files re-encode those lines (traces spread over messages and files);
a fake Jaeger serves them in the shape its `/api/v3` documents (`{"result": {...}}`, 404 = no traces).
"""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
import logging
import re
import socket
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format  # type: ignore[import-untyped]
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from otel_decisions import BuilderQuery, Runtime
from otel_decisions.reading import jaeger as jaeger_module
from otel_decisions.reading.jaeger import parse_lookback

HAS_ZSTD = importlib.util.find_spec("zstandard") is not None
IDLE = "idle-service"
ROTATED = "traces-2026-11-01T10-00-00.000.pb"  # the Collector's rotated-name shape
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")
OPTIONS: list[dict[str, Any]] = [
    {"id": "a", "description": "Option A", "action_type": "tool_call", "action_params": {"tool": "lookup"}},
    {"id": "b", "description": "Option B", "action_params": {"weights": [1, 2.5], "deep": {"x": True}}},
]
Document = dict[str, Any]


@dataclass
class Recorded:
    lines: list[Document]  # the documents `Runtime` wrote, regrouped one per run as a Collector batches
    expected: dict[str, dict[str, Any]]  # run id -> run.model_dump(), as the JSON reader rebuilds it
    service: str


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    directory = tmp_path_factory.mktemp("json")
    runtime = Runtime(directory)
    runtime.start_run("calculator", "Add numbers", {"a": 1})
    for intent in ("parse", "add"):
        decision = runtime.decide(intent=intent, options=OPTIONS, chosen="a", reasoning="simplest")
        runtime.record_outcome(decision, success=True, result={"intent": intent}, tokens_used=7)
    runtime.end_run(success=True, narrative="done")
    runtime.start_run("calculator", "Divide numbers")
    decision = runtime.decide(intent="divide", options=OPTIONS, chosen="b", reasoning="try it")
    runtime.record_outcome(decision, success=False, error="division by zero")
    runtime.report_problem("critical", "divided by zero", decision, "no input check", "validate input")
    runtime.end_run(success=False, narrative="crashed")
    runtime.start_run("search", "Find a page")
    runtime.report_problem("warning", "slow index")
    decision = runtime.decide(intent="query", options=OPTIONS, chosen="a", reasoning="fast")
    runtime.record_outcome(decision, success=True, result=["hit"], latency_ms=12)
    runtime.end_run(success=True)
    written = [json.loads(line) for line in (directory / "traces.jsonl").read_text().splitlines()]
    assert len(written) > 3  # each record is written as it happens
    lines = one_document_per_run(written)
    expected = dumped(BuilderQuery(directory))
    assert len(lines) == len(expected) == 3
    resource = {a["key"]: a["value"] for a in lines[0]["resourceSpans"][0]["resource"]["attributes"]}
    return Recorded(lines, expected, resource["service.name"]["stringValue"])


def one_document_per_run(documents: list[Document]) -> list[Document]:
    """The spans of `documents` (all of one resource and scope) regrouped into one document per trace."""
    first = documents[0]["resourceSpans"][0]
    by_trace: dict[str, list[Document]] = {}
    for document in documents:
        for span in spans(document):
            by_trace.setdefault(span["traceId"], []).append(span)
    return [
        {
            "resourceSpans": [
                {
                    "resource": first["resource"],
                    "scopeSpans": [{"scope": first["scopeSpans"][0]["scope"], "spans": s}],
                }
            ]
        }
        for s in by_trace.values()
    ]


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The clock `JaegerSource` throttles fetches with; tests move it instead of sleeping."""
    now = [1000.0]
    monkeypatch.setattr(jaeger_module, "monotonic", lambda: now[0])
    return now


def dumped(query: BuilderQuery) -> dict[str, dict[str, Any]]:
    return {r.id: r.model_dump() for r in query.storage.runs()}


def warnings_matching(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage()]


def spans(document: Document) -> list[Document]:
    return [sp for rs in document["resourceSpans"] for ss in rs["scopeSpans"] for sp in ss["spans"]]


def encode(document: Document) -> bytes:
    """One OTLP/JSON document as a serialized `TracesData` (proto3 JSON wants base64 ids)."""
    document = copy.deepcopy(document)
    for item in (x for sp in spans(document) for x in (sp, *sp.get("links", ()))):
        for key in [k for k in ("traceId", "spanId", "parentSpanId") if item.get(k)]:
            item[key] = base64.b64encode(bytes.fromhex(item[key])).decode()
    return bytes(json_format.ParseDict(document, TracesData()).SerializeToString())


def framed(messages: list[bytes]) -> bytes:
    """The Collector's `format: proto` layout: a 4-byte big-endian length before each message."""
    return b"".join(len(m).to_bytes(4, "big") + m for m in messages)


def interleaved(lines: list[Document], size: int = 2) -> list[Document]:
    """The spans of `lines` dealt round-robin into documents of `size` resourceSpans each."""
    entries = sorted((i, n, sp) for n, line in enumerate(lines) for i, sp in enumerate(spans(line)))
    first = [line["resourceSpans"][0] for line in lines]
    rs = [{**first[n], "scopeSpans": [{**first[n]["scopeSpans"][0], "spans": [sp]}]} for _, n, sp in entries]
    return [{"resourceSpans": rs[k : k + size]} for k in range(0, len(rs), size)]


def test_proto_files_over_rotation_rebuild_the_same_runs(recorded: Recorded, tmp_path: Path) -> None:
    documents = interleaved(recorded.lines)
    messages, half = [encode(d) for d in documents], len(documents) // 2
    traces = [{sp["traceId"] for sp in spans(d)} for d in documents]
    assert sum(len(t) > 1 for t in traces) > 2  # messages mix traces
    assert set.union(*traces[:half]) == set.union(*traces[half:]) == {t for ts in traces for t in ts}
    (tmp_path / ROTATED).write_bytes(framed(messages[:half]))
    (tmp_path / "traces.pb").write_bytes(framed(messages[half:]))
    query = BuilderQuery(tmp_path)
    assert dumped(query) == recorded.expected
    failed = [r for r, run in recorded.expected.items() if run["status"] == "failed"]
    assert [f.run_id for f in query.get_recent_failures()] == failed


def test_truncated_last_message_is_skipped_until_complete(
    recorded: Recorded, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first, second, third = (encode(line) for line in recorded.lines)
    complete = framed([first, b"\x0a\xff", second])  # the middle one's field 1 runs past its end
    path = tmp_path / "traces.binpb"
    path.write_bytes(complete + framed([third])[:-10])
    query = BuilderQuery(tmp_path)
    with caplog.at_level(logging.WARNING):
        partial, again = dumped(query), dumped(query)
    assert len(partial) == 2
    assert partial == again == {r: x for r, x in recorded.expected.items() if r in partial}
    assert len(warnings_matching(caplog, "incomplete last message")) == 1
    assert len(warnings_matching(caplog, "unreadable message")) == 1
    assert all(str(path) in m for m in warnings_matching(caplog, "otel_decisions"))

    path.write_bytes(complete + framed([third]))  # the writer finished the message
    assert dumped(query) == recorded.expected


def test_zstd_file_without_zstandard_is_skipped_with_one_warning(
    recorded: Recorded, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "zstandard", None)  # as if it were not installed
    compressed = tmp_path / "traces-old.jsonl.zst"
    compressed.write_bytes(b"\x28\xb5\x2f\xfd not really")
    (tmp_path / "traces.jsonl").write_text("".join(json.dumps(d) + "\n" for d in recorded.lines))
    query = BuilderQuery(tmp_path)
    with caplog.at_level(logging.WARNING):
        assert dumped(query) == recorded.expected
        compressed.write_bytes(b"\x28\xb5\x2f\xfd changed")
        assert dumped(query) == recorded.expected
    skipped = warnings_matching(caplog, "zstandard")
    assert len(skipped) == 1 and str(compressed) in skipped[0]


@pytest.mark.skipif(not HAS_ZSTD, reason="the optional 'zstandard' module is not installed")
def test_zstd_files_in_both_collector_layouts(recorded: Recorded, tmp_path: Path) -> None:
    import zstandard  # type: ignore[import-not-found,unused-ignore]

    compress = zstandard.ZstdCompressor().compress
    documents = interleaved(recorded.lines)
    layouts = {  # native (feature gate on): one zstd stream; legacy: each message compressed
        "native-json": compress(b"".join(json.dumps(d).encode() + b"\n" for d in recorded.lines)),
        "native-proto": compress(framed([encode(d) for d in documents])),
        "legacy-json": framed([compress(json.dumps(d).encode()) for d in documents]),
        "legacy-proto": framed([compress(encode(d)) for d in documents]),
    }
    for name, data in layouts.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "traces.zst").write_bytes(data)
        assert dumped(BuilderQuery(tmp_path / name)) == recorded.expected, name


@dataclass
class FakeJaeger:
    """Answers like Jaeger v2's `/api/v3` (and records what it was asked)."""

    traces: dict[str, list[Document]]  # service name -> resourceSpans
    url: str = ""
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    fail: bool = False

    def answer(self, path: str, params: dict[str, str]) -> tuple[int, Document]:
        self.requests.append((path, params))
        if self.fail:
            return 500, {"error": {"httpCode": 500, "message": "storage unavailable"}}
        if path == "/api/v3/services":
            return 200, {"services": sorted(self.traces)}
        low, high = params.get("query.start_time_min", ""), params.get("query.start_time_max", "")
        if path != "/api/v3/traces" or not (RFC3339.match(low) and RFC3339.match(high)):
            return 400, {"error": {"httpCode": 400, "message": "start_time_min and _max are required"}}
        lo, hi = seconds(params, "min"), seconds(params, "max")
        found = [  # whole traces with a span that started in the window, as Jaeger selects them
            rs
            for rs in self.traces.get(params.get("query.service_name", ""), [])
            if any(lo <= int(sp["startTimeUnixNano"]) / 1e9 <= hi for sp in spans({"resourceSpans": [rs]}))
        ]
        if not found:
            return 404, {"error": {"httpCode": 404, "message": "No traces found"}}
        return 200, {"result": {"resourceSpans": found}}

    def windows(self) -> list[tuple[str, int]]:
        """(service, window length in seconds) of each trace search received."""
        ps = [p for path, p in self.requests if path == "/api/v3/traces"]
        return [(p["query.service_name"], round(seconds(p, "max") - seconds(p, "min"))) for p in ps]


def seconds(params: dict[str, str], bound: str) -> float:
    """`query.start_time_<bound>` as a POSIX time (fractions beyond microseconds dropped)."""
    value = re.sub(r"(\.\d{6})\d+", r"\1", params[f"query.start_time_{bound}"].replace("Z", "+00:00"))
    return datetime.fromisoformat(value).timestamp()


@pytest.fixture
def jaeger(recorded: Recorded) -> Iterator[FakeJaeger]:
    fake = FakeJaeger({recorded.service: [rs for d in recorded.lines for rs in d["resourceSpans"]], IDLE: []})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            status, body = fake.answer(parts.path, dict(urllib.parse.parse_qsl(parts.query)))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_jaeger_runs_of_every_service_and_404_as_no_traces(
    recorded: Recorded, jaeger: FakeJaeger, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert dumped(BuilderQuery(jaeger.url)) == recorded.expected  # the idle service answers 404
        assert dumped(BuilderQuery(f"{jaeger.url}?service={IDLE}")) == {}
        assert BuilderQuery(f"{jaeger.url}/?service=unknown").get_recent_failures() == []
    assert not warnings_matching(caplog, "")
    assert [path for path, _ in jaeger.requests].count("/api/v3/services") == 1
    services = [recorded.service, IDLE, IDLE, "unknown"]  # each with the default lookback, 2 days
    assert sorted(jaeger.windows()) == sorted((s, 2 * 86_400) for s in services)
    search = next(p for path, p in jaeger.requests if path == "/api/v3/traces")
    depth_and_raw = search["query.num_traces"], search["query.search_depth"], search["query.raw_traces"]
    assert depth_and_raw == ("1000", "1000", "true")


def test_jaeger_url_parameters_throttling_and_errors(
    recorded: Recorded, jaeger: FakeJaeger, caplog: pytest.LogCaptureFixture, clock: list[float]
) -> None:
    query = BuilderQuery(f"{jaeger.url}/?service={urllib.parse.quote(recorded.service)}&lookback=2h")
    assert dumped(query) == dumped(query) == recorded.expected
    assert jaeger.windows() == [(recorded.service, 2 * 3600)]  # one search, no listing of services
    assert len(jaeger.requests) == 1  # asked again within a second: throttled

    clock[0] += 5
    jaeger.fail = True
    with caplog.at_level(logging.WARNING):
        assert dumped(query) == recorded.expected  # what it had is kept
    assert len(jaeger.requests) == 2
    (warning,) = warnings_matching(caplog, "cannot read from Jaeger")
    assert "500" in warning


def test_jaeger_down_gives_no_runs_and_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:  # a port nothing listens on any more
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    query = BuilderQuery(f"http://127.0.0.1:{port}")
    with caplog.at_level(logging.WARNING):
        assert query.storage.runs() == []
        assert query.get_recent_failures() == []
    assert len(warnings_matching(caplog, "cannot read from Jaeger")) == 1  # later calls are throttled


def test_lookback() -> None:
    texts = ["30m", "2h", "7d", "45s", "1.5h"]
    assert [parse_lookback(t).total_seconds() for t in texts] == [1800, 7200, 604800, 45, 5400]
    with pytest.raises(ValueError, match="lookback"):
        BuilderQuery("http://127.0.0.1:9/?lookback=soon")
