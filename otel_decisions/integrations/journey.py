"""Journey agents (`agent_runtime_framework`): tool calls and step changes recorded as decisions.

At each step the model picks one of the step's tools, and tools move the journey on: the choices worth
explaining. ``agent = instrument_journey_agent(OnboardingAgent(llm_client=llm))`` records them (or pass
``DecisionHooks`` to ``LLMExecutor(hooks=...)`` and call ``hooks.watch(tools)`` in `create_tools`):

- a tool call is a `tool_selection` decision (node = the step, options = the tools offered to the
  model, context = the arguments) with the result, latency and tokens added inside the tool to
  `current_decision()`; a result starting "Error executing " / "Error: " (the framework's way of
  reporting a failed tool) is a failure;
- a step change is a successful `path_choice` (node = the step left, chosen = the new step, options =
  the steps reachable from it when `steps` gives the journey's graph).

**Runs.** The framework's one boundary is `agent.run(context)`, one turn of a conversation (journeys
span turns, often in separate requests): each turn is a run of goal `goal_id` (the agent's `key`),
failed if an exception escapes or the executor stops at `max_iterations`. Inside an open run (e.g.
``async with otel_decisions.run(...)`` around a whole conversation) decisions join that run instead.
Hooks never raise into the agent (odd arguments log a warning); their state is per task or thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Final, TypeVar

import otel_decisions as od
from otel_decisions import DecisionHandle, DecisionType, RunHandle

__all__ = ["ERROR_PREFIXES", "DecisionHooks", "instrument_journey_agent"]

_logger = logging.getLogger("otel_decisions")
A = TypeVar("A")

ERROR_PREFIXES: Final = ("Error executing ", "Error: ")
"""How the framework's tool executors report a failed or unknown tool in the result text."""


class _Done:
    """Awaitable or not, as the caller likes (a coroutine that is never awaited would warn)."""

    def __await__(self) -> Generator[None, None, None]:
        yield from ()


@dataclass(eq=False)
class _OpenTool:
    name: str
    scope: od.decision
    handle: DecisionHandle
    step: str | None


@dataclass(eq=False)
class _Track:
    """What the hooks know in one task or thread: the journey's state, this turn's tools and run."""

    owner: object
    state: Any = None  # this turn's journey state (from `watch`); its `step` is the current step
    step: str | None = None
    tools: dict[str, str] = field(default_factory=dict)  # offered to the model: name -> description
    open: list[_OpenTool] = field(default_factory=list)
    run: od.run | None = None  # a run these hooks opened (None: none, or the caller's is joined)
    handle: RunHandle | None = None
    by_executor: bool = False  # opened by the executor's first hook, so ended by `on_complete`
    stopped: str = ""


_TRACKS = contextvars.ContextVar[dict["DecisionHooks", _Track] | None]("otel_decisions_journey", default=None)


@contextlib.contextmanager
def _guarded(what: str) -> Iterator[None]:
    """Recording never raises into the agent: what goes wrong is a warning."""
    try:
        yield
    except Exception:
        _logger.warning("otel_decisions: journey %s failed; not recorded", what, exc_info=True)


def _text(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    _logger.warning("otel_decisions: journey %s should be a string, got %s", what, type(value).__name__)
    return "" if value is None else repr(value)


def _step_name(step: Any) -> str | None:
    """A step as text: an enum's value (`OnboardingStep.WELCOME` -> "welcome"), else its str."""
    value = step.value if isinstance(step, Enum) else step
    return None if value is None else value if isinstance(value, str) else _text(value, "step")


def _tool_names(tools: Any) -> dict[str, str]:
    """Names and descriptions of tool schemas: OpenAI's `{"function": {...}}` or plain dicts."""
    found: dict[str, str] = {}
    for tool in tools or ():
        spec = tool.get("function", tool) if isinstance(tool, Mapping) else {}
        name, description = spec.get("name"), spec.get("description")
        if isinstance(name, str) and name:
            found[name] = description if isinstance(description, str) and description else name
    return found


class DecisionHooks:
    """The framework's `ExecutorHooks`, recording tool calls and step changes as decisions.

    `goal_id` names the runs these hooks open (use the agent's `key`); `directory` is where their
    spans go (default `OTEL_DECISIONS_DIR` or `.otel-decisions`); `steps` maps a step to the steps
    reachable from it (the options of its path choices); every hook is also forwarded to `inner`, so
    the agent's own hooks keep working. Hooks of a newer framework are accepted (forwarded or no-ops).
    """

    def __init__(
        self,
        goal_id: str = "journey",
        goal_description: str = "",
        *,
        directory: str | Path | None = None,
        steps: Mapping[Any, Iterable[Any]] | None = None,
        inner: Any = None,
    ) -> None:
        self.goal_id, self.goal_description = goal_id, goal_description
        self.directory, self.inner = directory, inner
        self.steps = {_step_name(k): [_step_name(s) for s in v] for k, v in (steps or {}).items()}

    # --- the executor's hooks ---------------------------------------------------------------------
    async def on_iteration_start(self, iteration: int) -> None:
        """Iteration 0 starts an executor loop: leftovers of one that never completed end failed."""
        with _guarded("on_iteration_start"):
            track = self._track()
            if not isinstance(iteration, int):
                _logger.warning("otel_decisions: on_iteration_start(%r): not an int", iteration)
            elif iteration == 0:
                self._close_tools(track, "the tool call never ended (an exception escaped the agent?)")
                if track.run is not None and track.by_executor:
                    self._end_run(track, "The previous turn never completed (an exception escaped?).")
                track.step = _step_name(getattr(track.state, "step", None))
                track.tools, track.stopped = {}, ""
            self._ensure_run(track, by_executor=True)
        await self._forward("on_iteration_start", iteration)

    async def on_llm_call(self, messages: Any, tools: Any) -> None:
        """Remembers the tools offered to the model: the options of its next tool selection."""
        with _guarded("on_llm_call"):
            self._track().tools = _tool_names(tools)
        await self._forward("on_llm_call", messages, tools)

    async def on_tool_start(self, name: str, arguments: dict[str, Any]) -> None:
        """Opens the tool-selection decision: the current decision while the tool runs."""
        with _guarded("on_tool_start"):
            track = self._track()
            self._ensure_run(track, by_executor=True)
            tool = _text(name, "tool name") or "unknown"
            if isinstance(arguments, Mapping | None):
                context = dict(arguments or {})
            else:
                _logger.warning("otel_decisions: arguments of tool %r should be a dict", tool)
                context = {"arguments": arguments}
            step = self._refresh_step(track)
            offered = {**track.tools, tool: track.tools.get(tool, tool)}
            scope = od.decision(
                f"Choose a tool at step {step or 'unknown'}",
                options=[{"id": n, "description": d, "action_type": "tool_call"} for n, d in offered.items()],
                chosen=tool,
                reasoning=f"the model called {tool} at step {step or 'unknown'}",
                decision_type=DecisionType.TOOL_SELECTION,
                node_id=step,
                context=context,
            )
            track.open.append(_OpenTool(tool, scope, scope.__enter__(), step))
        await self._forward("on_tool_start", name, arguments)

    async def on_tool_end(self, name: str, result: str) -> None:
        """Records the tool's outcome; a result starting with an error prefix is a failure."""
        with _guarded("on_tool_end"):
            self._end_tool(self._track(), name, result)
        await self._forward("on_tool_end", name, result)

    async def on_complete(self, response: str, stopped_reason: str) -> None:
        """Ends the run the executor's first hook opened: failed if stopped at max iterations."""
        with _guarded("on_complete"):
            track = self._track()
            # The turn is over: its state says nothing about the next turn, which may be another journey.
            track.stopped, track.state = _text(stopped_reason, "stopped reason"), None
            self._close_tools(track, "the tool call never ended")
            if track.handle is not None:  # a run of ours
                track.handle.set_output({"response": response, "stopped_reason": track.stopped})
            if track.run is not None and track.by_executor:
                self._end_run(track, self._stop_failure(track))
        await self._forward("on_complete", response, stopped_reason)

    def __getattr__(self, name: str) -> Callable[..., Awaitable[None]]:
        """A hook this adapter does not record (`on_tool_calls`, a newer framework's): forwarded."""
        if not name.startswith("on_"):
            raise AttributeError(name)

        async def hook(*args: Any, **kwargs: Any) -> None:
            await self._forward(name, *args, **kwargs)

        return hook

    # --- journey state and runs ---------------------------------------------------------------------
    def watch(self, tools: A) -> A:
        """Follow the state of journey `tools` this turn: its step is the decisions' node, its changes
        are path choices (notified or not). ``return hooks.watch(MyTools(state=state))``."""
        with _guarded("watch"):
            state: Any = getattr(tools, "state", None)
            if not hasattr(state, "step"):
                _logger.warning("otel_decisions: watch() needs journey tools with a `state.step`")
                return tools
            track = self._track()
            track.state, track.step = state, _step_name(state.step)
            previous = getattr(tools, "on_state_change", None)
            if getattr(previous, "otel_decisions_hooks", None) is self:
                return tools

            def on_state_change(*args: Any, **kwargs: Any) -> Any:
                self.on_state_change(*(args or (state,)))
                return previous(*args, **kwargs) if callable(previous) else _Done()

            on_state_change.otel_decisions_hooks = self  # type: ignore[attr-defined]
            target: Any = tools
            target.on_state_change = on_state_change
        return tools

    def on_state_change(self, state: Any = None, *args: Any, **kwargs: Any) -> Awaitable[None]:
        """A `BaseJourneyTools.on_state_change` callback: a step change is a path choice."""
        with _guarded("on_state_change"):
            track = self._track()
            if hasattr(state, "step"):
                track.state = state
            elif state is not None:
                _logger.warning("otel_decisions: on_state_change got a state without a step")
            self._refresh_step(track)
        return _Done()

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """One turn as a run (unless one is open), failed if it raises: what `instrument_journey_agent`
        puts around `agent.run`; ``async with hooks.turn(): await agent.run(ctx)`` does it by hand."""
        track, error = self._track(), None
        with _guarded("turn start"):
            self._ensure_run(track, by_executor=False)
        opened = track.run is not None and not track.by_executor
        try:
            yield
        except BaseException as exc:
            error = exc
            raise
        finally:
            with _guarded("turn end"):
                self._close_tools(track, f"the tool call raised {error!r}" if error else "never ended")
                if opened:
                    failure = f"Turn failed: {error!r}" if error else self._stop_failure(track)
                    cancelled = isinstance(error, asyncio.CancelledError)  # the run ends cancelled
                    self._end_run(track, None if cancelled else failure, error)

    # --- internals --------------------------------------------------------------------------------
    def _track(self) -> _Track:
        tracks = _TRACKS.get() or {}
        try:
            owner: object = asyncio.current_task() or threading.get_ident()
        except RuntimeError:  # no event loop: a thread
            owner = threading.get_ident()
        track = tracks.get(self)
        if track is None or track.owner != owner:  # new here, or a parent's: keep only its state
            track = _Track(owner) if track is None else _Track(owner, track.state, track.step)
            _TRACKS.set({**tracks, self: track})
        return track

    def _ensure_run(self, track: _Track, by_executor: bool) -> None:
        if track.run is None and not od.current_run():
            scope = od.run(self.goal_id, self.goal_description, directory=self.directory)
            track.handle = scope.__enter__()
            track.run, track.by_executor = scope, by_executor

    def _end_run(self, track: _Track, failure: str | None, error: BaseException | None = None) -> None:
        scope, handle = track.run, track.handle
        track.run, track.handle, track.by_executor = None, None, False
        if scope is not None:
            if failure is not None and handle is not None:
                handle.fail(failure)
            scope.__exit__(type(error) if error is not None else None, error, None)

    def _stop_failure(self, track: _Track) -> str | None:
        if track.stopped != "max_iterations":
            return None
        if track.handle is not None:
            fix = "check the step's prompt and tools, or raise max_iterations"
            track.handle.report_problem("warning", f"max_iterations at step {track.step}", None, None, fix)
        return f"Turn failed: the executor stopped at max_iterations at step {track.step}."

    def _end_tool(self, track: _Track, name: Any, result: Any) -> None:
        tool = _text(name, "tool name")
        if not track.open:
            _logger.warning("otel_decisions: on_tool_end(%r) without on_tool_start; ignored", tool)
            return
        match = [i for i, t in enumerate(track.open) if t.name == tool]
        if not match:
            _logger.warning("otel_decisions: on_tool_end(%r) does not match the open tool call", tool)
        call = track.open[match[-1] if match else -1]
        step = self._refresh_step(track)  # a change the tool made without notifying
        track.open.remove(call)
        text = _text(result, "tool result")
        failed = text.startswith(ERROR_PREFIXES)
        call.handle.set_outcome(
            success=not failed,
            result=result,
            error=text if failed else None,
            summary=f"{call.name}: {text[:120]}",
            state_changes={"step": {"from": call.step, "to": step}} if step != call.step else None,
        )
        call.scope.__exit__(None, None, None)

    def _close_tools(self, track: _Track, error: str) -> None:
        while track.open:
            call = track.open.pop()
            call.handle.set_outcome(success=False, error=error)
            call.scope.__exit__(None, None, None)

    def _refresh_step(self, track: _Track) -> str | None:
        """The current step; a change since the last look is recorded as a path choice."""
        if track.state is None:
            return track.step
        step = _step_name(getattr(track.state, "step", None))
        previous, track.step = track.step, step
        if step is None or previous is None or step == previous or not od.current_run():
            return step
        options = [s for s in self.steps.get(previous, []) if s is not None] or [step]
        options += [] if step in options else [step]
        by = f" after tool {track.open[-1].name}" if track.open else ""
        with od.decision(
            f"Choose the step after {previous}",
            options=[{"id": s, "description": f"go to step {s}", "action_type": "step"} for s in options],
            chosen=step,
            reasoning=f"transition from {previous} to {step}{by}",
            decision_type=DecisionType.PATH_CHOICE,
            node_id=previous,
            context={"from_step": previous, "to_step": step},
        ) as decided:
            decided.set_outcome(success=True, result={"step": step}, state_changes={"step": step})
        return step

    async def _forward(self, name: str, *args: Any, **kwargs: Any) -> None:
        """The inner hooks' own behaviour, exceptions included, is theirs: not guarded."""
        target = getattr(self.inner, name, None) if self.inner is not None else None
        if callable(target):
            result = target(*args, **kwargs)
            if inspect.isawaitable(result):
                await result


def instrument_journey_agent(
    agent: A,
    *,
    goal_id: str | None = None,
    goal_description: str = "",
    directory: str | Path | None = None,
    steps: Mapping[Any, Iterable[Any]] | None = None,
) -> A:
    """Record a `JourneyAgent`'s decisions: sets `agent.hooks` to `DecisionHooks` (forwarding to the
    hooks it had), watches the tools `create_tools` returns, and makes each `agent.run` call a run of
    goal `goal_id` (default: the agent's `key`), failed if an exception escapes. Returns `agent`."""
    target: Any = agent
    if isinstance(getattr(target, "hooks", None), DecisionHooks):
        return agent  # instrumented already
    with _guarded("instrumentation"):
        goal = goal_id or _text(getattr(target, "key", ""), "agent key") or type(agent).__name__
        hooks = DecisionHooks(
            goal, goal_description, directory=directory, steps=steps, inner=getattr(target, "hooks", None)
        )
        create_tools, run = target.create_tools, target.run

        @functools.wraps(create_tools)
        def watched_tools(*args: Any, **kwargs: Any) -> Any:
            return hooks.watch(create_tools(*args, **kwargs))

        @functools.wraps(run)
        async def run_turn(*args: Any, **kwargs: Any) -> Any:
            async with hooks.turn():
                return await run(*args, **kwargs)

        target.hooks, target.create_tools = hooks, watched_tools
        if inspect.iscoroutinefunction(run):
            target.run = run_turn
        else:
            _logger.warning("otel_decisions: %r.run is not async: runs are the executor's loops", agent)
    return agent
