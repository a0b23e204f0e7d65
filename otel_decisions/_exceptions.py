"""Errors otel_decisions raises — only at configuration time, never while recording.

    OtelDecisionsError
     └── ConfigError(ValueError)    a bad argument to `configure()` (misuse of our API by the caller)

Recording never raises into agent code: problems there are logged and recording goes on.
"""

from __future__ import annotations

__all__ = ["ConfigError", "OtelDecisionsError"]


class OtelDecisionsError(Exception):
    """Base of every error otel_decisions raises."""


class ConfigError(OtelDecisionsError, ValueError):
    """`configure()` was given a value it cannot use; the message says which and why."""
