"""Real OTLP receivers on 127.0.0.1 for the export tests: gRPC `TraceService` and OTLP/HTTP protobuf.

Both decode what arrives with `opentelemetry-proto` (the same messages a Collector decodes), keep every
decoded `ExportTraceServiceRequest` with the request's headers (gRPC metadata), and can misbehave on
purpose:

* ``normal``: accept and answer at once;
* ``slow``: hold every request `delay` seconds before accepting it (a slow Collector);
* ``error``: refuse every request: gRPC ``UNAVAILABLE``, HTTP `error_status` (503 by default).

Usage::

    with GrpcReceiver() as receiver:           # or HttpReceiver(mode="slow", delay=5.0)
        ... export to receiver.endpoint ...
        spans = receiver.wait_for_spans(5, timeout=10.0)

A receiver stops cleanly and in bounded time: a slow handler is released at once when it stops.
`wait_for_spans` / `wait_for_attempts` block on a condition variable, with a timeout, never a sleep loop.
"""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, Literal, Self, TypedDict

import grpc  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

__all__ = [
    "FlatEvent",
    "FlatSpan",
    "GrpcReceiver",
    "HttpReceiver",
    "Mode",
    "Received",
    "Receiver",
    "flatten",
    "free_port",
    "python_value",
]

Mode = Literal["normal", "slow", "error"]
_STOP_TIMEOUT: Final = 5.0
"""Seconds a receiver waits for its server to stop (handlers are released before)."""


@dataclass(frozen=True, slots=True)
class Received:
    """One accepted export request: the decoded message, the headers (lower-case names) and the path."""

    request: Any  # ExportTraceServiceRequest (the generated class has no static type)
    headers: dict[str, str]
    path: str


class FlatEvent(TypedDict):
    name: str
    time_unix_nano: int
    attributes: dict[str, Any]


class FlatSpan(TypedDict):
    """A received span as plain Python values (ids as lower-case hex, no parent = None)."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: int
    start_time_unix_nano: int
    end_time_unix_nano: int
    status_code: int
    status_message: str
    attributes: dict[str, Any]
    events: list[FlatEvent]
    resource: dict[str, Any]
    scope_name: str
    scope_version: str
    scope_attributes: dict[str, Any]


def python_value(value: Any) -> Any:
    """An OTLP `AnyValue` as the Python value it holds (arrays as lists, kvlists as dicts)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [python_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_of(value.kvlist_value.values)
    return getattr(value, kind)


def attributes_of(items: Any) -> dict[str, Any]:
    """Repeated OTLP `KeyValue`s as a dict."""
    return {kv.key: python_value(kv.value) for kv in items}


def flatten(requests: list[Received]) -> list[FlatSpan]:
    """Every span of `requests`, in arrival order, with its resource and instrumentation scope."""
    out: list[FlatSpan] = []
    for received in requests:
        for resource_spans in received.request.resource_spans:
            resource = attributes_of(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                scope = scope_spans.scope
                for span in scope_spans.spans:
                    out.append(
                        FlatSpan(
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex() or None,
                            name=span.name,
                            kind=span.kind,
                            start_time_unix_nano=span.start_time_unix_nano,
                            end_time_unix_nano=span.end_time_unix_nano,
                            status_code=span.status.code,
                            status_message=span.status.message,
                            attributes=attributes_of(span.attributes),
                            events=[
                                FlatEvent(
                                    name=e.name,
                                    time_unix_nano=e.time_unix_nano,
                                    attributes=attributes_of(e.attributes),
                                )
                                for e in span.events
                            ],
                            resource=resource,
                            scope_name=scope.name,
                            scope_version=scope.version,
                            scope_attributes=attributes_of(scope.attributes),
                        )
                    )
    return out


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Receiver:
    """What both receivers share: the mode, the thread-safe store and the bounded waits."""

    protocol: str = ""

    def __init__(self, mode: Mode = "normal", delay: float = 5.0) -> None:
        self.mode: Mode = mode
        self.delay = delay
        self.port = 0
        self._cond = threading.Condition()
        self._requests: list[Received] = []
        self._attempts = 0
        self._attempted_paths: list[str] = []
        self._released = threading.Event()  # set when stopping: slow handlers return at once

    # --- for the server side ---------------------------------------------------------------------
    def _attempt(self, path: str) -> None:
        with self._cond:
            self._attempts += 1
            self._attempted_paths.append(path)
            self._cond.notify_all()

    def _hold_if_slow(self) -> None:
        if self.mode == "slow":
            self._released.wait(self.delay)  # the simulated slow server (released early on stop)

    def _store(self, request: Any, headers: dict[str, str], path: str) -> None:
        with self._cond:
            self._requests.append(Received(request, headers, path))
            self._cond.notify_all()

    # --- for the tests ---------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        """The base endpoint, as `OTEL_EXPORTER_OTLP_ENDPOINT` takes it."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def attempts(self) -> int:
        """Requests that reached the server, accepted or not."""
        with self._cond:
            return self._attempts

    @property
    def attempted_paths(self) -> list[str]:
        """The paths (HTTP) or methods (gRPC) of every request that reached the server."""
        with self._cond:
            return list(self._attempted_paths)

    def requests(self) -> list[Received]:
        """The accepted requests so far."""
        with self._cond:
            return list(self._requests)

    def spans(self) -> list[FlatSpan]:
        """The spans of the accepted requests so far."""
        return flatten(self.requests())

    def wait_for_spans(self, count: int, timeout: float) -> list[FlatSpan]:
        """The spans received once there are at least `count`; AssertionError after `timeout` s."""
        with self._cond:
            arrived = self._cond.wait_for(lambda: len(flatten(self._requests)) >= count, timeout)
            spans = flatten(self._requests)
        if not arrived:
            raise AssertionError(
                f"{self.protocol} receiver: {len(spans)} span(s) after {timeout} s, expected {count}: "
                f"{[s['name'] for s in spans]} ({self._attempts} request(s) reached it)"
            )
        return spans

    def wait_for_attempts(self, count: int, timeout: float) -> int:
        """The number of requests that reached the server once at least `count` did; AssertionError after
        `timeout` s."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._attempts >= count, timeout):
                raise AssertionError(
                    f"{self.protocol} receiver: {self._attempts} request(s) after {timeout} s, "
                    f"expected {count}"
                )
            return self._attempts

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# ============================================================================================ gRPC
_GRPC_METHOD: Final = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: GrpcReceiver) -> None:
        self._receiver = receiver

    def Export(self, request: Any, context: Any) -> Any:
        receiver = self._receiver
        receiver._attempt(_GRPC_METHOD)
        receiver._hold_if_slow()
        if receiver.mode == "error":
            context.abort(grpc.StatusCode.UNAVAILABLE, "test receiver refuses every export")
        headers = {str(k).lower(): str(v) for k, v in context.invocation_metadata()}
        receiver._store(request, headers, _GRPC_METHOD)
        return ExportTraceServiceResponse()


class GrpcReceiver(Receiver):
    """An OTLP/gRPC `TraceService` on 127.0.0.1 (a free port; `endpoint` is `http://127.0.0.1:PORT`)."""

    protocol = "grpc"

    def __init__(self, mode: Mode = "normal", delay: float = 5.0) -> None:
        super().__init__(mode, delay)
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="test-otlp-grpc")
        self._server: Any = None

    def start(self) -> None:
        server = grpc.server(self._executor)
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _TraceService(self), server
        )
        self.port = server.add_insecure_port("127.0.0.1:0")
        assert self.port, "could not bind a gRPC port on 127.0.0.1"
        server.start()
        self._server = server

    def stop(self) -> None:
        self._released.set()
        if self._server is not None:
            stopped = self._server.stop(grace=1.0)
            assert stopped.wait(_STOP_TIMEOUT), "gRPC receiver did not stop"
            self._server = None
        self._executor.shutdown(wait=False, cancel_futures=True)


# ============================================================================================ HTTP
class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    receiver: HttpReceiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # a client that gave up on a slow answer closed its socket: expected here


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer
    protocol_version = "HTTP/1.1"  # keep-alive, as the exporter's session expects

    def _answer(self, status: int, body: bytes = b"", content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path
        receiver._attempt(path)
        if path != receiver.path:
            self._answer(404, b"not an OTLP traces path")
            return
        receiver._hold_if_slow()
        if receiver.mode == "error":
            self._answer(receiver.error_status, b"test receiver refuses every export")
            return
        try:
            request = ExportTraceServiceRequest.FromString(body)
        except Exception:
            self._answer(400, b"not an ExportTraceServiceRequest")
            return
        receiver._store(request, {k.lower(): v for k, v in self.headers.items()}, path)
        self._answer(200, ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf")

    def log_message(self, format: str, *args: Any) -> None:
        return None  # keep the test output clean


class HttpReceiver(Receiver):
    """An OTLP/HTTP protobuf receiver on 127.0.0.1, answering `POST {path}` (`/v1/traces`)."""

    protocol = "http/protobuf"

    def __init__(
        self, mode: Mode = "normal", delay: float = 5.0, error_status: int = 503, path: str = "/v1/traces"
    ) -> None:
        super().__init__(mode, delay)
        self.error_status = error_status
        self.path = path
        self._server: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        server = _HttpServer(("127.0.0.1", 0), _Handler)
        server.receiver = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="test-otlp-http", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._released.set()
        if self._server is not None:
            self._server.shutdown()  # returns once serve_forever has (it polls every 0.05 s)
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(_STOP_TIMEOUT)
            assert not self._thread.is_alive(), "HTTP receiver did not stop"
            self._thread = None
