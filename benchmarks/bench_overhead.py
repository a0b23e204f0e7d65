"""Per-call overhead, p50 and p99, with content capture and scrubbing on and off (complaint 16).

    python benchmarks/bench_overhead.py            # 5 rounds of 2000 calls per case
    python benchmarks/bench_overhead.py --quick    # CI: 1 round of 300 calls, same table

Every call is timed on its own (`perf_counter_ns` around it), cases interleaved round by round in one
process, and reported as p50/p99 in µs and as ratios to the p50/p99 of a bare OpenTelemetry span
(`start_as_current_span` + end, no attributes, SDK provider with Simple(InMemory)) measured in the
same rounds. Cases: an empty `@decision`-decorated function inside a run, and `Runtime.decide` +
`record_outcome` (two records, each written to the file before it returns), each with the default
policy (scrubbing on, capture on), with content capture off, and with scrubbing off.
The last line says how many spans were written, so a run that records nothing cannot pass unnoticed.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))

from _harness import bare_span_case, scratch_directory

import otel_decisions
from otel_decisions.reading.otlp_files import discover_files

QUICK = "--quick" in sys.argv
ROUNDS = 1 if QUICK else int(os.environ.get("BENCH_ROUNDS", "5"))
CALLS = 300 if QUICK else int(os.environ.get("BENCH_N", "2000"))
OPTIONS: list[dict[str, Any]] = [
    {"id": "search", "description": "Search the docs for the product", "action_type": "tool_call",
     "action_params": {"tool": "doc_search", "query": "refund policy"}},
    {"id": "answer", "description": "Answer from what is known", "action_type": "generate"},
]  # fmt: skip
POLICIES: dict[str, dict[str, Any]] = {
    "default (scrub on, capture on)": {},
    "capture off": {"capture_content": False},
    "scrub off": {"scrub": False},
}


def timings(op: Callable[[], object], calls: int) -> list[float]:
    """Microseconds of each of `calls` calls of `op`."""
    out = []
    clock = time.perf_counter_ns
    for _ in range(calls):
        t0 = clock()
        op()
        out.append((clock() - t0) / 1000.0)
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextmanager
def recording(policy: dict[str, Any], directory: Path) -> Iterator[dict[str, Callable[[], object]]]:
    """The two operations of one policy: a decorated call inside an open run, and a Runtime decision
    with its outcome (a run of its own, restarted every 50 decisions so runs stay realistic)."""
    otel_decisions.configure(**policy)
    runtime = otel_decisions.Runtime(directory)
    decorated = otel_decisions.decision("Pick a tool", options=OPTIONS, chosen="search", reasoning="docs")(
        lambda: None
    )
    runtime.start_run("bench", "Answer a ticket", {"ticket": 7})
    made = [0]

    def decide() -> None:
        decision = runtime.decide("Pick a tool", OPTIONS, "search", "docs first", context={"n": made[0]})
        runtime.record_outcome(decision, success=True, result={"hits": 3}, latency_ms=3)
        made[0] += 1
        if made[0] % 50 == 0:
            runtime.end_run(success=True)
            runtime.start_run("bench", "Answer a ticket", {"ticket": 7})

    with otel_decisions.run("bench-decorated", directory=directory):
        yield {"@decision call": decorated, "decide + record_outcome": decide}
    runtime.end_run(success=True)
    otel_decisions.configure()


def main() -> None:
    base = scratch_directory("otel-decisions-overhead-")
    bare, reset = bare_span_case()
    samples: dict[str, list[float]] = {"bare span": []}
    for round_ in range(ROUNDS + 1):  # round 0 warms up
        reset()
        gc.collect()
        measured = timings(bare, CALLS)
        if round_:
            samples["bare span"] += measured
        for name, policy in POLICIES.items():
            with recording(policy, base / f"{name.split()[0]}-{round_}") as ops:
                for op_name, op in ops.items():
                    gc.collect()
                    measured = timings(op, CALLS)
                    if round_:
                        samples.setdefault(f"{op_name}, {name}", []).extend(measured)
    p50, p99 = percentile(samples["bare span"], 0.5), percentile(samples["bare span"], 0.99)
    print(f"rounds={ROUNDS} calls/round={CALLS} python={sys.version.split()[0]}")
    print(f"  {'case':58s} {'p50 µs':>8s} {'p99 µs':>8s} {'p50 ×':>6s} {'p99 ×':>6s}")
    for name, values in samples.items():
        a, b = percentile(values, 0.5), percentile(values, 0.99)
        print(f"  {name:58s} {a:8.2f} {b:8.2f} {a / p50:6.2f} {b / p99:6.2f}")
    spans = sum(path.read_bytes().count(b'"spanId"') for path in discover_files(base))
    print(f"  spans written: {spans} in {base}")


if __name__ == "__main__":
    main()
