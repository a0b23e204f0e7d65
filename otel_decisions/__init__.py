"""otel_decisions: record why an LLM agent did what it did, as OpenTelemetry spans, and read it back.

The seed framework's API (`Runtime`, `BuilderQuery` and its models) under one import::

    from otel_decisions import Runtime, BuilderQuery

and decorators / context managers for code that is not written against the seed::

    @otel_decisions.run("goal")            # a run: one trace
    @otel_decisions.decision("intent")     # a decision and its outcome, around the work
    @otel_decisions.node("node")           # the node for the decisions inside
"""

from otel_decisions._exceptions import ConfigError, OtelDecisionsError
from otel_decisions.analysis.builder_query import BuilderQuery
from otel_decisions.analysis.failures import FailureAnalysis
from otel_decisions.analysis.patterns import PatternAnalysis
from otel_decisions.export.pipeline import configure
from otel_decisions.integrations.anthropic_calls import instrument_anthropic, uninstrument_anthropic
from otel_decisions.models import (
    Decision,
    DecisionEvaluation,
    DecisionType,
    Option,
    Outcome,
    Problem,
    Run,
    RunMetrics,
    RunStatus,
    RunSummary,
)
from otel_decisions.recording.context import extract, inject, propagate_context
from otel_decisions.recording.runtime import Runtime
from otel_decisions.recording.scopes import (
    DecisionHandle,
    RunHandle,
    current_decision,
    current_run,
    decision,
    node,
    run,
)

__version__ = "0.1.0"

__all__ = [
    "BuilderQuery",
    "ConfigError",
    "Decision",
    "DecisionEvaluation",
    "DecisionHandle",
    "DecisionType",
    "FailureAnalysis",
    "Option",
    "OtelDecisionsError",
    "Outcome",
    "PatternAnalysis",
    "Problem",
    "Run",
    "RunHandle",
    "RunMetrics",
    "RunStatus",
    "RunSummary",
    "Runtime",
    "configure",
    "current_decision",
    "current_run",
    "decision",
    "extract",
    "inject",
    "instrument_anthropic",
    "node",
    "propagate_context",
    "run",
    "uninstrument_anthropic",
]
