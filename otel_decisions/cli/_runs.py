"""Commands about runs: `demo`, `runs`, `show`, `failures`, `analyze`, `compare`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from otel_decisions import BuilderQuery, Run, RunStatus, Runtime
from otel_decisions._config import default_directory
from otel_decisions.analysis.decision_stats import RiskyOption
from otel_decisions.analysis.facts import RunFacts
from otel_decisions.analysis.patterns import INTENT_KEY_CHARS
from otel_decisions.cli._output import (
    EXIT_NOT_FOUND,
    PROG,
    CliError,
    Column,
    evidence_lines,
    iso_time,
    percent,
    print_json,
    short_time,
    table,
)
from otel_decisions.cli._source import open_query
from otel_decisions.export.file_writer import FILE_NAME

__all__ = ["analyze", "compare", "demo", "failures", "risky_table", "runs", "show"]


# --- demo ----------------------------------------------------------------------------------------
def demo(args: argparse.Namespace) -> int:
    # Imported here: the demo agent is only needed by this command.
    from otel_decisions._demo.calculator import DEMO_EXPRESSIONS, GOAL_ID, run_calculator

    directory: Path = args.dir if args.dir is not None else default_directory()
    earlier = set(BuilderQuery(directory).storage.list_all_runs()) if directory.exists() else set()
    runtime = Runtime(directory)
    for _ in range(args.runs):
        for expression in DEMO_EXPRESSIONS:
            run_calculator(runtime, expression)

    query = BuilderQuery(directory)  # a new reader: only what was exported is visible to it
    demo_runs = [r for r in reversed(query.storage.runs()) if r.id not in earlier]
    failed = [r for r in demo_runs if r.status == RunStatus.FAILED]
    patterns = query.find_patterns(GOAL_ID)
    latest = query.analyze_failure(failed[-1].id) if failed else None
    suggestions = query.suggest_improvements(GOAL_ID)
    if args.json:
        print_json(
            {
                "goal_id": GOAL_ID,
                "spans_file": str(directory / FILE_NAME),
                "runs": [{**_run_row(r), "input": r.input_data} for r in demo_runs],  # oldest first
                "patterns": patterns.to_dict() if patterns is not None else None,
                "latest_failure": latest.to_dict() if latest is not None else None,
                "suggestions": suggestions,
            }
        )
        return 0

    print(f"Recorded {len(demo_runs)} runs of goal '{GOAL_ID}'; spans written to {directory / FILE_NAME}")
    print("\nRuns of this demo (oldest first):")
    columns = [Column("RUN ID"), Column("STATUS"), Column("DECISIONS", ">"), Column("SUCCESS", ">")]
    rows = [
        [
            r.id,
            r.status.value,
            len(r.decisions),
            percent(r.metrics.success_rate, 0),
            r.input_data.get("expression", ""),
        ]
        for r in demo_runs
    ]
    print(table([*columns, Column("EXPRESSION", max_width=40)], rows))
    print()
    print(patterns)
    if latest is not None:
        print(f"\nMost recent failure ({len(failed)} of {len(demo_runs)} runs failed):")
        print(latest)
    print("\nSuggested improvements:")
    for s in suggestions:
        print(f"  [{s['priority']}] {s['type']} {s['target']}: {s['recommendation']}")
    if failed:
        print("\nFailed runs (search Jaeger by trace id, or run `otel-decisions show RUN_ID`):")
        for r in failed:
            expression = r.input_data.get("expression", "")
            print(f"  {r.id}  trace {query.execution_id(r.id)}  {expression}")
    source = "" if args.dir is None else f" --source {args.dir}"
    print(
        f"\nNext: `{PROG} suggest {GOAL_ID}{source}` (each suggestion with its evidence), "
        f"`{PROG} report {GOAL_ID}{source} -o report.html` (charts in one HTML file)."
    )
    return 0


def _run_row(run: Run) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "goal_id": run.goal_id,
        "status": run.status.value,
        "decisions": len(run.decisions),
        "success_rate": run.metrics.success_rate,
        "started_at": run.started_at.isoformat(),
    }


# --- runs ----------------------------------------------------------------------------------------
def runs(args: argparse.Namespace) -> int:
    query, source = open_query(args)
    selected: list[RunFacts] = []
    for f in query.storage.facts():  # compact facts, newest first: no full run is rebuilt
        if args.goal is not None and f.goal_id != args.goal:
            continue
        if args.status is not None and f.status != args.status:
            continue
        if (args.since is not None and f.started_ns < args.since) or (
            args.until is not None and f.started_ns >= args.until
        ):
            continue
        selected.append(f)
        if args.limit is not None and len(selected) >= args.limit:
            break
    rows = [_facts_row(f) for f in selected]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        filtered = any(getattr(args, k) is not None for k in ("goal", "status", "since", "until"))
        print(f"No runs {'match these filters' if filtered else 'recorded'} in {source}.")
        return 0
    columns = [
        Column("RUN ID"),
        Column("GOAL", max_width=30),
        Column("STATUS"),
        Column("DECISIONS", ">"),
        Column("SUCCESS", ">"),
        Column("STARTED"),
    ]
    cells = [
        [
            r["run_id"],
            r["goal_id"],
            r["status"],
            r["decisions"],
            percent(r["success_rate"], 0),
            short_time(f.started_ns),
        ]
        for r, f in zip(rows, selected, strict=True)
    ]
    print(table(columns, cells))
    return 0


def _facts_row(f: RunFacts) -> dict[str, Any]:
    succeeded = sum(1 for d in f.decisions if d.success is True)
    return {
        "run_id": f.run_id,
        "goal_id": f.goal_id,
        "status": f.status,
        "decisions": len(f.decisions),
        "success_rate": succeeded / len(f.decisions) if f.decisions else 0.0,
        "started_at": iso_time(f.started_ns),
        "duration_ms": (f.ended_ns - f.started_ns) // 1_000_000 if f.ended_ns else 0,
        "trace_id": f.trace_id,
    }


# --- show ----------------------------------------------------------------------------------------
def show(args: argparse.Namespace) -> int:
    query, source = open_query(args)
    summary = query.get_run_summary(args.run_id)
    if summary is None:
        raise _not_found(args.run_id, source)
    execution_id = query.execution_id(args.run_id)
    trace = query.get_decision_trace(args.run_id)
    if args.json:
        print_json({**summary.model_dump(mode="json"), "execution_id": execution_id, "decision_trace": trace})
        return 0
    lines = [
        f"Run {summary.run_id} (goal {summary.goal_id})",
        f"Status: {summary.status.value}  Duration: {summary.duration_ms} ms  "
        f"Decisions: {summary.decision_count}  Success rate: {summary.success_rate:.1%}",
        f"Execution id (trace id): {execution_id}",
        f"Narrative: {summary.narrative}",
    ]
    for title, items in (("Critical problems", summary.critical_problems), ("Warnings", summary.warnings)):
        if items:
            lines.append(f"{title}:")
            lines.extend(f"  - {item}" for item in items)
    lines.append("Decision trace:")
    lines.extend(f"  {i}. {step}" for i, step in enumerate(trace, 1))
    print("\n".join(lines))
    return 0


def _not_found(run_id: str, source: str) -> CliError:
    return CliError(f"run not found: {run_id} (in {source})", EXIT_NOT_FOUND)


# --- failures ------------------------------------------------------------------------------------
def failures(args: argparse.Namespace) -> int:
    query, source = open_query(args)
    failed = [f for f in query.storage.facts() if f.failed and args.goal in (None, f.goal_id)]
    rows: list[dict[str, Any]] = []
    for f in failed[: args.limit]:
        analysis = query.analyze_failure(f.run_id)  # full runs only for the runs listed
        if analysis is not None:
            rows.append(
                {"goal_id": f.goal_id, "started_at": iso_time(f.started_ns), "trace_id": f.trace_id}
                | analysis.to_dict()
            )
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print(f"No failed runs{'' if args.goal is None else f' of goal {args.goal!r}'} in {source}.")
        return 0
    columns = [
        Column("RUN ID"),
        Column("GOAL", max_width=20),
        Column("STARTED"),
        Column("ROOT CAUSE", max_width=40),
        Column("FAILURE POINT", max_width=60),
    ]
    cells = [
        [
            r["run_id"],
            r["goal_id"],
            r["started_at"][:19].replace("T", " "),
            r["root_cause"],
            r["failure_point"],
        ]
        for r in rows
    ]
    print(table(columns, cells))
    more = len(failed) - len(rows)
    if more > 0:
        print(f"\n{more} older failed runs not shown (--limit {args.limit}).")
    return 0


# --- analyze -------------------------------------------------------------------------------------
def analyze(args: argparse.Namespace) -> int:
    query, source = open_query(args)
    run = query.get_full_run(args.run_id)
    if run is None:
        raise _not_found(args.run_id, source)
    analysis = query.analyze_failure(run.id)
    suspects = _suspects(run, query.risky_options(run.goal_id))
    if args.json:
        print_json(
            {
                "run_id": run.id,
                "goal_id": run.goal_id,
                "status": run.status.value,
                "failure_analysis": analysis.to_dict() if analysis is not None else None,
                "suspect_decisions": [{"decision_id": d, **r.to_dict()} for d, r in suspects],
            }
        )
        return 0
    if analysis is not None:
        print(analysis)
    else:
        print(f"Run {run.id} did not fail (status: {run.status.value}): there is no failure to analyze.")
    print()
    if not suspects:
        print(f"Suspect decisions: none (no choice of this run is risky in goal '{run.goal_id}').")
        return 0
    print(f"Suspect decisions (choices over-represented in failed runs of goal '{run.goal_id}'):")
    print(risky_table([(d, r) for d, r in suspects], first="DECISION"))
    for decision_id, risky in suspects:
        print(f"\n  {decision_id} chose '{risky.option}', as did these failed runs:")
        print("\n".join(evidence_lines(risky.evidence.to_dict(), indent="  ")))
    return 0


def _suspects(run: Run, risky: list[RiskyOption]) -> list[tuple[str, RiskyOption]]:
    """The run's decisions whose (node, intent key, chosen option) is a risky option of its goal."""
    by_key = {(r.node_id, r.intent, r.option): r for r in risky}
    found = []
    for d in run.decisions:
        chosen = d.chosen_option
        label = chosen.description if chosen is not None else d.chosen_option_id
        match = by_key.get((d.node_id, d.intent[:INTENT_KEY_CHARS], label))
        if match is not None:
            found.append((d.id, match))
    return found


def risky_table(rows: list[tuple[str, RiskyOption]], first: str) -> str:
    """Risky options with their 2×2 counts and statistic; `first` heads the leading id column."""
    columns = [
        Column(first, ">" if first == "#" else "<"),
        Column("NODE", max_width=20),
        Column("OPTION", max_width=40),
        Column("FAILED/RUNS", ">"),
        Column("FAIL RATE", ">"),
        Column("OTHERS", ">"),
        Column("P", ">"),
        Column("Q", ">"),
    ]
    cells = [
        [
            key,
            r.node_id,
            r.option,
            f"{r.failed_with}/{r.failed_with + r.completed_with}",
            percent(r.failure_rate_with, 0),
            percent(r.failure_rate_without, 0),
            f"{r.p_value:.2g}",
            f"{r.q_value:.2g}",
        ]
        for key, r in rows
    ]
    return table(columns, cells)


# --- compare -------------------------------------------------------------------------------------
def compare(args: argparse.Namespace) -> int:
    query, source = open_query(args)
    missing = [run_id for run_id in (args.run_a, args.run_b) if query.get_run_summary(run_id) is None]
    if missing:
        raise CliError(f"run not found: {', '.join(missing)} (in {source})", EXIT_NOT_FOUND)
    result = query.compare_runs(args.run_a, args.run_b)
    if args.json:
        print_json(result)
        return 0
    one, two = result["run_1"], result["run_2"]
    rows = [
        ["run id", one["id"], two["id"]],
        ["status", one["status"], two["status"]],
        ["decisions", one["decisions"], two["decisions"]],
        ["success rate", percent(one["success_rate"]), percent(two["success_rate"])],
    ]
    print(table([Column(""), Column("RUN 1"), Column("RUN 2")], rows))
    differences: list[str] = result["differences"]
    print("\nDifferences:" if differences else "\nNo differences in status, decisions, choices or nodes.")
    for difference in differences:
        print(f"  - {difference}")
    return 0
