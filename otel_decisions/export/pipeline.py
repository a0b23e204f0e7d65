"""One OpenTelemetry pipeline per span directory: provider -> file processor (+ OTLP) -> destinations.

Why a provider of our own per directory? `Runtime(storage_path)` promises that its runs land under its
path, whatever else the process traces; and a user's global TracerProvider must never be replaced.
The provider samples everything (the file is the complete record the Builder reads), takes its
resource from the standard `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES`, and is shut down (flushed)
at interpreter exit. Beside the file it exports OTLP when an endpoint is configured, or, when the user
already set an SDK TracerProvider, hands our spans to it instead (see `otlp.py`). Pipelines are cached
by resolved directory, so every `Runtime` and thread writing one directory shares one writer and one
lock; `configure()` changes the settings of pipelines created after it.
"""

from __future__ import annotations

import atexit
import logging
import os
import random
import signal
import sys
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import INVALID_SPAN_ID, INVALID_TRACE_ID, Tracer

from otel_decisions import _config
from otel_decisions._privacy import ContentPolicy
from otel_decisions._redaction import DEFAULT_ALLOWED_KEYS
from otel_decisions.contract import INSTRUMENTATION_NAME, SCHEMA, SCHEMA_VERSION
from otel_decisions.export import sigterm
from otel_decisions.export.file_processor import RunFileProcessor
from otel_decisions.export.file_writer import JsonLinesWriter
from otel_decisions.export.otlp import ForwardToProvider, RunEndNudge, otlp_processor, shutdown_all
from otel_decisions.export.settings import Settings, resolve

__all__ = ["Pipeline", "add_span_observer", "configure", "current_settings", "pipeline_for"]

_logger = logging.getLogger(__name__)

_VERSION = "0.1.0"


class _OwnRandomIds(IdGenerator):
    """Trace and span ids from a generator of our own, seeded from the OS (and again in a forked
    child): the SDK's default draws from the global `random`, which an agent seeding it for
    reproducible sampling would rewind, making two runs share a trace id."""

    def __init__(self) -> None:
        self._random = random.Random(int.from_bytes(os.urandom(16), "big"))
        os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self._random = random.Random(int.from_bytes(os.urandom(16), "big"))

    def generate_span_id(self) -> int:
        span_id = self._random.getrandbits(64)
        while span_id == INVALID_SPAN_ID:
            span_id = self._random.getrandbits(64)
        return span_id

    def generate_trace_id(self) -> int:
        trace_id = self._random.getrandbits(128)
        while trace_id == INVALID_TRACE_ID:
            trace_id = self._random.getrandbits(128)
        return trace_id


_IDS = _OwnRandomIds()


class Drainable(Protocol):
    """A recorder holding work that must become spans before a periodic flush."""

    def drain(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Pipeline:
    """What the recorder needs to emit spans for one directory."""

    directory: Path
    provider: TracerProvider
    tracer: Tracer
    processor: RunFileProcessor
    policy: ContentPolicy
    """What of the agent's values is recorded: caps, scrubbing, content capture."""
    enabled: bool = True
    open_recorders: weakref.WeakSet[Drainable] = field(default_factory=weakref.WeakSet)
    run_ended: Callable[[], None] = lambda: None
    """Called after a run's spans are written: wakes the OTLP flush (never blocks)."""
    processors: tuple[SpanProcessor, ...] = ()
    """Where the provider's ended spans go (spans of other instrumentations joining a run use it too)."""
    scope: InstrumentationScope | None = None
    """Our instrumentation scope, for spans made without the tracer (`recording._spans`)."""

    @property
    def local_file(self) -> bool:
        return self.processor in self.processors

    @property
    def snapshots(self) -> bool:
        """Whether snapshots of open spans are written (per-span durability, to the local file)."""
        return self.processor.per_span and self.processor in self.processors

    def journal(self, span: ReadableSpan, snapshot: bool = False) -> None:
        """Write `span` to the local file now (a finished span made without the tracer, or, with
        `snapshot`, a copy of an open one); other processors get finished ones through `forward`."""
        if self.processor in self.processors:
            self.processor.journal(span, snapshot)

    def forward(self, spans: list[ReadableSpan]) -> None:
        """Hand finished spans the file already holds to every other processor (OTLP, the user's
        provider, observers), never raising."""
        for processor in self.processors:
            if processor is self.processor:
                continue
            for span in spans:
                try:
                    processor.on_end(span)
                except Exception:
                    _logger.exception("otel_decisions: span processor %r failed", processor)

    def new_span_id(self) -> int:
        """A span id from the provider's id generator."""
        return self.provider.id_generator.generate_span_id()

    def flush(self) -> bool:
        """Turn pending decisions of open runs into spans and write every buffered span now."""
        return self.processor.force_flush()

    def watch(self, recorder: Drainable) -> None:
        """Have the periodic flush drain `recorder` until it is dropped (`open_recorders.discard`)."""
        self.open_recorders.add(recorder)
        self.processor.start_background_flush()

    def drain_open_recorders(self) -> None:
        """Called before each periodic flush, so runs still open reach the file too."""
        for recorder in list(self.open_recorders):
            recorder.drain()


_pipelines: dict[Path, Pipeline] = {}
_lock = threading.RLock()
_settings: Settings | None = None
_every_pipeline: list[Pipeline] = []  # also those configure() dropped from the cache
_exit_otlp: list[tuple[SpanProcessor, float]] = []


def _after_fork_in_child() -> None:
    """A forked child inherits the parent's open runs: they are the parent's to write, not ours."""
    global _lock
    _lock = threading.RLock()
    for pipeline in _every_pipeline:
        pipeline.open_recorders.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def interrupt_open_runs(narrative: str, failed: bool = False) -> None:
    """End every run still open, as `failed` or `cancelled` with `narrative` (at exit, on SIGTERM), so
    the file tells what happened to it instead of leaving it `running` for ever."""
    for pipeline in list(_every_pipeline):
        for recorder in list(pipeline.open_recorders):
            callback = getattr(recorder, "on_interrupt", None)
            if callback is None:
                continue
            try:
                callback(narrative, failed)
            except Exception:
                _logger.exception("otel_decisions: could not end an interrupted run")


@atexit.register
def _at_exit() -> None:
    """End runs left open, write what is buffered to every file (fast, local), then give OTLP one
    bounded wait."""
    uncaught = _uncaught[0] if _uncaught else None
    if uncaught is not None:
        interrupt_open_runs(
            f"Run interrupted: the process exited on an uncaught {type(uncaught).__qualname__}.", True
        )
    else:
        interrupt_open_runs("Run interrupted: the process exited before the run ended.")
    _flush_at_exit()


def _flush_at_exit() -> None:
    for pipeline in list(_every_pipeline):
        try:
            pipeline.processor.shutdown()
        except Exception:
            _logger.exception("otel_decisions: could not flush %s at exit", pipeline.directory)
    if _exit_otlp:
        shutdown_all([p for p, _ in _exit_otlp], max(t for _, t in _exit_otlp))


_sigterm_installed = False
_uncaught: list[BaseException] = []  # the exception that ended the program, seen by `sys.excepthook`


def _watch_uncaught() -> None:
    """Chain `sys.excepthook` to note an uncaught exception (`sys.last_value` may be stale: the REPL and
    test runners set it for exceptions that did not end the program)."""
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        _uncaught[:] = [value]
        previous(kind, value, tb)

    sys.excepthook = hook


def _install_sigterm_handler() -> None:
    """On SIGTERM (a container stopping, a supervisor's kill), end open runs and flush, then terminate
    exactly as SIGTERM would have. Only when SIGTERM has its default action (a handler of the
    application's is left alone), from the main thread, unless `OTEL_DECISIONS_SIGTERM=false`."""
    global _sigterm_installed
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    _sigterm_installed = True
    _watch_uncaught()
    if not _config.env_flag(_config.OTEL_DECISIONS_SIGTERM, True):
        return
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
            sigterm.start_watchdog()
    except (ValueError, OSError, AttributeError):  # no signals here (an embedded interpreter, Windows)
        pass


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # The handler runs in the main thread between two bytecodes, maybe inside our own writer or a
    # drain: their locks are re-entrant, and what it interrupted never resumes (the process ends).
    if sigterm.defer(frame):  # inside a run's start or end: handled when that is done (see sigterm)
        return
    try:
        interrupt_open_runs("Run interrupted: the process received SIGTERM.")
        _flush_at_exit()
    except Exception:
        _logger.exception("otel_decisions: could not flush on SIGTERM")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)  # terminate as the default action would: exit status -15


def configure(**settings: Any) -> Settings:
    """Set how spans leave the process, for `Runtime`s and decorated runs created from now on.

    Usage::

        otel_decisions.configure(otlp_endpoint="http://localhost:4318", service_name="support-agent")

    Arguments (all optional; unset ones come from the standard `OTEL_*` variables): `directory`,
    `local_file`, `otlp_endpoint`, `otlp_protocol` (`"grpc"` or `"http/protobuf"`), `otlp_headers`,
    `otlp_timeout` (seconds), `exporters` (`["otlp"]`, `["console"]`, `["none"]`), `service_name`,
    `join_global_provider`, `capture_content` (False: no free text, statistics only), `scrub` (False:
    no secret scrubbing), `scrub_allowed_keys` (keys never scrubbed). Raises `ConfigError` for a
    value it cannot use.
    """
    global _settings
    resolved = resolve(**settings)
    with _lock:
        _settings = resolved
        old = list(_pipelines.values())
        _pipelines.clear()
    for pipeline in old:  # runs already recorded through them stay; new runs use the new settings
        pipeline.flush()
    return resolved


def current_settings() -> Settings:
    """The settings `configure()` set, or those of the environment."""
    return _settings if _settings is not None else resolve()


class _Observers(SpanProcessor):
    """Fans every span of every pipeline out to the processors registered with `add_span_observer`."""

    def __init__(self) -> None:
        self.processors: tuple[SpanProcessor, ...] = ()

    def on_end(self, span: ReadableSpan) -> None:
        for processor in self.processors:
            try:
                processor.on_end(span)
            except Exception:  # an observer must never break recording
                _logger.exception("otel_decisions: span observer %r failed", processor)


_observers = _Observers()


def add_span_observer(processor: SpanProcessor) -> Callable[[], None]:
    """Also hand every span recorded from now on, in any directory, to `processor.on_end`.

    For in-process consumers of the spans (the pytest plugin's in-memory runs). Returns the function
    that removes it again.
    """
    with _lock:
        _observers.processors = (*_observers.processors, processor)

    def remove() -> None:
        with _lock:
            _observers.processors = tuple(p for p in _observers.processors if p is not processor)

    return remove


def pipeline_for(directory: str | Path | None = None) -> Pipeline:
    """The shared pipeline writing to `directory` (default: the configured one; created on first use)."""
    settings = current_settings()
    key = Path(directory if directory is not None else settings.directory).expanduser().resolve()
    found = _pipelines.get(key)
    if found is not None:
        return found
    with _lock:
        found = _pipelines.get(key)
        if found is None:
            found = _pipelines[key] = _build(key, settings)
        return found


def _build(directory: Path, settings: Settings) -> Pipeline:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # recording goes on; each write retries and warns
        _logger.warning("otel_decisions: cannot create span directory %s: %s", directory, exc)
    writer = JsonLinesWriter(directory, max_bytes=_config.file_max_bytes(), fsync=_config.file_fsync())
    processor = RunFileProcessor(
        writer, flush_interval=_config.flush_interval(), per_span=_config.durability() == "span"
    )
    resource = Resource.create({"service.name": settings.service_name} if settings.service_name else {})
    provider = TracerProvider(
        resource=resource,
        sampler=ALWAYS_ON,
        shutdown_on_exit=False,
        id_generator=_IDS,  # see _at_exit
    )
    processors: list[SpanProcessor] = []
    if settings.local_file:
        processors.append(processor)
    processors.append(_observers)
    run_ended: Callable[[], None] = lambda: None  # noqa: E731
    user_provider = trace.get_tracer_provider()
    if settings.join_global_provider and isinstance(user_provider, TracerProvider):
        processors.append(ForwardToProvider(user_provider))  # join it; export is theirs
    elif settings.otlp_enabled:
        otlp = otlp_processor(settings)
        if otlp is not None:
            processors.append(otlp)
            run_ended = RunEndNudge(otlp)
            _exit_otlp.append((otlp, settings.otlp_timeout))
    if "console" in settings.exporters:
        processors.append(SimpleSpanProcessor(ConsoleSpanExporter()))
    for added in processors:
        provider.add_span_processor(added)
    tracer = provider.get_tracer(INSTRUMENTATION_NAME, _VERSION, attributes={SCHEMA: SCHEMA_VERSION})
    pipeline = Pipeline(
        directory,
        provider,
        tracer,
        processor,
        ContentPolicy(
            _config.max_value_chars(),
            capture=settings.capture_content,
            scrub=settings.scrub,
            allowed_keys=DEFAULT_ALLOWED_KEYS | settings.scrub_allowed_keys,
        ),
        enabled=not _config.sdk_disabled(),
        run_ended=run_ended,
        processors=tuple(processors),
        scope=getattr(tracer, "_instrumentation_scope", None),
    )
    processor.before_flush = pipeline.drain_open_recorders
    _every_pipeline.append(pipeline)
    _install_sigterm_handler()
    return pipeline
