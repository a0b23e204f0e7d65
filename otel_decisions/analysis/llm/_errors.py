"""Errors of the Claude Builder, one line each so the CLI can print them without a traceback.

    OtelDecisionsError
     └── LLMError                 the Claude API could not be used (HTTP error, rate limit, no connection)
          └── LLMResponseError    Claude answered, but not with suggestions we can read

A missing SDK or API key is a `ConfigError` (raised before any network call), not an `LLMError`: it
is fixed by configuration, not by retrying.
"""

from __future__ import annotations

from otel_decisions._exceptions import OtelDecisionsError

__all__ = ["LLMError", "LLMResponseError"]


class LLMError(OtelDecisionsError):
    """A call to Claude failed; `status_code` and `error_type` are the API's when it answered."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_type = error_type
        self.request_id = request_id


class LLMResponseError(LLMError):
    """Claude's answer was not the structured suggestions asked for (no tool call, invalid fields,
    cut off at `max_tokens`, a refusal)."""
