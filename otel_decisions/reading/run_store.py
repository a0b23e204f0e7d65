"""`RunStore`: the runs recorded under a path, kept current incrementally, small in memory.

Each `refresh()` stats the files and parses only bytes appended since the last read (files are keyed
by device and inode, so a rotated file is not read twice under its new name). Spans are merged by trace
id across lines and files. This is the seed's storage API (`runtime.storage`) and the data source of
`BuilderQuery`.

What is kept per trace is small: the run's compact facts (`analysis.facts.RunFacts`, all that cross-run
analyses read) and where the trace's lines are in the files (file, offset, length). A full `Run` is
rebuilt on demand by re-reading just those lines, and the most recently used runs are cached. So a
million spans cost a few hundred megabytes, not the gigabytes their models would; sources without
lines to point back to (protobuf files, Jaeger) keep their spans in memory instead.

Run lists are ordered newest first (by start time).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from otel_decisions.analysis.facts import RunFacts
from otel_decisions.contract import SpanRecord, newer_version, run_from_spans
from otel_decisions.models import Run, RunStatus, RunSummary
from otel_decisions.reading.jaeger import JaegerSource, is_url
from otel_decisions.reading.otlp_files import discover_files, paused_gc, read_lines, read_new_lines
from otel_decisions.reading.proto_files import is_binary_file, read_binary_file
from otel_decisions.reading.span_facts import TraceFacts

__all__ = ["Progress", "RunStore"]

_logger = logging.getLogger(__name__)

#: `progress(bytes_read, bytes_total)`, called while files are read; the last call has read == total.
Progress = Callable[[int, int], None]

#: Full runs kept after being rebuilt (a run of 10 decisions is a few kilobytes).
RUN_CACHE_SIZE: Final = 2048


#: How many leading bytes identify a file's content (a file rewritten in place, or a new file that
#: reuses a deleted file's inode, starts differently).
_HEAD_BYTES: Final = 4096


@dataclass(slots=True)
class _FileState:
    number: int  # index into RunStore._paths
    offset: int = 0
    stamp: tuple[int, int] | None = None  # (size, mtime) of a binary file when it was last read whole
    head: bytes = b""  # the first bytes read, to notice the file was replaced


@dataclass(slots=True)
class _Trace:
    facts: TraceFacts
    lines: list[tuple[int, int, int]] = field(default_factory=list)  # (file number, offset, length)
    records: dict[str, SpanRecord] | None = None  # spans of sources without lines (protobuf, Jaeger)
    version: int = 0


class RunStore:
    """Read access to the runs recorded under `source` (a directory, a file, or a glob), or held by the
    Jaeger query service at an `http(s)://` URL (see `otel_decisions.reading.jaeger`)."""

    def __init__(self, source: str | Path, *, progress: Progress | None = None) -> None:
        self.source = source
        self._progress = progress
        self._jaeger = JaegerSource.from_url(source) if isinstance(source, str) and is_url(source) else None
        self._files: dict[tuple[int, int], _FileState] = {}
        self._paths: list[Path] = []
        self._traces: dict[str, _Trace] = {}
        self._by_run_id: dict[str, str] = {}  # run id -> trace id
        self._dirty: set[str] = set()
        self._sorted: list[RunFacts] | None = None
        self._cache: OrderedDict[str, tuple[int, Run]] = OrderedDict()
        self._warned: set[tuple[str, int]] = set()
        self._lock = threading.RLock()
        self.source_error: str | None = None
        """Why the last read of the source failed (Jaeger unreachable, a file source unreadable), or None."""

    # --- loading ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read what was appended to the files since the last call."""
        with self._lock, paused_gc():
            if self._jaeger is not None:  # a down Jaeger must not break queries: keep what we have
                try:
                    self._keep(self._jaeger.fetch())
                    self.source_error = None
                except OSError as exc:
                    self.source_error = str(exc)
                    _logger.warning("otel_decisions: cannot read from Jaeger at %s: %s", self.source, exc)
            else:
                if self._replaced():
                    self._reset()
                self._read_files()
            self._index()

    def _replaced(self) -> bool:
        """Whether a file read before is gone, shorter, or holds other content now (then start over).

        Files only grow under a writer; rotation renames them (same inode, same content). Anything else —
        a deleted file, a truncated or rewritten one, a new file reusing a deleted file's inode — would
        leave runs listed that are no longer on disk, or resume reading at a meaningless offset.
        """
        if not self._files:
            return False
        present: dict[tuple[int, int], tuple[Path, int]] = {}
        for path in discover_files(self.source):
            try:
                st = os.stat(path)
            except OSError:
                continue
            present[(st.st_dev, st.st_ino)] = (path, st.st_size)
        for key, state in self._files.items():
            found = present.get(key)
            if found is None:
                return True
            path, size = found
            if state.stamp is not None or not state.head:
                continue  # binary files are re-read whole when they change
            if size < state.offset:
                return True
            try:
                with open(path, "rb") as f:
                    if f.read(len(state.head)) != state.head:
                        return True
            except OSError:
                return True
        return False

    def _reset(self) -> None:
        self._files.clear()
        self._paths.clear()
        self._traces.clear()
        self._by_run_id.clear()
        self._dirty.clear()
        self._cache.clear()
        self._sorted = None

    def _read_files(self) -> None:
        work: list[tuple[Path, os.stat_result, _FileState]] = []
        for path in discover_files(self.source):
            try:
                st = os.stat(path)
            except OSError:
                continue
            key = (st.st_dev, st.st_ino)
            state = self._files.get(key)
            if state is None:
                state = self._files[key] = _FileState(len(self._paths))
                self._paths.append(path)
            self._paths[state.number] = path  # the current name of a rotated file
            work.append((path, st, state))
        pending = [
            (path, st, state)
            for path, st, state in work
            if (st.st_size != state.offset if not is_binary_file(path) else state.stamp != _stamp(st))
        ]
        total = sum(
            st.st_size - (s.offset if not is_binary_file(p) and s.offset <= st.st_size else 0)
            for p, st, s in pending
        )
        done = 0

        def advance(size: int) -> None:
            nonlocal done
            done = min(total, done + size)
            if self._progress is not None:
                self._progress(done, total)

        for path, st, state in pending:
            if is_binary_file(path):  # protobuf/zstd: no lines to resume at, read whole when changed
                state.stamp = _stamp(st)
                read_binary_file(path, self._keep, self._warned)
                advance(st.st_size)
                continue
            if st.st_size < state.offset:  # truncated and rewritten: read it again
                self._forget_file(state.number)
                state.offset = 0
            number = state.number

            def sink(spans: list[SpanRecord], offset: int, length: int, number: int = number) -> None:
                self._add(spans, (number, offset, length))

            state.offset = read_new_lines(path, state.offset, sink, self._warned, advance)
            if not state.head and state.offset:
                state.head = _head(path, min(_HEAD_BYTES, state.offset))
        if pending and self._progress is not None:
            self._progress(total, total)

    def _add(self, spans: list[SpanRecord], line: tuple[int, int, int]) -> None:
        traces, dirty = self._traces, self._dirty
        for span in spans:
            trace = traces.get(span.trace_id)
            if trace is None:
                trace = traces[span.trace_id] = _Trace(TraceFacts(span.trace_id))
            if not trace.lines or trace.lines[-1] != line:
                trace.lines.append(line)
            trace.version += 1
            if trace.facts.add(span):
                dirty.add(span.trace_id)

    def _keep(self, spans: list[SpanRecord]) -> None:
        """Spans of a source without lines to re-read: kept in memory, de-duplicated by span id."""
        for span in spans:
            trace = self._traces.get(span.trace_id)
            if trace is None:
                trace = self._traces[span.trace_id] = _Trace(TraceFacts(span.trace_id))
            if trace.records is None:
                trace.records = {}
            seen = trace.records.get(span.span_id)
            if seen is None or newer_version(span, seen):
                trace.records[span.span_id] = span
            trace.version += 1
            if trace.facts.add(span):
                self._dirty.add(span.trace_id)

    def _forget_file(self, number: int) -> None:
        for trace in self._traces.values():
            if any(line[0] == number for line in trace.lines):
                trace.lines = [line for line in trace.lines if line[0] != number]
                trace.version += 1

    def _index(self) -> None:
        if not self._dirty:
            return
        for trace_id in self._dirty:
            run_id = self._traces[trace_id].facts.run_id
            if run_id is not None:
                self._by_run_id[run_id] = trace_id
        self._dirty.clear()
        self._sorted = None

    # --- facts (every run, compact) --------------------------------------------------------------
    def facts(self) -> list[RunFacts]:
        """The facts of every run, newest first."""
        self.refresh()
        with self._lock:
            if self._sorted is None:
                built = []
                for trace in self._traces.values():
                    try:
                        facts = trace.facts.facts()
                    except Exception:  # one malformed trace must not hide every other run
                        _logger.exception(
                            "otel_decisions: cannot read the run of trace %s", trace.facts.trace_id
                        )
                        continue
                    if facts is not None:
                        built.append(facts)
                built.sort(key=lambda f: f.started_ns, reverse=True)
                self._sorted = built
            return self._sorted

    def run_facts(self, run_id: str) -> RunFacts | None:
        """The facts of run `run_id`, or None."""
        self.refresh()
        with self._lock:
            trace_id = self._by_run_id.get(run_id)
            return self._traces[trace_id].facts.facts() if trace_id is not None else None

    def execution_id(self, run_id: str) -> str | None:
        """The trace id of run `run_id`, or None."""
        if type(run_id) is not str:  # run ids are text: anything else names no run
            return None
        self.refresh()
        with self._lock:
            trace_id = self._by_run_id.get(run_id)
            if trace_id is None:
                return None
            return self._traces[trace_id].facts.execution_id or trace_id

    # --- full runs (rebuilt on demand) -----------------------------------------------------------
    def spans(self, run_id: str) -> list[SpanRecord]:
        """The spans of run `run_id` (start order); [] when unknown."""
        self.refresh()
        trace_id = self._by_run_id.get(run_id)
        if trace_id is None:
            return []
        spans = self._spans_of({trace_id})[trace_id]
        return sorted(spans, key=lambda s: s.start_ns)

    def load_run(self, run_id: str) -> Run | None:
        """The run with id `run_id`, or None."""
        if type(run_id) is not str:  # run ids are text: anything else names no run
            return None
        self.refresh()
        trace_id = self._by_run_id.get(run_id)
        if trace_id is None:
            return None
        return self._runs_of([trace_id]).get(trace_id)

    def runs(self) -> list[Run]:
        """Every run, newest first (full models: prefer `facts()` for questions across many runs)."""
        order = [f.trace_id for f in self.facts()]
        built = self._runs_of(order)
        return [built[t] for t in order if t in built]

    def _runs_of(self, trace_ids: list[str]) -> dict[str, Run]:
        with self._lock, paused_gc():
            out: dict[str, Run] = {}
            missing: set[str] = set()
            for trace_id in trace_ids:
                cached = self._cache.get(trace_id)
                if cached is not None and cached[0] == self._traces[trace_id].version:
                    self._cache.move_to_end(trace_id)
                    out[trace_id] = cached[1]
                else:
                    missing.add(trace_id)
            if missing:
                spans = self._spans_of(missing)
                for trace_id, trace_spans in spans.items():
                    try:
                        run = run_from_spans(trace_spans)
                    except Exception:  # one malformed trace must not hide every other run
                        _logger.exception(
                            "otel_decisions: cannot rebuild the run of trace %s; skipped", trace_id
                        )
                        continue
                    if run is None:
                        continue
                    out[trace_id] = run
                    self._cache[trace_id] = (self._traces[trace_id].version, run)
                    self._cache.move_to_end(trace_id)
                while len(self._cache) > RUN_CACHE_SIZE:
                    self._cache.popitem(last=False)
            return out

    def _spans_of(self, trace_ids: set[str]) -> dict[str, list[SpanRecord]]:
        """The spans of `trace_ids`: kept records, and the lines they came from, each line read once."""
        found: dict[str, dict[str, SpanRecord]] = {t: {} for t in trace_ids}
        lines: set[tuple[int, int, int]] = set()
        for trace_id in trace_ids:
            trace = self._traces[trace_id]
            if trace.records:
                found[trace_id].update(trace.records)
            lines.update(trace.lines)
        by_file: dict[int, list[tuple[int, int]]] = {}
        for number, offset, length in sorted(lines):
            by_file.setdefault(number, []).append((offset, length))
        for number, file_lines in by_file.items():
            for spans in read_lines(self._paths[number], file_lines):
                for span in spans:
                    into = found.get(span.trace_id)
                    if into is not None:
                        seen = into.get(span.span_id)
                        if seen is None or newer_version(span, seen):  # an ended span beats snapshots
                            into[span.span_id] = span
        return {t: list(spans.values()) for t, spans in found.items()}

    # --- the seed's storage API ------------------------------------------------------------------
    def load_summary(self, run_id: str) -> RunSummary | None:
        """`RunSummary.from_run` of run `run_id`, or None."""
        run = self.load_run(run_id)
        return RunSummary.from_run(run) if run is not None else None

    def get_runs_by_goal(self, goal_id: str) -> list[str]:
        """Ids of the runs of goal `goal_id`, newest first."""
        return [f.run_id for f in self.facts() if f.goal_id == goal_id]

    def get_runs_by_status(self, status: str | RunStatus) -> list[str]:
        """Ids of the runs with `status`, newest first."""
        value = status.value if isinstance(status, RunStatus) else status
        return [f.run_id for f in self.facts() if f.status == value]

    def get_runs_by_node(self, node_id: str) -> list[str]:
        """Ids of the runs that executed node `node_id`, newest first."""
        return [f.run_id for f in self.facts() if node_id in f.nodes_executed]

    def list_all_runs(self) -> list[str]:
        """Ids of every run, newest first."""
        return [f.run_id for f in self.facts()]

    def list_all_goals(self) -> list[str]:
        """Every goal id, in order of its newest run."""
        return list(dict.fromkeys(f.goal_id for f in self.facts()))


def _head(path: Path, size: int) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except OSError:
        return b""


def _stamp(st: os.stat_result) -> tuple[int, int]:
    return (st.st_size, st.st_mtime_ns)
