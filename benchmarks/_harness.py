"""Interleaved, same-process timing: every case runs once per round, ratios are per round.

Absolute times drift 10-25% between processes on a shared 2-core machine; the ratio of a case to a
reference measured in the same round does not. We report the median per-round ratio.
"""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))


def scratch_directory(prefix: str = "otel-decisions-bench-") -> Path:
    """A temporary directory for the spans a benchmark writes (up to a few GB), removed when the
    benchmark exits; `BENCH_KEEP=1` keeps it for a look."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.environ.get("BENCH_KEEP") != "1":
        atexit.register(shutil.rmtree, path, True)
    return path


def time_per_op(op: Callable[[], object], n: int) -> float:
    """Microseconds per call of `op`, over `n` calls."""
    t0 = time.perf_counter_ns()
    for _ in range(n):
        op()
    return (time.perf_counter_ns() - t0) / n / 1000.0


def bare_span_case() -> tuple[Callable[[], None], Callable[[], None]]:
    """BARE: start_as_current_span + end, no attributes, SDK provider with Simple(InMemory).

    Returns (op, reset) where reset clears the in-memory exporter between rounds.
    """
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")

    def op() -> None:
        with tracer.start_as_current_span("decide"):
            pass

    return op, exporter.clear


def interleave(
    cases: dict[str, tuple[Callable[[], object], int]],
    reference: str,
    between: Callable[[], None] | None = None,
) -> dict[str, dict[str, float]]:
    """Run each case (op, calls-per-round) once per round; return median µs and median ratio."""
    runs: dict[str, list[float]] = {name: [] for name in cases}
    for op, n in cases.values():  # warm-up
        time_per_op(op, max(1, n // 10))
    for _ in range(ROUNDS):
        for name, (op, n) in cases.items():
            if between is not None:
                between()
            gc.collect()
            runs[name].append(time_per_op(op, n))
    out: dict[str, dict[str, float]] = {}
    for name, values in runs.items():
        ratios = [a / b for a, b in zip(values, runs[reference], strict=True)]
        out[name] = {"median_us": statistics.median(values), "ratio": statistics.median(ratios)}
    return out


def print_table(title: str, results: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    for name, r in results.items():
        print(f"  {name:60s} {r['median_us']:9.2f} µs   {r['ratio']:6.2f}× BARE")
