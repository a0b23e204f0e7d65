"""Where the CLI reads runs from, and the argument types shared by the commands.

A source is a directory (searched recursively), a span file, a glob, or a Jaeger query URL; without
`--source`, `$OTEL_DECISIONS_DIR`, else `./.otel-decisions`. A source that does not exist, or a file or
directory that cannot be opened, is a usage error (exit 2) before anything is read; unreadable files
inside a directory are skipped by the reader with a warning.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from datetime import datetime
from pathlib import Path

from otel_decisions import BuilderQuery
from otel_decisions._config import default_directory
from otel_decisions.analysis.facts import RunFacts
from otel_decisions.cli._output import EXIT_NOT_FOUND, EXIT_USAGE, PROG, CliError
from otel_decisions.cli._progress import AUTO_PROGRESS_BYTES, ProgressBar
from otel_decisions.contract import datetime_to_ns
from otel_decisions.reading.jaeger import is_url, parse_lookback
from otel_decisions.reading.otlp_files import discover_files

__all__ = ["goal_facts", "open_query", "positive_int", "time_bound"]


def open_query(args: argparse.Namespace) -> tuple[BuilderQuery, str]:
    """A reader over `args.source` (checked first), with the progress bar `args.bar` when it is wanted.

    `args.progress` is True or False when forced, None for automatic: shown when stderr is a terminal
    and the source's files total more than `AUTO_PROGRESS_BYTES`.
    """
    source: str = str(default_directory()) if args.source is None else args.source
    bar: ProgressBar = args.bar
    forced: bool | None = args.progress
    if is_url(source):  # Jaeger's query API: the size is unknown until it answers
        query = BuilderQuery(source, progress=bar if forced else None)
        query.storage.refresh()
        if query.storage.source_error is not None:
            raise CliError(f"cannot read {source}: {query.storage.source_error}", EXIT_USAGE)
        return query, source
    _check_source(source)
    show = (
        forced if forced is not None else sys.stderr.isatty() and _total_bytes(source) > AUTO_PROGRESS_BYTES
    )
    return BuilderQuery(source, progress=bar if show else None), source


def _check_source(source: str) -> None:
    if any(ch in source for ch in "*?["):
        if not glob.glob(source, recursive=True):
            raise CliError(f"no span files at {source} (use --source PATH, or run `{PROG} demo`)", EXIT_USAGE)
        return
    path = Path(source)
    if not path.exists():
        raise CliError(f"no span files at {source} (use --source PATH, or run `{PROG} demo`)", EXIT_USAGE)
    try:
        if path.is_dir():
            with os.scandir(path):
                pass
        else:  # non-blocking: a FIFO must not hang the check; a socket fails here, as it should
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
    except OSError as exc:
        raise CliError(f"cannot read {source}: {exc.strerror or exc}", EXIT_USAGE) from exc


def _total_bytes(source: str) -> int:
    total = 0
    for path in discover_files(source):
        try:
            total += path.stat().st_size
        except OSError:
            continue
    return total


def goal_facts(query: BuilderQuery, goal_id: str, source: str) -> list[RunFacts]:
    """The facts of `goal_id`'s runs, newest first; an unknown goal is an error naming the known ones."""
    facts = query.storage.facts()
    selected = [f for f in facts if f.goal_id == goal_id]
    if not selected:
        goals = list(dict.fromkeys(f.goal_id for f in facts))
        known = f" (goals: {', '.join(goals[:10])}{', …' if len(goals) > 10 else ''})" if goals else ""
        raise CliError(f"no runs of goal {goal_id!r} in {source}{known}", EXIT_NOT_FOUND)
    return selected


# --- argument types ------------------------------------------------------------------------------
def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def time_bound(text: str) -> int:
    """`--since`/`--until`: an ISO date or date-time (naive = local time), or a duration ago (`30m`,
    `2h`, `7d`, also `s` and `w`); returned as nanoseconds since the epoch."""
    try:
        ago = parse_lookback(text)
    except (ValueError, OverflowError) as exc:
        if isinstance(exc, OverflowError):
            raise argparse.ArgumentTypeError(f"duration out of range: {text!r}") from None
    else:
        return time.time_ns() - round(ago.total_seconds() * 1e9)
    try:
        return datetime_to_ns(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO date or time (2026-05-01, 2026-05-01T14:30) "
            f"or a duration ago (30m, 2h, 7d), got {text!r}"
        ) from None
