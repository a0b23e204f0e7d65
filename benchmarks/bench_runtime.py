"""Hot-path cost of the seed API, as ratios to a bare OpenTelemetry span measured in the same rounds.

    python benchmarks/bench_runtime.py
    OTEL_DECISIONS_DURABILITY=run python benchmarks/bench_runtime.py   # spans written per run

With the default durability (`span`) every decision and outcome is written to the file before the call
returns (crash safety), so the caller side carries the encoding and the write; with `run` they wait
for the run's end, as before issue 7.

Cases:
- BARE: `start_as_current_span` + end, no attributes, SDK provider with Simple(InMemory) (the floor).
- decide()+record_outcome(), caller side: one decision with two options, context and a result, timed
  over runs of 1000 decisions in a row (start_run/end_run outside the timing; spans are buffered and
  the background flush competes for the GIL as it would in an agent). Target (issue 2): <= 4.0x BARE.
- whole run of 10 decisions per decision: start_run, 10 x (decide + record_outcome), end_run, which
  writes the run to `traces.jsonl` before it returns. Target: <= 6.0x BARE per decision.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(__file__))

from _harness import ROUNDS, bare_span_case, scratch_directory, time_per_op

from otel_decisions import DecisionType, Runtime

N_DECISIONS = int(os.environ.get("BENCH_N", "5000"))
N_RUNS = max(1, N_DECISIONS // 10)

OPTIONS = [
    {
        "id": "eval",
        "description": "Evaluate with the AST walker",
        "action_type": "tool_call",
        "action_params": {"tool": "ast_eval"},
        "pros": ["exact"],
        "cons": ["slow on big input"],
        "confidence": 0.8,
    },
    {"id": "llm", "description": "Ask the model", "action_type": "generate", "confidence": 0.4},
]
CONTEXT = {"expression": "2 + 3 * 4", "attempt": 1}


def main() -> None:
    directory = scratch_directory()
    runtime = Runtime(directory)
    bare, reset = bare_span_case()

    def one_decision() -> None:
        d = runtime.decide(
            "Choose an evaluation strategy",
            OPTIONS,
            "eval",
            "The AST walker is exact",
            node_id="evaluator",
            decision_type=DecisionType.TOOL_SELECTION,
            context=CONTEXT,
        )
        runtime.record_outcome(d, True, result={"value": 14}, summary="evaluated", latency_ms=3)

    def whole_run() -> None:
        runtime.start_run("calculator", "Evaluate arithmetic", {"expression": "2 + 3 * 4"})
        for _ in range(10):
            one_decision()
        runtime.end_run(True, output_data={"value": 14})

    results: dict[str, list[float]] = {"bare": [], "decide": [], "run": []}
    time_per_op(bare, 2000)
    runtime.start_run("calculator")
    time_per_op(one_decision, 1000)
    runtime.end_run(True)
    time_per_op(whole_run, 100)
    # Each round alternates short chunks of every case, so drift on a shared machine hits all alike.
    chunks = max(1, N_DECISIONS // 1000)
    for _ in range(ROUNDS):
        sums = {"bare": 0.0, "decide": 0.0, "run": 0.0}
        for _ in range(chunks):
            reset()
            gc.collect()
            sums["bare"] += time_per_op(bare, 1000)
            runtime.start_run("calculator")
            gc.collect()
            sums["decide"] += time_per_op(one_decision, 1000)
            runtime.end_run(True)
            gc.collect()
            sums["run"] += time_per_op(whole_run, 100) / 10
        for name, total in sums.items():
            results[name].append(total / chunks)

    def ratio(name: str) -> float:
        return statistics.median(a / b for a, b in zip(results[name], results["bare"], strict=True))

    durability = os.environ.get("OTEL_DECISIONS_DURABILITY") or "span"
    print(
        f"rounds={ROUNDS} decisions/round={N_DECISIONS} durability={durability} "
        f"python={sys.version.split()[0]}"
    )
    print(
        f"  BARE span                                    {statistics.median(results['bare']):8.2f} µs   1.00×"
    )
    print(
        f"  decide()+record_outcome(), caller side       {statistics.median(results['decide']):8.2f} µs "
        f"  {ratio('decide'):.2f}×  (target ≤ 4.0×)"
    )
    print(
        f"  whole run of 10, on disk at end_run, per dec {statistics.median(results['run']):8.2f} µs "
        f"  {ratio('run'):.2f}×  (target ≤ 6.0×)"
    )
    size = sum(p.stat().st_size for p in directory.glob("*.jsonl"))
    print(f"  wrote {size / 1e6:.1f} MB to {directory}")


if __name__ == "__main__":
    main()
