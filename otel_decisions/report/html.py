"""A goal's analysis as one self-contained HTML page: `otel-decisions report GOAL -o report.html`.

Usage::

    from otel_decisions import BuilderQuery
    from otel_decisions.report import write_report

    insights = BuilderQuery(".otel-decisions").insights("calculator")
    write_report(insights, "report.html", source=".otel-decisions")

Why one file with nothing to fetch: a report is attached to tickets, mailed and opened on machines
without network or the package, and it shows agents' text, which is untrusted. So the page has inline
CSS, charts drawn here as inline SVG, no script at all, and a Content-Security-Policy forbidding any
script or fetch, as a second line of defence behind escaping every agent-provided string.

The page shows, top to bottom: the goal's run count, success rate and statuses; the suggestions with
their evidence; success rate by node; the option × outcome matrix; runs and failures over time; the
slowest decisions; then tables of risky options, unexplored options, loops, hot spots and errors.
Output depends only on `insights`, `generated_at` and `source`: the same input gives the same bytes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from otel_decisions.analysis.insights import GoalInsights
from otel_decisions.analysis.patterns import TOP_FAILURES
from otel_decisions.report import _sections as sections
from otel_decisions.report._data import NodeSuccess, node_success, option_matrix, time_slots
from otel_decisions.report._style import CSS
from otel_decisions.report._svg import (
    GREEN,
    GREY,
    RED,
    SLATE,
    failures_chart,
    node_success_chart,
    option_matrix_chart,
    slowest_chart,
)
from otel_decisions.report._text import clean, clip, code, duration, esc, moment, num, pct, plural, title_text

__all__ = ["render_report", "write_report"]

#: Caps that keep the file small whatever the store holds (each capped part says what it left out).
NODE_LIMIT: Final = 40
OPTION_LIMIT: Final = 50
#: No script, no fetch of any kind; inline styles only.
CSP: Final = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
_STATUS_ORDER: Final = ("completed", "failed")
_TOC: Final = (
    ("suggestions", "Suggestions"),
    ("nodes", "Success by node"),
    ("options", "Options × outcome"),
    ("timeline", "Failures over time"),
    ("slowest", "Slowest decisions"),
    ("risky", "Risky options"),
    ("unexplored", "Unexplored options"),
    ("loops", "Loops"),
    ("hotspots", "Hot spots"),
    ("errors", "Errors"),
)


def render_report(insights: GoalInsights, *, generated_at: datetime | None = None, source: str = "") -> str:
    """The report page for `insights`, as text.

    `generated_at` (default: now, UTC) and `source` (where the spans were read, e.g. a directory) are
    shown in the header; pass `generated_at` to get reproducible output.
    """
    when = generated_at if generated_at is not None else datetime.now(UTC)
    nodes = node_success(insights.options)
    goal = clean(insights.goal_id)
    body = [
        _header(insights, nodes, when, source),
        '<nav class="toc">' + "".join(f'<a href="#{key}">{esc(name)}</a>' for key, name in _TOC) + "</nav>",
        _section(
            "suggestions",
            "Suggestions",
            "What to change first, from deterministic rules over all runs; each cites the runs and "
            "decisions behind it (paste a run id into <code>otel-decisions show RUN_ID</code>, or "
            "search Jaeger).",
            sections.suggestions(insights.suggestions),
        ),
        _nodes_section(nodes),
        _options_section(insights),
        _timeline_section(insights),
        _slowest_section(insights),
        _section(
            "risky",
            "Risky options",
            "Options chosen in failed runs more often than chance allows: one-sided Fisher exact test "
            "over the finished runs that reached the same decision point; q is the Benjamini–Hochberg "
            "adjusted p-value, because many options are tested at once.",
            sections.risky_table(insights.risky_options),
        ),
        _section(
            "unexplored",
            "Unexplored options",
            "Options offered but never chosen, at the decision points that fail most first.",
            sections.unexplored_table(insights.unexplored_options),
        ),
        _section(
            "loops",
            "Loops",
            "Retry loops (3 or more decisions in a row at one decision point) and flip-flops (the "
            "choice returns to an option it had switched away from), per decision point.",
            sections.loops_table(insights.loops),
        ),
        _section(
            "hotspots",
            "Hot spots",
            "Where the goal’s time and tokens go, per node (latency of the decisions with an outcome).",
            sections.hotspots_table(insights.hotspots),
        ),
        _section(
            "errors",
            "Most common errors",
            f"Errors of failed outcomes, grouped by text (the {TOP_FAILURES} most frequent).",
            sections.errors_table(insights.patterns.common_failures),
        ),
        _footer(when),
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="generator" content="otel-decisions">\n'
        f"<title>Decision report: {esc(clip(goal, 80))}</title>\n"
        f"<style>{CSS}</style>\n</head>\n"
        '<body>\n<div class="page">\n' + "\n".join(body) + "\n</div>\n</body>\n</html>\n"
    )


def write_report(
    insights: GoalInsights, path: str | Path, *, generated_at: datetime | None = None, source: str = ""
) -> Path:
    """Write the report for `insights` to `path` as UTF-8 (bytes as rendered, on every platform); returns
    the path."""
    target = Path(path)
    target.write_bytes(render_report(insights, generated_at=generated_at, source=source).encode("utf-8"))
    return target


# --- parts -----------------------------------------------------------------------------------------------
def _section(key: str, title: str, lead: str, content: str) -> str:
    """A report section; `lead` is HTML written here (any data in it is escaped by the caller)."""
    return f'<section id="{key}">\n<h2>{esc(title)}</h2>\n<p class="lead">{lead}</p>\n{content}\n</section>'


def _legend(*items: tuple[str, str]) -> str:
    swatches = "".join(
        f'<span><span class="swatch" style="background:{colour}"></span>{esc(name)}</span>'
        for name, colour in items
    )
    return f'<div class="legend">{swatches}</div>'


def _chart(svg: str) -> str:
    return f'<div class="chart-box">{svg}</div>'


def _header(insights: GoalInsights, nodes: list[NodeSuccess], when: datetime, source: str) -> str:
    patterns = insights.patterns
    rate = patterns.success_rate
    tone = "good" if rate >= 0.8 else "warn" if rate >= 0.5 else "bad"
    failed = insights.status_counts.get("failed", 0)
    high = sum(1 for s in insights.suggestions if s.get("priority") == "high")
    cards = [
        (num(patterns.run_count), "runs", ""),
        (pct(rate, 1), "of runs completed", tone),
        (num(failed), "failed runs", "bad" if failed else ""),
        (num(sum(n.decisions for n in nodes)), "decisions", ""),
        (num(len(insights.suggestions)), f"suggestions ({num(high)} high priority)", ""),
    ]
    card_html = "".join(
        f'<div class="card"><span class="{f"big {tone}" if tone else "big"}">{esc(value)}</span>'
        f'<span class="cap">{esc(cap)}</span></div>'
        for value, cap, tone in cards
    )
    statuses = sorted(
        insights.status_counts.items(),
        key=lambda item: (_STATUS_ORDER.index(item[0]) if item[0] in _STATUS_ORDER else 2, item[0]),
    )
    chips = "".join(
        f'<li class="chip {esc(status) if status in _STATUS_ORDER else "other"}">'
        f"{esc(clip(clean(status), 30))} {esc(num(count))}</li>"
        for status, count in statuses
    )
    meta = f"Generated {esc(when.isoformat(sep=' ', timespec='seconds'))}"
    if source:
        meta += f" from {code(source, 120)}"
    goal = clean(insights.goal_id)
    shown = clip(goal, 120)
    title = f' title="{esc(title_text(goal))}"' if shown != goal else ""
    return (
        '<header class="top">\n<p class="kicker">Decision report · goal</p>\n'
        f"<h1{title}>{esc(shown)}</h1>\n"
        f'<div class="cards">{card_html}</div>\n<ul class="chips">{chips}</ul>\n<p class="meta">{meta}</p>\n'
        "</header>"
    )


def _nodes_section(nodes: list[NodeSuccess]) -> str:
    lead = (
        "Share of each node’s decisions whose outcome succeeded, least successful first. A decision "
        "without an outcome counts as not succeeded (as in the seed’s failure rate) and is shown in grey."
    )
    if not nodes:
        return _section("nodes", "Success rate by node", lead, sections.empty("The runs made no decisions."))
    shown, hidden = nodes[:NODE_LIMIT], nodes[NODE_LIMIT:]
    content = (
        _legend(("succeeded", GREEN), ("failed", RED), ("no outcome", GREY))
        + _chart(node_success_chart(shown))
        + sections.left_out(len(hidden), "node", f" ({plural(sum(n.decisions for n in hidden), 'decision')})")
    )
    return _section("nodes", "Success rate by node", lead, content)


def _options_section(insights: GoalInsights) -> str:
    lead = (
        "Each row is an option chosen at a decision point (node · intent). Cells count the decisions "
        "that chose it by outcome, coloured by their share of those decisions; the last column counts "
        "the runs that chose it and failed. ⚠ marks options over-represented in failed runs, with the "
        "Fisher p-value."
    )
    if not insights.options:
        return _section("options", "Options × outcome", lead, sections.empty("The runs made no decisions."))
    matrix = option_matrix(insights.options, insights.risky_options, OPTION_LIMIT)
    content = (
        _legend(("succeeded", GREEN), ("failed", RED), ("no outcome", SLATE))
        + _chart(option_matrix_chart(matrix))
        + sections.left_out(
            matrix.hidden_options,
            "option",
            f" (chosen in {plural(matrix.hidden_decisions, 'decision')}; risky and most chosen shown first)",
        )
    )
    return _section("options", "Options × outcome", lead, content)


def _timeline_section(insights: GoalInsights) -> str:
    slots = time_slots(insights.failures_over_time)
    lead = "Runs started per period, by final status (hover a bar for its numbers)."
    if not slots:
        return _section("timeline", "Failures over time", lead, sections.empty("No runs to place in time."))
    period = duration(slots[0].seconds)
    start, end = esc(moment(slots[0].start)), esc(moment(slots[-1].start))
    lead = (
        f"Runs started per period of {esc(period)}, by final status, from {start} to {end} "
        "(hover a bar for its numbers; periods without runs stay empty)."
        if len(slots) > 1
        else f"All runs started in the period of {esc(period)} from {start}, shown by final status."
    )
    content = _legend(
        ("completed", GREEN), ("failed", RED), ("other (running, stuck, cancelled)", GREY)
    ) + _chart(failures_chart(slots))
    return _section("timeline", "Failures over time", lead, content)


def _slowest_section(insights: GoalInsights) -> str:
    slowest = insights.slowest_decisions
    lead = (
        "The decisions with an outcome that took longest: the latency the agent reported, else the time "
        "from the decision to its outcome."
    )
    if not slowest:
        message = "No decision has an outcome yet, so there is no latency to show."
        return _section("slowest", "Slowest decisions", lead, sections.empty(message))
    note = ""
    if all(d.latency_ms == 0 for d in slowest):
        note = (
            '<p class="note">Every latency here is 0 ms: the agent reported none and each outcome '
            "followed its decision within a millisecond.</p>"
        )
    content = (
        _legend(("succeeded", GREEN), ("failed", RED), ("no outcome", GREY))
        + _chart(slowest_chart(slowest[: sections.TABLE_LIMIT]))
        + note
        + sections.slowest_table(slowest)
    )
    return _section("slowest", "Slowest decisions", lead, content)


def _footer(when: datetime) -> str:
    return (
        "<footer>\n<p>Made by otel-decisions on "
        f"{esc(when.date().isoformat())}. This file is self-contained: no script, no network access; "
        "charts are inline SVG.</p>\n<p>Run ids are the ids `otel-decisions show RUN_ID` takes; decision "
        "ids (<code>dec_N</code>) number the decisions within their run. Lists of evidence show the "
        "newest runs first and say how many more there are.</p>\n</footer>"
    )
