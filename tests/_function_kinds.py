"""One function of every kind a decorator must wrap (sync, coroutine, generator, async generator), and a
way to call any of them to the end. Shared by `test_decorators.py` and the reliability suite."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Generator
from typing import Any


def work(x: int, *, y: int = 2) -> int:
    """Doc."""
    return x * y


async def awork(x: int, *, y: int = 2) -> int:
    """Doc."""
    await asyncio.sleep(0)
    return x * y


def gwork(x: int, *, y: int = 2) -> Generator[int, None, int]:
    """Doc."""
    yield x
    return x * y


async def agwork(x: int, *, y: int = 2) -> AsyncIterator[int]:
    """Doc."""
    await asyncio.sleep(0)
    yield x * y


KINDS: dict[str, Callable[..., Any]] = {
    "sync": work,
    "coroutine": awork,
    "generator": gwork,
    "asyncgen": agwork,
}


def run_to_end(fn: Callable[..., Any], *args: Any) -> Any:
    """Call `fn` to completion whatever its kind: its return value (the items, for async generators)."""
    if inspect.isasyncgenfunction(fn):

        async def collect() -> list[Any]:
            return [item async for item in fn(*args)]

        return asyncio.run(collect())
    if inspect.iscoroutinefunction(fn):
        return asyncio.run(fn(*args))
    if inspect.isgeneratorfunction(fn):
        gen = fn(*args)
        try:
            while True:
                next(gen)
        except StopIteration as stop:
            return stop.value
    return fn(*args)
