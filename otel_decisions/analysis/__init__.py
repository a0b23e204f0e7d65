"""The Builder's analyses as pure functions over runs (seed `Run` models or the reader's `RunFacts`).

`BuilderQuery` loads runs and hands them here; keeping the analyses free of storage and of
OpenTelemetry lets them run on runs from any source and be tested without either.
"""

from otel_decisions.analysis.facts import DecisionFacts, RunFacts
from otel_decisions.analysis.failures import FailureAnalysis, analyze_failure
from otel_decisions.analysis.insights import GoalInsights, analyze_goal, suggest_improvements
from otel_decisions.analysis.patterns import (
    PatternAnalysis,
    compare_runs,
    find_patterns,
    node_performance,
)

__all__ = [
    "DecisionFacts",
    "FailureAnalysis",
    "GoalInsights",
    "PatternAnalysis",
    "RunFacts",
    "analyze_failure",
    "analyze_goal",
    "compare_runs",
    "find_patterns",
    "node_performance",
    "suggest_improvements",
]
