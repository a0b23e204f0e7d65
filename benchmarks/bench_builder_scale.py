"""`find_patterns` and `suggest_improvements` over a million spans: time and peak memory.

    python benchmarks/bench_builder_scale.py                  # BENCH_SPANS=1000000
    BENCH_SPANS=200000 python benchmarks/bench_builder_scale.py

The spans are recorded once by the real `Runtime` (a support-triage agent: 5 nodes, 10 decisions and
their outcomes per run, so 21 spans per run; one tool is over-represented in failed runs, some runs
retry in a loop) into `$BENCH_SCALE_DIR` (default: the system temp directory), and reused by later
runs. Each measurement then runs in a fresh process, so its peak RSS is its own:

- **builder**: `BuilderQuery(dir)`, then `find_patterns(goal)` and `suggest_improvements(goal)`.
  Target (issue 5): ≤ 30 s and ≤ 1.5 GB peak RSS for 1M spans on the 2-core machine.
- **floor** (same run, for the ratio): `orjson.loads` of every line with the cyclic GC paused, and
  nothing kept: the cost of just parsing the files.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPANS = int(os.environ.get("BENCH_SPANS", "1000000"))
SPANS_PER_RUN = 21
GOAL = "support-triage"
TOOLS = [
    ("search_kb", "Search the knowledge base"),
    ("ask_llm", "Ask the LLM directly"),
    ("web_search", "Search the web"),
]


def record(directory: Path, runs: int, seed: int = 7) -> None:
    """Record `runs` runs of the triage agent with the real Runtime (file export only)."""
    from otel_decisions import DecisionType, Runtime

    rng = random.Random(seed)
    runtime = Runtime(directory)
    categories = [{"id": c, "description": f"Category {c}", "action_type": "route"} for c in "ABC"]
    tools = [{"id": i, "description": d, "action_type": "tool_call"} for i, d in TOOLS]
    for n in range(runs):
        runtime.start_run(GOAL, "Answer a support ticket", {"ticket": n})
        failed = False
        steps = 0
        runtime.set_node("classify")
        d = runtime.decide("Classify the ticket", categories, rng.choice("ABC"), "keywords")
        runtime.record_outcome(d, True, latency_ms=rng.randint(5, 40), tokens_used=120)
        steps += 1
        tool = rng.choices([t[0] for t in TOOLS], weights=[6, 3, 1])[0]
        retries = 4 if rng.random() < 0.1 else 1
        for _ in range(retries):
            runtime.set_node("retrieve")
            d = runtime.decide(
                "Choose a retrieval tool",
                tools,
                tool,
                "best recall",
                decision_type=DecisionType.TOOL_SELECTION,
            )
            ok = rng.random() > (0.45 if tool == "web_search" else 0.08)
            runtime.record_outcome(
                d, ok, error=None if ok else "Retrieval timed out", latency_ms=rng.randint(50, 900)
            )
            steps += 1
            failed = failed or not ok
        while steps < 10:
            node = ["draft", "review", "respond"][steps % 3]
            runtime.set_node(node)
            d = runtime.quick_decision(f"{node} the answer", f"{node} with template", "policy")
            runtime.record_outcome(
                d, True, latency_ms=rng.randint(10, 200), tokens_used=rng.randint(100, 900)
            )
            steps += 1
        runtime.end_run(not failed, narrative="done")


def dataset(spans: int) -> Path:
    base = Path(os.environ.get("BENCH_SCALE_DIR", tempfile.gettempdir()))
    directory = base / f"otel-decisions-scale-{spans}"
    done = directory / "COMPLETE"
    if not done.exists():
        print(f"recording {spans:,} spans into {directory} (once; reused by later runs) ...", flush=True)
        t0 = time.perf_counter()
        record(directory, spans // SPANS_PER_RUN)
        done.write_text("ok")
        print(f"  recorded in {time.perf_counter() - t0:.0f} s", flush=True)
    return directory


BUILDER = """
import json, resource, sys, time
from otel_decisions import BuilderQuery
t0 = time.perf_counter()
query = BuilderQuery(sys.argv[1])
patterns = query.find_patterns(sys.argv[2])
t1 = time.perf_counter()
suggestions = query.suggest_improvements(sys.argv[2])
t2 = time.perf_counter()
print(json.dumps({"patterns_s": t1 - t0, "suggest_s": t2 - t1, "total_s": t2 - t0,
    "runs": patterns.run_count, "suggestions": len(suggestions),
    "types": sorted({s["type"] for s in suggestions}),
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

FLOOR = """
import gc, json, sys, time, resource
from pathlib import Path
import orjson
gc.disable()
t0 = time.perf_counter()
spans = 0
for path in sorted(Path(sys.argv[1]).rglob("*.jsonl")):
    with open(path, "rb") as f:
        for line in f:
            doc = orjson.loads(line)
            spans += sum(len(ss["spans"]) for rs in doc["resourceSpans"] for ss in rs["scopeSpans"])
print(json.dumps({"total_s": time.perf_counter() - t0, "spans": spans,
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def child(code: str, *args: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    directory = dataset(SPANS)
    size = sum(p.stat().st_size for p in directory.rglob("*.jsonl"))
    print(f"{SPANS:,} spans ({size / 1e9:.2f} GB of OTLP/JSON lines), python {sys.version.split()[0]}")
    floor = child(FLOOR, str(directory))
    builder = child(BUILDER, str(directory), GOAL)
    spans = int(floor["spans"])  # type: ignore[call-overload]
    total = float(builder["total_s"])  # type: ignore[arg-type]
    floor_s = float(floor["total_s"])  # type: ignore[arg-type]
    print(f"  floor: orjson parse only       {floor_s:7.1f} s  {spans / floor_s:10,.0f} spans/s")
    print(
        f"  find_patterns (cold)           {builder['patterns_s']:7.1f} s  "
        f"(read {spans:,} spans + analyse {builder['runs']:,} runs)"
    )
    found = builder["suggestions"]
    print(f"  suggest_improvements (warm)    {builder['suggest_s']:7.1f} s  -> {found} suggestions")
    ratio = total / floor_s
    print(f"  total                          {total:7.1f} s  = {ratio:.2f}x the parse floor  (≤ 30 s)")
    print(f"  peak RSS                       {builder['peak_mb']:7.0f} MB   (≤ 1,536 MB)")
    print(f"  suggestion types: {', '.join(builder['types'])}")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
