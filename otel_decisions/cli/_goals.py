"""Commands about a goal's runs as a whole: `patterns`, `suggest`, `report`, `nodes`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from otel_decisions._config import default_directory
from otel_decisions._exceptions import ConfigError
from otel_decisions.analysis.decision_stats import SIGNIFICANCE
from otel_decisions.analysis.insights import GoalInsights, analyze_goal
from otel_decisions.analysis.patterns import node_performance
from otel_decisions.cli._output import (
    EXIT_ERROR,
    EXIT_USAGE,
    CliError,
    Column,
    clip,
    evidence_lines,
    percent,
    print_json,
    table,
)
from otel_decisions.cli._runs import risky_table
from otel_decisions.cli._source import goal_facts, open_query

if TYPE_CHECKING:
    from otel_decisions.analysis.llm import LLMSuggestionReport

__all__ = ["nodes", "patterns", "report", "suggest"]


def _insights(args: argparse.Namespace) -> GoalInsights:
    query, source = open_query(args)
    insights = analyze_goal(args.goal, goal_facts(query, args.goal, source))  # = query.insights(goal)
    assert insights is not None  # goal_facts raised if the goal has no runs
    return insights


# --- patterns ------------------------------------------------------------------------------------
def patterns(args: argparse.Namespace) -> int:
    insights = _insights(args)
    if args.json:
        data = insights.to_dict()
        keys = (
            "goal_id",
            "status_counts",
            "patterns",
            "options",
            "risky_options",
            "unexplored_options",
            "loops",
        )
        print_json({k: data[k] for k in keys})
        return 0
    out = [str(insights.patterns)]
    out += ["", "Options chosen, per decision point (node, intent):"]
    out.append(
        table(
            [
                Column("NODE", max_width=20),
                Column("INTENT", max_width=32),
                Column("OPTION", max_width=40),
                Column("CHOSEN", ">"),
                Column("SUCCESS", ">"),
                Column("FAILED", ">"),
                Column("RUNS", ">"),
                Column("FAILED RUNS", ">"),
            ],
            [
                [
                    o.node_id,
                    o.intent,
                    o.option,
                    o.chosen,
                    percent(o.success_rate),
                    o.failed,
                    o.runs,
                    o.failed_runs,
                ]
                for o in insights.options
            ],
        )
    )
    risky = insights.risky_options
    if risky:
        out += [
            "",
            "Risky options (over-represented in failed runs; one-sided Fisher p, Benjamini–Hochberg q):",
        ]
        out.append(risky_table([(str(n), r) for n, r in enumerate(risky, 1)], first="#"))
        for n, r in enumerate(risky, 1):
            out.append(f"  #{n} {r.node_id} / {clip(r.intent, 50)} → {clip(r.option, 50)}")
            out += evidence_lines(r.evidence.to_dict(), indent="     ")
    else:
        out += [
            "",
            f"Risky options: none (no option is over-represented in failed runs at p ≤ {SIGNIFICANCE}).",
        ]
    if insights.unexplored_options:
        out += ["", "Unexplored options (offered, never chosen):"]
        out.append(
            table(
                [
                    Column("NODE", max_width=20),
                    Column("INTENT", max_width=32),
                    Column("OPTION", max_width=40),
                    Column("OFFERED", ">"),
                    Column("POINT FAILS", ">"),
                ],
                [
                    [u.node_id, u.intent, u.option, u.times_offered, percent(u.point_failure_rate, 0)]
                    for u in insights.unexplored_options
                ],
            )
        )
    else:
        out += ["", "Unexplored options: none (every option offered was chosen at least once)."]
    if insights.loops:
        out += ["", "Retry loops and flip-flops:"]
        out.append(
            table(
                [
                    Column("KIND"),
                    Column("NODE", max_width=20),
                    Column("INTENT", max_width=32),
                    Column("RUNS", ">"),
                    Column("FAILED RUNS", ">"),
                    Column("LONGEST", ">"),
                    Column("EXAMPLE", max_width=50),
                ],
                [
                    [
                        lp.kind,
                        lp.node_id,
                        lp.intent,
                        lp.runs,
                        lp.failed_runs,
                        lp.longest,
                        " → ".join(lp.example),
                    ]
                    for lp in insights.loops
                ],
            )
        )
        for lp in insights.loops:
            out.append(f"  {lp.kind} at {lp.node_id} / {clip(lp.intent, 50)}")
            out += evidence_lines(lp.evidence.to_dict(), indent="    ")
    else:
        out += ["", "Retry loops and flip-flops: none."]
    print("\n".join(out))
    return 0


# --- suggest -------------------------------------------------------------------------------------
def suggest(args: argparse.Namespace) -> int:
    insights = _insights(args)
    suggestions = insights.suggestions  # = query.suggest_improvements(goal): deterministic rules
    llm = _llm_report(args, insights) if args.llm else None
    if args.json:
        document: dict[str, Any] = {"goal_id": insights.goal_id, "suggestions": suggestions}
        if llm is not None:
            document["llm"] = llm.to_dict()
        print_json(document)
        return 0
    runs = insights.patterns.run_count
    if not suggestions:
        print(f"No suggestions for goal '{insights.goal_id}': nothing stands out in its {runs} runs.")
    else:
        print(f"Suggestions for goal '{insights.goal_id}' ({len(suggestions)}, from {runs} runs):")
        for n, s in enumerate(suggestions, 1):
            print()
            print("\n".join(_suggestion_lines(n, s)))
    if llm is not None:
        print()
        print(llm)
    return 0


def _llm_report(args: argparse.Namespace, insights: GoalInsights) -> LLMSuggestionReport:
    """Claude's suggestions from the same insights; every failure is one line (ConfigError, LLMError)."""
    from otel_decisions.analysis.llm import LLMError

    query, _source = open_query(args)
    try:
        report = query.suggest_with_llm(insights.goal_id, model=args.model)
    except ConfigError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    except LLMError as exc:
        raise CliError(str(exc), EXIT_ERROR) from exc
    assert report is not None  # the goal has runs: `insights` came from them
    return report


def _suggestion_lines(n: int, s: dict[str, Any]) -> list[str]:
    return [
        f"{n}. [{s['priority']}] {s['type']}: {s['target']}",
        f"   Reason: {s['reason']}",
        f"   Recommendation: {s['recommendation']}",
        *evidence_lines(s.get("evidence", {})),
    ]


# --- report --------------------------------------------------------------------------------------
def report(args: argparse.Namespace) -> int:
    from otel_decisions.report import write_report  # only this command needs the renderer

    insights = _insights(args)
    source = args.source if args.source is not None else str(default_directory())
    try:
        path = write_report(insights, args.output, source=source)
    except OSError as exc:
        raise CliError(
            f"cannot write the report to {args.output}: {exc.strerror or exc}", EXIT_USAGE
        ) from exc
    if args.json:
        print_json(
            {
                "goal_id": insights.goal_id,
                "path": str(path),
                "runs": insights.patterns.run_count,
                "suggestions": len(insights.suggestions),
            }
        )
        return 0
    print(
        f"Wrote {path}: goal '{insights.goal_id}', {insights.patterns.run_count} runs, "
        f"{len(insights.suggestions)} suggestions. Open it in a browser (it needs no server or network)."
    )
    return 0


# --- nodes ---------------------------------------------------------------------------------------
def nodes(args: argparse.Namespace) -> int:
    query, source = open_query(args)
    facts = query.storage.facts() if args.goal is None else goal_facts(query, args.goal, source)
    insights = analyze_goal(args.goal or "*", facts)  # = query.hotspots(goal), from the facts read once
    spots = insights.hotspots if insights is not None else []
    # = query.get_node_performance(node), restricted to the goal's runs with --goal
    rows: list[dict[str, Any]] = [
        {"node_id": h.node_id, "performance": node_performance(h.node_id, facts), "hotspot": h.to_dict()}
        for h in spots
    ]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print(f"No decisions recorded in {source}.")
        return 0
    columns = [
        Column("NODE", max_width=30),
        Column("DECISIONS", ">"),
        Column("SUCCESS", ">"),
        Column("AVG MS", ">"),
        Column("P95 MS", ">"),
        Column("TOKENS", ">"),
        Column("LATENCY %", ">"),
        Column("TOKENS %", ">"),
    ]
    cells = [
        [
            r["node_id"],
            r["performance"]["total_decisions"],
            percent(r["performance"]["success_rate"]),
            f"{h.avg_latency_ms:.1f}",
            h.p95_latency_ms,
            r["performance"]["total_tokens"],
            percent(h.latency_share),
            percent(h.token_share),
        ]
        for r, h in zip(rows, spots, strict=True)
    ]
    print(table(columns, cells))
    print(
        "\nLatency: as reported by the agent, else measured from decision to outcome."
        + ("" if args.goal is None else f" Runs of goal '{args.goal}' only.")
    )
    return 0
