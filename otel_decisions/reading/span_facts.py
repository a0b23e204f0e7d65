"""Run facts straight from spans: what the cross-run analyses need, without building full runs.

The reader keeps a `TraceFacts` per trace and feeds it every span it reads, in any order, duplicates
included; `facts()` joins decisions with their outcomes the way `contract.run_from_spans` does (the
latest outcome of a decision wins, decisions ordered by start time then sequence, a trace without its
root span is a `running` run). It reads attributes through the span contract's names only, and a test
proves `TraceFacts(...).facts()` equals `RunFacts.from_run(run_from_spans(...))` for the same spans.
"""

from __future__ import annotations

import copy
import sys
from typing import Any, Final, NamedTuple

from otel_decisions._values import decode_json
from otel_decisions.analysis.facts import DecisionFacts, RunFacts
from otel_decisions.contract import (
    DECISION_CHOSEN,
    DECISION_ID,
    DECISION_INTENT,
    DECISION_NODE,
    DECISION_OPTIONS,
    DECISION_REMOTE,
    DECISION_SEQUENCE,
    DECISION_TYPE,
    EXECUTION_ID,
    GOAL_ID,
    OUTCOME_DECISION_ID,
    OUTCOME_ERROR,
    OUTCOME_LATENCY,
    OUTCOME_SUCCESS,
    OUTCOME_TOKENS,
    RECORD_DECISION,
    RECORD_OUTCOME,
    RECORD_RUN,
    RUN_ID,
    RUN_NODES,
    RUN_STATUS,
    SPAN_OPEN,
    SpanRecord,
    record_kind,
)
from otel_decisions.models import DecisionType, RunStatus

__all__ = ["TraceFacts"]

_intern = sys.intern
_TYPES: Final = frozenset(t.value for t in DecisionType)
_STATUSES: Final = frozenset(s.value for s in RunStatus)
_RUNNING: Final = RunStatus.RUNNING.value
_CUSTOM: Final = DecisionType.CUSTOM.value


def _us(ns: int) -> int:
    """Span times are kept to the microsecond, as the rebuilt models' datetimes are."""
    return ns // 1000 * 1000


def _text(value: Any, default: str) -> str:
    return _intern(value) if type(value) is str else default


def _int(value: Any) -> int:
    return value if type(value) is int else 0


class _Root(NamedTuple):
    start_ns: int
    end_ns: int  # 0 while running
    run_id: str
    goal_id: str
    status: str
    nodes: tuple[str, ...]
    open: bool  # a snapshot of the root while the run was open (its final version supersedes it)
    seen_ns: int  # the snapshot's time (a later snapshot supersedes an earlier one)


class TraceFacts:
    """Facts of one trace, accumulated span by span."""

    __slots__ = (
        "_built",
        "_decisions",
        "_first",
        "_outcomes",
        "_root",
        "execution_id",
        "trace_id",
    )

    def __init__(self, trace_id: str) -> None:
        self.trace_id = trace_id
        self.execution_id: str | None = None
        # span id -> (start, facts, remote, handed out in facts already returned)
        self._decisions: dict[str, tuple[int, DecisionFacts, bool, bool]] = {}
        self._outcomes: dict[str, tuple[int, bool, str | None, int, int]] = {}  # decision id -> outcome
        self._root: _Root | None = None
        self._first: tuple[int, str, str] | None = None  # (start, run id, goal id) of the earliest span
        self._built: RunFacts | None = None

    def add(self, span: SpanRecord) -> bool:
        """Take in one span; False when it is not one of ours (the trace learns nothing from it)."""
        a = span.attributes
        kind = record_kind(a)
        if kind is None:
            return False
        if kind == RECORD_DECISION:
            if a.get(SPAN_OPEN) is True and span.span_id in self._decisions:
                return True  # a snapshot of a decision already known: its ended version, or the same
            self._decisions[span.span_id] = (
                span.start_ns,
                _decision(span),
                a.get(DECISION_REMOTE) is True,
                False,
            )
        elif kind == RECORD_OUTCOME:
            key = str(a.get(OUTCOME_DECISION_ID, ""))
            seen = self._outcomes.get(key)
            if seen is None or seen[0] <= span.end_ns:  # the latest outcome wins
                error = a.get(OUTCOME_ERROR)
                self._outcomes[key] = (
                    span.end_ns,
                    bool(a.get(OUTCOME_SUCCESS, False)),
                    error if isinstance(error, str) else None,
                    _int(a.get(OUTCOME_TOKENS, 0)),
                    _int(a.get(OUTCOME_LATENCY, 0)),
                )
        elif kind == RECORD_RUN:
            is_open = a.get(SPAN_OPEN) is True
            known = self._root
            if known is not None and is_open and (not known.open or known.seen_ns > span.end_ns):
                return True  # the run's final root, or a later snapshot, is known already
            status = _RUNNING if is_open else a.get(RUN_STATUS, _RUNNING)
            status = status if type(status) is str and status in _STATUSES else _RUNNING
            nodes = a.get(RUN_NODES) or ()
            self._root = _Root(
                span.start_ns,
                span.end_ns if status != _RUNNING else 0,
                _text(a.get(RUN_ID), ""),
                _text(a.get(GOAL_ID), ""),
                status,
                tuple(dict.fromkeys(_intern(str(n)) for n in nodes)) if isinstance(nodes, list) else (),
                is_open,
                span.end_ns,
            )
        if self._first is None or span.start_ns < self._first[0]:
            self._first = (span.start_ns, _text(a.get(RUN_ID), ""), _text(a.get(GOAL_ID), ""))
        if self.execution_id is None and isinstance(a.get(EXECUTION_ID), str):
            self.execution_id = a[EXECUTION_ID]
        self._built = None
        return True

    @property
    def run_id(self) -> str | None:
        if self._root is not None:
            return self._root.run_id
        return self._first[1] if self._first is not None else None

    def facts(self) -> RunFacts | None:
        """The run's facts (cached until the next span arrives); None before any span of ours."""
        if self._built is not None:
            return self._built
        first = self._first
        if first is None:
            return None
        entries = sorted(self._decisions.items(), key=lambda kv: (kv[1][0], kv[1][1].sequence))
        ordered: list[tuple[DecisionFacts, bool]] = []
        decisions = []
        for span_id, (start, d, remote, handed_out) in entries:
            if handed_out:  # a reader may hold it: change a copy, never the original
                d = copy.copy(d)
            self._decisions[span_id] = (start, d, remote, True)
            outcome = self._outcomes.get(d.decision_id)
            if outcome is None:
                d.success, d.error, d.tokens, d.latency_ms, d.elapsed_ms = None, None, 0, 0, 0
            else:
                end_ns, d.success, d.error, d.tokens, d.latency_ms = outcome
                d.elapsed_ms = max(0, (_us(end_ns) - d.start_ns) // 1_000_000)
            decisions.append(d)
            ordered.append((d, remote))
        root = self._root
        if root is not None:
            started, ended, run_id, goal_id, status, root_nodes, is_open, _ = root
            nodes = list(root_nodes)
            # metrics of the root count this process's decisions, unless the run never ended
            counted = [d for d, remote in ordered if remote or is_open]
        else:
            started, run_id, goal_id = first
            ended, status, nodes, counted = 0, _RUNNING, [], [d for d, _ in ordered]
        for d in counted:
            if d.node_id not in nodes:
                nodes.append(d.node_id)
        self._built = RunFacts(
            run_id=run_id,
            trace_id=self.trace_id,
            goal_id=goal_id,
            status=status,
            started_ns=_us(started),
            ended_ns=_us(ended),
            decisions=decisions,
            nodes_executed=tuple(_intern(n) for n in nodes),
        )
        return self._built


_Options = tuple[tuple[str, ...], tuple[str, ...], dict[str, str]]  # ids, labels, label by id
_NO_OPTIONS_INFO: Final[_Options] = ((), (), {})
#: Decoded option lists by their JSON text: a node offers the same options run after run, so most
#: decisions skip the decoding and share one tuple of interned labels.
_OPTIONS_CACHE: dict[str, _Options] = {}
_OPTIONS_CACHE_SIZE: Final = 65536


def _options(raw: Any) -> _Options:
    if isinstance(raw, str):
        cached = _OPTIONS_CACHE.get(raw)
        if cached is not None:
            return cached
        options = decode_json(raw)
    else:
        options = raw
    if not isinstance(options, list):
        return _NO_OPTIONS_INFO
    ids: list[str] = []
    labels: list[str] = []
    by_id: dict[str, str] = {}
    for option in options:
        if not isinstance(option, dict):
            continue
        option_id = _text(option.get("id"), "")
        description = _text(option.get("description"), "")
        ids.append(option_id)
        labels.append(description)
        if "id" in option:
            by_id.setdefault(option_id, description)  # the first option with the chosen id is the choice
    info = (tuple(ids), tuple(labels), by_id)
    if isinstance(raw, str):
        if len(_OPTIONS_CACHE) >= _OPTIONS_CACHE_SIZE:
            _OPTIONS_CACHE.clear()
        _OPTIONS_CACHE[raw] = info
    return info


def _decision(span: SpanRecord) -> DecisionFacts:
    a = span.attributes
    chosen = _text(a.get(DECISION_CHOSEN), "")
    option_ids, option_labels, by_id = _options(a.get(DECISION_OPTIONS))
    kind = a.get(DECISION_TYPE, _CUSTOM)
    return DecisionFacts(
        decision_id=_text(a.get(DECISION_ID), ""),
        node_id=_text(a.get(DECISION_NODE), "unknown"),
        intent=_text(a.get(DECISION_INTENT), ""),
        decision_type=_intern(kind) if type(kind) is str and kind in _TYPES else _CUSTOM,
        chosen_option_id=chosen,
        chosen_label=by_id.get(chosen),
        option_ids=option_ids,
        option_labels=option_labels,
        start_ns=_us(span.start_ns),
        sequence=_int(a.get(DECISION_SEQUENCE)),
    )
