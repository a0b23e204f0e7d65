"""Decorated functions run by workers (thread pools, threads, process pools), and bounded waits on them.

A 'spawn' child cannot unpickle a function defined in a test module that it cannot import by name, so
the functions submitted to process pools live here (pytest puts `tests/` on `sys.path`, for the modules
of `tests/reliability/` too since that package sits directly under `tests/`, and spawned children
inherit it). They are decorated like an agent's own code would be: nothing in them knows about threads
or processes. Used by `test_context_propagation.py` and `tests/reliability/test_context_*_complaints.py`.
"""

from __future__ import annotations

import os
import threading
from typing import TypedDict

import otel_decisions

TIMEOUT = 30.0
"""Upper bound, in seconds, of every wait on a thread, a task, a process or a barrier."""

WORKER_INTENT = "Crunch a number in a worker process"
WORKER_NODE = "worker"


class WorkerReport(TypedDict):
    """What a worker saw while its decision ran (and the decision's result, read back later)."""

    pid: int
    execution_id: str
    decision_id: str
    doubled: int


@otel_decisions.decision(WORKER_INTENT, node_id=WORKER_NODE)
def crunch(value: int) -> WorkerReport:
    """A decision made in whatever process runs it; returns what that process saw."""
    return {
        "pid": os.getpid(),
        "execution_id": otel_decisions.current_run(),
        "decision_id": otel_decisions.current_decision().decision_id,
        "doubled": value * 2,
    }


class Seen(TypedDict):
    """What decorated code saw while its decision ran."""

    key: str
    execution_id: str
    decision_id: str


LOOK_UP_INTENT = "Look up a fact"


@otel_decisions.decision(LOOK_UP_INTENT, node_id="lookup")
def look_up(key: str) -> Seen:
    """A decision as an agent's tool would make it: no idea which thread or run it is in."""
    return {
        "key": key,
        "execution_id": otel_decisions.current_run(),
        "decision_id": otel_decisions.current_decision().decision_id,
    }


def join_all(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), f"{thread.name} did not finish within {TIMEOUT} s"
