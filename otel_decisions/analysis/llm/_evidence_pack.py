"""The evidence pack: what Claude is shown of a goal, small and with secrets removed.

`GoalInsights` can be large (every option, twenty evidence ids per finding) and holds text the agent
recorded: option labels, intents, error messages, which may contain keys or passwords. The pack keeps
the top items of each analysis with a few evidence ids each, rounds numbers, clips long text and runs
every string through `redact_text` *before* clipping (so a clipped secret cannot escape its pattern).
If the result is still over `max_chars`, it is rebuilt with fewer items, fewer ids and shorter text,
until it fits: the request size, and so its cost, is bounded whatever the store holds.

The ids in the pack are the ones Claude may cite; `totals` tells it how many items each list had before
trimming, and each finding's `run_count`/`decision_count` how many runs and decisions support it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from otel_decisions._redaction import redact_value
from otel_decisions.analysis.evidence import Evidence
from otel_decisions.analysis.insights import GoalInsights

__all__ = ["DEFAULT_MAX_CHARS", "build_evidence_pack", "pack_json"]

#: Default bound on the pack's compact JSON: about 8k tokens, a few cents of input per request.
DEFAULT_MAX_CHARS: Final = 30_000
#: (items per list, ids per finding, characters per string), tried in order until the pack fits.
_LEVELS: Final = ((12, 4, 300), (8, 3, 200), (5, 2, 120), (3, 1, 80), (1, 1, 60), (0, 0, 60))
_PRIORITY_ORDER: Final = {"high": 0, "medium": 1, "low": 2}
_ELLIPSIS: Final = "…"


def pack_json(pack: dict[str, Any]) -> str:
    """The pack as sent: compact JSON, non-ASCII kept (its length is what `max_chars` bounds)."""
    return json.dumps(pack, ensure_ascii=False, separators=(",", ":"))


def build_evidence_pack(insights: GoalInsights, *, max_chars: int = DEFAULT_MAX_CHARS) -> dict[str, Any]:
    """A compact, redacted summary of `insights` for Claude, at most `max_chars` characters of JSON.

    Best effort below about 500 characters: the smallest pack (the goal, run counts and no lists) is
    returned even when it is larger than `max_chars`. `truncated` says whether lists were cut to fit.
    """
    pack: dict[str, Any] = {}
    for items, ids, text in _LEVELS:
        pack = _clip(redact_value(_raw_pack(insights, items, ids)), text)
        pack["truncated"] = (items, ids, text) != _LEVELS[0] or _cut(pack)
        if len(pack_json(pack)) <= max_chars:
            break
    return pack


def _raw_pack(insights: GoalInsights, items: int, ids: int) -> dict[str, Any]:
    """The pack before redaction and clipping, with at most `items` per list and `ids` per finding."""
    patterns = insights.patterns
    findings = sorted(insights.suggestions, key=lambda s: _PRIORITY_ORDER.get(str(s.get("priority")), 3))
    options = sorted(insights.options, key=lambda o: (-o.failed_runs, o.success_rate, -o.chosen))
    lists: dict[str, Sequence[Any]] = {
        "findings": findings,
        "common_failures": patterns.common_failures,
        "problematic_nodes": patterns.problematic_nodes,
        "risky_options": insights.risky_options,
        "unexplored_options": insights.unexplored_options,
        "loops": insights.loops,
        "options": options,
        "hotspots": insights.hotspots,
        "slowest_decisions": insights.slowest_decisions,
    }
    common_choices = patterns.decision_patterns.get("common_choices", {})
    return {
        "goal_id": insights.goal_id,
        "runs": {
            "total": patterns.run_count,
            "by_status": dict(insights.status_counts),
            "success_rate": _num(patterns.success_rate),
        },
        "totals": {name: len(values) for name, values in lists.items()},
        "findings": [_finding(s, ids) for s in findings[:items]],
        "common_failures": [{"error": e, "count": n} for e, n in patterns.common_failures[:items]],
        "problematic_nodes": [
            {"node_id": node, "failure_rate": _num(rate)} for node, rate in patterns.problematic_nodes[:items]
        ],
        "common_choices": [
            {"intent": intent, **choice} for intent, choice in list(common_choices.items())[:items]
        ],
        "risky_options": [
            {
                "node_id": r.node_id,
                "intent": r.intent,
                "option": r.option,
                "failed_runs_with": r.failed_with,
                "completed_runs_with": r.completed_with,
                "failure_rate_with": _num(r.failure_rate_with),
                "failure_rate_without": _num(r.failure_rate_without),
                "p_value": _num(r.p_value),
                "q_value": _num(r.q_value),
                "evidence": _evidence(r.evidence, ids),
            }
            for r in insights.risky_options[:items]
        ],
        "unexplored_options": [
            {
                "node_id": u.node_id,
                "intent": u.intent,
                "option": u.option,
                "times_offered": u.times_offered,
                "point_failure_rate": _num(u.point_failure_rate),
                "evidence": _evidence(u.evidence, ids),
            }
            for u in insights.unexplored_options[:items]
        ],
        "loops": [
            {
                "kind": lp.kind,
                "node_id": lp.node_id,
                "intent": lp.intent,
                "runs": lp.runs,
                "failed_runs": lp.failed_runs,
                "longest": lp.longest,
                "example": lp.example[:6],
                "evidence": _evidence(lp.evidence, ids),
            }
            for lp in insights.loops[:items]
        ],
        "options": [
            {
                "node_id": o.node_id,
                "intent": o.intent,
                "option": o.option,
                "chosen": o.chosen,
                "success_rate": _num(o.success_rate),
                "runs": o.runs,
                "failed_runs": o.failed_runs,
            }
            for o in options[:items]
        ],
        "hotspots": [
            {
                "node_id": h.node_id,
                "decisions": h.decisions,
                "avg_latency_ms": _num(h.avg_latency_ms),
                "p95_latency_ms": h.p95_latency_ms,
                "latency_share": _num(h.latency_share),
                "total_tokens": h.total_tokens,
                "token_share": _num(h.token_share),
                "evidence": _evidence(h.evidence, ids),
            }
            for h in insights.hotspots[:items]
        ],
        "slowest_decisions": [
            {
                "run_id": d.run_id,
                "decision_id": d.decision_id,
                "node_id": d.node_id,
                "option": d.option,
                "latency_ms": d.latency_ms,
                "tokens": d.tokens,
                "success": d.success,
            }
            for d in insights.slowest_decisions[:items]
        ],
    }


def _finding(suggestion: dict[str, Any], ids: int) -> dict[str, Any]:
    """A rule-based suggestion of `GoalInsights`, with its evidence cut to `ids` runs and decisions."""
    evidence = suggestion.get("evidence") or {}
    return {
        "type": suggestion.get("type"),
        "target": suggestion.get("target"),
        "reason": suggestion.get("reason"),
        "recommendation": suggestion.get("recommendation"),
        "priority": suggestion.get("priority"),
        "evidence": {
            "run_ids": list(evidence.get("run_ids", []))[:ids],
            "decisions": list(evidence.get("decisions", []))[:ids],
            "run_count": evidence.get("run_count", 0),
            "decision_count": evidence.get("decision_count", 0),
        },
    }


def _evidence(evidence: Evidence, ids: int) -> dict[str, Any]:
    return {
        "run_ids": evidence.run_ids[:ids],
        "decisions": [{"run_id": r, "decision_id": d} for r, d in evidence.decisions[:ids]],
        "run_count": evidence.run_count,
        "decision_count": evidence.decision_count,
    }


def _num(value: float | None) -> float | None:
    """Three significant digits: enough to judge a rate or a p-value, and far fewer characters."""
    return None if value is None else float(f"{value:.3g}")


def _clip(value: Any, limit: int) -> Any:
    """`value` with every string longer than `limit` cut to `limit` characters (ending in an ellipsis)."""
    if isinstance(value, str):
        return value if len(value) <= limit else value[: limit - 1] + _ELLIPSIS
    if isinstance(value, dict):
        return {k: _clip(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clip(v, limit) for v in value]
    return value


def _cut(pack: dict[str, Any]) -> bool:
    """Whether any list of the pack holds fewer items than its total."""
    totals: dict[str, int] = pack["totals"]
    return any(len(pack[name]) < total for name, total in totals.items())
