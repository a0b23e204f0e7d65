"""`otel-decisions`: inspect recorded runs from a terminal, and run the calculator demo.

Usage::

    otel-decisions runs [--goal G] [--status S] [--since T] [--until T] [--limit N]   # newest first
    otel-decisions show RUN_ID                   # summary and decision trace of one run
    otel-decisions failures [--goal G] [--limit N]   # newest failed runs: failure point, root cause
    otel-decisions analyze RUN_ID                # failure analysis + the run's suspect decisions
    otel-decisions patterns GOAL                 # patterns, per-option stats, risky/unexplored options, loops
    otel-decisions suggest GOAL [--llm]          # suggestions with their evidence ids (--llm: ask Claude too)
    otel-decisions report GOAL [-o FILE]         # one self-contained HTML report with charts
    otel-decisions compare RUN_A RUN_B           # side by side, and where they differ
    otel-decisions nodes [--goal G]              # per node: decisions, success, latency, tokens, shares
    otel-decisions demo [--dir PATH] [--runs N]  # record the calculator agent, print the analysis

Every command takes `--json` (JSON on stdout instead of text) and, except `demo`, `--source SOURCE`: a
span directory, file, glob (e.g. Collector output) or Jaeger URL (`http://host:16686`); default
`$OTEL_DECISIONS_DIR`, else `./.otel-decisions`. `--progress/--no-progress` forces the bar drawn on stderr
while span files are read (default: on a terminal, for sources over 8 MB). T is an ISO date or time
(local time unless it has an offset) or a duration ago: `30m`, `2h`, `7d`.

Exit codes: 0 ok; 1 unknown run or goal, or an unexpected error; 2 bad arguments, or a source that is
missing or unreadable; 130 interrupted. Errors are one line on stderr, never a traceback. Everything
is read back from exported spans by `BuilderQuery`, as a Builder in another process would see it.
Nothing imports this package: it is a leaf over the public API.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from otel_decisions.cli._goals import nodes, patterns, report, suggest
from otel_decisions.cli._output import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    PROG,
    CliError,
    stderr_line,
)
from otel_decisions.cli._progress import ProgressBar
from otel_decisions.cli._runs import analyze, compare, demo, failures, runs, show
from otel_decisions.cli._source import positive_int, time_bound
from otel_decisions.models import RunStatus

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `otel-decisions` console script; returns the exit code."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            # Decision summaries contain ✓/✗/→; a non-UTF-8 terminal must not turn them into a crash.
            stream.reconfigure(errors="backslashreplace")
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed usage and the error (or --help)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    args.bar = bar = ProgressBar(sys.stderr)
    warnings = _WarningLines(bar)
    library_logger = logging.getLogger("otel_decisions")
    library_logger.addHandler(warnings)
    try:
        code: int = args.handler(args)
        sys.stdout.flush()
        return code
    except CliError as exc:
        bar.close()
        stderr_line(f"error: {exc}")
        return exc.code
    except KeyboardInterrupt:
        bar.close()
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `otel-decisions runs | head`: the reader left; silence the flush at exit, as `cat` would.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except Exception as exc:  # a bug or an environment problem: still one line, never a traceback
        bar.close()
        stderr_line(f"error: {type(exc).__name__}: {exc}")
        return EXIT_ERROR
    finally:
        bar.close()
        library_logger.removeHandler(warnings)


class _WarningLines(logging.Handler):
    """The library's warnings (an unreadable file in a directory, a skipped line) as one line each."""

    def __init__(self, bar: ProgressBar) -> None:
        super().__init__(logging.WARNING)
        self._bar = bar

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage().removeprefix("otel_decisions: ")
            self._bar.close()  # start on a fresh line if a bar is drawn
            stderr_line(f"warning: {message}")
        except Exception:
            self.handleError(record)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Record why an LLM agent did what it did, and read it back.",
        epilog="Exit codes: 0 ok, 1 unknown run or goal, 2 bad arguments or source, 130 interrupted.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    default_help = "(default: $OTEL_DECISIONS_DIR or ./.otel-decisions)"

    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="print JSON instead of text")
    source = argparse.ArgumentParser(add_help=False, parents=[output])
    source.add_argument(
        "--source",
        default=None,
        help=f"span directory, file, glob or Jaeger URL (http://host:16686) {default_help}",
    )
    source.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show (or hide) a progress bar on stderr while reading (default: on a terminal, sources > 8 MB)",
    )

    def command(
        name: str, help: str, handler: object, parents: list[argparse.ArgumentParser]
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name, help=help, description=help[0].upper() + help[1:] + ".", parents=parents
        )
        sub.set_defaults(handler=handler)
        return sub

    statuses = [s.value for s in RunStatus]
    sub = command("runs", "list recorded runs, newest first", runs, [source])
    sub.add_argument("--goal", metavar="G", help="only runs of this goal")
    sub.add_argument("--status", choices=statuses, help="only runs with this status")
    time_help = "an ISO date/time (local unless it has an offset) or a duration ago: 30m, 2h, 7d"
    sub.add_argument(
        "--since", type=time_bound, metavar="T", help=f"only runs started at or after T: {time_help}"
    )
    sub.add_argument("--until", type=time_bound, metavar="T", help="only runs started before T")
    sub.add_argument("--limit", type=positive_int, metavar="N", help="at most N runs (default: all)")

    sub = command("show", "print one run's summary and decision trace", show, [source])
    sub.add_argument("run_id", metavar="RUN_ID")

    sub = command(
        "failures", "list the newest failed runs with their failure point and root cause", failures, [source]
    )
    sub.add_argument("--goal", metavar="G", help="only runs of this goal")
    sub.add_argument(
        "--limit", type=positive_int, default=10, metavar="N", help="at most N runs (default: 10)"
    )

    sub = command(
        "analyze", "explain why a run failed, and which of its choices are suspect", analyze, [source]
    )
    sub.add_argument("run_id", metavar="RUN_ID")

    sub = command(
        "patterns",
        "patterns, option statistics, risky and unexplored options, loops of a goal",
        patterns,
        [source],
    )
    sub.add_argument("goal", metavar="GOAL")

    sub = command(
        "suggest", "improvement suggestions for a goal, with the evidence behind each", suggest, [source]
    )
    sub.add_argument("goal", metavar="GOAL")
    sub.add_argument(
        "--llm",
        action="store_true",
        help="also ask Claude, from a redacted evidence pack (needs otel-decisions[claude] and "
        "ANTHROPIC_API_KEY; ANTHROPIC_BASE_URL is honoured)",
    )
    sub.add_argument(
        "--model",
        default=None,
        help="Claude model (default: $OTEL_DECISIONS_LLM_MODEL, else a current Sonnet)",
    )

    sub = command(
        "report", "write a self-contained HTML report of a goal (charts, evidence)", report, [source]
    )
    sub.add_argument("goal", metavar="GOAL")
    sub.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("report.html"),
        metavar="FILE",
        help="where to write the report (default: report.html)",
    )

    sub = command("compare", "compare two runs", compare, [source])
    sub.add_argument("run_a", metavar="RUN_A")
    sub.add_argument("run_b", metavar="RUN_B")

    sub = command("nodes", "per-node decisions, success rate, latency and tokens", nodes, [source])
    sub.add_argument("--goal", metavar="G", help="only runs of this goal")

    sub = command("demo", "run the calculator agent and print the Builder's analysis", demo, [output])
    sub.add_argument("--dir", type=Path, default=None, help=f"span directory {default_help}")
    sub.add_argument("--runs", type=positive_int, default=1, help="times to cycle the demo inputs")
    return parser
