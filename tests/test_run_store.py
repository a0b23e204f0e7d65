"""The store keeps run facts, and rebuilds full runs on demand by re-reading their lines.

- Facts read straight from spans (`reading.span_facts`) equal the facts of the runs rebuilt through the
  span contract, for random agents, the Collector fixtures, crashed runs and cross-process decisions:
  the cross-run analyses and the seed's run models cannot disagree.
- Full runs come back right after the files moved under the store: appended, rotated, rewritten.
- The progress callback keeps its contract.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest

from otel_decisions import BuilderQuery, DecisionType, Runtime
from otel_decisions.analysis.facts import RunFacts
from otel_decisions.analysis.patterns import find_patterns
from otel_decisions.contract import run_from_spans
from otel_decisions.reading.otlp_files import discover_files, parse_line
from otel_decisions.reading.run_store import RunStore

FIXTURES = Path(__file__).parent / "fixtures"

NODES = ["plan", "search", "answer"]
OPTIONS = [
    [{"id": f"o{i}", "description": f"{node} option {i}", "action_type": "tool_call"} for i in range(3)]
    for node in NODES
]


def random_agent(directory: Path, runs: int, seed: int) -> list[str]:
    """Runs with random choices, failures, missing outcomes, unknown chosen ids and open runs."""
    rng = random.Random(seed)
    runtime = Runtime(directory)
    ids = []
    for n in range(runs):
        ids.append(runtime.start_run(f"goal-{n % 2}", "random", {"n": n}))
        for step in range(rng.randint(0, 7)):
            node = rng.randrange(len(NODES))
            options = OPTIONS[node] if rng.random() > 0.1 else []
            chosen = rng.choice(["o0", "o1", "o2", "missing"])
            d = runtime.decide(
                f"step {step % 3}",
                options,
                chosen,
                "why",
                node_id=NODES[node],
                decision_type=DecisionType.PATH_CHOICE,
            )
            if rng.random() < 0.85:
                ok = rng.random() < 0.7
                runtime.record_outcome(
                    d,
                    ok,
                    error=None if ok else rng.choice(["timeout", "bad input"]),
                    latency_ms=rng.randint(0, 50),
                )
        if n % 9 == 8:
            continue  # left open: started but never ended (the next start_run replaces it)
        runtime.end_run(rng.random() < 0.6, narrative="n")
    return ids


def facts_of_rebuilt_runs(store: RunStore) -> list[RunFacts]:
    """What the facts should be: the rebuilt `Run` of every trace, through the span contract."""
    return [RunFacts.from_run(run, store.execution_id(run.id) or "") for run in store.runs()]


def assert_facts_agree(store: RunStore) -> None:
    facts = store.facts()
    expected = facts_of_rebuilt_runs(store)
    assert [f.run_id for f in facts] == [f.run_id for f in expected]
    for got, want in zip(facts, expected, strict=True):
        assert got.trace_id == store.execution_id(got.run_id)
        got.trace_id = want.trace_id  # compared above; the rebuilt run does not know its trace id
        assert got == want, got.run_id


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_facts_from_spans_equal_facts_of_rebuilt_runs(tmp_path: Path, seed: int) -> None:
    random_agent(tmp_path, 40, seed)
    store = RunStore(tmp_path)

    assert_facts_agree(store)
    assert len(store.facts()) == 40
    statuses = {f.status for f in store.facts()}
    assert {"completed", "failed"} <= statuses


def test_facts_agree_on_collector_files_with_torn_and_split_traces() -> None:
    for source in (FIXTURES / "collector_traces.jsonl", FIXTURES / "collector"):
        store = RunStore(source)
        assert store.facts(), source
        assert_facts_agree(store)


def test_facts_agree_for_a_crashed_run_without_its_root_span(tmp_path: Path) -> None:
    random_agent(tmp_path, 5, seed=4)
    path = next(iter(discover_files(tmp_path)))
    kept = []
    for line in path.read_bytes().splitlines(keepends=True):
        # drop every root span of one run: the trace then only holds decisions and outcomes
        kept.append(
            line.replace(b'"gen_ai.operation.name","value":{"stringValue":"invoke_agent"}', b'"x","value":{}')
        )
    path.write_bytes(b"".join(kept))
    store = RunStore(tmp_path)

    assert {f.status for f in store.facts()} == {"running"}
    assert_facts_agree(store)


def test_builder_query_patterns_equal_the_reference_over_full_runs(tmp_path: Path) -> None:
    random_agent(tmp_path, 60, seed=5)
    query = BuilderQuery(tmp_path)

    for goal in ("goal-0", "goal-1"):
        assert query.find_patterns(goal) == find_patterns(
            goal, [r for r in query.storage.runs() if r.goal_id == goal]
        )


# ------------------------------------------------------------------------ full runs, rebuilt on demand
def test_full_runs_are_rebuilt_from_their_lines_after_appends_and_rotation(tmp_path: Path) -> None:
    directory = tmp_path / "spans"
    random_agent(directory, 6, seed=6)
    store = RunStore(directory)
    first = {r.id: r for r in store.runs()}

    path = next(iter(discover_files(directory)))
    path.rename(directory / "traces-rotated.jsonl")  # what rotation does, between two reads
    later = random_agent(directory, 3, seed=7)

    assert set(store.list_all_runs()) == set(first) | set(later)
    for run_id, run in first.items():
        assert store.load_run(run_id) == run  # found again at the rotated file's new name
    for run_id in later:
        loaded = store.load_run(run_id)
        assert loaded is not None and loaded.id == run_id


def test_a_rewritten_file_is_read_again_and_not_misread_at_old_offsets(tmp_path: Path) -> None:
    source, other = tmp_path / "a", tmp_path / "b"
    random_agent(source, 4, seed=8)
    random_agent(other, 2, seed=9)
    store = RunStore(source / "traces.jsonl")
    before = set(store.list_all_runs())

    replacement = (other / "traces.jsonl").read_bytes()
    assert len(replacement) < (source / "traces.jsonl").stat().st_size
    with open(source / "traces.jsonl", "r+b") as f:  # same inode, shorter content
        f.truncate(0)
        f.write(replacement)

    new_ids = set(RunStore(other).list_all_runs())
    for run_id in new_ids:
        run = store.load_run(run_id)
        assert run is not None and run.id == run_id
    assert new_ids - before  # the rewritten file's runs were found


def test_loading_every_run_equals_rebuilding_from_all_parsed_spans(tmp_path: Path) -> None:
    random_agent(tmp_path, 30, seed=10)
    spans = [
        s for p in discover_files(tmp_path) for line in p.read_bytes().splitlines() for s in parse_line(line)
    ]
    by_trace: dict[str, list] = {}  # type: ignore[type-arg]
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    expected = {run.id: run for run in (run_from_spans(v) for v in by_trace.values()) if run is not None}

    store = RunStore(tmp_path)
    assert {r.id: r for r in store.runs()} == expected


def test_a_removed_file_takes_its_runs_with_it(tmp_path: Path) -> None:
    random_agent(tmp_path / "d", 3, seed=11)
    copy = tmp_path / "copy.jsonl"
    shutil.copy(tmp_path / "d" / "traces.jsonl", copy)
    store = RunStore(tmp_path / "*.jsonl")
    run_id = store.list_all_runs()[0]
    os.remove(copy)

    assert store.list_all_runs() == []  # nothing listed that is no longer on disk
    assert store.load_run(run_id) is None
    assert store.facts() == []


@pytest.mark.parametrize("how", ["same size", "larger", "new file, reused inode"])
def test_a_file_replaced_in_place_is_read_again_from_the_start(tmp_path: Path, how: str) -> None:
    """copytruncate-style rewrites and inode reuse keep the (device, inode) but not the content."""
    first, second = tmp_path / "first", tmp_path / "second"
    old_ids = set(random_agent(first, 4, seed=14))
    new_ids = set(random_agent(second, 8 if how == "larger" else 4, seed=15))
    target = tmp_path / "spans" / "traces.jsonl"
    target.parent.mkdir()
    shutil.copy(first / "traces.jsonl", target)
    store = RunStore(target.parent)
    assert set(store.list_all_runs()) == old_ids

    replacement = (second / "traces.jsonl").read_bytes()
    if how == "same size":  # pad or cut to exactly the old size, ending in whole lines
        old_size = target.stat().st_size
        lines = replacement.splitlines(keepends=True)
        while sum(map(len, lines)) > old_size:
            lines.pop()
        body = b"".join(lines)
        replacement = body + b"\n" * (old_size - len(body))
    with open(target, "r+b") as f:  # same inode
        f.truncate(0)
        f.write(replacement)

    listed = set(store.list_all_runs())
    assert not listed & old_ids
    assert listed and listed <= new_ids
    for run_id in listed:
        run = store.load_run(run_id)
        assert run is not None and run.id == run_id


def test_facts_handed_out_do_not_change_when_more_spans_arrive(tmp_path: Path) -> None:
    runtime = Runtime(tmp_path)
    runtime.start_run("g")
    decision = runtime.decide("pick", OPTIONS[0], "o0", "why")
    runtime._recorder.drain()  # type: ignore[union-attr]  # the decision span is written, not its outcome
    assert runtime._pipeline.flush()
    store = RunStore(tmp_path)
    (before,) = store.facts()
    assert before.decisions[0].success is None

    runtime.record_outcome(decision, True)
    runtime.end_run(True)
    (after,) = store.facts()

    assert after.decisions[0].success is True
    assert before.decisions[0].success is None  # what a reader already holds stays as it was


# ---------------------------------------------------------------------------------------- progress
def test_progress_is_reported_up_to_the_bytes_to_read(tmp_path: Path) -> None:
    random_agent(tmp_path, 20, seed=12)
    size = sum(p.stat().st_size for p in discover_files(tmp_path))
    calls: list[tuple[int, int]] = []
    store = RunStore(tmp_path, progress=lambda done, total: calls.append((done, total)))

    store.refresh()
    assert calls and calls[-1] == (size, size)
    assert all(total == size for _, total in calls)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)

    calls.clear()
    store.refresh()
    assert calls == []  # nothing new to read: no progress to show

    random_agent(tmp_path, 1, seed=13)
    store.refresh()
    grown = sum(p.stat().st_size for p in discover_files(tmp_path)) - size
    assert calls[-1] == (grown, grown)
