"""The report's tables and lists: suggestions, risky and unexplored options, loops, hot spots, errors.

Tables are capped (`TABLE_LIMIT` rows) and say how many rows were left out, so a goal with thousands
of options still gives a file a browser opens instantly. Run and decision ids are always shown as text
in `<code>` (copy one into `otel-decisions show RUN_ID`, or search Jaeger with it); each finding lists
at most `EVIDENCE_RUNS` runs in tables (the full evidence is in the suggestions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from otel_decisions.analysis.decision_stats import RiskyOption, UnexploredOption
from otel_decisions.analysis.evidence import Evidence
from otel_decisions.analysis.run_shapes import FLIP_FLOP, RETRY_LOOP, LoopPattern, NodeHotspot, SlowDecision
from otel_decisions.report._text import clean, clip, code, esc, label, ms, num, p_value, pct, plural

TABLE_LIMIT: Final = 50
SUGGESTION_LIMIT: Final = 100
EVIDENCE_RUNS: Final = 5
_PRIORITY_ORDER: Final = {"high": 0, "medium": 1, "low": 2}
_LOOP_NAMES: Final = {RETRY_LOOP: "retry loop", FLIP_FLOP: "flip-flop"}

Column = tuple[str, bool]  # (header, numeric)


# --- building blocks -------------------------------------------------------------------------------------
def table(columns: Sequence[Column], rows: Sequence[Sequence[str]], row_classes: Sequence[str] = ()) -> str:
    """An HTML table of already-escaped cells; numeric columns are right-aligned."""
    head = "".join(f'<th class="num">{esc(h)}</th>' if n else f"<th>{esc(h)}</th>" for h, n in columns)
    body = []
    for i, row in enumerate(rows):
        css = row_classes[i] if i < len(row_classes) and row_classes[i] else ""
        cells = "".join(
            f'<td class="num">{cell}</td>' if numeric else f"<td>{cell}</td>"
            for cell, (_h, numeric) in zip(row, columns, strict=True)
        )
        body.append(f'<tr class="{css}">{cells}</tr>' if css else f"<tr>{cells}</tr>")
    return (
        f'<div class="table-box"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def left_out(hidden: int, noun: str, extra: str = "") -> str:
    """The note under a capped table or chart; empty when nothing was left out."""
    if hidden <= 0:
        return ""
    count = plural(hidden, "more " + noun, "more " + noun + "s")
    return f'<p class="note">{esc(count)} not shown{esc(extra)}.</p>'


def empty(message: str) -> str:
    return f'<p class="empty">{esc(message)}</p>'


def point(node_id: str, intent: str) -> str:
    """A decision point: node id (as an id) and intent (clipped, full text on hover)."""
    return f"{code(node_id, 40)} {label(intent, 70)}"


def _pairs(data: Mapping[str, Any]) -> tuple[list[str], dict[str, list[str]], int, int]:
    """(runs in order, decision ids per run, run count, decision count) of an evidence dict, leniently:
    suggestions are plain dicts, so anything malformed is skipped rather than trusted."""
    runs: list[str] = []
    decisions: dict[str, list[str]] = {}
    raw_runs = data.get("run_ids")
    for run_id in raw_runs if isinstance(raw_runs, list) else []:
        if isinstance(run_id, str) and run_id not in decisions:
            runs.append(run_id)
            decisions[run_id] = []
    raw_decisions = data.get("decisions")
    for item in raw_decisions if isinstance(raw_decisions, list) else []:
        if isinstance(item, Mapping):
            run_id, decision_id = item.get("run_id"), item.get("decision_id")
        elif isinstance(item, list | tuple) and len(item) == 2:
            run_id, decision_id = item
        else:
            continue
        if not isinstance(run_id, str) or not isinstance(decision_id, str):
            continue
        if run_id not in decisions:
            runs.append(run_id)
            decisions[run_id] = []
        decisions[run_id].append(decision_id)
    run_count = data.get("run_count")
    decision_count = data.get("decision_count")
    return (
        runs,
        decisions,
        run_count if isinstance(run_count, int) else len(runs),
        decision_count if isinstance(decision_count, int) else sum(len(v) for v in decisions.values()),
    )


def evidence(data: Mapping[str, Any] | Evidence, max_runs: int, heading: bool = True) -> str:
    """The runs (and their decisions) behind a finding, as copyable ids, with how many there are in all."""
    plain = data.to_dict() if isinstance(data, Evidence) else data
    runs, decisions, run_count, decision_count = _pairs(plain)
    if not runs:
        return '<span class="evidence">no runs recorded</span>' if heading else "—"
    items = []
    for run_id in runs[:max_runs]:
        decs = "".join(f' <code class="dec">{esc(clip(clean(d), 40))}</code>' for d in decisions[run_id])
        items.append(f"<li>{code(run_id)}{decs}</li>")
    counted = plural(run_count, "run")
    if decision_count:
        counted += f" · {plural(decision_count, 'decision')}"
    listed = min(len(runs), max_runs)
    more = ""
    if run_count > listed:
        more = f'<span class="more">… and {num(run_count - listed)} more not listed</span>'
    head = f'<span class="ev-count">Evidence: {esc(counted)}</span>' if heading else ""
    return f'<div class="evidence">{head}<ul class="ids">{"".join(items)}</ul>{more}</div>'


# --- suggestions -------------------------------------------------------------------------------------------
def suggestions(items: Sequence[Mapping[str, Any]]) -> str:
    """Suggestions, high priority first (the analysis's order within a priority), each with its evidence."""
    if not items:
        return empty("No suggestions: no rule found a weak node, a repeated error, a risky option or a loop.")
    ranked = sorted(items, key=lambda s: _PRIORITY_ORDER.get(str(s.get("priority", "")), 3))
    out = ['<ol class="suggestions">']
    for s in ranked[:SUGGESTION_LIMIT]:
        priority = clean(s.get("priority", ""))
        css = priority if priority in _PRIORITY_ORDER else "other"
        raw_evidence = s.get("evidence")
        out.append(
            f'<li class="suggestion {css}"><div class="s-head">'
            f'<span class="badge {css}">{esc(priority or "—")}</span>'
            f'<span class="type">{label(s.get("type", ""), 40)}</span>'
            f'<span class="target">{label(s.get("target", ""), 120)}</span></div>'
            f'<p class="reason">{label(s.get("reason", ""), 400)}</p>'
            f'<p class="rec">{label(s.get("recommendation", ""), 400)}</p>'
            + evidence(raw_evidence if isinstance(raw_evidence, Mapping) else {}, 20)
            + "</li>"
        )
    out.append("</ol>")
    return "".join(out) + left_out(len(ranked) - SUGGESTION_LIMIT, "suggestion")


# --- findings tables ---------------------------------------------------------------------------------------
def risky_table(items: Sequence[RiskyOption]) -> str:
    if not items:
        return empty("No option is over-represented in failed runs (Fisher p ≤ 0.05, 2+ failed runs).")
    columns: list[Column] = [
        ("Decision point", False),
        ("Option", False),
        ("Failed / finished runs with it", True),
        ("Failure rate with vs without", True),
        ("p", True),
        ("q (BH)", True),
        ("Failed runs that chose it", False),
    ]
    rows = []
    for r in items[:TABLE_LIMIT]:
        without = pct(r.failure_rate_without) if r.failure_rate_without is not None else "n/a"
        rows.append(
            [
                point(r.node_id, r.intent),
                label(r.option, 60),
                esc(f"{num(r.failed_with)} / {num(r.failed_with + r.completed_with)}"),
                esc(f"{pct(r.failure_rate_with)} vs {without}"),
                esc(p_value(r.p_value)),
                esc(p_value(r.q_value)),
                evidence(r.evidence, EVIDENCE_RUNS, heading=False),
            ]
        )
    return table(columns, rows, ["risky"] * len(rows)) + left_out(len(items) - TABLE_LIMIT, "risky option")


def unexplored_table(items: Sequence[UnexploredOption]) -> str:
    if not items:
        return empty("Every option offered was chosen at least once.")
    columns: list[Column] = [
        ("Decision point", False),
        ("Option never chosen", False),
        ("Times offered", True),
        ("Decisions there not succeeding", True),
        ("Runs where it was offered", False),
    ]
    rows = [
        [
            point(u.node_id, u.intent),
            label(u.option, 60),
            esc(num(u.times_offered)),
            esc(pct(u.point_failure_rate)),
            evidence(u.evidence, EVIDENCE_RUNS, heading=False),
        ]
        for u in items[:TABLE_LIMIT]
    ]
    return table(columns, rows) + left_out(len(items) - TABLE_LIMIT, "unexplored option")


def loops_table(items: Sequence[LoopPattern]) -> str:
    if not items:
        return empty("No retry loop (3+ decisions in a row at one point) and no flip-flop (A → B → A) found.")
    columns: list[Column] = [
        ("Kind", False),
        ("Decision point", False),
        ("Runs", True),
        ("Failed runs", True),
        ("Longest", True),
        ("Longest occurrence", False),
        ("Runs", False),
    ]
    rows = [
        [
            esc(_LOOP_NAMES.get(lp.kind, clean(lp.kind))),
            point(lp.node_id, lp.intent),
            esc(num(lp.runs)),
            esc(num(lp.failed_runs)),
            esc(num(lp.longest)),
            label(" → ".join(clean(x) for x in lp.example), 120),
            evidence(lp.evidence, EVIDENCE_RUNS, heading=False),
        ]
        for lp in items[:TABLE_LIMIT]
    ]
    return table(columns, rows) + left_out(len(items) - TABLE_LIMIT, "loop")


def hotspots_table(items: Sequence[NodeHotspot]) -> str:
    if not items:
        return empty("No decisions, so no latency or tokens to attribute.")
    columns: list[Column] = [
        ("Node", False),
        ("Decisions", True),
        ("Total latency", True),
        ("Avg", True),
        ("p95", True),
        ("Latency share", True),
        ("Tokens", True),
        ("Avg tokens", True),
        ("Token share", True),
        ("Slowest decisions", False),
    ]
    rows = [
        [
            code(h.node_id, 40),
            esc(num(h.decisions)),
            esc(ms(h.total_latency_ms)),
            esc(ms(h.avg_latency_ms)),
            esc(ms(h.p95_latency_ms)),
            esc(pct(h.latency_share)),
            esc(num(h.total_tokens)),
            esc(num(h.avg_tokens)),
            esc(pct(h.token_share)),
            evidence(h.evidence, EVIDENCE_RUNS, heading=False),
        ]
        for h in items[:TABLE_LIMIT]
    ]
    return table(columns, rows) + left_out(len(items) - TABLE_LIMIT, "node")


def slowest_table(items: Sequence[SlowDecision]) -> str:
    columns: list[Column] = [
        ("#", True),
        ("Run", False),
        ("Decision", False),
        ("Decision point", False),
        ("Option", False),
        ("Latency", True),
        ("Tokens", True),
        ("Outcome", False),
    ]
    rows = []
    for rank, d in enumerate(items[:TABLE_LIMIT], start=1):
        outcome = {True: ("succeeded", "good"), False: ("failed", "bad"), None: ("no outcome", "")}[d.success]
        rows.append(
            [
                esc(rank),
                code(d.run_id),
                code(d.decision_id, 24),
                point(d.node_id, d.intent),
                label(d.option, 50),
                esc(ms(d.latency_ms)),
                esc(num(d.tokens)),
                f'<span class="{outcome[1]}">{outcome[0]}</span>' if outcome[1] else outcome[0],
            ]
        )
    return table(columns, rows) + left_out(len(items) - TABLE_LIMIT, "decision")


def errors_table(items: Sequence[tuple[str, int]]) -> str:
    if not items:
        return empty("No decision reported a failed outcome.")
    rows = [[label(error, 200), esc(num(count))] for error, count in items[:TABLE_LIMIT]]
    return table([("Error", False), ("Decisions", True)], rows)
