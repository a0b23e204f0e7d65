"""Delegation links between runs: a `delegation` decision starts a sub-run linked both ways.

Which run a decision belongs to wherever the work runs (issue points 4, 5, 6) is tested in the
reliability suite, after the peer complaints it answers (research/peers.md §2): threads in
`tests/reliability/test_context_thread_complaints.py` (1), processes and new event loops in
`test_context_process_complaints.py` (2), other instrumentations in `test_context_scope_complaints.py`
(12, 15, 17).

The test records with the decorators / context managers into `tmp_path` and checks what a brand-new
`BuilderQuery(tmp_path)` reads back and the raw OTLP/JSON lines of `tmp_path / "traces.jsonl"`. Every
wait on a thread is bounded by `TIMEOUT`. No sleeps and no mocks.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from _readback import DECISION_ID, RUN_ID, read_run
from _span_records import DELEGATED_RUN_IDS, LINK_TYPE, decision_span, raw_spans, root_span
from _workers import TIMEOUT

import otel_decisions
from otel_decisions import BuilderQuery, DecisionType, RunHandle


# ======================================================================================== delegation
@pytest.mark.parametrize("where", ["same_thread", "thread_pool"])
def test_delegation_starts_a_sub_run_linked_both_ways(tmp_path: Path, where: str) -> None:
    """A `delegation` decision starts a sub-run (in the same thread, or in a pool thread it hands the work
    to): its own trace, whose root links to the delegating decision span; `BuilderQuery` shows the link
    from both ends."""
    sub_handles: list[RunHandle] = []

    def sub_agent() -> None:
        sub: RunHandle
        with otel_decisions.run("sub_agent", directory=tmp_path) as sub:
            sub_handles.append(sub)
            with otel_decisions.decision("Work in the sub-run", node_id="sub_node"):
                pass

    parent: RunHandle
    with otel_decisions.run("lead_agent", directory=tmp_path) as parent:
        with otel_decisions.decision(
            "Delegate the research", node_id="lead", decision_type=DecisionType.DELEGATION
        ) as delegating:
            if where == "same_thread":
                sub_agent()
            else:
                with ThreadPoolExecutor(max_workers=1) as pool:
                    pool.submit(sub_agent).result(timeout=TIMEOUT)
        with otel_decisions.decision("Wrap up", node_id="lead"):
            pass

    (sub,) = sub_handles
    assert sub.execution_id != parent.execution_id
    query = BuilderQuery(tmp_path)
    assert query.execution_id(parent.run_id) == parent.execution_id
    assert query.execution_id(sub.run_id) == sub.execution_id
    assert query.get_delegations(parent.run_id) == [
        {"decision_id": delegating.decision_id, "run_id": sub.run_id}
    ]
    assert query.get_delegating_decision(sub.run_id) == {
        "run_id": parent.run_id,
        "decision_id": delegating.decision_id,
        "execution_id": parent.execution_id,
    }
    assert query.get_delegations(sub.run_id) == []
    assert query.get_delegating_decision(parent.run_id) is None

    parent_run = read_run(tmp_path, parent.run_id)
    assert [d.intent for d in parent_run.decisions] == ["Delegate the research", "Wrap up"]
    assert parent_run.decisions[0].decision_type == DecisionType.DELEGATION
    assert parent_run.metrics.total_decisions == 2
    sub_run = read_run(tmp_path, sub.run_id)
    assert [d.intent for d in sub_run.decisions] == ["Work in the sub-run"]
    assert sub_run.metrics.total_decisions == 1

    spans = raw_spans(tmp_path)
    delegating_span = decision_span(spans, parent.run_id, delegating.decision_id)
    assert delegating_span.trace_id == parent.execution_id
    assert delegating_span.attributes[DELEGATED_RUN_IDS] == [sub.run_id]
    sub_root = root_span(spans, sub.run_id)
    assert sub_root.trace_id == sub.execution_id
    assert len(sub_root.links) == 1
    link = sub_root.links[0]
    assert (link.trace_id, link.span_id) == (parent.execution_id, delegating_span.span_id)
    assert link.attributes[LINK_TYPE] == "delegated_from"
    assert link.attributes[RUN_ID] == parent.run_id
    assert link.attributes[DECISION_ID] == delegating.decision_id
    assert all(s.trace_id == sub.execution_id for s in spans if s.attributes.get(RUN_ID) == sub.run_id)
    assert root_span(spans, parent.run_id).links == []
