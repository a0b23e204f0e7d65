"""A journey agent (onboarding) recorded with otel_decisions, then analysed by the Builder.

Run it from the repository root::

    python examples/journey_onboarding.py [DIR]   # default $OTEL_DECISIONS_DIR or ./.otel-decisions

Journey agents come from `agent_runtime_framework`, which is not on the package index. So the first
half of this file is a minimal stand-in that follows its README's interfaces (`JourneyAgent`,
`BaseJourneyState`, `BaseJourneyTools`, `ToolSchemaBuilder`, `LLMExecutor` and its `ExecutorHooks`:
`on_iteration_start`, `on_llm_call`, `on_tool_calls`, `on_tool_start`, `on_tool_end`, `on_complete`);
the second half is the README's onboarding agent (WELCOME → COLLECT_NAME → COLLECT_EMAIL → COMPLETE),
driven by a scripted, deterministic "LLM" so it runs offline. Recording is one line in `main()`::

    agent = instrument_journey_agent(OnboardingAgent(llm_client=ScriptedLLM()))

Three conversations: Alice completes; Bob types an invalid email, `save_email` fails, he retries and
completes; Carol never gives a valid email, so her journey ends incomplete (a failed run).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Final, Generic, Protocol, TypeVar

import otel_decisions as od
from otel_decisions import BuilderQuery
from otel_decisions.integrations.journey import instrument_journey_agent

__all__ = ["CONVERSATIONS", "OnboardingAgent", "OnboardingStep", "ScriptedLLM", "converse", "main"]

# ================================================================================================
# A minimal stand-in for agent_runtime_framework (the interfaces of its README)
# ================================================================================================
StepT = TypeVar("StepT", bound=Enum)
StateT = TypeVar("StateT", bound="BaseJourneyState[Any]")
ToolsT = TypeVar("ToolsT", bound="BaseJourneyTools[Any]")


class BaseJourneyState(ABC, Generic[StepT]):
    """Journey state: the current `step` (a field of the subclass) and serialisation."""

    step: StepT

    @abstractmethod
    def is_complete(self) -> bool: ...

    @abstractmethod
    def to_dict(self) -> dict[str, Any]: ...


class BaseJourneyTools(Generic[StateT]):
    """Tools operate on the state; `_notify_state_change()` after changing it."""

    def __init__(
        self,
        state: StateT,
        backend_client: Any = None,
        on_state_change: Callable[[StateT], Awaitable[None] | None] | None = None,
    ) -> None:
        self.state = state
        self.backend_client = backend_client
        self.on_state_change = on_state_change

    async def _notify_state_change(self) -> None:
        if self.on_state_change is not None:
            result = self.on_state_change(self.state)
            if result is not None:
                await result


@dataclass
class ToolSchema:
    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)

    def to_openai_format(self) -> dict[str, Any]:
        return {"type": "function", "function": {"name": self.name, "description": self.description}}


class ToolSchemaBuilder:
    def __init__(self, name: str) -> None:
        self._schema = ToolSchema(name)

    def description(self, text: str) -> ToolSchemaBuilder:
        self._schema.description = text
        return self

    def param(self, name: str, kind: str, description: str = "", required: bool = False) -> ToolSchemaBuilder:
        self._schema.parameters[name] = {"type": kind, "description": description, "required": required}
        return self

    def build(self) -> ToolSchema:
        return self._schema


@dataclass
class LLMResponse:
    message: dict[str, Any]
    usage: dict[str, int] = field(default_factory=dict)


class LLMClient(Protocol):
    async def generate(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, **kwargs: Any
    ) -> LLMResponse: ...


class ExecutorHooks:
    """Observability hooks the executor awaits (no-ops here; subclass and override)."""

    async def on_iteration_start(self, iteration: int) -> None: ...
    async def on_llm_call(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
    ) -> None: ...
    async def on_tool_calls(self, tool_calls: list[dict[str, Any]]) -> None: ...
    async def on_tool_start(self, name: str, arguments: dict[str, Any]) -> None: ...
    async def on_tool_end(self, name: str, result: str) -> None: ...
    async def on_complete(self, response: str, stopped_reason: str) -> None: ...


@dataclass
class LLMExecutorConfig:
    max_iterations: int = 10


@dataclass
class ExecutionResult:
    response: str
    tool_calls_made: int = 0
    stopped_reason: str = "text_response"
    usage: dict[str, int] = field(default_factory=dict)


ToolRunner = Callable[[str, dict[str, Any]], Awaitable[str]]


class LLMExecutor:
    """The LLM loop: call the model; run the tools it asks for; repeat until it answers in text."""

    def __init__(
        self,
        llm_client: LLMClient,
        tool_executor: ToolRunner | None = None,
        config: LLMExecutorConfig | None = None,
        hooks: Any = None,  # an ExecutorHooks, or anything with its methods
    ) -> None:
        self.llm_client, self.tool_executor, self.hooks = llm_client, tool_executor, hooks
        self.config = config or LLMExecutorConfig()

    async def run(
        self, messages: list[dict[str, Any]], tools: list[ToolSchema] | None = None, system_prompt: str = ""
    ) -> ExecutionResult:
        messages = [{"role": "system", "content": system_prompt}, *messages] if system_prompt else messages
        tool_dicts = [t.to_openai_format() for t in tools] if tools else None
        response, calls_made, stopped, usage = "", 0, "max_iterations", dict[str, int]()
        for iteration in range(self.config.max_iterations):
            if self.hooks:
                await self.hooks.on_iteration_start(iteration)
                await self.hooks.on_llm_call(messages, tool_dicts)
            reply = await self.llm_client.generate(messages=messages, tools=tool_dicts)
            for key, value in reply.usage.items():
                usage[key] = usage.get(key, 0) + value
            tool_calls = reply.message.get("tool_calls") or []
            if not tool_calls:
                response, stopped = reply.message.get("content") or "", "text_response"
                break
            if self.hooks:
                await self.hooks.on_tool_calls(tool_calls)
            messages.append({"role": "assistant", "content": None, "tool_calls": tool_calls})
            for call in tool_calls:
                name, arguments = call["function"]["name"], json.loads(call["function"]["arguments"])
                if self.hooks:
                    await self.hooks.on_tool_start(name, arguments)
                if self.tool_executor is not None:
                    result = await self.tool_executor(name, arguments)
                else:
                    result = f"Error: No tool executor configured for '{name}'"
                if self.hooks:
                    await self.hooks.on_tool_end(name, result)
                messages.append({"role": "tool", "tool_call_id": call["id"], "name": name, "content": result})
                response, calls_made = result, calls_made + 1
        if self.hooks:
            await self.hooks.on_complete(response, stopped)
        return ExecutionResult(response, calls_made, stopped, usage)


@dataclass
class AgentContext:
    conversation_id: str
    message: str  # the user's new message


@dataclass
class AgentResult:
    response: str
    state: dict[str, Any]
    tool_calls_made: int
    stopped_reason: str


class JourneyAgent(ABC, Generic[StateT, ToolsT, StepT]):
    """A step-driven conversational agent: each `run(context)` is one turn of a conversation."""

    def __init__(
        self, llm_client: LLMClient, hooks: Any = None, swallow_tool_exceptions: bool = True
    ) -> None:
        self.llm_client, self.hooks = llm_client, hooks
        self.swallow_tool_exceptions = swallow_tool_exceptions  # False: the framework's debug mode
        self._states: dict[str, dict[str, Any]] = {}
        self._histories: dict[str, list[dict[str, Any]]] = {}

    @property
    @abstractmethod
    def key(self) -> str: ...

    @abstractmethod
    def get_initial_state(self) -> StateT: ...

    @abstractmethod
    def state_from_dict(self, data: dict[str, Any]) -> StateT: ...

    @abstractmethod
    def get_system_prompt(self, state: StateT) -> str: ...

    @abstractmethod
    def get_tool_schemas(self, state: StateT) -> list[ToolSchema]: ...

    @abstractmethod
    def create_tools(self, state: StateT, ctx: AgentContext) -> ToolsT: ...

    @abstractmethod
    async def execute_tool(self, tools: ToolsT, name: str, arguments: dict[str, Any]) -> str: ...

    def load_state(self, ctx: AgentContext) -> StateT | None:
        data = self._states.get(ctx.conversation_id)
        return self.state_from_dict(data) if data is not None else None

    def save_state(self, ctx: AgentContext, state: StateT) -> None:
        self._states[ctx.conversation_id] = state.to_dict()

    async def run(self, ctx: AgentContext) -> AgentResult:
        state = self.load_state(ctx) or self.get_initial_state()
        tools = self.create_tools(state, ctx)
        history = self._histories.setdefault(ctx.conversation_id, [])
        history.append({"role": "user", "content": ctx.message})

        async def run_tool(name: str, arguments: dict[str, Any]) -> str:
            try:
                return await self.execute_tool(tools, name, arguments)
            except Exception as exc:
                if not self.swallow_tool_exceptions:
                    raise
                return f"Error executing {name}: {exc}"

        executor = LLMExecutor(self.llm_client, run_tool, hooks=self.hooks)
        result = await executor.run(
            list(history), self.get_tool_schemas(state), self.get_system_prompt(state)
        )
        history.append({"role": "assistant", "content": result.response})
        self.save_state(ctx, state)
        return AgentResult(result.response, state.to_dict(), result.tool_calls_made, result.stopped_reason)


# ================================================================================================
# The onboarding agent (the framework README's example), with an offline scripted model
# ================================================================================================
class OnboardingStep(str, Enum):
    WELCOME = "welcome"
    COLLECT_NAME = "collect_name"
    COLLECT_EMAIL = "collect_email"
    COMPLETE = "complete"


STEPS: Final = {
    OnboardingStep.WELCOME: [OnboardingStep.COLLECT_NAME],
    OnboardingStep.COLLECT_NAME: [OnboardingStep.COLLECT_EMAIL],
    OnboardingStep.COLLECT_EMAIL: [OnboardingStep.COMPLETE],
    OnboardingStep.COMPLETE: [],
}
"""The journey's graph: the steps reachable from each step (the options of its path choices)."""

EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")


@dataclass
class OnboardingState(BaseJourneyState[OnboardingStep]):
    step: OnboardingStep = OnboardingStep.WELCOME
    name: str = ""
    email: str = ""

    def is_complete(self) -> bool:
        return self.step == OnboardingStep.COMPLETE

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step.value, "name": self.name, "email": self.email}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OnboardingState:
        step = OnboardingStep(data.get("step", "welcome"))
        return cls(step=step, name=data.get("name", ""), email=data.get("email", ""))


class OnboardingTools(BaseJourneyTools[OnboardingState]):
    async def start_onboarding(self) -> str:
        self.state.step = OnboardingStep.COLLECT_NAME
        await self._notify_state_change()
        return "Welcome aboard! What's your name?"

    async def save_name(self, name: str) -> str:
        self.state.name = name
        self.state.step = OnboardingStep.COLLECT_EMAIL
        await self._notify_state_change()
        return f"Great, {name}! Now, what's your email?"

    async def save_email(self, email: str) -> str:
        if not EMAIL.match(email):
            raise ValueError(f"invalid email address {email!r}")
        self.state.email = email
        self.state.step = OnboardingStep.COMPLETE
        await self._notify_state_change()
        return f"Perfect! You're all set, {self.state.name}!"


def _schema(name: str, description: str, *params: str) -> ToolSchema:
    builder = ToolSchemaBuilder(name).description(description)
    for param in params:
        builder.param(param, "string", f"The user's {param}", required=True)
    return builder.build()


class OnboardingAgent(JourneyAgent[OnboardingState, OnboardingTools, OnboardingStep]):
    @property
    def key(self) -> str:
        return "onboarding-agent"

    def get_initial_state(self) -> OnboardingState:
        return OnboardingState()

    def state_from_dict(self, data: dict[str, Any]) -> OnboardingState:
        return OnboardingState.from_dict(data)

    def get_system_prompt(self, state: OnboardingState) -> str:
        return {
            OnboardingStep.WELCOME: "Welcome the user and start onboarding.",
            OnboardingStep.COLLECT_NAME: "Collect the user's name using the save_name tool.",
            OnboardingStep.COLLECT_EMAIL: "Collect the user's email using the save_email tool.",
            OnboardingStep.COMPLETE: "Thank the user for completing onboarding.",
        }[state.step]

    def get_tool_schemas(self, state: OnboardingState) -> list[ToolSchema]:
        if state.step == OnboardingStep.WELCOME:
            return [_schema("start_onboarding", "Start onboarding once the user says hello")]
        if state.step == OnboardingStep.COLLECT_NAME:
            return [_schema("save_name", "Save the user's name", "name")]
        if state.step == OnboardingStep.COLLECT_EMAIL:
            return [
                _schema("save_email", "Save the user's email", "email"),
                _schema("save_name", "Correct the user's name", "name"),
            ]
        return []

    def create_tools(self, state: OnboardingState, ctx: AgentContext) -> OnboardingTools:
        return OnboardingTools(state=state)

    async def execute_tool(self, tools: OnboardingTools, name: str, arguments: dict[str, Any]) -> str:
        method: Callable[..., Awaitable[str]] = getattr(tools, name)
        return await method(**arguments)


class ScriptedLLM:
    """A deterministic stand-in for the model: calls the step's tool with what the user typed, then
    answers with the tool's result (or asks again after a tool error)."""

    async def generate(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, **kwargs: Any
    ) -> LLMResponse:
        last = messages[-1]
        usage = {"prompt_tokens": sum(len(str(m.get("content") or "")) // 4 for m in messages)}
        if last["role"] == "tool":
            text = str(last["content"])
            if text.startswith("Error"):
                text = f"Sorry, that didn't work ({text.split(': ', 1)[-1]}). Could you try again?"
            return LLMResponse({"role": "assistant", "content": text}, {**usage, "completion_tokens": 12})
        offered = [t["function"]["name"] for t in tools or []]
        words = re.findall(r"[^\s,!?]+", str(last["content"]))
        if not offered or not words:
            return LLMResponse({"role": "assistant", "content": "You're all set. Bye!"}, usage)
        name = offered[0]
        arguments = {"start_onboarding": {}, "save_name": {"name": words[-1].strip(".").title()}}.get(
            name, {"email": words[-1]}
        )
        function = {"name": name, "arguments": json.dumps(arguments)}
        call = {"id": f"call_{len(messages)}", "type": "function", "function": function}
        return LLMResponse({"role": "assistant", "tool_calls": [call]}, {**usage, "completion_tokens": 20})


# ================================================================================================
# Running conversations, recording them, reading them back
# ================================================================================================
CONVERSATIONS: Final[dict[str, list[str]]] = {
    "alice": ["Hi!", "I'm Alice", "alice@example.com"],
    "bob": ["Hello", "Bob here, name's bob", "bob-at-example.com", "sorry, it is bob@example.com"],
    "carol": ["hey", "carol", "carol@", "carol(at)example.com"],
}


async def converse(agent: OnboardingAgent, user: str, messages: Sequence[str], directory: Path) -> bool:
    """One conversation as one run (goal = the agent's key); failed unless the journey completes."""
    async with od.run(agent.key, "Onboard a new user", {"user": user}, directory=directory) as run:
        result = None
        for message in messages:
            result = await agent.run(AgentContext(conversation_id=user, message=message))
            print(f"  {user:>6}: {message}\n   agent: {result.response}")
        complete = result is not None and result.state["step"] == OnboardingStep.COMPLETE.value
        if not complete:
            run.fail(f"Journey ended at step {result.state['step'] if result else 'none'}.")
        return complete


def main(argv: Sequence[str] | None = None) -> None:
    """Run the conversations into DIR, then print what the Builder finds in the exported spans."""
    args = sys.argv[1:] if argv is None else list(argv)
    directory = Path(
        args[0] if args else os.environ.get("OTEL_DECISIONS_DIR", "").strip() or ".otel-decisions"
    )
    agent = instrument_journey_agent(
        OnboardingAgent(llm_client=ScriptedLLM()), steps=STEPS, directory=directory
    )
    for user, messages in CONVERSATIONS.items():
        print(f"--- {user}")
        asyncio.run(converse(agent, user, messages, directory))

    query = BuilderQuery(directory)  # reads only the exported spans, as a Builder elsewhere would
    runs = query.list_runs_for_goal(agent.key)
    print(f"\n=== {len(runs)} runs of {agent.key} (newest first) ===")
    for summary in runs:
        print(f"{summary.run_id}  {summary.status.value:<9}  {summary.decision_count} decisions")
    for summary in reversed(runs[: len(CONVERSATIONS)]):
        print(f"\nDecision trace of {summary.run_id} ({summary.status.value}):")
        for line in query.get_decision_trace(summary.run_id):
            print(f"  {line}")
    failed = [s for s in runs if s.status == od.RunStatus.FAILED]
    if failed:
        print()
        print(query.analyze_failure(failed[0].run_id))
    print("\nSuggestions:")
    for suggestion in query.suggest_improvements(agent.key):
        where = f"{suggestion['type']} {suggestion['target']}"
        print(
            f"  [{suggestion['priority']}] {where}: {suggestion['reason']} → {suggestion['recommendation']}"
        )
    print(f"\nSpans: {directory / 'traces.jsonl'}")


if __name__ == "__main__":
    main()
