"""Functions run by process-pool workers in `test_context_propagation.py`.

A 'spawn' child cannot unpickle a function defined in a test module that it cannot import by name, so
the submitted functions live here (pytest puts `tests/` on `sys.path`, and spawned children inherit
it). They are decorated like an agent's own code would be: nothing in them knows about processes.
"""

from __future__ import annotations

import os
from typing import TypedDict

import otel_decisions

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
