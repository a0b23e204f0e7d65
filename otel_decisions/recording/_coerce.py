"""Building models from whatever the agent passed, without ever raising.

The fast path is plain pydantic validation. When that fails (an option without an id, a number where
text belongs, a float latency, an unknown decision type), each field is coerced to the nearest valid
value and a warning says what was changed, so the agent keeps running and nothing is silently lost.

Hostile values (objects whose `__bool__`, `__eq__`, `__iter__` or `__repr__` raise, endless iterators,
dicts with keys that are not text) cost at most their own field: nothing here raises, every iterable is
read to at most `MAX_ITEMS` items, and warnings show values through a short, safe repr. Identifiers the
span contract writes as they are (goal, node and chosen option ids) are cut to the attribute cap here.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from itertools import islice
from typing import Any, Final

from pydantic import ValidationError

from otel_decisions import _config
from otel_decisions._values import as_key, as_text, fit_text, short_repr
from otel_decisions.models import Decision, DecisionType, Option, Outcome, Run

_logger = logging.getLogger("otel_decisions")

MAX_ITEMS: Final = 1_000
"""Options, constraints, pros and cons kept at most (the rest is left out, with a warning): a generator
may be endless, and more would not fit in an attribute anyway."""
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_SHORT: Final = 256  # no cap is below this (`_config.max_value_chars`): shorter ids are never cut


def ident(value: Any) -> str:
    """`value` as text for an identifier written as is (goal and node ids): at most the attribute cap,
    marked with `…[truncated N chars]` when cut."""
    text = as_text(value)
    if len(text) <= _SHORT:
        return text
    return fit_text(text, _config.max_value_chars())


def truthy(value: Any, default: bool) -> bool:
    """`bool(value)`, or `default` (with a warning) when the value's truth test raises."""
    try:
        return bool(value)
    except Exception:
        _logger.warning(
            "otel_decisions: a %s could not be truth-tested; taken as %s", type(value).__qualname__, default
        )
        return default


def _or_empty(value: Any, empty: Any) -> Any:
    """The seed's `value or empty`, for a value whose `__bool__` may raise (then it is kept)."""
    if value is None:
        return empty
    try:
        return value if value else empty
    except Exception:
        return value


def _items(value: Iterable[Any], name: str) -> list[Any]:
    """At most `MAX_ITEMS` items of `value` (an iterator may be endless, or raise while iterating)."""
    items: list[Any] = []
    try:
        items.extend(islice(value, MAX_ITEMS + 1))
    except Exception:
        _logger.warning(
            "otel_decisions: %s could not be iterated to the end; kept %d items", name, len(items)
        )
    if len(items) > MAX_ITEMS:
        _logger.warning(
            "otel_decisions: %s has more than %d items; the rest is not recorded", name, MAX_ITEMS
        )
        del items[MAX_ITEMS:]
    return items


def text(value: Any) -> str:
    """`value` as text ("" for None)."""
    return as_text(value)


def optional_text(value: Any) -> str | None:
    """`value` as text, keeping None."""
    return None if value is None else as_text(value)


def mapping(value: Any, name: str, warn: Warn = _logger.warning) -> dict[str, Any]:
    """`value` as a dict with text keys ({} for None); anything else is wrapped as `{"value": ...}`
    with a warning. Keys that are not text become their `str()` (the models accept only text keys)."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        try:
            if type(value) is dict and all(type(k) is str for k in value):
                return value
            return {as_key(k): v for k, v in value.items()}
        except Exception:
            pass  # a mapping that cannot be read: kept whole, as a value
    warn("otel_decisions: %s should be a dict, got %s; stored as {'value': ...}", name, type(value).__name__)
    return {"value": value}


def integer(value: Any, name: str) -> int:
    """`value` as an int that fits OTLP's int64 (a count: tokens, milliseconds); 0 when it is no number."""
    if type(value) is int and _INT64_MIN <= value <= _INT64_MAX:
        return value
    try:
        number = float(value) if type(value) is not int else value
        result = round(number) if math.isfinite(number) else 0
        result = min(max(result, _INT64_MIN), _INT64_MAX)
    except Exception:  # TypeError, ValueError, OverflowError, or whatever a hostile __float__ raises
        result = 0
    _logger.warning(
        "otel_decisions: %s should be an int, got %s; recorded %d", name, short_repr(value), result
    )
    return result


def _finite(value: Any, name: str) -> Any:
    """`value`, or its first `MAX_ITEMS` items when it is an iterator (pydantic reads a list field's
    iterator to its end, and a generator may have none)."""
    if (
        value is None
        or isinstance(value, list | tuple | str | bytes | Mapping)
        or not isinstance(value, Iterable)
    ):
        return value
    return _items(value, name)


def _str_list(value: Any, name: str, warn: Warn = _logger.warning) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list) and all(type(v) is str for v in value):
        return value
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        warn("otel_decisions: %s should be a list of strings; wrapping %r", name, type(value).__name__)
        return [as_text(value)]
    items = value[:MAX_ITEMS] if isinstance(value, list) else _items(value, name)
    return [as_text(v) for v in items]


def run(goal_id: Any, goal_description: Any, input_data: Any, started_at: datetime) -> Run:
    """A new run with a seed-format id."""
    run_id = f"run_{started_at.strftime('%Y%m%d_%H%M%S')}_{uuid.uuid4().hex[:8]}"
    return Run(
        id=run_id,
        goal_id=ident(goal_id),
        started_at=started_at,
        goal_description=as_text(goal_description),
        input_data=mapping(input_data, "input_data"),
    )


Warn = Callable[..., None]


class _Warnings:
    """Warnings about one decision's options, logged once each: a thousand bad options make one line."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[int, str]] = {}

    def __call__(self, message: str, *args: Any) -> None:
        count, first = self.seen.get(message, (0, ""))
        self.seen[message] = (count + 1, first or message % args)

    def log(self) -> None:
        for count, first in self.seen.values():
            _logger.warning("%s%s", first, f" (and {count - 1} more like it)" if count > 1 else "")


def option(raw: Any, index: int, warn: Warn = _logger.warning) -> Option:
    """An `Option` from an option dict; missing keys take the seed's defaults."""
    try:
        return _option(raw, index, warn)
    except Exception:  # a mapping whose methods raise: keep the option's place and what it was
        warn("otel_decisions: option %d could not be read; recorded as its text", index)
        return Option(id=f"option_{index}", description=as_text(raw), action_type="unknown")


def _option(raw: Any, index: int, warn: Warn) -> Option:
    if isinstance(raw, Option):
        return raw
    if not isinstance(raw, Mapping):
        warn("otel_decisions: option %d is a %s, not a dict; recorded as its text", index, type(raw).__name__)
        raw = {"id": f"option_{index}", "description": as_text(raw)}
    if "id" not in raw:
        warn("otel_decisions: option %d has no 'id'; recorded as 'option_%d'", index, index)
    fields = {
        "id": raw.get("id", f"option_{index}"),
        "description": raw.get("description", ""),
        "action_type": raw.get("action_type", "unknown"),
        "action_params": raw.get("action_params", {}),
        "pros": _finite(raw.get("pros", []), "pros"),
        "cons": _finite(raw.get("cons", []), "cons"),
        "confidence": raw.get("confidence", 0.5),
    }
    try:
        return Option(**fields)
    except ValidationError as exc:
        _warn_fields("option", exc, warn)
        confidence = fields["confidence"]
        return Option(
            id=as_text(fields["id"]),
            description=as_text(fields["description"]),
            action_type=as_text(fields["action_type"]),
            action_params=mapping(fields["action_params"], "action_params", warn),
            pros=_str_list(fields["pros"], "pros", warn),
            cons=_str_list(fields["cons"], "cons", warn),
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
    except Exception:  # ValueError, or whatever a hostile __eq__/__hash__/__repr__ raises
        _logger.warning("otel_decisions: unknown decision_type %s; recorded as 'custom'", short_repr(value))
        return DecisionType.CUSTOM


def _plain_option(raw: Any) -> dict[str, Any] | None:
    """The seed's option fields with defaults, when `raw` is a plain dict that needs no coercion."""
    if type(raw) is not dict or "id" not in raw:
        return None
    params = raw.get("action_params", {})
    pros = raw.get("pros", [])
    cons = raw.get("cons", [])
    if type(params) is not dict or type(pros) is not list or type(cons) is not list:
        return None
    return {
        "id": raw["id"],
        "description": raw.get("description", ""),
        "action_type": raw.get("action_type", "unknown"),
        "action_params": params,
        "pros": pros,
        "cons": cons,
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
    Never raises: a value that defeats every coercion costs the fields it was given for.
    """
    try:
        if constraints is not None and type(constraints) is not list:
            constraints = _finite(_or_empty(constraints, []), "constraints")
        if context is not None and type(context) is not dict:
            context = _or_empty(context, {})
        plain = _plain_options(options)
        made: Decision | None = None
        if plain is not None:
            try:
                made = Decision.model_validate(
                    {
                        "id": decision_id,
                        "timestamp": timestamp,
                        "node_id": node_id,
                        "intent": intent,
                        "decision_type": kind,
                        "options": plain,
                        "chosen_option_id": chosen,
                        "reasoning": reasoning,
                        "active_constraints": [] if constraints is None else constraints,
                        "input_context": {} if context is None else context,
                    }
                )
            except ValidationError:
                plain = None  # the careful path says what was wrong
        if made is None:
            made = _careful_decision(
                decision_id,
                timestamp,
                node_id,
                intent,
                options,
                chosen,
                reasoning,
                kind,
                constraints,
                context,
            )
    except Exception:
        _logger.warning("otel_decisions: could not read the decision's arguments; recorded its texts only")
        made = Decision(
            id=decision_id,
            timestamp=timestamp,
            node_id=as_text(node_id) or "unknown",
            intent=as_text(intent),
            chosen_option_id=as_text(chosen),
            reasoning=as_text(reasoning),
        )
        plain = None
    if len(made.node_id) > _SHORT:
        made.node_id = ident(made.node_id)
    if len(made.chosen_option_id) > _SHORT:
        made.chosen_option_id = ident(made.chosen_option_id)
    return made, plain


def _plain_options(options: Any) -> list[dict[str, Any]] | None:
    """The options with the seed's defaults filled in, when all are plain dicts; else None."""
    if type(options) is not list or len(options) > MAX_ITEMS:
        return None
    plain: list[dict[str, Any]] = []
    for raw in options:
        normalised = _plain_option(raw)
        if normalised is None:
            return None
        plain.append(normalised)
    return plain


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
        options = _items(options, "options") if iterable else [options]
    elif len(options) > MAX_ITEMS:
        _logger.warning("otel_decisions: %d options; the first %d are recorded", len(options), MAX_ITEMS)
        options = options[:MAX_ITEMS]
    warnings = _Warnings()
    made = [option(o, i, warnings) for i, o in enumerate(options)]
    warnings.log()
    fields: dict[str, Any] = {
        "id": decision_id,
        "timestamp": timestamp,
        "node_id": node_id,
        "intent": intent,
        "decision_type": decision_type(kind),
        "options": made,
        "chosen_option_id": chosen,
        "reasoning": reasoning,
        "active_constraints": [] if constraints is None else constraints,
        "input_context": {} if context is None else context,
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
    """An `Outcome` from `Runtime.record_outcome`'s arguments (never raises)."""
    fields: dict[str, Any] = {
        "success": success,
        "result": result,
        "error": error,
        "summary": summary,
        "state_changes": {} if state_changes is None else _or_empty(state_changes, {}),
        "tokens_used": tokens_used,
        "latency_ms": latency_ms,
        "timestamp": timestamp,
    }
    try:
        made = Outcome(**fields)
        if _INT64_MIN <= made.tokens_used <= _INT64_MAX and _INT64_MIN <= made.latency_ms <= _INT64_MAX:
            return made
    except ValidationError as exc:
        _warn_fields("outcome", exc)
    except Exception:  # not a validation error: a hostile value raised inside pydantic
        _logger.warning("otel_decisions: could not validate the outcome; its fields are coerced")
    fields.update(
        success=_flag(success),
        error=None if error is None else as_text(error),
        summary=as_text(summary),
        state_changes=mapping(fields["state_changes"], "state_changes"),
        tokens_used=integer(tokens_used, "tokens_used"),
        latency_ms=integer(latency_ms, "latency_ms"),
    )
    return Outcome(**fields)


def _flag(value: Any) -> bool:
    """A success flag: bools and ints as their truth, anything else False."""
    if not isinstance(value, bool | int):
        return False
    try:
        return bool(value)
    except Exception:  # an int subclass with a hostile __bool__
        return False


def _warn_fields(model: str, exc: ValidationError, warn: Warn = _logger.warning) -> None:
    names = sorted({".".join(str(p) for p in err["loc"]) for err in exc.errors()})
    warn("otel_decisions: coerced invalid %s fields %s", model, names)
