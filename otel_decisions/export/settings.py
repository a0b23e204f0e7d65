"""Export settings: one frozen value, resolved once from arguments, then the environment, then defaults.

Order for every setting: the `configure()` argument, then the standard `OTEL_*` variable (the
traces-specific one before the generic one), then the default. Bad arguments raise `ConfigError`; bad
environment values log a warning and fall back, so a typo in a deployment never stops an agent.

| setting | environment | default |
|---|---|---|
| directory | `OTEL_DECISIONS_DIR` | `.otel-decisions` |
| local_file | — | on |
| otlp_endpoint | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_ENDPOINT` | none: OTLP off |
| otlp_protocol | `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, `OTEL_EXPORTER_OTLP_PROTOCOL` | `http/protobuf` |
| otlp_headers | `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, `OTEL_EXPORTER_OTLP_HEADERS` | none |
| otlp_timeout | `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, `OTEL_EXPORTER_OTLP_TIMEOUT` (seconds) | 10 |
| exporters | `OTEL_TRACES_EXPORTER` (`otlp`, `console`, `none`) | `otlp` |
| service_name | `OTEL_SERVICE_NAME` (and `OTEL_RESOURCE_ATTRIBUTES`) | the SDK's |
| join_global_provider | — | on: spans also go to a TracerProvider the user set |
| capture_content | `OTEL_DECISIONS_CAPTURE_CONTENT` | on: free text is recorded (scrubbed) |
| scrub | `OTEL_DECISIONS_SCRUB` | on: secret-looking values become `[REDACTED]` |
| scrub_allowed_keys | `OTEL_DECISIONS_SCRUB_ALLOWED_KEYS` (comma-separated) | none beyond the built-in ids |
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlparse

from otel_decisions import _config
from otel_decisions._exceptions import ConfigError

__all__ = ["PROTOCOLS", "Settings", "resolve"]

_logger = logging.getLogger(__name__)

PROTOCOLS: Final = ("grpc", "http/protobuf")
_EXPORTERS: Final = {"otlp", "console", "none"}


@dataclass(frozen=True, slots=True)
class Settings:
    """How spans leave the process (see the module docstring for sources and defaults)."""

    directory: Path
    local_file: bool = True
    otlp_endpoint: str | None = None
    otlp_endpoint_is_base: bool = True
    """True for a base URL (`OTEL_EXPORTER_OTLP_ENDPOINT`, or `configure(otlp_endpoint=…)`): `/v1/traces`
    is appended for HTTP. False for `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, which is used as is."""
    otlp_protocol: str = "http/protobuf"
    otlp_headers: dict[str, str] = field(default_factory=dict)
    otlp_timeout: float = 10.0
    exporters: frozenset[str] = frozenset({"otlp"})
    service_name: str | None = None
    join_global_provider: bool = True
    capture_content: bool = True
    scrub: bool = True
    scrub_allowed_keys: frozenset[str] = frozenset()

    @property
    def otlp_enabled(self) -> bool:
        return self.otlp_endpoint is not None and "otlp" in self.exporters


def _shown(value: object) -> str:
    """A short repr of a rejected value for the error message (never raises)."""
    from otel_decisions._values import short_repr

    return short_repr(value)


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def _valid_endpoint(value: str) -> bool:
    parsed = urlparse(value)
    return parsed.scheme in {"http", "https"} and bool(parsed.netloc)


def _headers(raw: str) -> dict[str, str]:
    """W3C-baggage-style `key=value,…` as the OTel SDK reads it: keys lower-cased, values
    percent-decoded (gRPC rejects upper-case metadata keys)."""
    from opentelemetry.util.re import parse_env_headers

    return dict(parse_env_headers(raw, liberal=True))


def resolve(
    *,
    directory: str | Path | None = None,
    local_file: bool | None = None,
    otlp_endpoint: str | None = None,
    otlp_protocol: str | None = None,
    otlp_headers: dict[str, str] | None = None,
    otlp_timeout: float | None = None,
    exporters: list[str] | None = None,
    service_name: str | None = None,
    join_global_provider: bool | None = None,
    capture_content: bool | None = None,
    scrub: bool | None = None,
    scrub_allowed_keys: list[str] | tuple[str, ...] | frozenset[str] | set[str] | None = None,
) -> Settings:
    """The settings for these arguments (None = not given), the environment and the defaults."""
    for name, flag in (
        ("capture_content", capture_content),
        ("scrub", scrub),
        ("local_file", local_file),
        ("join_global_provider", join_global_provider),
    ):
        if flag is not None and not isinstance(flag, bool):
            raise ConfigError(f"{name} must be True, False or None, got {_shown(flag)}")
    if directory is not None and not isinstance(directory, str | os.PathLike):
        raise ConfigError(f"directory must be a path (str or Path), got {_shown(directory)}")
    for name, text in (
        ("service_name", service_name),
        ("otlp_endpoint", otlp_endpoint),
        ("otlp_protocol", otlp_protocol),
    ):
        if text is not None and type(text) is not str:
            raise ConfigError(f"{name} must be a str, got {_shown(text)}")
    if otlp_headers is not None and not (
        isinstance(otlp_headers, dict)
        and all(type(k) is str and type(v) is str for k, v in otlp_headers.items())
    ):
        raise ConfigError(f"otlp_headers must be a dict of str to str, got {_shown(otlp_headers)}")
    if otlp_timeout is not None and isinstance(otlp_timeout, bool):
        raise ConfigError(f"otlp_timeout must be seconds in (0, 300], got {otlp_timeout!r}")
    if exporters is not None and not (
        isinstance(exporters, list | tuple) and all(type(e) is str for e in exporters)
    ):
        raise ConfigError(f"exporters must be a list of names, got {_shown(exporters)}")
    if scrub_allowed_keys is not None and (
        isinstance(scrub_allowed_keys, str)
        or not isinstance(scrub_allowed_keys, list | tuple | set | frozenset)
        or not all(isinstance(k, str) and k for k in scrub_allowed_keys)
    ):
        raise ConfigError(f"scrub_allowed_keys must be a list of key names, got {scrub_allowed_keys!r}")
    if otlp_endpoint is not None and not _valid_endpoint(otlp_endpoint):
        raise ConfigError(
            f"otlp_endpoint must be an http(s) URL like http://localhost:4318, got {otlp_endpoint!r}"
        )
    if otlp_protocol is not None and otlp_protocol not in PROTOCOLS:
        raise ConfigError(f"otlp_protocol must be one of {PROTOCOLS}, got {otlp_protocol!r}")
    if otlp_timeout is not None and not (isinstance(otlp_timeout, int | float) and 0 < otlp_timeout <= 300):
        raise ConfigError(f"otlp_timeout must be seconds in (0, 300], got {otlp_timeout!r}")
    if exporters is not None and not set(exporters) <= _EXPORTERS:
        raise ConfigError(f"exporters must be among {sorted(_EXPORTERS)}, got {exporters!r}")

    endpoint = otlp_endpoint
    is_base = True
    if endpoint is None:
        specific = _env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        raw = specific or _env("OTEL_EXPORTER_OTLP_ENDPOINT")
        if raw is not None and not _valid_endpoint(raw):
            _logger.warning(
                "otel_decisions: ignoring OTLP endpoint %r (not an http(s) URL); OTLP is off", raw
            )
        elif raw is not None:
            endpoint, is_base = raw, specific is None
    protocol = otlp_protocol or _env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
    if protocol is None or protocol not in PROTOCOLS:
        if protocol is not None:
            _logger.warning("otel_decisions: unknown OTLP protocol %r; using http/protobuf", protocol)
        protocol = "http/protobuf"
    timeout = otlp_timeout
    if timeout is None:
        raw = _env("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
        try:
            timeout = float(raw) if raw is not None else 10.0
        except ValueError:
            timeout = -1.0
        if not timeout > 0:  # 0, negative or unparsable would make every export fail at once
            _logger.warning("otel_decisions: ignoring OTLP timeout %r; using 10 s", raw)
            timeout = 10.0
        if timeout > 300:  # the spec's unit is seconds here; larger values are milliseconds in older SDKs
            timeout = timeout / 1000.0
    wanted = exporters
    if wanted is None:
        raw = _env("OTEL_TRACES_EXPORTER")
        wanted = [e.strip() for e in raw.split(",")] if raw else ["otlp"]
        unknown = set(wanted) - _EXPORTERS
        if unknown:
            _logger.warning(
                "otel_decisions: ignoring unknown OTEL_TRACES_EXPORTER values %s", sorted(unknown)
            )
            wanted = [e for e in wanted if e in _EXPORTERS] or ["otlp"]
    headers = otlp_headers
    if headers is None:
        raw = _env("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")
        headers = _headers(raw) if raw else {}
    return Settings(
        directory=Path(directory) if directory is not None else _config.default_directory(),
        local_file=True if local_file is None else bool(local_file),
        otlp_endpoint=endpoint,
        otlp_endpoint_is_base=is_base,
        otlp_protocol=protocol,
        otlp_headers={k.lower(): v for k, v in headers.items()},
        otlp_timeout=float(timeout),
        exporters=frozenset(wanted),
        service_name=service_name or _env("OTEL_SERVICE_NAME"),
        join_global_provider=True if join_global_provider is None else bool(join_global_provider),
        capture_content=_config.env_flag(_config.OTEL_DECISIONS_CAPTURE_CONTENT, True)
        if capture_content is None
        else capture_content,
        scrub=_config.env_flag(_config.OTEL_DECISIONS_SCRUB, True) if scrub is None else scrub,
        scrub_allowed_keys=frozenset(
            k.strip().lower()
            for k in (
                scrub_allowed_keys
                if scrub_allowed_keys is not None
                else (_env(_config.OTEL_DECISIONS_SCRUB_ALLOWED_KEYS) or "").split(",")
            )
            if k.strip()
        ),
    )
