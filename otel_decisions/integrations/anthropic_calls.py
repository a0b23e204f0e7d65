"""Claude calls inside runs: GenAI `chat` spans under the current decision, tokens rolled up into it.

    import otel_decisions
    otel_decisions.instrument_anthropic()       # before creating `anthropic.Anthropic()` clients

Why build on the SDK? The `anthropic` SDK traces its own API calls with OpenTelemetry (one `CLIENT`
span per call, `gen_ai.operation.name = chat`, request and response model, `gen_ai.usage.input_tokens` /
`output_tokens`, streams included, maintained with the API), so we add no second span per call. What we
add is where the span goes and what it counts towards:

- **Nesting.** Clients created after `instrument_anthropic()` get a tracer provider of ours (unless the
  code passes its own `open_telemetry` option). Inside a decorated decision the SDK's span is already its
  child (the decision span is current). With the seed's `Runtime`, whose decision spans are written when
  the run ends, the run's root span is made current for the call, so the span is the run's child and
  carries `otel_decisions.llm.decision_id` naming the decision it served.
- **Recording.** Spans of calls made in a run go to that run's span directory (and wherever its pipeline
  exports); calls outside any run go to the TracerProvider the application set, if any. Each span also
  gets the run's ids and `gen_ai.response.finish_reasons`.
- **Tokens.** Input plus output tokens are added to the decision the call was made for — the current
  decorated decision, or the `Runtime` decision still waiting for its outcome — and so to its outcome's
  `tokens_used` (unless the agent reports tokens itself) and the run's total; a call made in a run but
  outside any decision adds to the run's total.
- **Content.** Message content is recorded only when content capture is on: `capture_content=True`, or
  `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true` (default off), and never when our own
  content capture is off (`OTEL_DECISIONS_CAPTURE_CONTENT=false`). Spans recorded into a run are
  scrubbed like ours: attributes, event attributes and the status message.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import Status

from otel_decisions import contract as c
from otel_decisions._exceptions import ConfigError
from otel_decisions._privacy import ContentPolicy
from otel_decisions.export.pipeline import Pipeline, current_settings
from otel_decisions.recording.context import CURRENT_DECISION, CURRENT_RUN, RUNTIME_FOCUS

__all__ = ["AnthropicInstrumentor", "instrument_anthropic", "uninstrument_anthropic"]

_logger = logging.getLogger(__name__)

CAPTURE_CONTENT_ENV: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
SDK_SCOPE: Final = "com.anthropic.sdk.python"
FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
_STOP_REASON: Final = "anthropic.message.stop_reason"


class _Target:
    """Where one call's span and tokens go, as found in the caller's context when the span started."""

    __slots__ = ("add_tokens", "attributes", "pipeline")

    def __init__(self, pipeline: Pipeline, attributes: dict[str, Any], add_tokens: Any) -> None:
        self.pipeline = pipeline
        self.attributes = attributes
        self.add_tokens = add_tokens


def _target() -> _Target | None:
    state = CURRENT_RUN.get()
    if state is not None:  # decorated code: the current decision, else the run itself
        recorder = state.recorder
        handle = CURRENT_DECISION.get()
        if handle is not None and handle.decision_id:
            attributes = {**recorder.common, c.LLM_DECISION_ID: handle.decision_id}
            return _Target(recorder.pipeline, attributes, handle.add_tokens)

        def to_run(tokens: int) -> None:
            if state.run is not None:
                with state.lock:
                    state.run.metrics.total_tokens += tokens

        return _Target(recorder.pipeline, dict(recorder.common), to_run)
    focus = RUNTIME_FOCUS.get()
    if focus is not None:
        runtime, decision_id = focus
        recorder = runtime._recorder
        if recorder is not None:
            attributes = dict(recorder.common)
            if decision_id:
                attributes[c.LLM_DECISION_ID] = decision_id
            add_tokens = functools.partial(runtime._add_llm_tokens, decision_id)
            return _Target(recorder.pipeline, attributes, add_tokens)
    return None


class _Router(SpanProcessor):
    """Sends the SDK's spans to the run they belong to, and their tokens to the decision they served."""

    def __init__(self) -> None:
        self._targets: dict[int, _Target | None] = {}
        self._lock = threading.Lock()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            target = _target()
        except Exception:  # never break the agent's call
            _logger.exception("otel_decisions: cannot tell which run an Anthropic call belongs to")
            target = None
        with self._lock:
            self._targets[span.context.span_id] = target

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            target = self._targets.pop(span.context.span_id, None) if span.context is not None else None
        try:
            attributes = dict(span.attributes or {})
            stop_reason = attributes.get(_STOP_REASON)
            extra: dict[str, Any] = {FINISH_REASONS: [stop_reason]} if isinstance(stop_reason, str) else {}
            if target is None:
                _to_application(_copy(span, {**attributes, **extra}))
                return
            tokens = _int(attributes.get("gen_ai.usage.input_tokens")) + _int(
                attributes.get("gen_ai.usage.output_tokens")
            )
            if tokens:
                target.add_tokens(tokens)
            policy = target.pipeline.policy  # our scrubbing and content switch hold for these too
            copy = _copy(
                span, {**policy.foreign_attributes(attributes), **extra, **target.attributes}, policy
            )
            if target.pipeline.enabled:
                for processor in target.pipeline.processors:
                    processor.on_end(copy)
        except Exception:
            _logger.exception("otel_decisions: cannot record an Anthropic call")


def _int(value: Any) -> int:
    return value if type(value) is int and value > 0 else 0


def _copy(
    span: ReadableSpan, attributes: dict[str, Any], policy: ContentPolicy | None = None
) -> ReadableSpan:
    """The span with more attributes (an ended span cannot take new ones); with `policy`, its events
    and status message are scrubbed (or dropped, without content capture) like its attributes."""
    events, status = span.events, span.status
    if policy is not None:
        events = tuple(
            Event(e.name, policy.foreign_attributes(e.attributes or {}), e.timestamp) for e in events
        )
        if status.description:
            status = Status(status.status_code, policy.message(status.description, 1024))
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=events,
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _to_application(span: ReadableSpan) -> None:
    """A call outside any run: the application's own TracerProvider gets it, as it would without us."""
    provider = trace.get_tracer_provider()
    processor = getattr(provider, "_active_span_processor", None)
    if isinstance(provider, TracerProvider) and processor is not None:
        processor.on_end(span)


# --- patching the SDK ----------------------------------------------------------------------------
_lock = threading.Lock()
_originals: dict[tuple[type, str], Any] = {}
_provider: TracerProvider | None = None
_capture = False


def instrument_anthropic(*, capture_content: bool | None = None) -> None:
    """Record Claude calls of clients created from now on into the runs they are made in (idempotent).

    `capture_content` (default: `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`, else off) also
    records the messages sent and received. Raises `ConfigError` when `anthropic` is not installed.
    """
    global _provider, _capture
    try:
        import anthropic
        from anthropic.resources.messages import AsyncMessages, Messages
    except ImportError as exc:
        raise ConfigError(
            'instrument_anthropic() needs the anthropic SDK: pip install "otel-decisions[claude]"'
        ) from exc
    if capture_content is not None and not isinstance(capture_content, bool):
        raise ConfigError(f"capture_content must be True, False or None, not {capture_content!r}")
    with _lock:
        _capture = _env_capture() if capture_content is None else capture_content
        if _provider is None:
            _provider = TracerProvider(resource=Resource.create(), sampler=ALWAYS_ON, shutdown_on_exit=False)
            _provider.add_span_processor(_Router())
        if _originals:
            return
        for client in (anthropic.Anthropic, anthropic.AsyncAnthropic):
            _patch(client, "__init__", _client_init)
        _patch(Messages, "create", _in_run_context)
        _patch(AsyncMessages, "create", _in_run_context_async)  # returns an awaitable, whatever it is
        for resource in (Messages, AsyncMessages):
            _patch(resource, "stream", _stream_in_run_context)


def uninstrument_anthropic() -> None:
    """Undo `instrument_anthropic()` for clients created from now on."""
    with _lock:
        for (owner, name), original in _originals.items():
            setattr(owner, name, original)
        _originals.clear()


class AnthropicInstrumentor:
    """The contrib-style face of the same switch: `AnthropicInstrumentor().instrument()`."""

    def instrument(self, *, capture_content: bool | None = None) -> None:
        instrument_anthropic(capture_content=capture_content)

    def uninstrument(self) -> None:
        uninstrument_anthropic()


def _env_capture() -> bool:
    value = os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower()
    if value in ("", "false", "0", "no", "no_content"):
        return False
    if value in ("true", "1", "yes", "span_only", "span_and_event"):
        return True
    _logger.warning("otel_decisions: ignoring %s=%r (expected true or false)", CAPTURE_CONTENT_ENV, value)
    return False


def _patch(owner: type, name: str, wrapper: Any) -> None:
    original = owner.__dict__[name]
    _originals[(owner, name)] = original
    setattr(owner, name, functools.wraps(original)(wrapper(original)))


def _client_init(original: Any) -> Any:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("open_telemetry") is None and _provider is not None:  # the caller's choice wins
            content = _capture and current_settings().capture_content  # our switch overrides
            mode = "content" if content else "metadata_only"
            kwargs["open_telemetry"] = {"tracer_provider": _provider, "traces": {"content_mode": mode}}
        original(self, *args, **kwargs)

    return __init__


def _runtime_context() -> Context | None:
    """The run's context for a call made by `Runtime` code with no span of ours current."""
    if CURRENT_RUN.get() is not None:
        return None  # decorated code: its decision span is current already
    focus = RUNTIME_FOCUS.get()
    recorder = focus[0]._recorder if focus is not None else None
    return recorder.run_context if recorder is not None else None


def _in_run_context_async(original: Any) -> Any:
    async def call(*args: Any, **kwargs: Any) -> Any:
        parent = _runtime_context()
        if parent is None:
            return await original(*args, **kwargs)
        token = otel_context.attach(parent)
        try:
            return await original(*args, **kwargs)
        finally:
            otel_context.detach(token)

    return call


def _in_run_context(original: Any) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        parent = _runtime_context()
        if parent is None:
            return original(*args, **kwargs)
        token = otel_context.attach(parent)
        try:
            return original(*args, **kwargs)
        finally:
            otel_context.detach(token)

    return call


def _stream_in_run_context(original: Any) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        manager = original(*args, **kwargs)
        parent = _runtime_context()
        return manager if parent is None else _StreamManager(manager, parent)

    return call


class _StreamManager:
    """`messages.stream(...)` sends its request on entering; enter with the run's context current."""

    def __init__(self, manager: Any, parent: Context) -> None:
        self._manager = manager
        self._parent = parent

    def __enter__(self) -> Any:
        token = otel_context.attach(self._parent)
        try:
            return self._manager.__enter__()
        finally:
            otel_context.detach(token)

    def __exit__(self, *exc: Any) -> Any:
        return self._manager.__exit__(*exc)

    async def __aenter__(self) -> Any:
        token = otel_context.attach(self._parent)
        try:
            return await self._manager.__aenter__()
        finally:
            otel_context.detach(token)

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._manager.__aexit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._manager, name)
