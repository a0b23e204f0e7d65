"""`RunStore`: runs rebuilt from the span files under a path, kept current incrementally.

Each `refresh()` stats the files and parses only bytes appended since the last read (files are keyed
by device and inode, so a rotated file is not read twice under its new name). Spans are merged by trace
id across lines and files (and de-duplicated by span id); only traces that received spans are rebuilt.
This is the seed's storage API (`runtime.storage`) and the data source of `BuilderQuery`.

Run lists are ordered newest first (by start time).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from collections.abc import Callable
from pathlib import Path

from otel_decisions.analysis.facts import RunFacts
from otel_decisions.contract import EXECUTION_ID, SpanRecord, run_from_spans
from otel_decisions.models import Run, RunStatus, RunSummary
from otel_decisions.reading.jaeger import JaegerSource, is_url
from otel_decisions.reading.otlp_files import discover_files, paused_gc, read_new_lines
from otel_decisions.reading.proto_files import is_binary_file, read_binary_file

__all__ = ["Progress", "RunStore"]

Progress = Callable[[int, int], None]

_logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _FileState:
    offset: int
    stamp: tuple[int, int] | None = None  # (size, mtime) of a binary file when it was last read whole


class RunStore:
    """Read access to the runs recorded under `source` (a directory, a file, or a glob), or held by the
    Jaeger query service at an `http(s)://` URL (see `otel_decisions.reading.jaeger`)."""

    def __init__(self, source: str | Path, *, progress: Progress | None = None) -> None:
        self.source = source
        self._progress = progress
        self._jaeger = JaegerSource.from_url(source) if isinstance(source, str) and is_url(source) else None
        self._files: dict[tuple[int, int], _FileState] = {}
        self._traces: dict[str, dict[str, SpanRecord]] = {}
        self._runs: dict[str, Run] = {}  # trace id -> run
        self._by_run_id: dict[str, str] = {}  # run id -> trace id
        self._dirty: set[str] = set()
        self._warned: set[tuple[str, int]] = set()
        self._lock = threading.RLock()

    # --- loading ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read what was appended to the files since the last call and rebuild the touched runs."""
        with self._lock, paused_gc():
            if self._jaeger is not None:  # a down Jaeger must not break queries: keep what we have
                try:
                    self._add(self._jaeger.fetch())
                except OSError as exc:
                    _logger.warning("otel_decisions: cannot read from Jaeger at %s: %s", self.source, exc)
                self._rebuild()
                return
            for path in discover_files(self.source):
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                key = (st.st_dev, st.st_ino)
                state = self._files.get(key)
                if state is None:
                    state = self._files[key] = _FileState(0)
                if is_binary_file(path):  # proto/zstd: no lines to resume at, read whole when changed
                    if state.stamp != (st.st_size, st.st_mtime_ns):
                        state.stamp = (st.st_size, st.st_mtime_ns)
                        read_binary_file(path, self._add, self._warned)
                    continue
                if st.st_size < state.offset:  # truncated and rewritten: read it again
                    state.offset = 0
                if st.st_size > state.offset:
                    state.offset = read_new_lines(path, state.offset, self._add, self._warned)
            self._rebuild()

    def _add(self, spans: list[SpanRecord]) -> None:
        traces, dirty = self._traces, self._dirty
        for span in spans:
            trace = traces.get(span.trace_id)
            if trace is None:
                trace = traces[span.trace_id] = {}
            trace[span.span_id] = span
            dirty.add(span.trace_id)

    def _rebuild(self) -> None:
        for trace_id in self._dirty:
            try:
                run = run_from_spans(self._traces[trace_id].values())
            except Exception:  # one malformed trace must not hide every other run
                _logger.exception("otel_decisions: cannot rebuild the run of trace %s; skipped", trace_id)
                continue
            if run is None:
                continue
            self._runs[trace_id] = run
            self._by_run_id[run.id] = trace_id
        self._dirty.clear()

    def runs(self) -> list[Run]:
        """Every run, newest first."""
        self.refresh()
        return sorted(self._runs.values(), key=lambda r: r.started_at, reverse=True)

    def facts(self) -> list[RunFacts]:
        """The facts of every run, newest first."""
        self.refresh()
        by_trace = sorted(self._runs.items(), key=lambda kv: kv[1].started_at, reverse=True)
        return [RunFacts.from_run(run, trace) for trace, run in by_trace]

    def execution_id(self, run_id: str) -> str | None:
        """The trace id of run `run_id`, or None."""
        self.refresh()
        trace_id = self._by_run_id.get(run_id)
        if trace_id is None:
            return None
        spans = self._traces[trace_id]
        for span in spans.values():
            value = span.attributes.get(EXECUTION_ID)
            if isinstance(value, str):
                return value
        return trace_id

    def spans(self, run_id: str) -> list[SpanRecord]:
        """The spans of run `run_id` (start order); [] when unknown."""
        self.refresh()
        trace_id = self._by_run_id.get(run_id)
        if trace_id is None:
            return []
        return sorted(self._traces[trace_id].values(), key=lambda s: s.start_ns)

    # --- the seed's storage API ------------------------------------------------------------------
    def load_run(self, run_id: str) -> Run | None:
        """The run with id `run_id`, or None."""
        self.refresh()
        trace_id = self._by_run_id.get(run_id)
        return self._runs.get(trace_id) if trace_id is not None else None

    def load_summary(self, run_id: str) -> RunSummary | None:
        """`RunSummary.from_run` of run `run_id`, or None."""
        run = self.load_run(run_id)
        return RunSummary.from_run(run) if run is not None else None

    def get_runs_by_goal(self, goal_id: str) -> list[str]:
        """Ids of the runs of goal `goal_id`, newest first."""
        return [r.id for r in self.runs() if r.goal_id == goal_id]

    def get_runs_by_status(self, status: str | RunStatus) -> list[str]:
        """Ids of the runs with `status`, newest first."""
        value = status.value if isinstance(status, RunStatus) else status
        return [r.id for r in self.runs() if r.status.value == value]

    def get_runs_by_node(self, node_id: str) -> list[str]:
        """Ids of the runs that executed node `node_id`, newest first."""
        return [r.id for r in self.runs() if node_id in r.metrics.nodes_executed]

    def list_all_runs(self) -> list[str]:
        """Ids of every run, newest first."""
        return [r.id for r in self.runs()]

    def list_all_goals(self) -> list[str]:
        """Every goal id, in order of its newest run."""
        return list(dict.fromkeys(r.goal_id for r in self.runs()))
