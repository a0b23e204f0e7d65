"""Settings read from the environment, each a named constant with its values and default.

Bad values never crash the agent: they log a warning once and fall back to the default.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Final

from otel_decisions._values import DEFAULT_MAX_VALUE_CHARS
from otel_decisions.export.file_writer import DEFAULT_MAX_BYTES

_logger = logging.getLogger(__name__)

OTEL_DECISIONS_DIR: Final = "OTEL_DECISIONS_DIR"
"""Directory of the local span files. Default: `.otel-decisions` in the working directory."""

OTEL_DECISIONS_MAX_VALUE_CHARS: Final = "OTEL_DECISIONS_MAX_VALUE_CHARS"
"""Cap, in characters, of one JSON or text attribute (options, context, result, reasoning…).
Default 16384. Larger values are replaced by a marked, truncated preview."""

OTEL_DECISIONS_FILE_MAX_BYTES: Final = "OTEL_DECISIONS_FILE_MAX_BYTES"
"""Size at which `traces.jsonl` is rotated. Default 67108864 (64 MiB); 0 disables rotation."""

OTEL_DECISIONS_FILE_FSYNC: Final = "OTEL_DECISIONS_FILE_FSYNC"
"""`true` to fsync after every write (survives power loss, costs ~ms per run). Default `false`:
data is in the OS page cache when `end_run` returns, which survives a crash of the process."""

OTEL_DECISIONS_DURABILITY: Final = "OTEL_DECISIONS_DURABILITY"
"""`span` (default): every span is in the file when it ends — a decision before `decide` returns — and
spans still open are written as snapshots, so a killed process loses nothing it recorded. `run`: spans
are written when their run ends (or by the periodic flush), one line per run: the agent's calls cost
less, and a crash loses up to `OTEL_DECISIONS_FLUSH_INTERVAL` of records."""

OTEL_DECISIONS_FLUSH_INTERVAL: Final = "OTEL_DECISIONS_FLUSH_INTERVAL"
"""Seconds between background writes of spans of runs still open. Default 1.0; 0 disables."""

OTEL_DECISIONS_CAPTURE_CONTENT: Final = "OTEL_DECISIONS_CAPTURE_CONTENT"
"""`false` to record no free text (statistics only: ids, types, counts, hashed option ids and intents).
Default `true`. See `otel_decisions._privacy`."""

OTEL_DECISIONS_SCRUB: Final = "OTEL_DECISIONS_SCRUB"
"""`false` to record values without scrubbing secret-looking strings. Default `true`."""

OTEL_DECISIONS_SCRUB_ALLOWED_KEYS: Final = "OTEL_DECISIONS_SCRUB_ALLOWED_KEYS"
"""Comma-separated keys whose values are never scrubbed (e.g. `input_token,session_id`)."""

OTEL_DECISIONS_SIGTERM: Final = "OTEL_DECISIONS_SIGTERM"
"""`false` to leave SIGTERM alone. Default `true`: on SIGTERM, open runs are ended as `cancelled` and
everything is flushed before the process terminates as it would have."""

DEFAULT_DIR: Final = ".otel-decisions"

_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        _logger.warning("otel_decisions: ignoring %s=%r (not a number); using %s", name, raw, default)
        return default
    if value < 0:
        _logger.warning("otel_decisions: ignoring %s=%r (negative); using %s", name, raw, default)
        return default
    return value


def env_flag(name: str, default: bool) -> bool:
    """A boolean variable (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`); anything else warns."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE or raw in _FALSE:
        return raw in _TRUE
    _logger.warning("otel_decisions: ignoring %s=%r (expected true or false); using %s", name, raw, default)
    return default


def default_directory() -> Path:
    """`$OTEL_DECISIONS_DIR`, else `.otel-decisions` in the working directory."""
    return Path(os.environ.get(OTEL_DECISIONS_DIR, "").strip() or DEFAULT_DIR)


def max_value_chars() -> int:
    """The per-attribute cap (see `OTEL_DECISIONS_MAX_VALUE_CHARS`); at least 256."""
    return max(256, int(_env_number(OTEL_DECISIONS_MAX_VALUE_CHARS, DEFAULT_MAX_VALUE_CHARS)))


def file_max_bytes() -> int:
    """The rotation size (see `OTEL_DECISIONS_FILE_MAX_BYTES`)."""
    return int(_env_number(OTEL_DECISIONS_FILE_MAX_BYTES, DEFAULT_MAX_BYTES))


def file_fsync() -> bool:
    """Whether to fsync every write (see `OTEL_DECISIONS_FILE_FSYNC`)."""
    return os.environ.get(OTEL_DECISIONS_FILE_FSYNC, "").strip().lower() in _TRUE


def sdk_disabled() -> bool:
    """Whether the standard `OTEL_SDK_DISABLED` switches the SDK (and our recording) off."""
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def durability() -> str:
    """`span` or `run` (see `OTEL_DECISIONS_DURABILITY`); anything else warns and means `span`."""
    raw = os.environ.get(OTEL_DECISIONS_DURABILITY, "").strip().lower()
    if raw in {"", "span", "run"}:
        return raw or "span"
    _logger.warning(
        "otel_decisions: ignoring %s=%r (expected span or run); using span", OTEL_DECISIONS_DURABILITY, raw
    )
    return "span"


def flush_interval() -> float:
    """Seconds between background flushes (see `OTEL_DECISIONS_FLUSH_INTERVAL`)."""
    return _env_number(OTEL_DECISIONS_FLUSH_INTERVAL, 1.0)
