"""The span contract: the one place that knows how runs, decisions, outcomes and problems map to spans.

Both the writer (`otel_decisions.recording`) and the reader (`otel_decisions.reading`) go through this
module; a round-trip property test keeps them in agreement. Schema version 1:

=========  ===================================================  ==========================================
record     span                                                  attributes (prefix ``otel_decisions.``)
=========  ===================================================  ==========================================
run        root of its own trace, ``invoke_agent {goal_id}``     run.*, metrics at the end, problems as
           ``gen_ai.operation.name=invoke_agent``                ``otel_decisions.problem`` events
decision   child of the run, ``plan``; zero duration at the      decision.* (options/context as capped JSON)
           moment of the choice (`Runtime`), or covering the work
           it decides (decorators, where it is the current span)
outcome    child of its decision span, from the decision to     outcome.*; ERROR status and ``error.type``
           the outcome; ``execute_tool {tool}`` when the chosen  when unsuccessful
           option is a tool call, else ``outcome``
=========  ===================================================  ==========================================

An outcome is the child of its decision (not, as the GenAI conventions suggest for tool calls, a
sibling linked to it): the trace view then shows which choice led to which result, decorated code and
`Runtime` calls give traces of one shape, and no link object is needed per decision.

Every span carries ``execution_id`` (the 32-hex trace id), ``run.id`` and ``goal.id``, so a
partial trace (a crashed run with no root span) still rebuilds. The schema version is an attribute of the
instrumentation scope and of the run span. Timestamps are span
times: a decision's is its span's start, an outcome's its span's end, a problem's its event's time, a
run's start and completion its root span's start and end. Defaults are omitted and restored on reading.
Nothing here sets status OK (instrumentation must not).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ValidationError

from otel_decisions._privacy import DEFAULT_POLICY, ContentPolicy
from otel_decisions._values import as_text, decode_json
from otel_decisions.models import (
    Decision,
    DecisionEvaluation,
    DecisionType,
    Option,
    Outcome,
    Problem,
    Run,
    RunMetrics,
    RunStatus,
)

_logger = logging.getLogger(__name__)

SCHEMA_VERSION: Final = "1"
INSTRUMENTATION_NAME: Final = "otel_decisions"

# --- attributes on every span (the schema version is on the run span and the instrumentation scope) ---
SCHEMA: Final = "otel_decisions.schema_version"
EXECUTION_ID: Final = "otel_decisions.execution_id"
RUN_ID: Final = "otel_decisions.run.id"
GOAL_ID: Final = "otel_decisions.goal.id"


SPAN_OPEN: Final = "otel_decisions.span.open"
"""True on a snapshot of a span still open (written to the local file for crash safety): the span's
final version, when there is one, supersedes it."""


# --- OpenTelemetry semantic conventions we reuse (strings, not the deprecated semconv constants) -----
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
ERROR_TYPE: Final = "error.type"
OP_INVOKE_AGENT: Final = "invoke_agent"
OP_PLAN: Final = "plan"
OP_EXECUTE_TOOL: Final = "execute_tool"
ERROR_TYPE_OTHER: Final = "_OTHER"

# --- run span -----------------------------------------------------------------------------------
RUN_GOAL_DESCRIPTION: Final = "otel_decisions.run.goal_description"
RUN_INPUT: Final = "otel_decisions.run.input_data"
RUN_OUTPUT: Final = "otel_decisions.run.output_data"
RUN_STATUS: Final = "otel_decisions.run.status"
RUN_NARRATIVE: Final = "otel_decisions.run.narrative"
RUN_TOTAL_DECISIONS: Final = "otel_decisions.run.decision_count"
RUN_SUCCESSFUL: Final = "otel_decisions.run.successful_decisions"
RUN_FAILED: Final = "otel_decisions.run.failed_decisions"
RUN_TOKENS: Final = "otel_decisions.run.total_tokens"
RUN_LATENCY: Final = "otel_decisions.run.total_latency_ms"
RUN_NODES: Final = "otel_decisions.run.nodes_executed"
RUN_EDGES: Final = "otel_decisions.run.edges_traversed"
RUN_PROBLEM_COUNT: Final = "otel_decisions.run.problem_count"
RUN_MAX_SEVERITY: Final = "otel_decisions.run.max_problem_severity"
RUN_EXTRA: Final = "otel_decisions.run.extra"
CONTENT_CAPTURED: Final = "otel_decisions.content_captured"
"""False on the run span when content capture was off: free text was not recorded, ids are hashed."""

# --- decision span ------------------------------------------------------------------------------
DECISION_ID: Final = "otel_decisions.decision.id"
DECISION_SEQUENCE: Final = "otel_decisions.decision.sequence"
DECISION_NODE: Final = "otel_decisions.node.id"
DECISION_TYPE: Final = "otel_decisions.decision.type"
DECISION_INTENT: Final = "otel_decisions.decision.intent"
DECISION_OPTIONS: Final = "otel_decisions.decision.options"
DECISION_CHOSEN: Final = "otel_decisions.decision.chosen_option"
DECISION_REASONING: Final = "otel_decisions.decision.reasoning"
DECISION_CONSTRAINTS: Final = "otel_decisions.decision.constraints"
DECISION_CONTEXT: Final = "otel_decisions.decision.context"
DECISION_EVALUATION: Final = "otel_decisions.decision.evaluation"
DECISION_EXTRA: Final = "otel_decisions.decision.extra"
DECISION_REMOTE: Final = "otel_decisions.decision.remote"
"""True on decisions recorded in another process for a run (counted into the run's metrics on reading)."""
DECISION_DELEGATED_RUNS: Final = "otel_decisions.decision.delegated_run_ids"
"""Ids of the sub-runs a delegation decision started (the sub-run's root links back to the decision)."""

# --- outcome span -------------------------------------------------------------------------------
OUTCOME_DECISION_ID: Final = "otel_decisions.outcome.decision_id"
OUTCOME_SUCCESS: Final = "otel_decisions.outcome.success"
OUTCOME_RESULT: Final = "otel_decisions.outcome.result"
OUTCOME_ERROR: Final = "otel_decisions.outcome.error"
OUTCOME_SUMMARY: Final = "otel_decisions.outcome.summary"
OUTCOME_STATE_CHANGES: Final = "otel_decisions.outcome.state_changes"
OUTCOME_TOKENS: Final = "otel_decisions.outcome.tokens_used"
OUTCOME_LATENCY: Final = "otel_decisions.outcome.latency_ms"
OUTCOME_EXTRA: Final = "otel_decisions.outcome.extra"

# --- spans of LLM calls (other instrumentations' spans, joined to a run) -------------------------
LLM_DECISION_ID: Final = "otel_decisions.llm.decision_id"
"""On an LLM call's span recorded into a run: the decision the call was made for."""

# --- problem event ------------------------------------------------------------------------------
PROBLEM_EVENT: Final = "otel_decisions.problem"
PROBLEM_ID: Final = "otel_decisions.problem.id"
PROBLEM_SEVERITY: Final = "otel_decisions.problem.severity"
PROBLEM_DESCRIPTION: Final = "otel_decisions.problem.description"
PROBLEM_ROOT_CAUSE: Final = "otel_decisions.problem.root_cause"
PROBLEM_DECISION_ID: Final = "otel_decisions.problem.decision_id"
PROBLEM_SUGGESTED_FIX: Final = "otel_decisions.problem.suggested_fix"
PROBLEM_EXTRA: Final = "otel_decisions.problem.extra"

SPAN_NAME_PLAN: Final = "plan"
SPAN_NAME_OUTCOME: Final = "outcome"
_MAX_NAME_PART: Final = 64
_MAX_LIST_ITEMS: Final = 128
_SEVERITY_RANK: Final = {"critical": 4, "error": 3, "warning": 2, "minor": 1, "info": 0}

Attributes = dict[str, Any]


# ================================================================================================
# time: model datetimes are naive local time (the seed's datetime.now()); spans use ns since epoch
# ================================================================================================
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)


def datetime_to_ns(value: datetime) -> int:
    """Nanoseconds since the epoch, exact to the microsecond (naive values are local time)."""
    aware = value if value.tzinfo is not None else value.astimezone()
    return ((aware - _EPOCH) // _US) * 1000


_SECONDS: dict[int, datetime] = {}  # local-time conversion is the slow part; spans share seconds


def ns_to_datetime(ns: int) -> datetime:
    """The naive local datetime for `ns`, exact to the microsecond (inverse of `datetime_to_ns`)."""
    seconds = ns // 1_000_000_000
    base = _SECONDS.get(seconds)
    if base is None:
        if len(_SECONDS) >= 4096:
            _SECONDS.clear()
        base = _SECONDS[seconds] = datetime.fromtimestamp(seconds)
    return base.replace(microsecond=(ns // 1000) % 1_000_000)


def now() -> tuple[datetime, int]:
    """The current time as (naive local datetime, ns since epoch) that map to each other exactly."""
    ns = time.time_ns() // 1000 * 1000  # datetimes hold microseconds
    return ns_to_datetime(ns), ns


# ================================================================================================
# writing: models -> attributes
# ================================================================================================
def _short(text: str) -> str:
    return text if len(text) <= _MAX_NAME_PART else text[:_MAX_NAME_PART]


def _str_list(values: Iterable[Any]) -> list[str]:
    return [as_text(v) for v in list(values)[:_MAX_LIST_ITEMS]]


def common_attributes(execution_id: str, run_id: str, goal_id: str) -> Attributes:
    """What every span of a run carries (the record kind is added per span)."""
    return {EXECUTION_ID: execution_id, RUN_ID: run_id, GOAL_ID: goal_id}


def run_span_name(goal_id: str) -> str:
    """Low-cardinality root span name: the goal id, never free text."""
    return f"{OP_INVOKE_AGENT} {_short(goal_id)}" if goal_id else OP_INVOKE_AGENT


def _put(attrs: Attributes, key: str, value: Any) -> None:
    """Set `key` unless the policy withheld the value (None)."""
    if value is not None:
        attrs[key] = value


def run_start_attributes(run: Run, policy: ContentPolicy = DEFAULT_POLICY) -> Attributes:
    """Attributes known when a run starts (the execution id is added once the trace exists)."""
    attrs: Attributes = {
        SCHEMA: SCHEMA_VERSION,
        GEN_AI_OPERATION_NAME: OP_INVOKE_AGENT,
        RUN_ID: run.id,
        GOAL_ID: run.goal_id,
    }
    if not policy.capture:
        attrs[CONTENT_CAPTURED] = False
    if run.goal_description:
        _put(attrs, RUN_GOAL_DESCRIPTION, policy.text(run.goal_description))
    if run.input_data:
        _put(attrs, RUN_INPUT, policy.json(run.input_data))
    return attrs


def max_severity(problems: Iterable[Problem]) -> str | None:
    """The most severe problem severity (critical > error > warning > minor > info > other)."""
    best: str | None = None
    rank = -2
    for problem in problems:
        r = _SEVERITY_RANK.get(problem.severity, -1)
        if r > rank:
            best, rank = problem.severity, r
    return best


def run_end_attributes(run: Run, policy: ContentPolicy = DEFAULT_POLICY) -> Attributes:
    """Attributes set on the run span when it ends: status, narrative, output and metrics."""
    m = run.metrics
    attrs: Attributes = {
        RUN_STATUS: run.status.value,
        RUN_TOTAL_DECISIONS: m.total_decisions,
        RUN_SUCCESSFUL: m.successful_decisions,
        RUN_FAILED: m.failed_decisions,
        RUN_TOKENS: m.total_tokens,
        RUN_LATENCY: m.total_latency_ms,
        RUN_PROBLEM_COUNT: len(run.problems),
    }
    if run.narrative:
        _put(attrs, RUN_NARRATIVE, policy.text(run.narrative))
    if run.output_data:
        _put(attrs, RUN_OUTPUT, policy.json(run.output_data))
    if m.nodes_executed:
        attrs[RUN_NODES] = _str_list(m.nodes_executed)
    if m.edges_traversed:
        attrs[RUN_EDGES] = _str_list(m.edges_traversed)
    severity = max_severity(run.problems)
    if severity is not None:
        attrs[RUN_MAX_SEVERITY] = policy.scrubbed(severity)
    if run.model_extra:
        _put(attrs, RUN_EXTRA, policy.json(run.model_extra))
    if run.status == RunStatus.FAILED:
        attrs[ERROR_TYPE] = ERROR_TYPE_OTHER
    return attrs


def decision_attributes(
    common: Mapping[str, Any],
    decision: Decision,
    sequence: int,
    policy: ContentPolicy = DEFAULT_POLICY,
    option_dicts: list[dict[str, Any]] | None = None,
) -> Attributes:
    """Attributes of a decision span; `common` comes from `common_attributes`.

    `option_dicts` may hold the options exactly as they were validated into `decision.options`, which
    saves dumping the models again on the hot path.
    """
    attrs: Attributes = {
        **common,
        GEN_AI_OPERATION_NAME: OP_PLAN,
        DECISION_ID: decision.id,
        DECISION_SEQUENCE: sequence,
        DECISION_NODE: decision.node_id,
        DECISION_TYPE: decision.decision_type.value,
        DECISION_INTENT: policy.intent(decision.intent),
        DECISION_CHOSEN: policy.ident(decision.chosen_option_id),
    }
    if decision.options:
        dumped = option_dicts if option_dicts is not None else [o.model_dump() for o in decision.options]
        attrs[DECISION_OPTIONS] = policy.options(dumped)
    if decision.reasoning:
        _put(attrs, DECISION_REASONING, policy.text(decision.reasoning))
    if decision.active_constraints:
        _put(attrs, DECISION_CONSTRAINTS, policy.texts(decision.active_constraints, _MAX_LIST_ITEMS))
    if decision.input_context:
        _put(attrs, DECISION_CONTEXT, policy.json(decision.input_context))
    if decision.evaluation is not None:
        attrs[DECISION_EVALUATION] = policy.evaluation(decision.evaluation.model_dump())
    if decision.model_extra:
        _put(attrs, DECISION_EXTRA, policy.json(decision.model_extra))
    return attrs


LINK_TYPE: Final = "otel_decisions.link.type"
LINK_DELEGATED_FROM: Final = "delegated_from"
RUN_DELEGATED_FROM: Final = "delegated_from"
"""Extra field of a rebuilt sub-run: `{"run_id", "decision_id", "execution_id"}` of the delegation."""
DECISION_DELEGATED_RUN_IDS: Final = "delegated_run_ids"
"""Extra field of a rebuilt delegation decision: the ids of the sub-runs it started."""


def delegation_link_attributes(run_id: str, decision_id: str) -> Attributes:
    """Attributes of the link from a sub-run's root span to the decision that delegated to it."""
    return {LINK_TYPE: LINK_DELEGATED_FROM, RUN_ID: run_id, DECISION_ID: decision_id}


def tool_of(options: Iterable[Option], chosen_id: str) -> str | None:
    """The tool the chosen option calls, when its action type is a tool call."""
    for option in options:
        if option.id == chosen_id:
            if option.action_type != "tool_call":
                return None
            named = option.action_params.get("tool") or option.action_params.get("tool_name")
            return _short(named if isinstance(named, str) and named else option.id)
    return None


def tool_name(decision: Decision) -> str | None:
    """The tool a decision's chosen option calls, when its action type is a tool call."""
    return tool_of(decision.options, decision.chosen_option_id)


def outcome_span_name_for(tool: str | None, policy: ContentPolicy = DEFAULT_POLICY) -> str:
    """`execute_tool {tool}` for tool calls (the name scrubbed, or hashed without content capture),
    else `outcome` (never free text)."""
    return f"{OP_EXECUTE_TOOL} {policy.tool(tool)}" if tool else SPAN_NAME_OUTCOME


def outcome_span_name(decision: Decision, policy: ContentPolicy = DEFAULT_POLICY) -> str:
    """`outcome_span_name_for` the tool `decision` chose, if any."""
    return outcome_span_name_for(tool_name(decision), policy)


def outcome_attributes(
    common: Mapping[str, Any],
    decision: Decision,
    outcome: Outcome,
    error_type: str | None = None,
    policy: ContentPolicy = DEFAULT_POLICY,
) -> Attributes:
    """Attributes of an outcome span. `error_type` names the exception class when one is known."""
    return outcome_fields(
        common,
        decision.id,
        decision.node_id,
        tool_name(decision),
        outcome.success,
        outcome.result,
        outcome.error,
        outcome.summary,
        outcome.state_changes,
        outcome.tokens_used,
        outcome.latency_ms,
        outcome.model_extra,
        error_type,
        policy,
    )


def outcome_fields(
    common: Mapping[str, Any],
    decision_id: str,
    node_id: str,
    tool: str | None,
    success: bool,
    result: Any = None,
    error: str | None = None,
    summary: str = "",
    state_changes: Mapping[str, Any] | None = None,
    tokens_used: int = 0,
    latency_ms: int = 0,
    extra: Mapping[str, Any] | None = None,
    error_type: str | None = None,
    policy: ContentPolicy = DEFAULT_POLICY,
) -> Attributes:
    """`outcome_attributes` from plain values: decorated code records outcomes without models."""
    attrs: Attributes = {
        **common,
        OUTCOME_DECISION_ID: decision_id,
        DECISION_NODE: node_id,
        OUTCOME_SUCCESS: success,
    }
    if tool:
        attrs[GEN_AI_OPERATION_NAME] = OP_EXECUTE_TOOL
        attrs[GEN_AI_TOOL_NAME] = policy.tool(tool)
    if result is not None:
        _put(attrs, OUTCOME_RESULT, policy.json(result))
    if error is not None:
        _put(attrs, OUTCOME_ERROR, policy.text(error))
    if summary:
        _put(attrs, OUTCOME_SUMMARY, policy.text(summary))
    if state_changes:
        _put(attrs, OUTCOME_STATE_CHANGES, policy.json(state_changes))
    if tokens_used:
        attrs[OUTCOME_TOKENS] = tokens_used
    if latency_ms:
        attrs[OUTCOME_LATENCY] = latency_ms
    if extra:
        _put(attrs, OUTCOME_EXTRA, policy.json(extra))
    if not success:
        attrs[ERROR_TYPE] = error_type or ERROR_TYPE_OTHER
    return attrs


def problem_attributes(problem: Problem, policy: ContentPolicy = DEFAULT_POLICY) -> Attributes:
    """Attributes of an `otel_decisions.problem` span event."""
    attrs: Attributes = {PROBLEM_ID: problem.id, PROBLEM_SEVERITY: policy.scrubbed(problem.severity)}
    _put(attrs, PROBLEM_DESCRIPTION, policy.text(problem.description))
    if problem.root_cause is not None:
        _put(attrs, PROBLEM_ROOT_CAUSE, policy.text(problem.root_cause))
    if problem.decision_id is not None:
        attrs[PROBLEM_DECISION_ID] = problem.decision_id
    if problem.suggested_fix is not None:
        _put(attrs, PROBLEM_SUGGESTED_FIX, policy.text(problem.suggested_fix))
    if problem.model_extra:
        _put(attrs, PROBLEM_EXTRA, policy.json(problem.model_extra))
    return attrs


# ================================================================================================
# reading: spans -> models
# ================================================================================================
@dataclass(slots=True)
class EventRecord:
    """A span event as the reader found it."""

    name: str
    time_ns: int
    attributes: dict[str, Any]


@dataclass(slots=True)
class SpanRecord:
    """A finished span as the reader found it, whatever the source (our file, the Collector, Jaeger)."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    events: list[EventRecord] = field(default_factory=list)
    status_code: int = 0
    status_message: str = ""
    links: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


RECORD_RUN: Final = "run"
RECORD_DECISION: Final = "decision"
RECORD_OUTCOME: Final = "outcome"


def record_kind(attributes: Mapping[str, Any]) -> str | None:
    """`run`, `decision`, `outcome`, or None for spans that are not ours."""
    if DECISION_ID in attributes:
        return RECORD_DECISION
    if OUTCOME_DECISION_ID in attributes:
        return RECORD_OUTCOME
    if attributes.get(GEN_AI_OPERATION_NAME) == OP_INVOKE_AGENT and RUN_ID in attributes:
        return RECORD_RUN
    return None


M = TypeVar("M", bound=BaseModel)


_EMPTY: Final[dict[Any, Any]] = {str: "", bool: False, int: 0, float: 0.0}


def _validate(model: type[M], data: dict[str, Any]) -> M:
    """Validate stored data; fields that fail validation fall back to their defaults, with a warning.

    A required field has no default: a bad one becomes the empty value of its type ("" for text), so
    a hand-edited or corrupted span never puts a value of the wrong type into a model.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        bad = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
    _logger.warning("otel_decisions: dropping invalid stored %s fields %s", model.__name__, sorted(bad))
    kept = {k: v for k, v in data.items() if k not in bad}
    for name in bad:
        field_info = model.model_fields.get(name)
        if field_info is not None and field_info.is_required():
            kept[name] = _EMPTY.get(field_info.annotation)
    try:
        return model.model_validate(kept)
    except ValidationError:
        return model.model_construct(**kept)


def _text_attr(attrs: Mapping[str, Any], key: str) -> str:
    value = attrs.get(key)
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    return value if type(value) is int else 0


def _list_attr(attrs: Mapping[str, Any], key: str) -> list[Any]:
    """An array attribute; anything else (a string would split into characters) reads as empty."""
    value = attrs.get(key)
    return list(value) if isinstance(value, list | tuple) else []


def _json_attr(attrs: Mapping[str, Any], key: str, default: Any) -> Any:
    raw = attrs.get(key)
    if raw is None:
        return default
    return decode_json(raw) if isinstance(raw, str) else raw


def _extra(attrs: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = _json_attr(attrs, key, {})
    return value if isinstance(value, dict) else {}


def _decision_data(span: SpanRecord, outcome: dict[str, Any] | Outcome | None) -> dict[str, Any]:
    a = span.attributes
    options = _json_attr(a, DECISION_OPTIONS, [])
    delegated = a.get(DECISION_DELEGATED_RUNS)
    return {
        **_extra(a, DECISION_EXTRA),
        **({DECISION_DELEGATED_RUN_IDS: list(delegated)} if isinstance(delegated, list) else {}),
        "id": a.get(DECISION_ID, ""),
        "timestamp": ns_to_datetime(span.start_ns),
        "node_id": a.get(DECISION_NODE) if type(a.get(DECISION_NODE)) is str else "unknown",
        "intent": a.get(DECISION_INTENT, ""),
        "decision_type": a.get(DECISION_TYPE, DecisionType.CUSTOM.value),
        "options": [o for o in options if isinstance(o, dict)] if isinstance(options, list) else [],
        "chosen_option_id": a.get(DECISION_CHOSEN, ""),
        "reasoning": a.get(DECISION_REASONING, ""),
        "active_constraints": _list_attr(a, DECISION_CONSTRAINTS),
        "input_context": _json_attr(a, DECISION_CONTEXT, {}),
        "outcome": outcome,
        "evaluation": _json_attr(a, DECISION_EVALUATION, None),
    }


def _outcome_data(span: SpanRecord) -> dict[str, Any]:
    a = span.attributes
    return {
        **_extra(a, OUTCOME_EXTRA),
        "success": bool(a.get(OUTCOME_SUCCESS, False)),
        "result": _json_attr(a, OUTCOME_RESULT, None),
        "error": a.get(OUTCOME_ERROR),
        "state_changes": _json_attr(a, OUTCOME_STATE_CHANGES, {}),
        "tokens_used": a.get(OUTCOME_TOKENS, 0),
        "latency_ms": a.get(OUTCOME_LATENCY, 0),
        "summary": a.get(OUTCOME_SUMMARY, ""),
        "timestamp": ns_to_datetime(span.end_ns),
    }


def decision_from_span(span: SpanRecord, outcome_span: SpanRecord | None) -> Decision:
    """The `Decision` a decision span records, with the outcome its outcome span records.

    One pydantic call validates the decision with its options and outcome; only when that fails are
    the parts validated one by one, so that a bad field costs its own value, not the decision.
    """
    outcome = _outcome_data(outcome_span) if outcome_span is not None else None
    data = _decision_data(span, outcome)
    try:
        return Decision.model_validate(data)
    except ValidationError:
        pass
    data["options"] = [_validate(Option, o) for o in data["options"]]
    data["outcome"] = _validate(Outcome, outcome) if outcome is not None else None
    evaluation = data["evaluation"]
    data["evaluation"] = _validate(DecisionEvaluation, evaluation) if isinstance(evaluation, dict) else None
    return _validate(Decision, data)


def problem_from_event(event: EventRecord) -> Problem:
    """The `Problem` an `otel_decisions.problem` event records."""
    a = event.attributes
    data: dict[str, Any] = {
        **_extra(a, PROBLEM_EXTRA),
        "id": a.get(PROBLEM_ID, ""),
        "severity": a.get(PROBLEM_SEVERITY, ""),
        "description": a.get(PROBLEM_DESCRIPTION, ""),
        "root_cause": a.get(PROBLEM_ROOT_CAUSE),
        "decision_id": a.get(PROBLEM_DECISION_ID),
        "timestamp": ns_to_datetime(event.time_ns),
        "suggested_fix": a.get(PROBLEM_SUGGESTED_FIX),
    }
    return _validate(Problem, data)


def _metrics_from_attributes(a: Mapping[str, Any]) -> RunMetrics:
    return _validate(
        RunMetrics,
        {
            "total_decisions": a.get(RUN_TOTAL_DECISIONS, 0),
            "successful_decisions": a.get(RUN_SUCCESSFUL, 0),
            "failed_decisions": a.get(RUN_FAILED, 0),
            "total_tokens": a.get(RUN_TOKENS, 0),
            "total_latency_ms": a.get(RUN_LATENCY, 0),
            "nodes_executed": _list_attr(a, RUN_NODES),
            "edges_traversed": _list_attr(a, RUN_EDGES),
        },
    )


def run_from_spans(spans: Iterable[SpanRecord]) -> Run | None:
    """Rebuild the `Run` one trace records; None when the trace holds none of our spans.

    Without the root span (a run still open, or a crashed process) the run is rebuilt from its
    decisions and outcomes, with status `running` and metrics recounted the way the seed counts them.
    """
    root: SpanRecord | None = None
    decision_spans: list[SpanRecord] = []
    outcomes: dict[str, SpanRecord] = {}
    first: SpanRecord | None = None
    for span in latest_versions(spans):
        kind = record_kind(span.attributes)
        if kind == RECORD_DECISION:
            decision_spans.append(span)
        elif kind == RECORD_OUTCOME:
            key = str(span.attributes.get(OUTCOME_DECISION_ID, ""))
            seen = outcomes.get(key)
            if seen is None or seen.end_ns <= span.end_ns:  # the latest outcome wins
                outcomes[key] = span
        elif kind == RECORD_RUN:
            root = span
        else:
            continue
        if first is None or span.start_ns < first.start_ns:
            first = span
    if first is None:
        return None
    decision_spans.sort(key=lambda s: (s.start_ns, _int(s.attributes.get(DECISION_SEQUENCE))))
    decisions: list[Decision] = []
    remote: list[Decision] = []  # made in other processes: the root's metrics do not count them
    for span in decision_spans:
        decision = decision_from_span(span, outcomes.get(str(span.attributes.get(DECISION_ID, ""))))
        decisions.append(decision)
        if span.attributes.get(DECISION_REMOTE) is True:
            remote.append(decision)

    source = root if root is not None else first
    a = source.attributes
    data: dict[str, Any] = {
        "id": _text_attr(a, RUN_ID),  # ids are text; another writer's odd value names no id
        "goal_id": _text_attr(a, GOAL_ID),
        "decisions": decisions,
    }
    if root is None:
        run = _validate(Run, {**data, "started_at": ns_to_datetime(first.start_ns)})
        _count_into(run.metrics, decisions)
        return run
    if is_open(root):  # the run had not ended (its process may have died): metrics as recorded so far
        remote = decisions
    status = a.get(RUN_STATUS, RunStatus.RUNNING.value)
    data.update(_extra(a, RUN_EXTRA))
    for trace_id, _span_id, link in root.links:
        if link.get(LINK_TYPE) == LINK_DELEGATED_FROM:
            data[RUN_DELEGATED_FROM] = {
                "run_id": link.get(RUN_ID, ""),
                "decision_id": link.get(DECISION_ID, ""),
                "execution_id": trace_id,
            }
    data.update(
        started_at=ns_to_datetime(root.start_ns),
        status=status,
        completed_at=None if status == RunStatus.RUNNING.value else ns_to_datetime(root.end_ns),
        problems=[problem_from_event(e) for e in root.events if e.name == PROBLEM_EVENT],
        metrics=_metrics_from_attributes(a),
        narrative=a.get(RUN_NARRATIVE, ""),
        goal_description=a.get(RUN_GOAL_DESCRIPTION, ""),
        input_data=_json_attr(a, RUN_INPUT, {}),
        output_data=_json_attr(a, RUN_OUTPUT, {}),
    )
    run = _validate(Run, data)
    _count_into(run.metrics, remote)
    return run


def is_open(span: SpanRecord) -> bool:
    """Whether `span` is a snapshot of a span that was still open (see `SPAN_OPEN`)."""
    return span.attributes.get(SPAN_OPEN) is True


def latest_versions(spans: Iterable[SpanRecord]) -> list[SpanRecord]:
    """`spans` with one version per span id: the ended span over any snapshot of it while open, else
    the latest snapshot. Spans without snapshots (all but a few) pass straight through."""
    spans = list(spans)
    if not any(SPAN_OPEN in s.attributes for s in spans):
        return spans
    best: dict[str, SpanRecord] = {}
    for span in spans:
        seen = best.get(span.span_id)
        if seen is None or newer_version(span, seen):
            best[span.span_id] = span
    return list(best.values())


def newer_version(span: SpanRecord, than: SpanRecord) -> bool:
    """Whether `span` supersedes `than`, another version of the same span: an ended span supersedes
    any snapshot, whatever the order they were read in; a later snapshot an earlier one."""
    if is_open(than) != is_open(span):
        return is_open(than)
    return span.end_ns >= than.end_ns


def _count_into(metrics: RunMetrics, decisions: list[Decision]) -> None:
    """Add `decisions` to `metrics` the way the seed's `add_decision`/`record_outcome` count them."""
    for d in decisions:
        metrics.total_decisions += 1
        if d.node_id not in metrics.nodes_executed:
            metrics.nodes_executed.append(d.node_id)
        if d.outcome is not None:
            if d.outcome.success:
                metrics.successful_decisions += 1
            else:
                metrics.failed_decisions += 1
            metrics.total_tokens += d.outcome.tokens_used
            metrics.total_latency_ms += d.outcome.latency_ms
