"""Building models from whatever the agent passed, without ever raising.

The fast path is plain pydantic validation. When that fails (an option without an id, a number where
text belongs, a float latency, an unknown decision type), each field is coerced to the nearest valid
value and a warning says what was changed, so the agent keeps running and nothing is silently lost.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from otel_decisions._values import as_text
from otel_decisions.models import Decision, DecisionType, Option, Outcome, Run

_logger = logging.getLogger("otel_decisions")


def text(value: Any) -> str:
    """`value` as text ("" for None)."""
    return as_text(value)


def optional_text(value: Any) -> str | None:
    """`value` as text, keeping None."""
    return None if value is None else as_text(value)


def mapping(value: Any, name: str) -> dict[str, Any]:
    """`value` as a dict ({} for None); anything else is wrapped as `{"value": ...}` with a warning."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    if isinstance(value, Mapping):
        return dict(value)
    _logger.warning(
        "otel_decisions: %s should be a dict, got %s; stored as {'value': ...}", name, type(value).__name__
    )
    return {"value": value}


def integer(value: Any, name: str) -> int:
    if type(value) is int:
        return value
    try:
        number = float(value)
        result = round(number) if math.isfinite(number) else 0
    except (TypeError, ValueError, OverflowError):
        result = 0
    _logger.warning("otel_decisions: %s should be an int, got %r; recorded %d", name, value, result)
    return result


def _str_list(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list) and all(type(v) is str for v in value):
        return value
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        _logger.warning(
            "otel_decisions: %s should be a list of strings; wrapping %r", name, type(value).__name__
        )
        return [as_text(value)]
    return [as_text(v) for v in value]


def run(goal_id: Any, goal_description: Any, input_data: Any, started_at: datetime) -> Run:
    """A new run with a seed-format id."""
    run_id = f"run_{started_at.strftime('%Y%m%d_%H%M%S')}_{uuid.uuid4().hex[:8]}"
    return Run(
        id=run_id,
        goal_id=as_text(goal_id),
        started_at=started_at,
        goal_description=as_text(goal_description),
        input_data=mapping(input_data, "input_data"),
    )


def option(raw: Any, index: int) -> Option:
    """An `Option` from an option dict; missing keys take the seed's defaults."""
    if isinstance(raw, Option):
        return raw
    if not isinstance(raw, Mapping):
        _logger.warning(
            "otel_decisions: option %d is a %s, not a dict; recorded as its text", index, type(raw).__name__
        )
        raw = {"id": f"option_{index}", "description": as_text(raw)}
    if "id" not in raw:
        _logger.warning("otel_decisions: option %d has no 'id'; recorded as 'option_%d'", index, index)
    fields = {
        "id": raw.get("id", f"option_{index}"),
        "description": raw.get("description", ""),
        "action_type": raw.get("action_type", "unknown"),
        "action_params": raw.get("action_params", {}),
        "pros": raw.get("pros", []),
        "cons": raw.get("cons", []),
        "confidence": raw.get("confidence", 0.5),
    }
    try:
        return Option(**fields)
    except ValidationError as exc:
        _warn_fields("option", exc)
        confidence = fields["confidence"]
        return Option(
            id=as_text(fields["id"]),
            description=as_text(fields["description"]),
            action_type=as_text(fields["action_type"]),
            action_params=mapping(fields["action_params"], "action_params"),
            pros=_str_list(fields["pros"], "pros"),
            cons=_str_list(fields["cons"], "cons"),
            confidence=confidence
            if type(confidence) is float and math.isfinite(confidence)
            else _confidence(confidence),
        )


def _confidence(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.5
    return number if math.isfinite(number) else 0.5


def decision_type(value: Any) -> DecisionType:
    """The `DecisionType` for `value`; unknown values become `custom` with a warning."""
    if isinstance(value, DecisionType):
        return value
    try:
        return DecisionType(value)
    except ValueError:
        _logger.warning("otel_decisions: unknown decision_type %r; recorded as 'custom'", value)
        return DecisionType.CUSTOM


def _plain_option(raw: Any) -> dict[str, Any] | None:
    """The seed's option fields with defaults, when `raw` is a plain dict that needs no coercion."""
    if type(raw) is not dict or "id" not in raw:
        return None
    params = raw.get("action_params", {})
    if type(params) is not dict:
        return None
    return {
        "id": raw["id"],
        "description": raw.get("description", ""),
        "action_type": raw.get("action_type", "unknown"),
        "action_params": params,
        "pros": raw.get("pros", []),
        "cons": raw.get("cons", []),
        "confidence": raw.get("confidence", 0.5),
    }


def decision(
    decision_id: str,
    timestamp: datetime,
    node_id: Any,
    intent: Any,
    options: Any,
    chosen: Any,
    reasoning: Any,
    kind: Any,
    constraints: Any,
    context: Any,
) -> tuple[Decision, list[dict[str, Any]] | None]:
    """A `Decision` from `Runtime.decide`'s arguments, and its options as plain dicts when they were.

    The fast path validates the whole decision, options included, in one pydantic call; the option
    dicts it validated are returned so the span can encode them without dumping the models again.
    """
    if type(options) is list:
        plain: list[dict[str, Any]] | None = []
        for raw in options:
            normalised = _plain_option(raw)
            if normalised is None:
                plain = None
                break
            plain.append(normalised)  # type: ignore[union-attr]
        if plain is not None:
            try:
                return Decision.model_validate(
                    {
                        "id": decision_id,
                        "timestamp": timestamp,
                        "node_id": node_id,
                        "intent": intent,
                        "decision_type": kind,
                        "options": plain,
                        "chosen_option_id": chosen,
                        "reasoning": reasoning,
                        "active_constraints": constraints or [],
                        "input_context": context or {},
                    }
                ), plain
            except ValidationError:
                pass  # the careful path below says what was wrong
    return _careful_decision(
        decision_id, timestamp, node_id, intent, options, chosen, reasoning, kind, constraints, context
    ), None


def _careful_decision(
    decision_id: str,
    timestamp: datetime,
    node_id: Any,
    intent: Any,
    options: Any,
    chosen: Any,
    reasoning: Any,
    kind: Any,
    constraints: Any,
    context: Any,
) -> Decision:
    if options is None:
        options = []
    elif not isinstance(options, list | tuple):
        _logger.warning("otel_decisions: options should be a list of dicts, got %s", type(options).__name__)
        iterable = isinstance(options, Iterable) and not isinstance(options, str | bytes | Mapping)
        options = list(options) if iterable else [options]
    fields: dict[str, Any] = {
        "id": decision_id,
        "timestamp": timestamp,
        "node_id": node_id,
        "intent": intent,
        "decision_type": decision_type(kind),
        "options": [option(o, i) for i, o in enumerate(options)],
        "chosen_option_id": chosen,
        "reasoning": reasoning,
        "active_constraints": constraints or [],
        "input_context": context or {},
    }
    try:
        return Decision(**fields)
    except ValidationError as exc:
        _warn_fields("decision", exc)
        fields.update(
            node_id=as_text(node_id) or "unknown",
            intent=as_text(intent),
            chosen_option_id=as_text(chosen),
            reasoning=as_text(reasoning),
            active_constraints=_str_list(constraints, "constraints"),
            input_context=mapping(context, "context"),
        )
        return Decision(**fields)


def outcome(
    success: Any,
    result: Any,
    error: Any,
    summary: Any,
    state_changes: Any,
    tokens_used: Any,
    latency_ms: Any,
    timestamp: datetime,
) -> Outcome:
    """An `Outcome` from `Runtime.record_outcome`'s arguments."""
    fields: dict[str, Any] = {
        "success": success,
        "result": result,
        "error": error,
        "summary": summary,
        "state_changes": state_changes or {},
        "tokens_used": tokens_used,
        "latency_ms": latency_ms,
        "timestamp": timestamp,
    }
    try:
        return Outcome(**fields)
    except ValidationError as exc:
        _warn_fields("outcome", exc)
        fields.update(
            success=bool(success) if isinstance(success, bool | int) else False,
            error=None if error is None else as_text(error),
            summary=as_text(summary),
            state_changes=mapping(state_changes, "state_changes"),
            tokens_used=integer(tokens_used, "tokens_used"),
            latency_ms=integer(latency_ms, "latency_ms"),
        )
        return Outcome(**fields)


def _warn_fields(model: str, exc: ValidationError) -> None:
    names = sorted({".".join(str(p) for p in err["loc"]) for err in exc.errors()})
    _logger.warning("otel_decisions: coerced invalid %s fields %s", model, names)
