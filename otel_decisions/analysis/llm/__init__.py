"""Claude as the Builder LLM (`otel-decisions suggest GOAL --llm`).

    from otel_decisions.analysis.llm import suggest_with_claude

    query = BuilderQuery(".otel-decisions")
    report = suggest_with_claude(
        query.insights("calculator"),
        run_exists=lambda run_id: query.get_run_summary(run_id) is not None,
        decision_exists=lambda run_id, decision_id: ...,
    )
    print(report)          # or report.to_dict()

A compact, redacted evidence pack (`build_evidence_pack`) goes to Claude; the answer comes back as
pydantic models, and only suggestions citing runs or decisions that exist are kept (what was dropped is
counted in the report). Needs the optional extra `otel-decisions[claude]` and `ANTHROPIC_API_KEY`; this
package itself imports without either, and nothing else in the Builder needs them.
"""

from otel_decisions.analysis.llm._claude import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_TOKENS,
    DEFAULT_MODEL,
    MODEL_ENV_VAR,
    resolve_model,
    suggest_with_claude,
)
from otel_decisions.analysis.llm._errors import LLMError, LLMResponseError
from otel_decisions.analysis.llm._evidence_pack import DEFAULT_MAX_CHARS, build_evidence_pack
from otel_decisions.analysis.llm._models import DecisionRef, LLMSuggestion, LLMSuggestionReport, LLMUsage

__all__ = [
    "DEFAULT_MAX_CHARS",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MODEL",
    "MODEL_ENV_VAR",
    "DecisionRef",
    "LLMError",
    "LLMResponseError",
    "LLMSuggestion",
    "LLMSuggestionReport",
    "LLMUsage",
    "build_evidence_pack",
    "resolve_model",
    "suggest_with_claude",
]
