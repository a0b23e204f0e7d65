"""One OpenTelemetry pipeline per span directory: provider -> file processor -> `traces.jsonl`.

Why a provider of our own per directory? `Runtime(storage_path)` promises that its runs land under its
path, whatever else the process traces; and a user's global TracerProvider must never be replaced.
The provider samples everything (the file is the complete record the Builder reads), takes its
resource from the standard `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES`, and is shut down (flushed)
at interpreter exit. Pipelines are cached by resolved directory, so every `Runtime` and thread writing
one directory shares one writer and one lock.
"""

from __future__ import annotations

import logging
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import Tracer

from otel_decisions import _config
from otel_decisions.contract import INSTRUMENTATION_NAME, SCHEMA, SCHEMA_VERSION
from otel_decisions.export.file_processor import RunFileProcessor
from otel_decisions.export.file_writer import JsonLinesWriter

__all__ = ["Pipeline", "pipeline_for"]

_logger = logging.getLogger(__name__)

_VERSION = "0.1.0"


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
    max_value_chars: int
    enabled: bool = True
    open_recorders: weakref.WeakSet[Drainable] = field(default_factory=weakref.WeakSet)

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
_lock = threading.Lock()


def pipeline_for(directory: str | Path) -> Pipeline:
    """The shared pipeline writing to `directory` (created on first use)."""
    key = Path(directory).expanduser().resolve()
    found = _pipelines.get(key)
    if found is not None:
        return found
    with _lock:
        found = _pipelines.get(key)
        if found is None:
            found = _pipelines[key] = _build(key)
        return found


def _build(directory: Path) -> Pipeline:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # recording goes on; each write retries and warns
        _logger.warning("otel_decisions: cannot create span directory %s: %s", directory, exc)
    writer = JsonLinesWriter(directory, max_bytes=_config.file_max_bytes(), fsync=_config.file_fsync())
    processor = RunFileProcessor(writer, flush_interval=_config.flush_interval())
    provider = TracerProvider(resource=Resource.create(), sampler=ALWAYS_ON, shutdown_on_exit=True)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer(INSTRUMENTATION_NAME, _VERSION, attributes={SCHEMA: SCHEMA_VERSION})
    pipeline = Pipeline(
        directory, provider, tracer, processor, _config.max_value_chars(), enabled=not _config.sdk_disabled()
    )
    processor.before_flush = pipeline.drain_open_recorders
    return pipeline
