"""pytest plugin (entry point `pytest11`): assert on an agent's decisions, keep a test session's spans.

Installed with the package; nothing happens until a test asks for it.

**`decision_runs` fixture.** Captures in memory every run recorded while the test runs, by `Runtime` or
the decorators, in any thread and whatever directory the agent writes to, rebuilt from its spans as the
Builder reads them::

    def test_agent_infers_budget(decision_runs):
        qualify("Acme")
        decision_runs.assert_chose("infer", intent="budget")
        decision_runs.assert_no_critical_problems()
        decision_runs.assert_tokens_within(2_000)
        assert decision_runs.run("qualify_leads").status == "completed"

See `DecisionRuns` for the API. Runs still open when the test reads them appear with status `running`
and the decisions recorded so far (every read flushes queued decisions first); their problems are known
only once they end.

**`--otel-decisions-dir=DIR`** (ini: `otel_decisions_dir`, relative to the ini file). Every span
recorded during the session goes to `DIR/traces.jsonl` as well: runs using the default directory write
there directly (`OTEL_DECISIONS_DIR` is set to DIR for the session, so subprocesses inherit it) and runs
written elsewhere (`Runtime(tmp_path)`, `directory=`) are copied there. Spans are appended; buffered
spans are written when the session ends, and one summary line tells how many runs were recorded where.
Then `otel-decisions patterns GOAL --source DIR`.

Without the fixture or the option the plugin registers no span observer and writes nothing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from otel_decisions import _config, contract
from otel_decisions.export import pipeline as _pipeline
from otel_decisions.export.file_processor import RunFileProcessor
from otel_decisions.export.file_writer import JsonLinesWriter
from otel_decisions.integrations._pytest_runs import DecisionRuns, SpanCapture, flush_open_runs

__all__ = ["DecisionRuns", "decision_runs"]

_OPTION = "--otel-decisions-dir"
_INI = "otel_decisions_dir"
_SESSION_PLUGIN = "otel_decisions-session-spans"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("otel_decisions", "otel_decisions: decisions of the agent under test")
    group.addoption(
        _OPTION,
        dest="otel_decisions_dir",
        metavar="DIR",
        default=None,
        help="also write the spans of every run recorded during the session to DIR/traces.jsonl, "
        "for `otel-decisions patterns GOAL --source DIR`",
    )
    parser.addini(
        _INI,
        "directory for the spans of every run recorded during the session (see --otel-decisions-dir); "
        "relative to the ini file",
        default="",
    )


def _session_directory(config: pytest.Config) -> Path | None:
    """DIR from the command line (relative to the invocation directory), else from the ini file."""
    given: str | None = config.getoption("otel_decisions_dir")
    base = config.invocation_params.dir
    if not given:
        given = str(config.getini(_INI) or "").strip()
        base = config.inipath.parent if config.inipath is not None else config.rootpath
    if not given:
        return None
    return (base / Path(given).expanduser()).resolve()


def pytest_configure(config: pytest.Config) -> None:
    directory = _session_directory(config)
    if directory is None:
        return
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise pytest.UsageError(f"{_OPTION}: cannot create {directory}: {exc}") from exc
    config.pluginmanager.register(SessionSpans(directory), _SESSION_PLUGIN)


@pytest.fixture
def decision_runs() -> Iterator[DecisionRuns]:
    """The runs recorded while this test runs, with assertion helpers (see `DecisionRuns`)."""
    flush_open_runs()  # spans queued by earlier tests' open runs are not this test's
    capture = SpanCapture()
    remove = _pipeline.add_span_observer(capture)
    try:
        yield DecisionRuns(capture)
    finally:
        remove()


class _Mirror(SpanProcessor):
    """The session's span observer: copies our spans to DIR, except those a pipeline writes there
    already, and counts the runs."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.file = RunFileProcessor(
            JsonLinesWriter(directory, max_bytes=_config.file_max_bytes(), fsync=_config.file_fsync()),
            flush_interval=0,  # no thread: written when each run ends, and at the end of the session
        )
        self.ended: set[str] = set()  # trace ids of ended runs
        self.seen: set[str] = set()  # trace ids of every run with a span
        self.goals: set[str] = set()
        self._writes_here: dict[int, tuple[Resource, bool]] = {}  # keyed by id(); the value pins it
        self._lock = threading.Lock()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        attributes = span.attributes or {}
        kind = contract.record_kind(attributes)
        if kind is None:
            return
        trace_id = str(attributes.get(contract.EXECUTION_ID, ""))
        with self._lock:
            self.seen.add(trace_id)
            if kind == contract.RECORD_RUN:
                self.ended.add(trace_id)
                self.goals.add(str(attributes.get(contract.GOAL_ID, "")))
        if not self._already_in_directory(span.resource):
            self.file.on_end(span)

    def _already_in_directory(self, resource: Resource) -> bool:
        """Whether the pipeline that made a span (each has its own Resource object) writes DIR."""
        known = self._writes_here.get(id(resource))
        if known is not None and known[0] is resource:
            return known[1]
        here = any(
            p.provider.resource is resource and p.directory == self.directory and p.processor in p.processors
            for p in list(_pipeline._every_pipeline)  # no public "every pipeline" API yet
        )
        self._writes_here[id(resource)] = (resource, here)
        return here

    def shutdown(self) -> None:
        self.file.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.file.force_flush(timeout_millis)


class SessionSpans:
    """The `--otel-decisions-dir` plugin object: mirrors the session's spans into DIR."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.mirror = _Mirror(directory)
        self._remove: Callable[[], None] | None = _pipeline.add_span_observer(self.mirror)
        self._previous_env = os.environ.get(_config.OTEL_DECISIONS_DIR)
        os.environ[_config.OTEL_DECISIONS_DIR] = str(directory)

    def stop(self) -> None:
        """Write what is buffered (queued decisions of open runs included) and stop observing."""
        if self._remove is None:
            return
        flush_open_runs()
        self._remove()
        self._remove = None
        self.mirror.shutdown()

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.stop()

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        ended, still_open = len(self.mirror.ended), len(self.mirror.seen - self.mirror.ended)
        line = (
            f"otel_decisions: {ended} run{'' if ended == 1 else 's'} of "
            f"{len(self.mirror.goals)} goal{'' if len(self.mirror.goals) == 1 else 's'} recorded"
        )
        if still_open:
            line += f" ({still_open} still open, written as far as recorded)"
        line += f" in {self.directory} (otel-decisions patterns GOAL --source {self.directory})"
        terminalreporter.write_line(line)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.stop()
        if self._previous_env is None:
            os.environ.pop(_config.OTEL_DECISIONS_DIR, None)
        else:
            os.environ[_config.OTEL_DECISIONS_DIR] = self._previous_env
