"""Export and read throughput, in spans per second.

    python benchmarks/bench_export_read.py            # BENCH_RUNS=5000 runs of 10 decisions

- export: finished SDK spans of real runs -> OTLP/JSON line -> `traces.jsonl` (encode + write), one line
  per run as the file processor writes them. Target (issue 2): >= 30k spans/s. The official encoder
  (`opentelemetry-exporter-otlp-json-file`, when installed) is timed on the same spans for reference.
- read: parse every line, group spans by trace and keep each run's facts (`RunStore.facts()`, what
  cross-run analyses read). Target: >= 100k spans/s.
- rebuild: every full `Run` model through the span contract (`RunStore.runs()`, which re-reads each
  run's lines). Target: >= 50k spans/s.
"""

from __future__ import annotations

import gc
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_decisions import DecisionType, Runtime
from otel_decisions.export.file_writer import JsonLinesWriter
from otel_decisions.export.otlp_json import encode_line
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
    runtime._pipeline.provider.add_span_processor(SimpleSpanProcessor(memory))
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
    return batches


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="otel-decisions-bench-"))
    batches = record_runs(base / "recorded", RUNS)
    total = sum(len(b) for b in batches)
    print(f"{RUNS} runs, {total} spans, python {sys.version.split()[0]}")

    export, official = [], []
    for r in range(ROUNDS):
        writer = JsonLinesWriter(base / f"export-{r}", max_bytes=0)
        t0 = time.perf_counter()
        for batch in batches:
            writer.write(encode_line(batch))
        export.append(total / (time.perf_counter() - t0))
        try:
            from opentelemetry.exporter.otlp.json.file import FileSpanExporter
        except ImportError:
            continue
        exporter = FileSpanExporter(stream=io.StringIO())
        t0 = time.perf_counter()
        for batch in batches:
            exporter.export(batch)
        official.append(total / (time.perf_counter() - t0))
    print(f"  export (encode + write)      {statistics.median(export):10,.0f} spans/s   (target ≥ 30,000)")
    if official:
        print(
            f"  official json-file exporter  {statistics.median(official):10,.0f} spans/s"
            "   (reference, to a StringIO)"
        )

    del batches  # the recorded SDK spans are not part of reading: free them first
    gc.collect()
    path = base / "export-0" / "traces.jsonl"
    read, rebuild = [], []
    for _ in range(ROUNDS):
        store = RunStore(path)
        t0 = time.perf_counter()
        assert len(store.facts()) == RUNS  # parse, group by trace, keep each run's facts
        read.append(total / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        assert len(store.runs()) == RUNS  # re-read each run's lines and rebuild its `Run` model
        rebuild.append(total / (time.perf_counter() - t0))
    print(f"  read (parse + group + facts) {statistics.median(read):10,.0f} spans/s   (target ≥ 100,000)")
    print(f"  rebuild Run models (re-read) {statistics.median(rebuild):10,.0f} spans/s   (target ≥ 50,000)")
    print(f"  file: {path.stat().st_size / 1e6:.1f} MB at {path}")


if __name__ == "__main__":
    main()
