"""`otel-decisions`: run the calculator demo and inspect recorded runs from a terminal.

Usage::

    otel-decisions demo [--dir PATH] [--runs N]     # record the demo agent, then print the analysis
    otel-decisions runs [--source PATH] [--json]    # list runs, newest first
    otel-decisions show RUN_ID [--source PATH] [--json]

PATH defaults to `$OTEL_DECISIONS_DIR`, else `./.otel-decisions`; `--source` also takes a span file or
a glob (e.g. Collector output). Everything printed is read back from the exported spans by a fresh
`BuilderQuery`, so the demo shows exactly what a Builder in another process would see.

Exit codes: 0 ok; 1 run not found; 2 bad arguments or a source that does not exist. Errors are one
line on stderr, never a traceback. Nothing imports this module: it is a leaf over the public API.
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from otel_decisions import BuilderQuery, Run, RunStatus, Runtime
from otel_decisions._config import default_directory
from otel_decisions.export.file_writer import FILE_NAME

__all__ = ["main"]

PROG = "otel-decisions"
EXIT_NOT_FOUND = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A user-facing failure: printed as one line on stderr, exits with `code`."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `otel-decisions` console script; returns the exit code."""
    if isinstance(sys.stdout, io.TextIOWrapper):
        # Decision summaries contain ✓/✗/→; a non-UTF-8 terminal must not turn them into a crash.
        sys.stdout.reconfigure(errors="backslashreplace")
    args = _parser().parse_args(argv)
    try:
        code: int = args.handler(args)
        sys.stdout.flush()
        return code
    except CliError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.code
    except BrokenPipeError:
        # `otel-decisions runs | head`: the reader left; silence the flush at exit, as `cat` would.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Record why an LLM agent did what it did, and read it back."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run the calculator agent and print the Builder's analysis")
    default_help = "(default: $OTEL_DECISIONS_DIR or ./.otel-decisions)"
    demo.add_argument("--dir", type=Path, default=None, help=f"span directory {default_help}")
    demo.add_argument("--runs", type=_positive_int, default=1, help="times to cycle the demo inputs")
    demo.set_defaults(handler=_demo)

    source_help = f"span directory, file, glob or Jaeger URL (http://host:16686) {default_help}"
    runs = commands.add_parser("runs", help="list recorded runs, newest first")
    runs.add_argument("--source", default=None, help=source_help)
    runs.add_argument("--json", action="store_true", help="print JSON instead of a table")
    runs.set_defaults(handler=_runs)

    show = commands.add_parser("show", help="print one run's summary and decision trace")
    show.add_argument("run_id", metavar="RUN_ID")
    show.add_argument("--source", default=None, help=source_help)
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    show.set_defaults(handler=_show)
    return parser


# --- demo ----------------------------------------------------------------------------------------------
def _demo(args: argparse.Namespace) -> int:
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
    print(f"Recorded {len(demo_runs)} runs of goal '{GOAL_ID}'; spans written to {directory / FILE_NAME}")

    print("\nRuns of this demo (oldest first):")
    print(
        _table(
            ["RUN ID", "STATUS", "DECISIONS", "SUCCESS", "EXPRESSION"],
            [
                [
                    r.id,
                    r.status.value,
                    str(len(r.decisions)),
                    f"{r.metrics.success_rate:.0%}",
                    str(r.input_data.get("expression", "")),
                ]
                for r in demo_runs
            ],
        )
    )
    print()
    print(query.find_patterns(GOAL_ID))
    if failed:
        print(f"\nMost recent failure ({len(failed)} of {len(demo_runs)} runs failed):")
        print(query.analyze_failure(failed[-1].id))

    print("\nSuggested improvements:")
    for s in query.suggest_improvements(GOAL_ID):
        print(f"  [{s['priority']}] {s['type']} {s['target']}: {s['recommendation']}")

    if failed:
        print("\nFailed runs (search Jaeger by trace id, or run `otel-decisions show RUN_ID`):")
        for r in failed:
            expression = r.input_data.get("expression", "")
            print(f"  {r.id}  trace {query.execution_id(r.id)}  {expression}")
    return 0


# --- runs / show ---------------------------------------------------------------------------------------
def _query(source: str | None) -> tuple[BuilderQuery, str]:
    """A reader over `source` (default directory when None); a missing source is a usage error."""
    text = str(default_directory()) if source is None else source
    if text.startswith(("http://", "https://")):  # Jaeger's query API
        return BuilderQuery(text), text
    is_glob = any(ch in text for ch in "*?[")
    if not (glob.glob(text, recursive=True) if is_glob else Path(text).exists()):
        raise CliError(f"no span files at {text} (use --source PATH, or run `{PROG} demo`)", EXIT_USAGE)
    return BuilderQuery(text), text


def _run_row(run: Run) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "goal_id": run.goal_id,
        "status": run.status.value,
        "decisions": len(run.decisions),
        "success_rate": run.metrics.success_rate,
        "started_at": run.started_at.isoformat(),
    }


def _runs(args: argparse.Namespace) -> int:
    query, source = _query(args.source)
    rows = [_run_row(r) for r in query.storage.runs()]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    if not rows:
        print(f"No runs recorded under {source}.")
        return 0
    print(
        _table(
            ["RUN ID", "GOAL", "STATUS", "DECISIONS", "SUCCESS", "STARTED"],
            [
                [
                    r["run_id"],
                    r["goal_id"],
                    r["status"],
                    str(r["decisions"]),
                    f"{r['success_rate']:.0%}",
                    r["started_at"][:19].replace("T", " "),
                ]
                for r in rows
            ],
        )
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    query, source = _query(args.source)
    summary = query.get_run_summary(args.run_id)
    if summary is None:
        raise CliError(f"run not found: {args.run_id} (in {source})", EXIT_NOT_FOUND)
    execution_id = query.execution_id(args.run_id)
    trace = query.get_decision_trace(args.run_id)
    if args.json:
        document = {
            **summary.model_dump(mode="json"),
            "execution_id": execution_id,
            "decision_trace": trace,
        }
        print(json.dumps(document, indent=2, ensure_ascii=False))
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


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """Left-aligned text columns, two spaces apart (numbers are pre-formatted by the caller)."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    )


if __name__ == "__main__":
    sys.exit(main())
