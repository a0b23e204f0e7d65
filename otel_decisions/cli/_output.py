"""What the CLI prints: the one-line error, aligned tables, clipped text, JSON and evidence ids."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from otel_decisions.contract import ns_to_datetime

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_USAGE",
    "PROG",
    "CliError",
    "Column",
    "clip",
    "evidence_lines",
    "iso_time",
    "percent",
    "print_json",
    "short_time",
    "stderr_line",
    "table",
]

PROG: Final = "otel-decisions"
EXIT_OK: Final = 0
EXIT_NOT_FOUND: Final = 1  # an unknown run or goal
EXIT_ERROR: Final = 1  # an unexpected failure inside a command
EXIT_USAGE: Final = 2  # bad arguments, a missing or unreadable source
EXIT_INTERRUPTED: Final = 130  # Ctrl-C, as shells report SIGINT

ELLIPSIS: Final = "…"


class CliError(Exception):
    """A user-facing failure: printed as one line on stderr, exits with `code`."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Column:
    """A table column: its header, alignment (`>` for numbers) and the width its cells are clipped to."""

    header: str
    align: Literal["<", ">"] = "<"
    max_width: int | None = None


def clip(text: object, width: int | None) -> str:
    """`text` on one line, cut to `width` characters with a trailing `…` when longer."""
    one_line = " ".join(str(text).split())
    if width is None or len(one_line) <= width:
        return one_line
    return one_line[: max(0, width - 1)] + ELLIPSIS


def table(columns: Sequence[Column], rows: Iterable[Sequence[object]]) -> str:
    """Columns two spaces apart, each as wide as its widest (clipped) cell; no trailing spaces."""
    cells = [[c.header for c in columns]]
    cells += [[clip(v, c.max_width) for v, c in zip(row, columns, strict=True)] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = []
    for n, row in enumerate(cells):
        parts = [
            cell.ljust(width) if column.align == "<" or n == 0 else cell.rjust(width)
            for cell, width, column in zip(row, widths, columns, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def percent(rate: float | None, digits: int = 1) -> str:
    return "-" if rate is None else f"{rate:.{digits}%}"


def iso_time(ns: int) -> str:
    """Local time of `ns` in ISO 8601, as the run models' naive datetimes print."""
    return ns_to_datetime(ns).isoformat()


def short_time(ns: int) -> str:
    return iso_time(ns)[:19].replace("T", " ")


def print_json(document: Any) -> None:
    """Indented JSON on stdout; keys keep the order the command built them in (stable by design)."""
    print(json.dumps(document, indent=2, ensure_ascii=False))


def evidence_lines(evidence: dict[str, Any], indent: str = "   ") -> list[str]:
    """The runs and decisions behind a finding (`Evidence.to_dict()`), wrapped to the terminal width.

    Each run is listed with its decisions, `run_x (dec_0, dec_2)`. The counts cover every supporting run
    and decision; the ids are the first ones the analysis kept (the newest), so "+N more" says how many
    are not listed.
    """
    by_run: dict[str, list[str]] = {run_id: [] for run_id in evidence.get("run_ids", [])}
    for d in evidence.get("decisions", []):
        by_run.setdefault(d["run_id"], []).append(d["decision_id"])
    run_count = int(evidence.get("run_count", len(by_run)))
    decision_count = int(evidence.get("decision_count", 0))
    lines = [f"{indent}Evidence: {_count(run_count, 'run')}, {_count(decision_count, 'decision')}"]
    if not by_run:
        return lines
    items = [f"{run_id} ({', '.join(ds)})" if ds else run_id for run_id, ds in by_run.items()]
    listed = len(evidence.get("decisions", []))
    more = [
        _count(n, noun)
        for n, noun in ((run_count - len(by_run), "run"), (decision_count - listed, "decision"))
        if n > 0
    ]
    text = ", ".join(items) + (f" (+{' and '.join(more)} more)" if more else "")
    width = max(60, shutil.get_terminal_size((100, 24)).columns - 1)
    lines += textwrap.wrap(
        text,
        width=width,
        initial_indent=indent + "  ",
        subsequent_indent=indent + "  ",
        break_on_hyphens=False,
        break_long_words=False,
    )
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def stderr_line(message: str) -> None:
    """`otel-decisions: <message>` on stderr, as one line."""
    print(f"{PROG}: {' '.join(message.split())}", file=sys.stderr, flush=True)
