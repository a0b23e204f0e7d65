"""The report's four charts, drawn as inline SVG strings (no JavaScript, nothing fetched).

Each chart is one `<svg>` with a `viewBox`, so it scales to the page width, and each bar, cell or
period is a `<g>` carrying its real numbers as `data-` attributes and a `<title>` (the browser's
tooltip) with the full, unclipped labels. Coordinates are rounded to one decimal, so the same input
always draws the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Final

from otel_decisions.analysis.run_shapes import SlowDecision, TimeBucket
from otel_decisions.report._data import Matrix, MatrixRow, NodeSuccess
from otel_decisions.report._text import (
    TITLE_LIMIT,
    attr_number,
    clean,
    clip,
    duration,
    esc,
    moment,
    ms,
    num,
    p_value,
    pct,
    title_text,
)

SVG_NS: Final = "http://www.w3.org/2000/svg"
WIDTH: Final = 960
GREEN: Final = "#16a34a"
RED: Final = "#dc2626"
GREY: Final = "#94a3b8"
SLATE: Final = "#475569"
TRACK: Final = "#f1f5f9"
EMPTY: Final = "#f8fafc"
INK: Final = "#1f2937"
WHITE: Final = "#ffffff"


# --- primitives ----------------------------------------------------------------------------------------
def _f(value: float) -> str:
    """A coordinate: one decimal, without a trailing `.0`."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _open(height: float, label: str, css: str) -> str:
    return (
        f'<svg xmlns="{SVG_NS}" class="chart {css}" viewBox="0 0 {WIDTH} {_f(height)}" '
        f'width="{WIDTH}" height="{_f(height)}" role="img" aria-label="{esc(label)}">'
    )


def _rect(x: float, y: float, w: float, h: float, fill: str, extra: str = "") -> str:
    return f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(max(0.0, w))}" height="{_f(h)}" fill="{fill}"{extra}/>'


def _line(x1: float, y1: float, x2: float, y2: float, css: str) -> str:
    return f'<line x1="{_f(x1)}" y1="{_f(y1)}" x2="{_f(x2)}" y2="{_f(y2)}" class="{css}"/>'


def _text(x: float, y: float, content: str, css: str = "", anchor: str = "start", fill: str = "") -> str:
    """An SVG `<text>`; `content` must already be escaped."""
    attributes = f' class="{css}"' if css else ""
    if anchor != "start":
        attributes += f' text-anchor="{anchor}"'
    if fill:
        attributes += f' fill="{fill}"'
    return f'<text x="{_f(x)}" y="{_f(y)}"{attributes}>{content}</text>'


def _title(text: str) -> str:
    return f"<title>{esc(title_text(clean(text)))}</title>"


def _data(**values: str | int | float | bool | None) -> str:
    """`data-` attributes (underscores become hyphens); None values are left out."""
    parts = []
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            shown = "true" if value else "false"
        elif isinstance(value, int | float):
            shown = attr_number(value)
        else:
            shown = esc(clip(clean(value), TITLE_LIMIT))  # bounded like tooltips: the file stays small
        parts.append(f' data-{key.replace("_", "-")}="{shown}"')
    return "".join(parts)


def mix(low: str, high: str, t: float) -> str:
    """The colour `t` of the way from `low` to `high` (both `#rrggbb`), for colour-scaled cells."""
    t = min(1.0, max(0.0, t))
    channels = (
        round(int(low[i : i + 2], 16) + (int(high[i : i + 2], 16) - int(low[i : i + 2], 16)) * t)
        for i in (1, 3, 5)
    )
    return "#" + "".join(f"{c:02x}" for c in channels)


def nice_ticks(maximum: int, count: int = 5) -> list[int]:
    """Round axis ticks from 0 to at least `maximum` (steps of 1, 2 or 5 × 10ⁿ), at most `count` + 1."""
    if maximum <= 0:
        return [0, 1]
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    top = -(-maximum // step) * step
    return list(range(0, top + 1, step))


# --- 1. success rate by node -----------------------------------------------------------------------------
def node_success_chart(nodes: Sequence[NodeSuccess]) -> str:
    """One 100% bar per node: succeeded (green), failed (red), no outcome (grey), with rate and count."""
    label_end, bar_x, bar_w, row_h, top = 200.0, 212.0, 520.0, 30.0, 30.0
    height = top + row_h * len(nodes) + 6
    out = [_open(height, "Success rate by node", "node-success")]
    for tick in (0, 25, 50, 75, 100):
        x = bar_x + bar_w * tick / 100
        out.append(_line(x, top - 4, x, height - 4, "grid"))
        out.append(_text(x, top - 10, f"{tick}%", "axis", "middle"))
    for i, n in enumerate(nodes):
        y = top + i * row_h
        rate = n.success_rate
        out.append(
            '<g class="bar node-bar"'
            + _data(
                node=n.node_id,
                decisions=n.decisions,
                succeeded=n.succeeded,
                failed=n.failed,
                no_outcome=n.no_outcome,
                success_rate=rate,
            )
            + ">"
        )
        out.append(
            _title(
                f"{n.node_id}: {pct(rate, 1)} of {n.decisions} decisions succeeded "
                f"({n.succeeded} succeeded, {n.failed} failed, {n.no_outcome} without outcome)"
            )
        )
        out.append(_text(label_end, y + 20, esc(clip(clean(n.node_id), 28)), "label", "end"))
        out.append(_rect(bar_x, y + 6, bar_w, 18, TRACK))
        x = bar_x
        for value, colour in ((n.succeeded, GREEN), (n.failed, RED), (n.no_outcome, GREY)):
            w = bar_w * value / n.decisions if n.decisions else 0.0
            if w > 0:
                out.append(_rect(x, y + 6, w, 18, colour))
            x += w
        value_text = f"{pct(rate)} of {num(n.decisions)}"
        out.append(_text(bar_x + bar_w + 10, y + 20, esc(value_text), "value"))
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


# --- 2. option × outcome matrix ----------------------------------------------------------------------------
_COLUMNS: Final = (
    ("chosen", "Chosen"),
    ("succeeded", "Succeeded"),
    ("failed", "Failed"),
    ("no_outcome", "No outcome"),
    ("failed_runs", "Failed runs"),
)


def _cells(row: MatrixRow, max_chosen: int) -> list[tuple[str, int, str, float, str]]:
    """(column, value, text, colour scale 0..1, colour) for each cell of an option's row."""
    s = row.stat
    weight = 0.15 + 0.45 * s.chosen / max_chosen if max_chosen else 0.0
    cells = [("chosen", s.chosen, num(s.chosen), weight, SLATE)]
    for column, value, colour in (
        ("succeeded", s.succeeded, GREEN),
        ("failed", s.failed, RED),
        ("no_outcome", s.no_outcome, SLATE),
    ):
        share = value / s.chosen if s.chosen else 0.0
        cells.append((column, value, f"{num(value)} · {pct(share)}" if value else "–", share, colour))
    run_share = s.failed_runs / s.runs if s.runs else 0.0
    runs_text = f"{num(s.failed_runs)} of {num(s.runs)}" if s.failed_runs else f"0 of {num(s.runs)}"
    cells.append(("failed_runs", s.failed_runs, runs_text, run_share, RED))
    return cells


def option_matrix_chart(matrix: Matrix) -> str:
    """Decision points (node · intent) with their options as rows, outcomes as colour-scaled columns.

    A cell's colour is the share of the option's decisions (or runs, for "failed runs") in that
    column, so a red column stands out wherever it is; risky options get a red marker and their p-value.
    """
    col_x, col_w, cell_w, head_h, group_h, row_h = 450.0, 100.0, 94.0, 34.0, 28.0, 28.0
    rows = sum(len(g.rows) for g in matrix.groups)
    height = head_h + group_h * len(matrix.groups) + row_h * rows + 4
    max_chosen = max((r.stat.chosen for g in matrix.groups for r in g.rows), default=0)
    out = [_open(height, "Options by outcome", "matrix")]
    out.append(_text(8, 22, "Decision point / option", "head"))
    for j, (_key, title) in enumerate(_COLUMNS):
        out.append(_text(col_x + j * col_w + cell_w / 2, 22, title, "head", "middle"))
    y = head_h
    for group in matrix.groups:
        point = f"{group.node_id} · {group.intent}"
        out.append(
            f'<g class="point"{_data(node=group.node_id, intent=group.intent)}>{_title(point)}'
            + _line(0, y + 2, WIDTH, y + 2, "rule")
            + _text(8, y + 20, esc(clip(clean(point), 120)), "group")
            + "</g>"
        )
        y += group_h
        for row in group.rows:
            out.append(_matrix_row(row, y, col_x, col_w, cell_w, max_chosen))
            y += row_h
    out.append("</svg>")
    return "".join(out)


def _matrix_row(row: MatrixRow, y: float, col_x: float, col_w: float, cell_w: float, max_chosen: int) -> str:
    s, risky = row.stat, row.risky
    summary = (
        f"{s.node_id} · {s.intent} · {s.option}: chosen {s.chosen} times, {s.succeeded} succeeded, "
        f"{s.failed} failed, {s.no_outcome} without outcome; {s.failed_runs} of {s.runs} runs failed"
    )
    if risky is not None:
        summary += f"; over-represented in failed runs (Fisher p={p_value(risky.p_value)})"
    out = [
        '<g class="option-row'
        + (' risky"' if risky is not None else '"')
        + _data(
            node=s.node_id,
            intent=s.intent,
            option=s.option,
            option_id=s.option_id,
            chosen=s.chosen,
            succeeded=s.succeeded,
            failed=s.failed,
            no_outcome=s.no_outcome,
            runs=s.runs,
            failed_runs=s.failed_runs,
            risky=risky is not None,
            p_value=risky.p_value if risky is not None else None,
        )
        + ">",
        _title(summary),
    ]
    if risky is not None:
        out.append(_rect(8, y + 2, 4, 24, RED))
        out.append(_text(col_x - 12, y + 19, esc(f"⚠ p={p_value(risky.p_value)}"), "risk", "end"))
    out.append(_text(22, y + 19, esc(clip(clean(s.option), 44 if risky is not None else 58)), "label"))
    for j, (column, value, text, scale, colour) in enumerate(_cells(row, max_chosen)):
        x = col_x + j * col_w
        fill = mix(EMPTY, colour, 0.12 + 0.88 * scale) if value else EMPTY
        ink = WHITE if value and 0.12 + 0.88 * scale > 0.55 else INK
        out.append(_rect(x, y + 2, cell_w, 24, fill, f' rx="3" class="cell"{_data(col=column, value=value)}'))
        out.append(_text(x + cell_w / 2, y + 18, esc(text), "cell-text", "middle", ink))
    out.append("</g>")
    return "".join(out)


# --- 3. failures over time --------------------------------------------------------------------------------
def _period_label(start: str, seconds: int) -> str:
    try:
        moment = datetime.fromisoformat(start)
    except ValueError:
        return clip(clean(start), 16)
    return moment.strftime("%Y-%m-%d" if seconds >= 86400 else "%m-%d %H:%M")


def failures_chart(slots: Sequence[TimeBucket]) -> str:
    """Runs started per period as stacked bars: completed (green), other (grey), failed (red) on top."""
    left, right, top, bottom, height = 56.0, 944.0, 18.0, 212.0, 250.0
    ticks = nice_ticks(max((b.runs for b in slots), default=0))
    scale = (bottom - top) / ticks[-1]
    out = [_open(height, "Runs and failures over time", "timeline")]
    for tick in ticks:
        y = bottom - tick * scale
        out.append(_line(left, y, right, y, "grid"))
        out.append(_text(left - 8, y + 4, num(tick), "axis", "end"))
    slot_w = (right - left) / max(1, len(slots))
    bar_w = min(56.0, slot_w * 0.7)
    every = max(1, math.ceil(len(slots) / 10))
    for i, b in enumerate(slots):
        x = left + i * slot_w + (slot_w - bar_w) / 2
        other = max(0, b.runs - b.failed - b.completed)
        rate = b.failed / b.runs if b.runs else 0.0
        start = _period_label(b.start, b.seconds)
        out.append(
            '<g class="bucket"'
            + _data(start=b.start, seconds=b.seconds, runs=b.runs, failed=b.failed, completed=b.completed)
            + ">"
        )
        detail = (
            f"{b.runs} runs: {b.failed} failed ({pct(rate)}), {b.completed} completed, {other} other"
            if b.runs
            else "no runs"
        )
        out.append(_title(f"{moment(b.start)} + {duration(b.seconds)}: {detail}"))
        y = bottom
        for value, colour in ((b.completed, GREEN), (other, GREY), (b.failed, RED)):
            if value > 0:
                h = value * scale
                out.append(_rect(x, y - h, bar_w, h, colour))
                y -= h
        if b.runs and slot_w >= 22:
            out.append(_text(x + bar_w / 2, y - 4, num(b.runs), "value", "middle"))
        if i % every == 0:
            out.append(_text(x + bar_w / 2, bottom + 18, esc(start), "axis", "middle"))
        out.append("</g>")
    out.append(_line(left, bottom, right, bottom, "baseline"))
    out.append("</svg>")
    return "".join(out)


# --- 4. slowest decisions ---------------------------------------------------------------------------------
def slowest_chart(decisions: Sequence[SlowDecision]) -> str:
    """One bar per slow decision (green: succeeded, red: failed), with its run and decision id."""
    label_end, bar_x, bar_w, ids_x, row_h, top = 250.0, 262.0, 330.0, 680.0, 28.0, 6.0
    height = top + row_h * len(decisions) + 4
    longest = max((d.latency_ms for d in decisions), default=0)
    out = [_open(height, "Slowest decisions", "slowest")]
    for i, d in enumerate(decisions):
        y = top + i * row_h
        colour = GREEN if d.success is True else RED if d.success is False else GREY
        outcome = {True: "succeeded", False: "failed", None: "no outcome"}[d.success]
        out.append(
            '<g class="bar slow-bar"'
            + _data(
                run_id=d.run_id,
                decision_id=d.decision_id,
                node=d.node_id,
                option=d.option,
                latency_ms=d.latency_ms,
                tokens=d.tokens,
                outcome=outcome,
            )
            + ">"
        )
        out.append(
            _title(
                f"{d.run_id} {d.decision_id} · {d.node_id} · {d.intent} → {d.option}: "
                f"{ms(d.latency_ms)}, {d.tokens} tokens, {outcome}"
            )
        )
        name = clip(clean(f"{d.node_id} · {d.option}"), 34)
        out.append(_text(label_end, y + 18, esc(name), "label", "end"))
        w = bar_w * d.latency_ms / longest if longest else 0.0
        out.append(_rect(bar_x, y + 5, max(w, 2.0), 18, colour))
        out.append(_text(bar_x + max(w, 2.0) + 6, y + 18, esc(ms(d.latency_ms)), "value"))
        ids = f"{clip(clean(d.run_id), 36)} {clip(clean(d.decision_id), 12)}"
        out.append(_text(ids_x, y + 18, esc(ids), "mono"))
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)
