"""Finished spans made without a tracer, and snapshots of spans still open.

The seed's `Runtime` records a decision at one instant and its outcome at another: neither is a span
that is *current* while work runs, so each is made directly as a finished SDK `ReadableSpan` (the
object every span processor and exporter consumes) with the pipeline's resource and our
instrumentation scope, written to the file at once, and handed to the other processors later. That
costs a fraction of a tracer-made span, and a decision is on disk before `decide` returns.

A span still open (a run's root, a decorated decision whose work is running) is not in any exporter's
hands until it ends; a process that dies first would leave no trace of it. Its snapshot, a copy
ended at the snapshot's time and marked `contract.SPAN_OPEN`, is written to the file only; the reader
prefers the span's final version and treats a lone snapshot as still running.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from otel_decisions import contract as c
from otel_decisions.export.pipeline import Pipeline

__all__ = ["finished_span", "snapshot"]

_SAMPLED: Final = TraceFlags(TraceFlags.SAMPLED)
_UNSET: Final = Status(StatusCode.UNSET)


def finished_span(
    pipeline: Pipeline,
    name: str,
    parent: SpanContext,
    attributes: dict[str, Any],
    start_ns: int,
    end_ns: int,
    error: str | None = None,
    failed: bool = False,
) -> ReadableSpan:
    """A finished child of `parent` in its trace, with a new span id; ERROR status when `failed`."""
    context = SpanContext(parent.trace_id, pipeline.new_span_id(), False, _SAMPLED)
    return ReadableSpan(
        name=name,
        context=context,
        parent=parent,
        resource=pipeline.provider.resource,
        attributes=attributes,
        kind=SpanKind.INTERNAL,
        status=Status(StatusCode.ERROR, error) if failed else _UNSET,
        start_time=start_ns,
        end_time=end_ns,
        instrumentation_scope=pipeline.scope,
    )


def snapshot(
    pipeline: Pipeline,
    name: str,
    context: SpanContext,
    parent: SpanContext | None,
    attributes: Mapping[str, Any],
    start_ns: int,
    at_ns: int,
    events: Sequence[Event] = (),
    links: Sequence[Link] = (),
) -> ReadableSpan:
    """A copy of an open span as it stands at `at_ns`, marked as open."""
    return ReadableSpan(
        name=name,
        context=context,
        parent=parent,
        resource=pipeline.provider.resource,
        attributes={**attributes, c.SPAN_OPEN: True},
        events=events,
        links=links,
        kind=SpanKind.INTERNAL,
        status=_UNSET,
        start_time=start_ns,
        end_time=max(at_ns, start_ns),
        instrumentation_scope=pipeline.scope,
    )
