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

OTEL_DECISIONS_FLUSH_INTERVAL: Final = "OTEL_DECISIONS_FLUSH_INTERVAL"
"""Seconds between background writes of spans of runs still open. Default 1.0; 0 disables."""

DEFAULT_DIR: Final = ".otel-decisions"


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
    return os.environ.get(OTEL_DECISIONS_FILE_FSYNC, "").strip().lower() in {"1", "true", "yes", "on"}


def sdk_disabled() -> bool:
    """Whether the standard `OTEL_SDK_DISABLED` switches the SDK (and our recording) off."""
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def flush_interval() -> float:
    """Seconds between background flushes (see `OTEL_DECISIONS_FLUSH_INTERVAL`)."""
    return _env_number(OTEL_DECISIONS_FLUSH_INTERVAL, 1.0)
