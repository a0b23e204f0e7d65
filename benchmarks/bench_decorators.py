"""Cost of `@otel_decisions.decision` on an empty function, as same-process ratios.

    python benchmarks/bench_decorators.py

- decorator vs a hand-written wrapper that creates the same two spans (plan + outcome child) with the
  same attributes on the same provider, context attached the same way. Target (issue 3): <= 1.3x.
  (Peers measured the same way: traceloop `@task` 3.6x, langfuse `@observe` 9x.)
- tracing disabled (`OTEL_SDK_DISABLED=true`, checked in a subprocess) and outside any run: the
  decorator vs a bare SDK span (`start_as_current_span`, Simple(InMemory)). Target: <= 0.25x.
"""

from __future__ import annotations

import gc
import os
import statistics
import subprocess
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))

from _harness import ROUNDS, bare_span_case, scratch_directory, time_per_op
from opentelemetry import context as otel_context
from opentelemetry import trace

import otel_decisions
from otel_decisions import contract as c
from otel_decisions.recording.context import CURRENT_RUN

N = int(os.environ.get("BENCH_N", "5000"))


def empty() -> Any:
    return None


def ratios(cases: dict[str, Any], reference: str) -> dict[str, float]:
    runs: dict[str, list[float]] = {name: [] for name in cases}
    for op in cases.values():
        time_per_op(op, 500)
    for _ in range(ROUNDS):
        for name, op in cases.items():
            gc.collect()
            runs[name].append(time_per_op(op, N))
    return {
        name: statistics.median(a / b for a, b in zip(values, runs[reference], strict=True))
        for name, values in runs.items()
    } | {f"{name} µs": statistics.median(values) for name, values in runs.items()}


def enabled() -> None:
    directory = scratch_directory()
    decorated = otel_decisions.decision(
        "Choose a tool",
        options=[{"id": "search", "action_type": "tool_call"}],
        chosen="search",
        reasoning="it is the only tool",
    )(empty)
    with otel_decisions.run("bench", directory=directory):
        state = CURRENT_RUN.get()
        assert state is not None
        recorder = state.recorder
        tracer = recorder._tracer
        # the same attributes the decorator sends:
        scope = otel_decisions.decision(
            "Choose a tool",
            options=[{"id": "search", "action_type": "tool_call"}],
            chosen="search",
            reasoning="it is the only tool",
        )
        static = scope._static_attributes(recorder.policy)
        common = recorder.common
        counter = [0]

        def handwritten() -> Any:
            n = counter[0]
            counter[0] = n + 1
            attributes = {
                **common,
                **static,
                c.DECISION_ID: f"dec_{n}",
                c.DECISION_SEQUENCE: n,
                c.DECISION_NODE: "unknown",
            }
            span = tracer.start_span(c.SPAN_NAME_PLAN, context=recorder.run_context, attributes=attributes)
            token = otel_context.attach(trace.set_span_in_context(span))
            try:
                result = empty()
            finally:
                otel_context.detach(token)
            outcome = {
                **common,
                c.OUTCOME_DECISION_ID: f"dec_{n}",
                c.DECISION_NODE: "unknown",
                c.OUTCOME_SUCCESS: True,
                c.GEN_AI_OPERATION_NAME: c.OP_EXECUTE_TOOL,
                c.GEN_AI_TOOL_NAME: "search",
            }
            child = tracer.start_span(
                "execute_tool search", context=trace.set_span_in_context(span), attributes=outcome
            )
            child.end()
            span.end()
            return result

        result = ratios({"hand-written wrapper": handwritten, "@decision": decorated}, "hand-written wrapper")
    print(
        f"  @decision, empty function       {result['@decision µs']:8.2f} µs   "
        f"{result['@decision']:.2f}× hand-written ({result['hand-written wrapper µs']:.2f} µs)"
        "  (target ≤ 1.3×)"
    )


def disabled_case(label: str) -> None:
    disabled = os.environ.pop("OTEL_SDK_DISABLED", None)
    bare, reset = bare_span_case()  # the reference is a real SDK span, whatever the decorator sees
    if disabled is not None:
        os.environ["OTEL_SDK_DISABLED"] = disabled
    decorated = otel_decisions.decision("Choose a tool")(empty)

    def in_run() -> None:
        decorated()

    if label == "outside any run":
        result = ratios({"bare": bare, "decorator": decorated}, "bare")
    else:
        with otel_decisions.run("bench", directory=scratch_directory()):
            result = ratios({"bare": bare, "decorator": in_run}, "bare")
    reset()
    print(
        f"  @decision, {label:22s} {result['decorator µs']:8.2f} µs   "
        f"{result['decorator']:.2f}× bare span ({result['bare µs']:.2f} µs)  (target ≤ 0.25×)"
    )


def main() -> None:
    if len(sys.argv) > 1:
        disabled_case(sys.argv[1])
        return
    print(f"rounds={ROUNDS} calls/round={N} python={sys.version.split()[0]}")
    enabled()
    import logging

    logging.getLogger("otel_decisions").setLevel(logging.ERROR)  # the once-per-decorator warning
    disabled_case("outside any run")
    env = {**os.environ, "OTEL_SDK_DISABLED": "true"}
    subprocess.run([sys.executable, __file__, "with OTEL_SDK_DISABLED"], env=env, check=True)


if __name__ == "__main__":
    main()
