"""Reading spans from a Jaeger v2 query service through its `/api/v3` HTTP API.

`RunStore("http://localhost:16686")` (or `BuilderQuery(...)`) reads runs from Jaeger instead of files.
URL query parameters select what is fetched: `service` (one service name; by default every service
`/api/v3/services` lists) and `lookback` (`30m`, `2h`, `7d`; default 2 days), e.g.
`http://localhost:16686/?service=calculator&lookback=2h`. A path before `/api/v3` (Jaeger's
`base_path`) is kept.

Each fetch asks `GET /api/v3/traces` for the whole time window again: Jaeger has no offsets to resume
from, and spans are de-duplicated by span id downstream. Jaeger answers "no trace matched" with HTTP 404,
which is read as an empty result. Parameters use the snake_case names every Jaeger v2 accepts (v2.19+
keeps them as aliases of the camelCase ones); the search depth is sent under both of its snake_case names
(`query.num_traces` before v2.19, `query.search_depth` after). Traces are asked for raw, as stored:
Jaeger's adjusters would otherwise add warning attributes and move some attributes to the resource.

Only the standard library is used (urllib: no new dependency). Failures raise `OSError` (as urllib
does: `URLError`, `HTTPError`, timeouts; an unreadable answer is reported as `OSError` too), which
`RunStore.refresh` turns into a warning while keeping the runs it already had. Fetches are at most one
per `min_interval` seconds, so a query object that is asked many questions in a row (each of which
refreshes) neither floods Jaeger nor waits on a down one each time.
"""

from __future__ import annotations

import http.client
import logging
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from time import monotonic
from typing import Any, Final

import orjson

from otel_decisions.contract import SpanRecord
from otel_decisions.reading.otlp_files import spans_of

__all__ = ["JaegerSource", "is_url", "parse_lookback"]

_logger = logging.getLogger(__name__)

DEFAULT_LOOKBACK: Final = timedelta(days=2)
_LOOKBACK: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def is_url(source: object) -> bool:
    """Whether a `RunStore` source names a Jaeger query service rather than files."""
    return isinstance(source, str) and source.lower().startswith(("http://", "https://"))


def parse_lookback(text: str) -> timedelta:
    """`30m`, `2h`, `7d` (also `s`, `w`) as a timedelta. Raises ValueError for anything else."""
    match = _LOOKBACK.match(text)
    if match is None:
        raise ValueError(f"lookback {text!r} is not a number followed by s, m, h, d or w (e.g. 2h)")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class JaegerSource:
    """Spans of the traces a Jaeger query service holds for a time window ending now."""

    def __init__(
        self,
        base_url: str,
        service: str | None = None,
        lookback: timedelta = DEFAULT_LOOKBACK,
        timeout: float = 10.0,
        search_depth: int = 1000,
        min_interval: float = 1.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.service = service
        self.lookback = lookback
        self.timeout = timeout
        self.search_depth = search_depth
        self.min_interval = min_interval
        self._last_fetch: float | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> JaegerSource:
        """A source for `http(s)://host:port[/base_path][?service=NAME&lookback=2h]`."""
        parts = urllib.parse.urlsplit(url)
        params = urllib.parse.parse_qs(parts.query)
        unknown = set(params) - {"service", "lookback"}
        if unknown:
            _logger.warning("otel_decisions: ignoring unknown parameters %s in %s", sorted(unknown), url)
        service = params.get("service", [""])[-1] or None
        lookback = params.get("lookback", [""])[-1]
        base = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        return cls(base, service=service, lookback=parse_lookback(lookback) if lookback else DEFAULT_LOOKBACK)

    def __repr__(self) -> str:
        return f"JaegerSource({self.base_url!r}, service={self.service!r}, lookback={self.lookback})"

    # --- fetching --------------------------------------------------------------------------------
    def fetch(self) -> list[SpanRecord]:
        """Our spans of every trace in the window; [] when fetched less than `min_interval` ago.

        Raises OSError when Jaeger cannot be reached or does not answer as its API documents.
        """
        with self._lock:
            now = monotonic()
            if self._last_fetch is not None and now - self._last_fetch < self.min_interval:
                return []
            self._last_fetch = now
        services = [self.service] if self.service is not None else self.services()
        spans: list[SpanRecord] = []
        for service in services:
            spans.extend(self.find_traces(service))
        return spans

    def services(self) -> list[str]:
        """The service names Jaeger knows (`GET /api/v3/services`)."""
        document = self._get("/api/v3/services", {})
        names = document.get("services") if isinstance(document, dict) else None
        if not isinstance(names, list):
            raise OSError(f"{self.base_url}/api/v3/services: no 'services' list in the answer")
        return [n for n in names if isinstance(n, str)]

    def find_traces(self, service: str) -> list[SpanRecord]:
        """Our spans in the traces of `service` that started within the window (`GET /api/v3/traces`)."""
        end = datetime.now(UTC)
        params = {
            "query.service_name": service,
            "query.start_time_min": _rfc3339(end - self.lookback),
            "query.start_time_max": _rfc3339(end),
            "query.num_traces": str(self.search_depth),
            "query.search_depth": str(self.search_depth),
            "query.raw_traces": "true",
        }
        try:
            document = self._get("/api/v3/traces", params)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:  # Jaeger's answer when no trace matched
                return []
            raise
        result = document.get("result") if isinstance(document, dict) else None
        if not isinstance(result, dict):
            raise OSError(f"{self.base_url}/api/v3/traces: no 'result' object in the answer")
        try:
            return spans_of(result)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise OSError(f"{self.base_url}/api/v3/traces: not OTLP JSON: {exc}") from exc

    def _get(self, path: str, params: dict[str, str]) -> Any:
        url = self.base_url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            exc.close()  # its body is not needed; closing avoids an unclosed-socket warning
            raise
        except http.client.HTTPException as exc:  # e.g. IncompleteRead: not an OSError of its own
            raise OSError(f"{url}: {exc!r}") from exc
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise OSError(f"{url}: the answer is not JSON: {exc}") from exc
