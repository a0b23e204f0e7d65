"""The seed's Builder analyses as pure functions over run models.

`BuilderQuery` loads runs and hands them here; keeping the analyses free of storage and of
OpenTelemetry lets them run on runs from any source and be tested without either.
"""

from otel_decisions.analysis.failures import FailureAnalysis, analyze_failure
from otel_decisions.analysis.patterns import (
    PatternAnalysis,
    compare_runs,
    find_patterns,
    node_performance,
    suggest_improvements,
)

__all__ = [
    "FailureAnalysis",
    "PatternAnalysis",
    "analyze_failure",
    "compare_runs",
    "find_patterns",
    "node_performance",
    "suggest_improvements",
]
