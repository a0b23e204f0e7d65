"""Wrapping sync functions, coroutines, generators and async generators around an `Activation`.

An activation is one recorded call: `activate()` makes it current (OpenTelemetry context and our context
variables) and returns tokens, `deactivate(tokens)` undoes exactly that, `finish(error, result)`
records how it ended. Rules that keep agents safe:

* the wrapped function's return value and exceptions pass through untouched (same object, same
  traceback); `finish` never raises;
* for generators, the context is attached only while the generator's own code runs and detached before
  every `yield`, so a consumer that stops early, or a generator finalised in another task, never
  detaches a token from the wrong context ("Failed to detach context");
* `close()`, `aclose()` and garbage collection of a half-consumed generator end the record exactly
  once; `send()`, `throw()`, the return value and `asyncio.timeout` inside keep working (the wrapper
  drives the inner generator step by step in the same task);
* wrapping a function already wrapped for the same kind returns it unchanged (one span, not two).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, TypeVar

__all__ = ["Activation", "wrap"]

F = TypeVar("F", bound=Callable[..., Any])
_MARK = "__otel_decisions_kind__"


class Activation:
    """One recorded call of a scope."""

    __slots__ = ()
    handle: Any

    def activate(self) -> object:
        raise NotImplementedError

    def deactivate(self, tokens: Any) -> None:
        raise NotImplementedError

    def finish(self, error: BaseException | None, result: Any) -> None:
        raise NotImplementedError


class _Nothing(Activation):
    __slots__ = ()

    def activate(self) -> object:
        return None

    def deactivate(self, tokens: Any) -> None:
        return None

    def finish(self, error: BaseException | None, result: Any) -> None:
        return None


_NOTHING = _Nothing()


def wrap(fn: F, begin: Callable[[], Activation | None], kind: str) -> F:
    """`fn` recorded through `begin` on every call, with its kind of function preserved."""
    if isinstance(fn, staticmethod | classmethod):  # decorated above @staticmethod / @classmethod
        return type(fn)(wrap(fn.__func__, begin, kind))
    if getattr(fn, _MARK, None) == kind:
        return fn
    # a callable object is judged by its __call__ (an `async def __call__` is a coroutine function)
    probe = fn if inspect.isroutine(fn) else type(fn).__call__
    if inspect.isasyncgenfunction(probe):
        wrapper: Any = _async_generator(fn, begin)
    elif inspect.isgeneratorfunction(probe):
        wrapper = _generator(fn, begin)
    elif inspect.iscoroutinefunction(probe):
        wrapper = _coroutine(fn, begin)
    else:
        wrapper = _function(fn, begin)
    setattr(wrapper, _MARK, kind)
    return wrapper  # type: ignore[no-any-return]


def _function(fn: Callable[..., Any], begin: Callable[[], Activation | None]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        activation = begin()
        if activation is None:
            return fn(*args, **kwargs)
        tokens = activation.activate()
        try:
            result = fn(*args, **kwargs)
        except BaseException as error:
            activation.deactivate(tokens)
            activation.finish(error, None)
            raise
        activation.deactivate(tokens)
        activation.finish(None, result)
        return result

    return wrapper


def _coroutine(fn: Callable[..., Any], begin: Callable[[], Activation | None]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        activation = begin()
        if activation is None:
            return await fn(*args, **kwargs)
        tokens = activation.activate()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as error:
            activation.deactivate(tokens)
            activation.finish(error, None)
            raise
        activation.deactivate(tokens)
        activation.finish(None, result)
        return result

    return wrapper


def _generator(fn: Callable[..., Any], begin: Callable[[], Activation | None]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        inner = fn(*args, **kwargs)
        activation = begin()  # runs at the first next(): the record covers the iteration
        if activation is None:
            return (yield from inner)
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            tokens = activation.activate()
            try:
                item = inner.send(sent) if thrown is None else inner.throw(thrown)
            except StopIteration as stop:
                activation.deactivate(tokens)
                activation.finish(None, stop.value)
                return stop.value
            except BaseException as error:
                activation.deactivate(tokens)
                activation.finish(error, None)
                raise
            activation.deactivate(tokens)
            thrown = None
            try:
                sent = yield item
            except GeneratorExit as closing:  # close(), break, or garbage collection
                tokens = activation.activate()
                try:
                    inner.close()
                finally:
                    activation.deactivate(tokens)
                    activation.finish(closing, None)
                raise
            except BaseException as error:  # throw() into the wrapper: pass it on
                thrown, sent = error, None

    return wrapper


def _async_generator(fn: Callable[..., Any], begin: Callable[[], Activation | None]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        inner = fn(*args, **kwargs)
        activation = begin() or _NOTHING  # no `yield from` for async generators: same loop either way
        sent: Any = None
        thrown: BaseException | None = None
        first = True
        while True:
            tokens = activation.activate()
            try:
                item = await (inner.asend(sent) if thrown is None else inner.athrow(thrown))
                if first:
                    first = False
                    _leave_to_wrapper(inner)
            except StopAsyncIteration:
                activation.deactivate(tokens)
                activation.finish(None, None)
                return
            except BaseException as error:
                activation.deactivate(tokens)
                activation.finish(error, None)
                raise
            activation.deactivate(tokens)
            thrown = None
            try:
                sent = yield item
            except GeneratorExit as closing:  # aclose(), break, or finalisation by the event loop
                tokens = activation.activate()
                try:
                    await inner.aclose()
                finally:
                    activation.deactivate(tokens)
                    activation.finish(closing, None)
                raise
            except BaseException as error:
                thrown, sent = error, None

    return wrapper


def _leave_to_wrapper(inner: Any) -> None:
    """Keep the event loop's shutdown from closing `inner` while the wrapper is closing it.

    asyncio registers every async generator it sees start (`loop._asyncgens`) and, in
    `shutdown_asyncgens`, closes them all at once; the wrapper closes `inner` itself, so a second,
    concurrent `aclose()` would fail with "asynchronous generator is already running". Garbage
    collection of `inner` still goes through the loop's finaliser.
    """
    try:
        loop = asyncio.get_running_loop()
        registered = getattr(loop, "_asyncgens", None)
        if registered is not None:
            registered.discard(inner)
    except Exception:  # another event loop, or a private attribute that changed: nothing to undo
        pass
