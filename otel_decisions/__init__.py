"""otel_decisions: record why an LLM agent did what it did, as OpenTelemetry spans, and read it back.

The seed framework's API (`Runtime`, `BuilderQuery` and its models) under one import::

    from otel_decisions import Runtime, BuilderQuery
"""

from otel_decisions.analysis.builder_query import BuilderQuery
from otel_decisions.analysis.failures import FailureAnalysis
from otel_decisions.analysis.patterns import PatternAnalysis
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
from otel_decisions.recording.runtime import Runtime

__version__ = "0.1.0"

__all__ = [
    "BuilderQuery",
    "Decision",
    "DecisionEvaluation",
    "DecisionType",
    "FailureAnalysis",
    "Option",
    "Outcome",
    "PatternAnalysis",
    "Problem",
    "Run",
    "RunMetrics",
    "RunStatus",
    "RunSummary",
    "Runtime",
]
