"""The seed's calculator agent, recorded with otel_decisions and analysed by the Builder.

Run it from the repository root::

    python -m examples.calculator          # writes to $OTEL_DECISIONS_DIR or ./.otel-decisions

The agent itself is `otel_decisions._demo.calculator.run_calculator` (read it: every step records a
decision, its outcome and any problem through the public `Runtime` API). It lives in the package so
that `otel-decisions demo` can run it too; this script shows the two sides of the seed's API: an agent
recording through `Runtime`, and a Builder reading the exported spans back through `BuilderQuery`.
"""

from __future__ import annotations

from otel_decisions import BuilderQuery, Runtime
from otel_decisions._config import default_directory
from otel_decisions._demo.calculator import DEMO_EXPRESSIONS, GOAL_ID, run_calculator

__all__ = ["main"]


def main() -> None:
    """Evaluate the demo expressions, then print what the Builder learns from the recorded runs."""
    directory = default_directory()
    runtime = Runtime(directory)
    for expression in DEMO_EXPRESSIONS:
        value = run_calculator(runtime, expression)
        print(f"{expression:>18}  =  {value if value is not None else 'failed'}")

    # A separate reader: it sees only what was exported, exactly as a Builder in another process would.
    query = BuilderQuery(directory)
    print()
    print(query.find_patterns(GOAL_ID))
    failures = [s for s in query.get_recent_failures(limit=100) if s.goal_id == GOAL_ID]
    if failures:
        print()
        print(query.analyze_failure(failures[0].run_id))
    print()
    for suggestion in query.suggest_improvements(GOAL_ID):
        print(
            f"[{suggestion['priority']}] {suggestion['type']} {suggestion['target']}: "
            f"{suggestion['recommendation']}"
        )
    print(f"\nSpans: {directory / 'traces.jsonl'}")


if __name__ == "__main__":
    main()
