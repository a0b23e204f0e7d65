"""The journey-agent adapter (`otel_decisions.integrations.journey`), through the example onboarding agent.

The agent (`examples/journey_onboarding.py`) follows the journey framework's interfaces: its executor
awaits the hooks exactly where the framework does. Runs are recorded into `tmp_path` and read back
with a fresh `BuilderQuery`, as a Builder in another process would. No test may log at ERROR level.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import otel_decisions as od
from otel_decisions import BuilderQuery, Decision, DecisionType, Run, RunStatus
from otel_decisions.integrations.journey import DecisionHooks, instrument_journey_agent

if str(Path(__file__).parents[1]) not in sys.path:  # `examples` is a directory of the repository
    sys.path.insert(0, str(Path(__file__).parents[1]))

from examples.journey_onboarding import (
    CONVERSATIONS,
    STEPS,
    AgentContext,
    AgentResult,
    ExecutorHooks,
    LLMExecutor,
    LLMResponse,
    OnboardingAgent,
    OnboardingState,
    OnboardingStep,
    OnboardingTools,
    ScriptedLLM,
    converse,
)

GOAL = "onboarding-agent"
BOB_BAD_EMAIL = "bob-at-example.com"


@pytest.fixture(autouse=True)
def _no_error_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fails any test that logs at ERROR (e.g. OpenTelemetry's "Failed to detach context")."""
    caplog.set_level(logging.WARNING)
    yield
    errors = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], errors


def agent_for(directory: Path, **kwargs: Any) -> OnboardingAgent:
    return instrument_journey_agent(
        OnboardingAgent(ScriptedLLM(), **kwargs), steps=STEPS, directory=directory
    )


def runs(directory: Path, goal: str = GOAL) -> list[Run]:
    """Every run of `goal`, oldest first, read back from the spans."""
    query = BuilderQuery(directory)
    found = [query.get_full_run(s.run_id) for s in reversed(query.list_runs_for_goal(goal))]
    assert all(run is not None for run in found)
    return [run for run in found if run is not None]


def run_of(directory: Path, user: str) -> Run:
    (run,) = [run for run in runs(directory) if run.input_data.get("user") == user]
    return run


def of_type(run: Run, kind: DecisionType) -> list[Decision]:
    return [d for d in run.decisions if d.decision_type == kind]


async def turns(agent: OnboardingAgent, user: str, messages: Sequence[str]) -> list[AgentResult]:
    return [await agent.run(AgentContext(user, message)) for message in messages]


@pytest.fixture(scope="module")
def conversations(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example's three conversations, each a run (shared by the read-only tests below)."""
    directory = tmp_path_factory.mktemp("journey")
    agent = agent_for(directory)
    for user, messages in CONVERSATIONS.items():
        asyncio.run(converse(agent, user, messages, directory))
    return directory


# --------------------------------------------------------------------- what a conversation records
def test_runs_are_the_conversations_failed_when_the_journey_did_not_complete(conversations: Path) -> None:
    statuses = {run.input_data["user"]: run.status for run in runs(conversations)}
    assert statuses == {"alice": RunStatus.COMPLETED, "bob": RunStatus.COMPLETED, "carol": RunStatus.FAILED}
    assert run_of(conversations, "carol").narrative == "Journey ended at step collect_email."


def test_tool_calls_are_tool_selections_at_their_step(conversations: Path) -> None:
    tools = of_type(run_of(conversations, "bob"), DecisionType.TOOL_SELECTION)
    assert [(d.node_id, d.chosen_option_id) for d in tools] == [
        ("welcome", "start_onboarding"),
        ("collect_name", "save_name"),
        ("collect_email", "save_email"),
        ("collect_email", "save_email"),
    ]
    assert [d.intent for d in tools][-1] == "Choose a tool at step collect_email"
    # Options: the tools the step offered the model, with the schemas' descriptions.
    last = tools[-1]
    assert [(o.id, o.description, o.action_type) for o in last.options] == [
        ("save_email", "Save the user's email", "tool_call"),
        ("save_name", "Correct the user's name", "tool_call"),
    ]
    assert [d.input_context for d in tools] == [
        {},
        {"name": "Bob"},
        {"email": BOB_BAD_EMAIL},
        {"email": "bob@example.com"},
    ]
    assert last.reasoning == "the model called save_email at step collect_email"


def test_tool_outcomes_carry_the_result_the_error_and_the_step_change(conversations: Path) -> None:
    tools = of_type(run_of(conversations, "bob"), DecisionType.TOOL_SELECTION)
    outcomes = [d.outcome for d in tools]
    assert all(o is not None for o in outcomes)
    failed, retried = outcomes[2], outcomes[3]
    assert failed is not None and retried is not None
    assert failed.success is False
    assert failed.error == f"Error executing save_email: invalid email address '{BOB_BAD_EMAIL}'"
    assert failed.state_changes == {}
    assert retried.success is True
    assert retried.result == "Perfect! You're all set, Bob!"
    assert retried.state_changes == {"step": {"from": "collect_email", "to": "complete"}}
    assert all(o.latency_ms >= 0 for o in outcomes if o is not None)


def test_step_changes_are_path_choices_from_the_step_left(conversations: Path) -> None:
    paths = of_type(run_of(conversations, "alice"), DecisionType.PATH_CHOICE)
    assert [(d.node_id, d.chosen_option_id) for d in paths] == [
        ("welcome", "collect_name"),
        ("collect_name", "collect_email"),
        ("collect_email", "complete"),
    ]
    last = paths[-1]
    assert last.intent == "Choose the step after collect_email"
    assert last.reasoning == "transition from collect_email to complete after tool save_email"
    assert last.input_context == {"from_step": "collect_email", "to_step": "complete"}
    assert [o.id for o in last.options] == ["complete"]  # the journey's graph, `STEPS`
    assert all(d.outcome is not None and d.outcome.success for d in paths)


def test_the_builder_finds_the_failed_tool_call(conversations: Path) -> None:
    query = BuilderQuery(conversations)
    analysis = query.analyze_failure(run_of(conversations, "carol").id)
    assert analysis is not None
    assert analysis.root_cause == "Error executing save_email: invalid email address 'carol@'"
    assert "[collect_email] Choose a tool at step collect_email" in analysis.failure_point
    patterns = query.find_patterns(GOAL)
    assert patterns is not None and patterns.run_count == 3
    assert dict(patterns.problematic_nodes)["collect_email"] == pytest.approx(3 / 7)


class SilentTools(OnboardingTools):
    """Tools that change the step without notifying, and spend LLM tokens inside the tool call."""

    async def _notify_state_change(self) -> None:
        od.current_decision().add_tokens(42)  # as an instrumented LLM client inside the tool would


def test_unnotified_step_changes_and_tokens_inside_a_tool_are_recorded(tmp_path: Path) -> None:
    class Silent(OnboardingAgent):
        def create_tools(self, state: OnboardingState, ctx: AgentContext) -> OnboardingTools:
            return SilentTools(state=state)

    agent = instrument_journey_agent(Silent(ScriptedLLM()), directory=tmp_path, steps=STEPS)
    asyncio.run(turns(agent, "kim", ["hi", "Kim"]))
    call, step = runs(tmp_path)[1].decisions
    assert (call.chosen_option_id, call.outcome and call.outcome.tokens_used) == ("save_name", 42)
    assert step.decision_type == DecisionType.PATH_CHOICE
    assert step.reasoning == "transition from collect_name to collect_email after tool save_name"


def test_the_executor_alone_with_hooks_and_watched_tools(tmp_path: Path) -> None:
    """The framework's documented injection point, `LLMExecutor(hooks=...)`, with no agent at all;
    the tools are watched before the event loop starts."""
    hooks = DecisionHooks("direct", directory=tmp_path, steps=STEPS)
    state = OnboardingState(step=OnboardingStep.COLLECT_NAME)
    tools = hooks.watch(OnboardingTools(state=state))

    async def run_tool(name: str, arguments: dict[str, Any]) -> str:
        return str(await getattr(tools, name)(**arguments))

    schemas = OnboardingAgent(ScriptedLLM()).get_tool_schemas(state)
    executor = LLMExecutor(ScriptedLLM(), run_tool, hooks=hooks)
    result = asyncio.run(executor.run([{"role": "user", "content": "I'm Zoe"}], schemas))
    assert result.response == "Great, Zoe! Now, what's your email?"
    (run,) = runs(tmp_path, "direct")
    assert run.status == RunStatus.COMPLETED
    assert [(d.decision_type, d.node_id, d.chosen_option_id) for d in run.decisions] == [
        (DecisionType.TOOL_SELECTION, "collect_name", "save_name"),
        (DecisionType.PATH_CHOICE, "collect_name", "collect_email"),
    ]
    assert run.output_data == {"response": result.response, "stopped_reason": "text_response"}


# ------------------------------------------------------------------------------------ how runs map
def test_without_an_open_run_each_turn_is_a_run(tmp_path: Path) -> None:
    results = asyncio.run(turns(agent_for(tmp_path), "dana", ["hi", "Dana", "dana@example.com"]))
    assert results[-1].state["step"] == "complete"
    found = runs(tmp_path)
    assert [r.status for r in found] == [RunStatus.COMPLETED] * 3
    assert [[(d.node_id, d.chosen_option_id) for d in r.decisions] for r in found] == [
        [("welcome", "start_onboarding"), ("welcome", "collect_name")],
        [("collect_name", "save_name"), ("collect_name", "collect_email")],
        [("collect_email", "save_email"), ("collect_email", "complete")],
    ]


def test_a_turn_whose_exception_escapes_fails_with_the_tool_call(tmp_path: Path) -> None:
    """Debug mode: the tool's exception escapes `agent.run`; the turn's run and tool call fail."""
    agent = agent_for(tmp_path, swallow_tool_exceptions=False)

    async def conversation() -> None:
        await turns(agent, "erin", ["hi", "Erin"])
        with pytest.raises(ValueError, match="invalid email address"):
            await agent.run(AgentContext("erin", "erin@"))
        await agent.run(AgentContext("erin", "erin@example.com"))  # the agent keeps working

    asyncio.run(conversation())
    found = runs(tmp_path)
    assert [r.status for r in found] == [
        RunStatus.COMPLETED,
        RunStatus.COMPLETED,
        RunStatus.FAILED,
        RunStatus.COMPLETED,
    ]
    (call,) = found[2].decisions
    assert call.outcome is not None and call.outcome.success is False
    assert call.outcome.error == "the tool call raised ValueError(\"invalid email address 'erin@'\")"
    assert found[2].narrative == "Turn failed: ValueError(\"invalid email address 'erin@'\")"


def test_executor_hooks_alone_bound_runs_by_the_executor_loop(tmp_path: Path) -> None:
    """`hooks=DecisionHooks(...)` plus `hooks.watch(tools)`: no agent wrapping at all."""
    hooks = DecisionHooks(GOAL, directory=tmp_path, steps=STEPS)

    class Watched(OnboardingAgent):
        def create_tools(self, state: OnboardingState, ctx: AgentContext) -> OnboardingTools:
            return hooks.watch(super().create_tools(state, ctx))

    agent = Watched(ScriptedLLM(), hooks=hooks, swallow_tool_exceptions=False)

    async def conversation() -> None:
        await turns(agent, "finn", ["hi", "Finn"])
        with pytest.raises(ValueError):
            await agent.run(AgentContext("finn", "finn@"))
        await agent.run(AgentContext("finn", "finn@example.com"))  # ends the abandoned turn first

    asyncio.run(conversation())
    found = runs(tmp_path)
    assert [r.status for r in found] == [
        RunStatus.COMPLETED,
        RunStatus.COMPLETED,
        RunStatus.FAILED,
        RunStatus.COMPLETED,
    ]
    assert found[2].narrative == "The previous turn never completed (an exception escaped?)."
    assert found[2].decisions[0].outcome is not None and found[2].decisions[0].outcome.success is False
    assert [(d.node_id, d.chosen_option_id) for d in found[3].decisions] == [
        ("collect_email", "save_email"),
        ("collect_email", "complete"),
    ]


class LoopingLLM(ScriptedLLM):
    """Never answers in text: the executor stops at its maximum iterations."""

    async def generate(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, **kwargs: Any
    ) -> LLMResponse:
        return await super().generate([*messages, {"role": "user", "content": "again"}], tools)


def test_a_turn_stopped_at_max_iterations_fails_with_a_problem(tmp_path: Path) -> None:
    agent = instrument_journey_agent(OnboardingAgent(LoopingLLM()), directory=tmp_path)
    result = asyncio.run(agent.run(AgentContext("gus", "hi")))
    assert result.stopped_reason == "max_iterations"
    (run,) = runs(tmp_path)
    assert run.status == RunStatus.FAILED
    assert len(of_type(run, DecisionType.TOOL_SELECTION)) == 10
    assert [p.description for p in run.problems] == ["max_iterations at step collect_name"]


def test_concurrent_conversations_do_not_mix(tmp_path: Path) -> None:
    agent = agent_for(tmp_path)

    async def both() -> None:
        async def one(user: str) -> None:
            async with od.run(GOAL, input_data={"user": user}, directory=tmp_path):
                await turns(agent, user, ["hi", user, f"{user}@example.com"])

        await asyncio.gather(one("hana"), one("ivan"))

    asyncio.run(both())
    for user in ("hana", "ivan"):
        run = run_of(tmp_path, user)
        contexts = [d.input_context for d in of_type(run, DecisionType.TOOL_SELECTION)]
        assert contexts == [{}, {"name": user.title()}, {"email": f"{user}@example.com"}]
        assert len(of_type(run, DecisionType.PATH_CHOICE)) == 3


# --------------------------------------------------------------------- never in the agent's way
def test_the_agents_return_values_are_unchanged(tmp_path: Path) -> None:
    async def everything(agent: OnboardingAgent) -> list[AgentResult]:
        return [r for user, messages in CONVERSATIONS.items() for r in await turns(agent, user, messages)]

    plain = asyncio.run(everything(OnboardingAgent(ScriptedLLM())))
    recorded = asyncio.run(everything(agent_for(tmp_path)))
    assert recorded == plain
    assert len(runs(tmp_path)) == len(plain)


class Recording(ExecutorHooks):
    """The agent's own hooks: they must keep receiving every call."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def on_tool_start(self, name: str, arguments: dict[str, Any]) -> None:
        self.calls.append(f"start {name} {arguments!r}")

    async def on_tool_end(self, name: str, result: str) -> None:
        self.calls.append(f"end {name}")

    async def on_future_hook(self, *args: Any) -> None:
        self.calls.append(f"future {args}")


def test_odd_arguments_warn_and_never_raise(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    inner = Recording()
    hooks = DecisionHooks(GOAL, directory=tmp_path, inner=inner)

    async def abuse() -> None:
        await hooks.on_iteration_start("first")  # type: ignore[arg-type]
        await hooks.on_llm_call(None, 42)
        await hooks.on_tool_start(None, "not a dict")  # type: ignore[arg-type]
        await hooks.on_tool_end("other", object())  # type: ignore[arg-type]
        await hooks.on_tool_end("never_started", "x")
        await hooks.on_tool_calls("whatever")
        await hooks.on_future_hook(1, 2)
        await hooks.on_state_change(object())
        hooks.on_state_change()  # not awaited: nothing to warn about
        assert hooks.watch(object()) is not None
        await hooks.on_complete(None, None)  # type: ignore[arg-type]

    asyncio.run(abuse())
    with pytest.raises(AttributeError):
        _ = hooks.not_a_hook
    warnings = " | ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    for expected in (
        "not an int",
        "tool name should be a string",
        "should be a dict",
        "without on_tool_start",
    ):
        assert expected in warnings
    assert inner.calls == ["start None 'not a dict'", "end other", "end never_started", "future (1, 2)"]
    (run,) = runs(tmp_path)  # what could be recorded was: the run, and the call with its odd input
    assert run.status == RunStatus.COMPLETED
    (call,) = run.decisions
    assert call.chosen_option_id == "unknown"
    assert call.input_context == {"arguments": "not a dict"}
    assert call.outcome is not None and call.outcome.success is True


def test_instrumenting_twice_changes_nothing(tmp_path: Path) -> None:
    agent = agent_for(tmp_path)
    hooks = agent.hooks
    assert instrument_journey_agent(agent) is agent and agent.hooks is hooks
