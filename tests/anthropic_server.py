"""A local Anthropic Messages API on 127.0.0.1 that the real `anthropic` SDK talks to over HTTP.

`POST /v1/messages` answers with scripted replies, shaped as the real API's: a message (`id`, `type`
"message", `role`, `content` blocks `text` / `tool_use`, `model`, `stop_reason`, `usage`), an error
(`{"type": "error", "error": {"type", "message"}}` with its status code and headers such as
`retry-after-ms`), or, for `"stream": true`, the same message as server-sent events (`message_start`,
`ping`, `content_block_start`, `content_block_delta` with `text_delta` / `input_json_delta`,
`content_block_stop`, `message_delta` with `stop_reason` and `usage`, `message_stop`) over a chunked
response. Any other path is a 404 `not_found_error`. Every request is recorded (headers and JSON body).

Usage::

    with AnthropicServer() as server:
        server.script(Reply.rate_limited(retry_after_ms=5), Reply.text("Hello"))
        client = anthropic.Anthropic(api_key="test-key", base_url=server.url)
        client.messages.create(...)              # retried once, then "Hello"
        assert len(server.requests) == 2

Replies are served in order; when none is left, `handler(request)` (if set) answers, else a 500 with
`x-should-retry: false` (so a test that forgot a reply fails at once instead of retrying). A reply's
`model` left as None echoes the request's. Nothing sleeps: `wait_for_requests` blocks on a condition.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

__all__ = ["AnthropicServer", "Handler", "Received", "Reply", "message_events"]

MESSAGES_PATH: Final = "/v1/messages"
#: Characters per `text_delta` / `input_json_delta` when a message is streamed.
CHUNK_CHARS: Final = 16
_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Received:
    """One request as it arrived: header names lower-case, `body` the decoded JSON (None if not JSON)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float  # time.monotonic() on arrival

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and self.body.get("stream") is True


@dataclass(frozen=True, slots=True)
class Reply:
    """A scripted response: `body` is a message (status 200) or an error body; `events` (name, data)
    replace the events a streamed message would give."""

    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    events: list[tuple[str, dict[str, Any]]] | None = None

    @classmethod
    def message(
        cls,
        content: list[dict[str, Any]],
        *,
        stop_reason: str = "end_turn",
        model: str | None = None,
        input_tokens: int = 25,
        output_tokens: int = 10,
    ) -> Reply:
        return cls(
            body={
                "id": f"msg_test_{next(_ids):06d}",
                "type": "message",
                "role": "assistant",
                "content": content,
                "model": model,
                "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
            }
        )

    @classmethod
    def text(cls, text: str, **kwargs: Any) -> Reply:
        return cls.message([{"type": "text", "text": text}], **kwargs)

    @classmethod
    def tool_use(
        cls, name: str, tool_input: dict[str, Any], *, text: str | None = None, **kwargs: Any
    ) -> Reply:
        block = {"type": "tool_use", "id": f"toolu_test_{next(_ids):06d}", "name": name, "input": tool_input}
        content = ([{"type": "text", "text": text}] if text else []) + [block]
        return cls.message(content, **{"stop_reason": "tool_use", **kwargs})

    @classmethod
    def error(
        cls, status: int, error_type: str, message: str, *, headers: dict[str, str] | None = None
    ) -> Reply:
        body = {"type": "error", "error": {"type": error_type, "message": message}}
        return cls(status=status, body=body, headers=dict(headers or {}))

    @classmethod
    def rate_limited(cls, *, retry_after_ms: int | None = 1, retry_after: str | None = None) -> Reply:
        """A 429 as the API sends it, asking to wait `retry_after_ms` (or `retry_after` seconds)."""
        headers = {"x-should-retry": "true"}
        if retry_after_ms is not None:
            headers["retry-after-ms"] = str(retry_after_ms)
        if retry_after is not None:
            headers["retry-after"] = retry_after
        return cls.error(
            429, "rate_limit_error", "Number of request tokens has exceeded your rate limit.", headers=headers
        )


Handler = Callable[[Received], Reply]


def message_events(
    message: dict[str, Any], chunk_chars: int = CHUNK_CHARS
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The server-sent events the API streams for `message`, content split into `chunk_chars` deltas."""
    usage = message.get("usage") or {}
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = {"input_tokens": usage.get("input_tokens", 0), "output_tokens": 1}
    yield "message_start", {"type": "message_start", "message": start}
    yield "ping", {"type": "ping"}
    for index, block in enumerate(message["content"]):
        tool = block["type"] == "tool_use"  # its input arrives as JSON text, in pieces
        empty = {**block, "input": {}} if tool else {**block, "text": ""}
        text = json.dumps(block["input"]) if tool else block.get("text", "")
        delta_type, key = ("input_json_delta", "partial_json") if tool else ("text_delta", "text")
        yield "content_block_start", {"type": "content_block_start", "index": index, "content_block": empty}
        for at in range(0, len(text), chunk_chars):
            piece = {"type": delta_type, key: text[at : at + chunk_chars]}
            yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": piece}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    end = {"stop_reason": message.get("stop_reason"), "stop_sequence": message.get("stop_sequence")}
    out = {"output_tokens": usage.get("output_tokens", 0)}
    yield "message_delta", {"type": "message_delta", "delta": end, "usage": out}
    yield "message_stop", {"type": "message_stop"}


class AnthropicServer:
    """The scriptable Messages API (see the module docstring); a context manager that starts and stops it."""

    def __init__(self, handler: Handler | None = None) -> None:
        self.handler = handler
        self._replies: deque[Reply] = deque()
        self._requests: list[Received] = []
        self._changed = threading.Condition()
        self._connections: set[socket.socket] = set()
        self._http = _HTTPServer(("127.0.0.1", 0), _RequestHandler)
        self._http.api = self
        # A short poll interval: `stop()` waits for one (the default, 0.5 s, slows every test down).
        self._thread = threading.Thread(
            target=self._http.serve_forever, args=(0.01,), name="anthropic-server", daemon=True
        )

    @property
    def url(self) -> str:
        """The base URL to give the SDK (`base_url=` or `ANTHROPIC_BASE_URL`)."""
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    @property
    def requests(self) -> list[Received]:
        """Every request received so far, in order of arrival."""
        with self._changed:
            return list(self._requests)

    def script(self, *replies: Reply) -> None:
        """Queue `replies` for the next requests to `/v1/messages`, in order."""
        with self._changed:
            self._replies.extend(replies)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[Received]:
        """The requests once at least `count` arrived; AssertionError after `timeout` seconds."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._requests) >= count, timeout):
                raise AssertionError(f"expected {count} requests, got {len(self._requests)}")
            return list(self._requests)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open connections (a kept-alive client connection must not hang it)."""
        self._http.shutdown()
        with self._changed:
            for connection in self._connections:
                with suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        self._http.server_close()
        self._thread.join(timeout=5.0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- called by the request handler -------------------------------------------------------------
    def _receive(self, received: Received) -> Reply:
        with self._changed:
            self._requests.append(received)
            self._changed.notify_all()
            if received.method != "POST" or received.path.split("?")[0] != MESSAGES_PATH:
                return Reply.error(404, "not_found_error", f"Not found: {received.method} {received.path}")
            if self._replies:
                return self._replies.popleft()
            handler = self.handler
        if handler is not None:
            return handler(received)
        return Reply.error(500, "api_error", "No scripted reply left", headers={"x-should-retry": "false"})


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    api: AnthropicServer


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        with self.server.api._changed:
            self.server.api._connections.add(self.connection)

    def finish(self) -> None:
        with self.server.api._changed:
            self.server.api._connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests assert on recorded requests, not on a log."""

    def do_POST(self) -> None:
        self._answer()

    def do_GET(self) -> None:
        self._answer()

    def _answer(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {name.lower(): value for name, value in self.headers.items()}
        received = Received(self.command, self.path, headers, body, time.monotonic())
        reply = self.server.api._receive(received)
        if reply.status == 200 and reply.body is not None and reply.body.get("model") is None:
            model = body.get("model") if isinstance(body, dict) else None
            reply = replace(reply, body={**reply.body, "model": model or "claude-test"})
        if reply.status == 200 and received.stream:
            events = reply.events if reply.events is not None else list(message_events(reply.body or {}))
            self._stream(events, reply.headers)
        else:
            self._json(reply.status, reply.body or {}, reply.headers)

    def _json(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self._common_headers(headers)
        self.wfile.write(data)

    def _stream(self, events: list[tuple[str, dict[str, Any]]], headers: dict[str, str]) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self._common_headers(headers)
        for name, data in events:
            chunk = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def _common_headers(self, headers: dict[str, str]) -> None:
        self.send_header("request-id", f"req_test_{next(_ids):06d}")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()


def hermetic_anthropic(monkeypatch: Any, home: Path) -> Iterator[None]:
    """For an autouse fixture: no credential, base URL, profile or content switch from the machine
    running the tests, and Anthropic instrumentation removed afterwards."""
    from otel_decisions import uninstrument_anthropic
    from otel_decisions.integrations.anthropic_calls import CAPTURE_CONTENT_ENV

    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_CONFIG_DIR", CAPTURE_CONTENT_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    yield
    uninstrument_anthropic()
