"""The public API fits on one screen: `__all__` is exactly these names, sorted."""

from __future__ import annotations

import otel_decisions

SEED_NAMES = {
    "Runtime",
    "BuilderQuery",
    "Decision",
    "Option",
    "Outcome",
    "DecisionEvaluation",
    "DecisionType",
    "Run",
    "RunStatus",
    "RunMetrics",
    "Problem",
    "RunSummary",
    "FailureAnalysis",
    "PatternAnalysis",
}
DECORATOR_NAMES = {
    "run",
    "decision",
    "node",
    "RunHandle",
    "DecisionHandle",
    "current_decision",
    "current_run",
    "inject",
    "extract",
    "propagate_context",
}
CONFIGURATION_NAMES = {"configure", "ConfigError", "OtelDecisionsError"}
INTEGRATION_NAMES = {"instrument_anthropic", "uninstrument_anthropic"}


def test_all_is_sorted_and_holds_exactly_the_public_names() -> None:
    assert otel_decisions.__all__ == sorted(otel_decisions.__all__)
    assert (
        set(otel_decisions.__all__) == SEED_NAMES | DECORATOR_NAMES | CONFIGURATION_NAMES | INTEGRATION_NAMES
    )


def test_every_exported_name_exists() -> None:
    for name in otel_decisions.__all__:
        assert getattr(otel_decisions, name) is not None, name
