"""OTLP export end to end (issue 4): real OTLP receivers on 127.0.0.1, gRPC and HTTP/protobuf.

Every assertion is on what a receiver decoded with `opentelemetry-proto` (see `otlp_receiver.py`): trace
id = execution id, parent/child structure, attribute values, problem events, status, resource, headers.
Also: the standard `OTEL_*` variables and `otel_decisions.configure()`, a TracerProvider the user set
(joined, never replaced), `opentelemetry-instrument`, and endpoints that are down, slow or refusing.

Process-global state: `configure()` settings (reset after every test, once monkeypatch has restored the
environment) and the global TracerProvider, which can be set once per process and may already be set by
another test file. While a global SDK provider is set, a pipeline joins it *instead of* exporting OTLP
itself (by design: the user's provider exports, so nothing is sent twice). The in-process export tests
therefore pass `configure(join_global_provider=False)` and take every other setting from the
environment; the zero-configuration path (no `configure()` call at all) runs in subprocesses, where no
provider is set.

Bounds, all generous and behavioural (not benchmarks):
* recording a run (`start_run` … `end_run`) against a down, slow or refusing endpoint: < 1 s, also while
  an earlier export hangs (export runs on a background thread);
* spans of an ended run reach a healthy receiver without any flush call: < 10 s (RunEndNudge);
* a process that recorded a run against a slow or unreachable endpoint, with
  `OTEL_EXPORTER_OTLP_TIMEOUT=1`, is gone in < 15 s in all (interpreter start included), and its exit
  (from its last statement on) takes at most the OTLP timeout + 1 s: the bound `otel_decisions.export.otlp`
  documents ("at interpreter exit … waits at most the OTLP timeout"). The local file always has the run.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Final

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otlp_receiver import FlatSpan, GrpcReceiver, HttpReceiver, Mode, Receiver, free_port

import otel_decisions
from otel_decisions import BuilderQuery, ConfigError, Runtime
from otel_decisions import contract as c
from otel_decisions.export.pipeline import current_settings, pipeline_for
from otel_decisions.integrations.instrumentor import DecisionsInstrumentor
from otel_decisions.models import RunStatus
from otel_decisions.reading.run_store import RunStore
from otel_decisions.recording import context as propagation

PROTOCOLS: Final = ("grpc", "http/protobuf")
ARRIVAL_TIMEOUT: Final = 10.0
"""Seconds a healthy receiver may take to get the spans of an ended run (no flush is called)."""
RUN_BOUND: Final = 2.5
"""Seconds recording a whole run may take while the endpoint is down, slow or refusing: half the slow
server's 5 s, so a run that waited for the server fails, while a loaded machine does not."""
EXIT_BOUND: Final = 15.0
"""Seconds a process recording one run may take to exit against a bad endpoint (OTLP timeout 1 s)."""
EXIT_MARGIN: Final = 2.0
"""Seconds allowed on top of the OTLP timeout (1 s) for interpreter teardown at exit; 3 s in all, under
the slow server's 5 s, so an exit that waited for the server, or for two timeouts in a row, fails."""
SUBPROCESS_TIMEOUT: Final = 60.0

measured: dict[str, float] = {}
"""Wall times, printed with `-s` at the end of the module (see `_report`)."""


# ============================================================================== fixtures, helpers
@pytest.fixture(autouse=True)
def otel_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """A clean `OTEL_*` environment and default settings; both restored (in that order) afterwards."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    otel_decisions.configure()
    yield monkeypatch
    monkeypatch.undo()
    otel_decisions.configure()


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    for name, seconds in sorted(measured.items()):
        print(f"[otlp bounds] {name}: {seconds:.3f} s")


def make_receiver(protocol: str, mode: Mode = "normal", delay: float = 5.0, **kwargs: Any) -> Receiver:
    if protocol == "grpc":
        return GrpcReceiver(mode, delay)
    return HttpReceiver(mode, delay, **kwargs)


def point_env_at(monkeypatch: pytest.MonkeyPatch, endpoint: str, protocol: str) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)


def configure_from_env() -> None:
    """Every setting from the environment; only joining is off (see the module docstring)."""
    otel_decisions.configure(join_global_provider=False)


def shutdown_seconds(directory: Path) -> float:
    """Shut the pipeline of `directory` down (what interpreter exit does) and return how long it took."""
    provider = pipeline_for(directory).provider
    started = time.perf_counter()
    provider.shutdown()
    return time.perf_counter() - started


LOOKUP_OPTIONS: Final[list[dict[str, Any]]] = [
    {
        "id": "search",
        "description": "Search the order system",
        "action_type": "tool_call",
        "action_params": {"tool": "order_search"},
    },
    {"id": "ask", "description": "Ask the customer", "action_type": "ask_user"},
]
REFUND_OPTIONS: Final[list[dict[str, Any]]] = [
    {
        "id": "refund",
        "description": "Refund through the payments API",
        "action_type": "tool_call",
        "action_params": {"tool": "refund_api"},
    }
]


@dataclass(frozen=True, slots=True)
class SupportRun:
    run_id: str
    execution_id: str
    lookup_id: str
    refund_id: str
    problem_id: str


def record_support_run(runtime: Runtime) -> SupportRun:
    """A failed run: a successful tool call, a failed tool call and a problem (5 spans)."""
    run_id = runtime.start_run("support_ticket", "Resolve ticket 42", {"ticket": 42})
    execution_id = runtime.execution_id
    lookup = runtime.decide(
        intent="Find the order",
        options=LOOKUP_OPTIONS,
        chosen="search",
        reasoning="The ticket names an order number",
        node_id="lookup",
    )
    runtime.record_outcome(lookup, success=True, result={"order": "A-17"}, tokens_used=12, latency_ms=30)
    refund = runtime.decide(
        intent="Refund the order",
        options=REFUND_OPTIONS,
        chosen="refund",
        reasoning="The policy allows refunds",
        node_id="act",
    )
    runtime.record_outcome(refund, success=False, error="payments API answered 502")
    problem = runtime.report_problem(
        "error",
        "Refund failed",
        decision_id=refund,
        root_cause="payments outage",
        suggested_fix="Retry later",
    )
    runtime.end_run(success=False, narrative="Could not refund the order")
    return SupportRun(run_id, execution_id, lookup, refund, problem)


def of_trace(spans: list[FlatSpan], execution_id: str) -> list[FlatSpan]:
    return [s for s in spans if s["trace_id"] == execution_id]


def one(spans: list[FlatSpan], name: str) -> FlatSpan:
    found = [s for s in spans if s["name"] == name]
    assert len(found) == 1, f"{name}: {[s['name'] for s in spans]}"
    return found[0]


def assert_support_trace(spans: list[FlatSpan], run: SupportRun) -> None:
    """What a receiver decoded for `record_support_run`: structure, values, status, problem event."""
    assert len(spans) == 5, [s["name"] for s in spans]
    assert {s["trace_id"] for s in spans} == {run.execution_id}
    assert len({s["span_id"] for s in spans}) == 5
    root = one(spans, "invoke_agent support_ticket")
    assert root["parent_span_id"] is None
    plans = {s["attributes"][c.DECISION_ID]: s for s in spans if s["name"] == "plan"}
    assert set(plans) == {run.lookup_id, run.refund_id}
    assert all(p["parent_span_id"] == root["span_id"] for p in plans.values())
    search = one(spans, "execute_tool order_search")
    refund = one(spans, "execute_tool refund_api")
    assert search["parent_span_id"] == plans[run.lookup_id]["span_id"]
    assert refund["parent_span_id"] == plans[run.refund_id]["span_id"]
    for span in spans:
        a = span["attributes"]
        assert a[c.EXECUTION_ID] == run.execution_id
        assert a[c.RUN_ID] == run.run_id
        assert a[c.GOAL_ID] == "support_ticket"
        assert span["scope_name"] == c.INSTRUMENTATION_NAME
        assert span["scope_attributes"] == {c.SCHEMA: c.SCHEMA_VERSION}

    # the run span: ERROR, its metrics, its problem event
    a = root["attributes"]
    assert (root["status_code"], root["status_message"]) == (2, "Could not refund the order")
    assert a[c.ERROR_TYPE] == c.ERROR_TYPE_OTHER
    assert a[c.GEN_AI_OPERATION_NAME] == c.OP_INVOKE_AGENT
    assert a[c.SCHEMA] == c.SCHEMA_VERSION
    assert a[c.RUN_STATUS] == RunStatus.FAILED.value
    assert a[c.RUN_GOAL_DESCRIPTION] == "Resolve ticket 42"
    assert json.loads(a[c.RUN_INPUT]) == {"ticket": 42}
    assert (a[c.RUN_TOTAL_DECISIONS], a[c.RUN_SUCCESSFUL], a[c.RUN_FAILED]) == (2, 1, 1)
    assert (a[c.RUN_TOKENS], a[c.RUN_PROBLEM_COUNT], a[c.RUN_MAX_SEVERITY]) == (12, 1, "error")
    assert a[c.RUN_NODES] == ["lookup", "act"]
    problems = [e for e in root["events"] if e["name"] == c.PROBLEM_EVENT]
    assert len(problems) == 1
    assert problems[0]["attributes"] == {
        c.PROBLEM_ID: run.problem_id,
        c.PROBLEM_SEVERITY: "error",
        c.PROBLEM_DESCRIPTION: "Refund failed",
        c.PROBLEM_ROOT_CAUSE: "payments outage",
        c.PROBLEM_DECISION_ID: run.refund_id,
        c.PROBLEM_SUGGESTED_FIX: "Retry later",
    }

    # decisions
    lookup = plans[run.lookup_id]["attributes"]
    assert plans[run.lookup_id]["status_code"] == 0
    assert lookup[c.GEN_AI_OPERATION_NAME] == c.OP_PLAN
    assert (lookup[c.DECISION_SEQUENCE], lookup[c.DECISION_NODE]) == (0, "lookup")
    assert (lookup[c.DECISION_INTENT], lookup[c.DECISION_CHOSEN]) == ("Find the order", "search")
    assert lookup[c.DECISION_REASONING] == "The ticket names an order number"
    assert [o["id"] for o in json.loads(lookup[c.DECISION_OPTIONS])] == ["search", "ask"]
    assert plans[run.refund_id]["attributes"][c.DECISION_SEQUENCE] == 1

    # outcomes: the successful tool call is UNSET, the failed one ERROR with error.type
    s = search["attributes"]
    assert search["status_code"] == 0 and c.ERROR_TYPE not in s
    assert (s[c.GEN_AI_OPERATION_NAME], s[c.GEN_AI_TOOL_NAME]) == (c.OP_EXECUTE_TOOL, "order_search")
    assert (s[c.OUTCOME_DECISION_ID], s[c.OUTCOME_SUCCESS]) == (run.lookup_id, True)
    assert (s[c.OUTCOME_TOKENS], s[c.OUTCOME_LATENCY]) == (12, 30)
    assert json.loads(s[c.OUTCOME_RESULT]) == {"order": "A-17"}
    r = refund["attributes"]
    assert (refund["status_code"], refund["status_message"]) == (2, "payments API answered 502")
    assert r[c.ERROR_TYPE] == c.ERROR_TYPE_OTHER
    assert (r[c.OUTCOME_DECISION_ID], r[c.OUTCOME_SUCCESS]) == (run.refund_id, False)
    assert r[c.OUTCOME_ERROR] == "payments API answered 502"
    assert r[c.GEN_AI_TOOL_NAME] == "refund_api"


def assert_file_has_same_spans(directory: Path, run_id: str, received: list[FlatSpan]) -> None:
    """The local file holds exactly the spans the receiver got: same ids, parents, names, status, values."""

    def comparable_events(events: list[Any]) -> list[tuple[str, dict[str, Any]]]:
        return [(e[0], e[1]) for e in events]

    from_file = {
        s.span_id: (
            s.trace_id,
            s.parent_span_id or None,
            s.name,
            s.status_code,
            s.status_message,
            s.attributes,
            comparable_events([(e.name, e.attributes) for e in s.events]),
        )
        for s in RunStore(directory).spans(run_id)
    }
    from_receiver = {
        s["span_id"]: (
            s["trace_id"],
            s["parent_span_id"],
            s["name"],
            s["status_code"],
            s["status_message"],
            s["attributes"],
            comparable_events([(e["name"], e["attributes"]) for e in s["events"]]),
        )
        for s in received
    }
    assert from_file == from_receiver


def assert_run_in_file(directory: Path, run_id: str, status: RunStatus, decisions: int) -> None:
    run = BuilderQuery(directory).get_full_run(run_id)
    assert run is not None, f"run {run_id} is not in {directory}"
    assert run.status == status
    assert len(run.decisions) == decisions


# ------------------------------------------------------------------------------------- subprocesses
RUN_SCRIPT: Final = """
import sys
import time
import otel_decisions

runtime = otel_decisions.Runtime(sys.argv[1])
for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 1):
    run_id = runtime.start_run("exit_flush", "Recorded by a process that exits at once")
    decision = runtime.decide(
        intent="Pick the only option",
        options=[{"id": "a", "description": "A"}],
        chosen="a",
        reasoning="There is no other",
    )
    runtime.record_outcome(decision, success=True, result={"ok": True})
    execution_id = runtime.execution_id
    runtime.end_run(success=True)
print("RUN", run_id, execution_id)
print("END", repr(time.time()), flush=True)  # the agent's work is done: what follows is exit
"""

INSTRUMENTED_SCRIPT: Final = """
import sys
import otel_decisions
from otel_decisions.integrations.instrumentor import DecisionsInstrumentor

assert DecisionsInstrumentor().is_instrumented_by_opentelemetry, "instrument() was not called"

@otel_decisions.decision("Answer", options=[{"id": "answer", "description": "Directly"}], chosen="answer")
def answer() -> str:
    return "42"

with otel_decisions.run("instrumented", directory=sys.argv[1]) as run:
    answer()
print("RUN", run.run_id, run.execution_id)
"""


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any `OTEL_*` variable, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(settings)
    return env


@dataclass(frozen=True, slots=True)
class Finished:
    run_id: str
    execution_id: str
    seconds: float
    """Wall time of the whole process."""
    exit_seconds: float | None
    """From the script's last statement (its `END` line) to the process being gone: the exit."""


def run_python(args: list[str], env: dict[str, str], cwd: Path) -> Finished:
    """Run `args` (which print `RUN <run id> <execution id>`, maybe `END <time>`); fails if they fail."""
    started = time.perf_counter()
    done = subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, check=False
    )
    ended, elapsed = time.time(), time.perf_counter() - started
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    runs = [line.split() for line in done.stdout.splitlines() if line.startswith("RUN ")]
    assert len(runs) == 1, done.stdout + done.stderr
    ends = [float(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("END ")]
    return Finished(runs[0][1], runs[0][2], elapsed, ended - ends[0] if ends else None)


# ------------------------------------------------------------------------- the user's SDK provider
_USER_EXPORTER: Final = InMemorySpanExporter()
_user_provider: list[SdkTracerProvider] = []


def user_provider() -> tuple[SdkTracerProvider, InMemorySpanExporter]:
    """The global SDK TracerProvider (set here unless another test file already set one), with an
    in-memory exporter of ours among its processors; the exporter is cleared on every call."""
    if not _user_provider:
        if not isinstance(trace.get_tracer_provider(), SdkTracerProvider):
            trace.set_tracer_provider(SdkTracerProvider())
        provider = trace.get_tracer_provider()
        assert isinstance(provider, SdkTracerProvider), "a non-SDK global TracerProvider is set"
        provider.add_span_processor(SimpleSpanProcessor(_USER_EXPORTER))
        _user_provider.append(provider)
    _USER_EXPORTER.clear()
    return _user_provider[0], _USER_EXPORTER


# ================================================================================ settings from env
def test_standard_otel_variables_are_honoured(otel_env: pytest.MonkeyPatch) -> None:
    """Traces-specific variables win over the generic ones; the timeout is in seconds (values above
    300 are read as the milliseconds of older SDKs); `OTEL_TRACES_EXPORTER` selects exporters."""
    otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector.example:4318")
    otel_env.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    otel_env.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=secret123,x-tenant=acme")
    otel_env.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "7")
    otel_env.setenv("OTEL_SERVICE_NAME", "support-agent")
    settings = otel_decisions.configure()
    assert settings.otlp_enabled
    assert settings.otlp_endpoint == "http://collector.example:4318"
    assert settings.otlp_protocol == "http/protobuf"
    assert settings.otlp_headers == {"x-api-key": "secret123", "x-tenant": "acme"}
    assert settings.otlp_timeout == 7.0
    assert settings.service_name == "support-agent"
    assert settings.local_file and settings.join_global_provider
    assert current_settings() == settings

    otel_env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces.example:4317")
    otel_env.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")
    otel_env.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-only=traces")
    otel_env.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2500")
    otel_env.setenv("OTEL_TRACES_EXPORTER", "otlp,console")
    settings = otel_decisions.configure()
    assert settings.otlp_endpoint == "http://traces.example:4317"
    assert settings.otlp_protocol == "grpc"
    assert settings.otlp_headers == {"x-only": "traces"}
    assert settings.otlp_timeout == 2.5
    assert settings.exporters == frozenset({"otlp", "console"})

    # arguments win over the environment
    settings = otel_decisions.configure(otlp_protocol="http/protobuf", otlp_timeout=3, exporters=["none"])
    assert (settings.otlp_protocol, settings.otlp_timeout) == ("http/protobuf", 3.0)
    assert not settings.otlp_enabled


def test_no_endpoint_means_no_otlp_export(tmp_path: Path, otel_env: pytest.MonkeyPatch) -> None:
    """Zero configuration: the local file only; no OTLP processor exists, so nothing can be sent."""
    configure_from_env()
    assert current_settings().otlp_endpoint is None
    assert not current_settings().otlp_enabled
    runtime = Runtime(tmp_path)
    run = record_support_run(runtime)
    pipeline = pipeline_for(tmp_path)
    assert pipeline.provider.force_flush()
    processors = pipeline.provider._active_span_processor._span_processors
    assert not any(isinstance(p, BatchSpanProcessor) for p in processors), processors
    assert_run_in_file(tmp_path, run.run_id, RunStatus.FAILED, 2)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_traces_exporter_none_sends_nothing_but_keeps_the_file(
    tmp_path: Path, otel_env: pytest.MonkeyPatch, protocol: str
) -> None:
    with make_receiver(protocol) as receiver:
        point_env_at(otel_env, receiver.endpoint, protocol)
        otel_env.setenv("OTEL_TRACES_EXPORTER", "none")
        configure_from_env()
        assert not current_settings().otlp_enabled
        run = record_support_run(Runtime(tmp_path))
        assert pipeline_for(tmp_path).provider.force_flush()  # whatever was pending is out now
        assert receiver.attempts == 0
    assert_run_in_file(tmp_path, run.run_id, RunStatus.FAILED, 2)


# ==================================================================================== end to end
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_runtime_run_reaches_the_receiver_from_env_settings(
    tmp_path: Path, otel_env: pytest.MonkeyPatch, protocol: str
) -> None:
    """Trace id = execution id, structure, values, problem event, status, resource and headers; the
    spans arrive after `end_run` with no flush call (RunEndNudge); the file has the same spans."""
    with make_receiver(protocol) as receiver:
        point_env_at(otel_env, receiver.endpoint, protocol)
        otel_env.setenv("OTEL_SERVICE_NAME", "support-agent")
        otel_env.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,team=agents")
        otel_env.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=secret123,x-tenant=acme")
        configure_from_env()
        runtime = Runtime(tmp_path)
        run = record_support_run(runtime)
        ended = time.perf_counter()
        spans = receiver.wait_for_spans(5, ARRIVAL_TIMEOUT)
        measured[f"arrival after end_run, no flush ({protocol})"] = time.perf_counter() - ended
        requests = receiver.requests()

    assert_support_trace(of_trace(spans, run.execution_id), run)
    for span in spans:
        resource = span["resource"]
        assert resource["service.name"] == "support-agent"
        assert resource["deployment.environment"] == "test"
        assert resource["team"] == "agents"
    for received in requests:
        assert received.headers["x-api-key"] == "secret123"
        assert received.headers["x-tenant"] == "acme"
    if protocol == "http/protobuf":
        assert {r.path for r in requests} == {"/v1/traces"}
        assert {r.headers["content-type"] for r in requests} == {"application/x-protobuf"}
    assert_file_has_same_spans(tmp_path, run.run_id, spans)
    assert_run_in_file(tmp_path, run.run_id, RunStatus.FAILED, 2)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_decorated_run_reaches_the_receiver_from_configure(tmp_path: Path, protocol: str) -> None:
    """`otel_decisions.run(..., directory=)` + `decision`, configured by arguments only."""

    @otel_decisions.decision("Find the order", options=LOOKUP_OPTIONS, chosen="search", node_id="lookup")
    def lookup(ticket: int) -> dict[str, str]:
        return {"order": f"A-{ticket}"}

    @otel_decisions.decision("Refund the order", options=REFUND_OPTIONS, chosen="refund", node_id="act")
    def refund(order: str) -> None:
        raise ConnectionError(f"payments API answered 502 for {order}")

    with make_receiver(protocol) as receiver:
        otel_decisions.configure(
            otlp_endpoint=receiver.endpoint,
            otlp_protocol=protocol,
            otlp_headers={"x-api-key": "from-configure"},
            service_name="decorated-agent",
            join_global_provider=False,
        )
        with otel_decisions.run("support_ticket", "Resolve ticket 17", directory=tmp_path) as handle:
            order = lookup(17)
            with pytest.raises(ConnectionError):
                refund(order["order"])
            handle.report_problem("error", "Refund failed", root_cause="payments outage")
            handle.fail("Could not refund the order")
        spans = of_trace(receiver.wait_for_spans(5, ARRIVAL_TIMEOUT), handle.execution_id)
        requests = receiver.requests()

    assert len(spans) == 5, [s["name"] for s in spans]
    root = one(spans, "invoke_agent support_ticket")
    assert root["parent_span_id"] is None
    assert (root["status_code"], root["attributes"][c.RUN_STATUS]) == (2, RunStatus.FAILED.value)
    plans = {s["attributes"][c.DECISION_INTENT]: s for s in spans if s["name"] == "plan"}
    assert all(p["parent_span_id"] == root["span_id"] for p in plans.values())
    search = one(spans, "execute_tool order_search")
    failed = one(spans, "execute_tool refund_api")
    assert search["parent_span_id"] == plans["Find the order"]["span_id"]
    assert failed["parent_span_id"] == plans["Refund the order"]["span_id"]
    assert search["status_code"] == 0
    assert json.loads(search["attributes"][c.OUTCOME_RESULT]) == {"order": "A-17"}
    assert failed["status_code"] == 2
    assert failed["status_message"] == "payments API answered 502 for A-17"
    assert failed["attributes"][c.ERROR_TYPE] == "ConnectionError"
    assert failed["attributes"][c.OUTCOME_SUCCESS] is False
    (problem,) = [e for e in root["events"] if e["name"] == c.PROBLEM_EVENT]
    assert problem["attributes"][c.PROBLEM_DESCRIPTION] == "Refund failed"
    assert problem["attributes"][c.PROBLEM_ROOT_CAUSE] == "payments outage"
    assert {s["resource"]["service.name"] for s in spans} == {"decorated-agent"}
    assert {r.headers["x-api-key"] for r in requests} == {"from-configure"}
    assert_file_has_same_spans(tmp_path, handle.run_id, spans)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_traces_specific_endpoint_and_protocol_win(
    tmp_path: Path, otel_env: pytest.MonkeyPatch, protocol: str
) -> None:
    """The generic variables point at nothing (a closed port, the other protocol); the traces-specific
    ones at the receiver."""
    other = "grpc" if protocol == "http/protobuf" else "http/protobuf"
    with make_receiver(protocol) as receiver:
        point_env_at(otel_env, f"http://127.0.0.1:{free_port()}", other)
        traces_endpoint = receiver.endpoint + ("/v1/traces" if protocol == "http/protobuf" else "")
        otel_env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces_endpoint)
        otel_env.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", protocol)
        configure_from_env()
        run = record_support_run(Runtime(tmp_path))
        spans = of_trace(receiver.wait_for_spans(5, ARRIVAL_TIMEOUT), run.execution_id)
    assert_support_trace(spans, run)


def test_traces_endpoint_with_a_custom_path_is_used_as_is(
    tmp_path: Path, otel_env: pytest.MonkeyPatch
) -> None:
    """The OTLP exporter spec: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is the full URL, used as-is (only
    the generic `OTEL_EXPORTER_OTLP_ENDPOINT` gets `/v1/traces` appended). A Collector behind a proxy
    under `/ingest/traces` must receive the spans there."""
    with HttpReceiver(path="/ingest/traces") as receiver:
        otel_env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.endpoint + "/ingest/traces")
        otel_env.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        configure_from_env()
        run = record_support_run(Runtime(tmp_path))
        assert pipeline_for(tmp_path).provider.force_flush()
        receiver.wait_for_attempts(1, ARRIVAL_TIMEOUT)
        spans = of_trace(receiver.spans(), run.execution_id)
    assert len(spans) == 5, f"posted to {receiver.attempted_paths}, not /ingest/traces"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_headers_in_the_standard_format_reach_the_receiver(
    tmp_path: Path, otel_env: pytest.MonkeyPatch, protocol: str
) -> None:
    """`OTEL_EXPORTER_OTLP_HEADERS` is W3C-baggage-like: values are percent-encoded, and a header name
    may be written in any case (`Authorization=Bearer%20token`, as the OTel SDK itself parses it:
    names lower-cased, values decoded). gRPC metadata keys must be lower-case, or nothing is sent."""
    with make_receiver(protocol) as receiver:
        point_env_at(otel_env, receiver.endpoint, protocol)
        otel_env.setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20tok3n,X-Tenant=acme")
        configure_from_env()
        run = record_support_run(Runtime(tmp_path))
        assert pipeline_for(tmp_path).provider.force_flush()
        requests = receiver.requests()
        spans = of_trace(receiver.spans(), run.execution_id)
    assert len(spans) == 5, f"{protocol}: nothing reached the receiver ({receiver.attempts} request(s))"
    assert {r.headers.get("authorization") for r in requests} == {"Bearer tok3n"}
    assert {r.headers.get("x-tenant") for r in requests} == {"acme"}


# ============================================================================ bad endpoints, bounds
@pytest.mark.parametrize("mode", ["down", "slow", "error"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_down_slow_or_failing_endpoint_never_blocks_the_agent(
    tmp_path: Path, otel_env: pytest.MonkeyPatch, protocol: str, mode: str
) -> None:
    """Export runs on a background thread: each run (including ones ended while an export hangs on a
    server that sleeps 5 s, or is being retried) returns well before that server answers, raises
    nothing, and is fully in the local file. Shutting the pipeline down (what interpreter exit does)
    is bounded by the OTLP timeout per export in flight."""
    timeout = 1.0
    with ExitStack() as stack:
        receiver: Receiver | None = None
        if mode == "down":
            endpoint = f"http://127.0.0.1:{free_port()}"
        else:
            receiver = stack.enter_context(make_receiver(protocol, "slow" if mode == "slow" else "error"))
            endpoint = receiver.endpoint
        point_env_at(otel_env, endpoint, protocol)
        otel_env.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", str(int(timeout)))
        configure_from_env()
        runtime = Runtime(tmp_path)

        started = time.perf_counter()
        first = record_support_run(runtime)
        first_seconds = time.perf_counter() - started
        if receiver is not None:  # an export is now hanging on the server, or was refused
            receiver.wait_for_attempts(1, ARRIVAL_TIMEOUT)
        started = time.perf_counter()
        later = [record_support_run(runtime) for _ in range(2)]
        later_seconds = (time.perf_counter() - started) / 2
        measured[f"run against {mode} endpoint ({protocol}), worst of first/later"] = max(
            first_seconds, later_seconds
        )
        assert first_seconds < RUN_BOUND, f"first run took {first_seconds:.3f} s"
        assert later_seconds < RUN_BOUND, f"a run during a hanging export took {later_seconds:.3f} s"

        for run in (first, *later):
            assert_run_in_file(tmp_path, run.run_id, RunStatus.FAILED, 2)
            full = BuilderQuery(tmp_path).get_full_run(run.run_id)
            assert full is not None and [p.description for p in full.problems] == ["Refund failed"]
        if receiver is not None and mode == "error":
            assert receiver.requests() == []

        seconds = shutdown_seconds(tmp_path)  # while the endpoint still misbehaves
        measured[f"pipeline shutdown, {mode} endpoint ({protocol}, timeout {timeout:g} s)"] = seconds
        assert seconds < 3 * timeout + 2.0, f"shutdown took {seconds:.3f} s"


@pytest.mark.parametrize("mode", ["down", "slow"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_process_exit_is_bounded_by_the_otlp_timeout(tmp_path: Path, protocol: str, mode: str) -> None:
    """A process that records one run against an unreachable or slow (5 s) endpoint and exits, with
    `OTEL_EXPORTER_OTLP_TIMEOUT=1`, is gone in < 15 s (interpreter start included); its file has the run."""
    with ExitStack() as stack:
        receiver: Receiver | None = None
        if mode == "down":
            endpoint = f"http://127.0.0.1:{free_port()}"
        else:
            receiver = stack.enter_context(make_receiver(protocol, "slow", delay=5.0))
            endpoint = receiver.endpoint
        env = clean_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
            OTEL_EXPORTER_OTLP_TIMEOUT="1",
        )
        done = run_python([sys.executable, "-c", RUN_SCRIPT, str(tmp_path)], env, tmp_path)
        assert done.exit_seconds is not None
        measured[f"process, {mode} endpoint ({protocol}, timeout 1 s): whole"] = done.seconds
        measured[f"process, {mode} endpoint ({protocol}, timeout 1 s): exit"] = done.exit_seconds
        assert done.seconds < EXIT_BOUND, f"the process took {done.seconds:.3f} s to record a run and exit"
        assert done.exit_seconds < 1.0 + EXIT_MARGIN, f"exit took {done.exit_seconds:.3f} s"
        if receiver is not None:
            receiver.wait_for_attempts(1, ARRIVAL_TIMEOUT)  # it did try to send
    assert_run_in_file(tmp_path, done.run_id, RunStatus.COMPLETED, 1)


def test_exit_waits_at_most_the_otlp_timeout_even_with_a_backlog(tmp_path: Path) -> None:
    """The documented bound (otel_decisions/export/otlp.py): "At interpreter exit the SDK shuts the
    processor down; that waits at most the OTLP timeout". An agent that ended 1,000 short runs (3,000
    spans, six export batches: one timeout each would take 6 s) while the endpoint hangs (a server
    sleeping 5 s, timeout 1 s) must still be gone within that timeout (+ a margin for interpreter
    teardown) after its last statement."""
    with HttpReceiver("slow", delay=5.0) as receiver:
        env = clean_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_EXPORTER_OTLP_TIMEOUT="1",
        )
        done = run_python([sys.executable, "-c", RUN_SCRIPT, str(tmp_path), "1000"], env, tmp_path)
    assert done.exit_seconds is not None
    measured["process exit with a 1000-run backlog, slow endpoint (timeout 1 s)"] = done.exit_seconds
    assert_run_in_file(tmp_path, done.run_id, RunStatus.COMPLETED, 1)
    assert done.exit_seconds < 1.0 + EXIT_MARGIN, (
        f"exit took {done.exit_seconds:.3f} s with OTEL_EXPORTER_OTLP_TIMEOUT=1 "
        f"({receiver.attempts} export request(s) reached the slow endpoint, one after the other)"
    )


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_zero_config_process_exports_and_flushes_at_exit(tmp_path: Path, protocol: str) -> None:
    """No `configure()` call at all: the `OTEL_*` variables alone switch OTLP on (beside the file), and
    a process exiting right after `end_run` still delivers its spans."""
    with make_receiver(protocol) as receiver:
        env = clean_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
            OTEL_SERVICE_NAME="exiting-agent",
            OTEL_RESOURCE_ATTRIBUTES="deployment.environment=ci",
        )
        done = run_python([sys.executable, "-c", RUN_SCRIPT, str(tmp_path)], env, tmp_path)
        measured[f"process, healthy endpoint ({protocol}): whole"] = done.seconds
        spans = of_trace(receiver.wait_for_spans(3, ARRIVAL_TIMEOUT), done.execution_id)
    assert sorted(s["name"] for s in spans) == ["invoke_agent exit_flush", "outcome", "plan"]
    assert {s["resource"]["service.name"] for s in spans} == {"exiting-agent"}
    assert {s["resource"]["deployment.environment"] for s in spans} == {"ci"}
    assert_file_has_same_spans(tmp_path, done.run_id, spans)


# =================================================================================== configuration
@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"otlp_protocol": "udp"}, "udp"),
        ({"otlp_endpoint": "localhost:4318"}, "localhost:4318"),
        ({"otlp_timeout": 0}, "0"),
        ({"otlp_timeout": -1}, "-1"),
        ({"exporters": ["jaeger"]}, "jaeger"),
    ],
)
def test_configure_rejects_bad_values(arguments: dict[str, Any], named: str) -> None:
    before = current_settings()
    with pytest.raises(ConfigError) as caught:
        otel_decisions.configure(**arguments)
    assert isinstance(caught.value, ValueError)
    message = str(caught.value)
    assert next(iter(arguments)) in message and named in message, message
    assert current_settings() == before  # a rejected configure() changes nothing


@pytest.mark.parametrize(
    ("variable", "value", "field", "fallback"),
    [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "udp", "otlp_protocol", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318", "otlp_endpoint", None),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon", "otlp_timeout", 10.0),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "0", "otlp_timeout", 10.0),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "-1", "otlp_timeout", 10.0),
        ("OTEL_TRACES_EXPORTER", "jaeger", "exporters", frozenset({"otlp"})),
    ],
)
def test_bad_environment_values_warn_and_fall_back(
    otel_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    variable: str,
    value: str,
    field: str,
    fallback: object,
) -> None:
    otel_env.setenv(variable, value)
    caplog.set_level(logging.WARNING, logger="otel_decisions")
    settings = otel_decisions.configure()  # never raises for the environment
    assert getattr(settings, field) == fallback
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("otel_decisions")]
    assert any(value in w for w in warnings), f"no warning naming {value!r}: {warnings}"


# ============================================================== joining the user's TracerProvider
def test_a_tracer_provider_the_user_set_is_joined_not_replaced(
    tmp_path: Path, otel_env: pytest.MonkeyPatch
) -> None:
    """Our spans reach the user's exporters (nested with theirs in one trace); the global provider
    stays theirs; our file holds only our spans; with an endpoint configured we send nothing ourselves
    (their provider exports, nothing is sent twice)."""
    provider, exporter = user_provider()
    user_tracer = trace.get_tracer("user.app")
    with HttpReceiver() as receiver:
        point_env_at(otel_env, receiver.endpoint, "http/protobuf")
        otel_decisions.configure()  # joining is the default
        with otel_decisions.run("joined", directory=tmp_path) as handle:
            with (
                otel_decisions.decision("Call the weather API", node_id="tools"),
                user_tracer.start_as_current_span("user: GET /weather"),
            ):
                pass
            with user_tracer.start_as_current_span("user: between decisions"):
                pass
        runtime = Runtime(tmp_path)
        run = record_support_run(runtime)
        assert pipeline_for(tmp_path).provider.force_flush()
        assert receiver.attempts == 0

    assert trace.get_tracer_provider() is provider
    spans = exporter.get_finished_spans()
    by_trace: dict[str, list[str]] = {}
    for span in spans:
        by_trace.setdefault(f"{span.context.trace_id:032x}", []).append(span.name)
    assert sorted(by_trace[handle.execution_id]) == sorted(
        ["invoke_agent joined", "plan", "outcome", "user: GET /weather", "user: between decisions"]
    )
    assert len(by_trace[run.execution_id]) == 5
    user_span = next(s for s in spans if s.name == "user: GET /weather")
    plan = next(s for s in spans if s.name == "plan" and f"{s.context.trace_id:032x}" == handle.execution_id)
    assert user_span.parent is not None and user_span.parent.span_id == plan.context.span_id

    ours = RunStore(tmp_path).spans(handle.run_id)
    assert sorted(s.name for s in ours) == ["invoke_agent joined", "outcome", "plan"]
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert b"user: " not in written
    assert_run_in_file(tmp_path, run.run_id, RunStatus.FAILED, 2)


def test_instrumentor_entry_point_instrument_and_uninstrument(tmp_path: Path) -> None:
    (found,) = [ep for ep in entry_points(group="opentelemetry_instrumentor") if ep.name == "otel_decisions"]
    assert found.load() is DecisionsInstrumentor

    provider, exporter = user_provider()
    otel_decisions.configure(join_global_provider=False)
    was_patched, was_opted_out = propagation._patched, propagation._opted_out
    instrumentor = DecisionsInstrumentor()
    try:
        instrumentor.instrument()
        instrumentor.instrument()  # already instrumented: a warning from BaseInstrumentor, no error
        assert instrumentor.is_instrumented_by_opentelemetry
        assert current_settings().join_global_provider
        run = record_support_run(Runtime(tmp_path))  # a pipeline built after instrument()
        ours = [s for s in exporter.get_finished_spans() if f"{s.context.trace_id:032x}" == run.execution_id]
        assert len(ours) == 5
        assert trace.get_tracer_provider() is provider
    finally:
        instrumentor.uninstrument()
        instrumentor.uninstrument()
        assert not instrumentor.is_instrumented_by_opentelemetry
        if was_patched:  # leave context propagation as the other tests had it
            otel_decisions.propagate_context(True)
        propagation._opted_out = was_opted_out
    assert_run_in_file(tmp_path, run.run_id, RunStatus.FAILED, 2)


def test_works_under_opentelemetry_instrument(tmp_path: Path) -> None:
    """`opentelemetry-instrument python agent.py` loads our instrumentor through its entry point; the
    agent's decorated run reaches the OTLP endpoint of the `OTEL_*` variables and the local file."""
    command = shutil.which("opentelemetry-instrument", path=str(Path(sys.executable).parent))
    assert command is not None, "opentelemetry-instrument is not installed (opentelemetry-instrumentation)"
    with HttpReceiver() as receiver:
        env = clean_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_SERVICE_NAME="instrumented-agent",
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
        )
        done = run_python([command, sys.executable, "-c", INSTRUMENTED_SCRIPT, str(tmp_path)], env, tmp_path)
        measured["process under opentelemetry-instrument: whole"] = done.seconds
        spans = of_trace(receiver.wait_for_spans(3, ARRIVAL_TIMEOUT), done.execution_id)
    assert sorted(s["name"] for s in spans) == ["invoke_agent instrumented", "outcome", "plan"]
    assert {s["resource"]["service.name"] for s in spans} == {"instrumented-agent"}
    assert_file_has_same_spans(tmp_path, done.run_id, spans)
