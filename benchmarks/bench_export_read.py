"""Export and read throughput, in spans per second.

    python benchmarks/bench_export_read.py            # BENCH_RUNS=5000 runs of 10 decisions

- export: finished SDK spans of real runs -> OTLP/JSON line -> `traces.jsonl` (encode + write), one line
  per span as the file processor writes them by default (durability `span`), and one line per run
  (durability `run`). Target (issue 2): >= 30k spans/s. The official encoder
  (`opentelemetry-exporter-otlp-json-file`, when installed) is timed on the same spans for reference.
- read: parse every line, group spans by trace and keep each run's facts (`RunStore.facts()`, what
  cross-run analyses read), for both files. Target: >= 100k spans/s.
- rebuild: every full `Run` model through the span contract (`RunStore.runs()`, which re-reads each
  run's lines). Target: >= 50k spans/s.
"""

from __future__ import annotations

import gc
import io
import os
import statistics
import sys
import time
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

sys.path.insert(0, os.path.dirname(__file__))

from _harness import scratch_directory

from otel_decisions import DecisionType, Runtime
from otel_decisions.export.file_writer import JsonLinesWriter
from otel_decisions.export.otlp_json import encode_line, encode_one
from otel_decisions.export.pipeline import add_span_observer
from otel_decisions.reading.run_store import RunStore

RUNS = int(os.environ.get("BENCH_RUNS", "5000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))

OPTIONS = [
    {
        "id": "eval",
        "description": "Evaluate with the AST walker",
        "action_type": "tool_call",
        "action_params": {"tool": "ast_eval"},
        "pros": ["exact"],
        "cons": ["slow"],
        "confidence": 0.8,
    },
    {"id": "llm", "description": "Ask the model", "action_type": "generate", "confidence": 0.4},
]


def record_runs(directory: Path, runs: int) -> list[list[ReadableSpan]]:
    """Record `runs` realistic runs; return each run's finished SDK spans."""
    runtime = Runtime(directory)
    memory = InMemorySpanExporter()
    remove = add_span_observer(SimpleSpanProcessor(memory))  # every span each run hands on
    batches = []
    for i in range(runs):
        runtime.start_run("calculator", "Evaluate arithmetic", {"expression": f"{i} + 1"})
        for j in range(10):
            d = runtime.decide(
                "Choose an evaluation strategy",
                OPTIONS,
                "eval",
                "The AST walker is exact",
                node_id=f"node-{j % 3}",
                decision_type=DecisionType.TOOL_SELECTION,
                context={"attempt": j},
            )
            runtime.record_outcome(
                d,
                j % 4 != 0,
                result={"value": i + j},
                error=None if j % 4 else "bad input",
                summary="evaluated",
                latency_ms=j,
            )
        if i % 7 == 0:
            runtime.report_problem("warning", "slow evaluation", "dec_1")
        runtime.end_run(i % 5 != 0)
        batches.append(list(memory.get_finished_spans()))
        memory.clear()
    remove()
    return batches


def main() -> None:
    base = scratch_directory()
    batches = record_runs(base / "recorded", RUNS)
    total = sum(len(b) for b in batches)
    print(f"{RUNS} runs, {total} spans, python {sys.version.split()[0]}")

    export, per_run, official = [], [], []
    for r in range(ROUNDS):
        writer = JsonLinesWriter(base / f"export-{r}", max_bytes=0)
        t0 = time.perf_counter()
        for batch in batches:
            for span in batch:
                writer.write(encode_one(span))
        export.append(total / (time.perf_counter() - t0))
        writer = JsonLinesWriter(base / f"per-run-{r}", max_bytes=0)
        t0 = time.perf_counter()
        for batch in batches:
            writer.write(encode_line(batch))
        per_run.append(total / (time.perf_counter() - t0))
        try:
            from opentelemetry.exporter.otlp.json.file import FileSpanExporter
        except ImportError:
            continue
        exporter = FileSpanExporter(stream=io.StringIO())
        t0 = time.perf_counter()
        for batch in batches:
            exporter.export(batch)
        official.append(total / (time.perf_counter() - t0))
    print(f"  export, a line per span      {statistics.median(export):10,.0f} spans/s   (target ≥ 30,000)")
    print(f"  export, a line per run       {statistics.median(per_run):10,.0f} spans/s   (durability run)")
    if official:
        print(
            f"  official json-file exporter  {statistics.median(official):10,.0f} spans/s"
            "   (reference, to a StringIO)"
        )

    del batches  # the recorded SDK spans are not part of reading: free them first
    gc.collect()
    for label, name in (("a line per span", "export-0"), ("a line per run", "per-run-0")):
        path = base / name / "traces.jsonl"
        read, rebuild = [], []
        for _ in range(ROUNDS):
            store = RunStore(path)
            t0 = time.perf_counter()
            assert len(store.facts()) == RUNS  # parse, group by trace, keep each run's facts
            read.append(total / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            assert len(store.runs()) == RUNS  # re-read each run's lines and rebuild its `Run` model
            rebuild.append(total / (time.perf_counter() - t0))
        print(f"  {label}: {path.stat().st_size / 1e6:.1f} MB at {path}")
        print(f"    read (parse + group + facts) {statistics.median(read):10,.0f} spans/s (target ≥ 100,000)")
        print(f"    rebuild Run models (re-read) {statistics.median(rebuild):10,.0f} spans/s  (was ≥ 50,000)")


if __name__ == "__main__":
    main()
