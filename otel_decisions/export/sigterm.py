"""A SIGTERM that waits for a run's start or end to be written, but never for long.

Our SIGTERM handler (`pipeline._on_sigterm`) ends the open runs, flushes and terminates. Python runs it
in the main thread between two bytecodes, so it can land in the middle of our own code: a run half
started (not yet known to the pipeline: it would be missing), half ended (its end not yet written: it
would stay `running`), or a decorated decision whose two spans are being written as one line (the
handler's own spans would join that line, never written). Functions marked `@critical` are such
places: when the signal lands in one (or in anything it calls), the handler only notes it, and the
outermost critical function re-raises it as it returns.

Why a frame check rather than a counter: nothing to keep balanced, so a KeyboardInterrupt between
two bytecodes of ours, or a fork from another thread, cannot leave SIGTERM ignored for good.

Never for long: user code runs inside (a value's `__repr__`, a span observer). A second SIGTERM, or
`WAIT_SECONDS` without the section ending, makes the handler run at once, as it did without this. The
wait is bounded by a watchdog thread started with the handler (`start_watchdog`), not by one started
from the handler: the handler may have interrupted `Thread.start` itself, inside its lock.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any, Final, TypeVar

__all__ = ["WAIT_SECONDS", "critical", "defer", "start_watchdog"]

WAIT_SECONDS: Final = 2.0
"""The longest a SIGTERM waits for a critical section (then the handler runs inside it)."""

F = TypeVar("F", bound=Callable[..., Any])

_critical: set[CodeType] = set()


class _State:
    __slots__ = ("forced", "pending")

    def __init__(self) -> None:
        self.pending = False  # a SIGTERM is waiting for the main thread to leave a critical section
        self.forced = False  # it waited long enough: run the handler wherever the main thread is


_state = _State()


_wake = threading.Event()
_watchdog: list[threading.Thread] = []


def _forked_child() -> None:
    global _wake
    _state.pending = _state.forced = False  # the parent's signal, not ours
    _wake = threading.Event()  # the parent's may have been locked by its watchdog at the fork
    if _watchdog:  # the parent bounded its waits: so does the child (its threads did not survive)
        _watchdog.clear()
        start_watchdog()


os.register_at_fork(after_in_child=_forked_child)


def critical(function: F) -> F:
    """Mark `function` as a critical section: a SIGTERM landing in it, or in anything it calls, is
    handled when it returns (or after `WAIT_SECONDS`)."""
    _critical.add(function.__code__)

    @functools.wraps(function)
    def section(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        finally:
            if _state.pending:
                _raise_pending(sys._getframe(1))

    return section  # type: ignore[return-value]


def _inside(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code in _critical:
            return True
        frame = frame.f_back
    return False


def _raise_pending(caller: FrameType | None) -> None:
    """At the end of a critical section: deliver the SIGTERM that waited, unless an enclosing
    section is still running (it will) or this is not the main thread (the handler's thread)."""
    if threading.get_ident() != threading.main_thread().ident or _inside(caller):
        return
    _state.pending = False
    signal.raise_signal(signal.SIGTERM)  # the handler runs again, now outside every section


def defer(frame: FrameType | None) -> bool:
    """Called first by the SIGTERM handler with the interrupted `frame`: True when the signal must
    wait (the handler returns at once); False when the handler should run now."""
    if _state.forced or not _inside(frame):
        _state.pending = _state.forced = False
        return False
    if _state.pending:  # a second SIGTERM while the first waits: do not make it wait too
        _state.pending = False
        return False
    _state.pending = True
    _wake.set()
    return True


def start_watchdog() -> None:
    """Start the daemon thread that ends a SIGTERM's wait after `WAIT_SECONDS` (once per process)."""
    if not _watchdog:
        thread = threading.Thread(target=_watch, name="otel_decisions-sigterm", daemon=True)
        thread.start()
        _watchdog.append(thread)


def _watch() -> None:
    while True:
        wake = _wake
        wake.wait()
        wake.clear()
        time.sleep(WAIT_SECONDS)
        main = threading.main_thread().ident
        if _state.pending and main is not None:
            _state.forced = True
            signal.pthread_kill(main, signal.SIGTERM)  # to the main thread: interrupts a blocking call
