"""The seed's run models and Builder analyses, checked against SEED_API.md ("Models", "BuilderQuery").

Runs are built directly with the model methods, as the seed's runtime would build them.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from otel_decisions.analysis import (
    FailureAnalysis,
    PatternAnalysis,
    analyze_failure,
    compare_runs,
    find_patterns,
    node_performance,
    suggest_improvements,
)
from otel_decisions.models import (
    Decision,
    DecisionEvaluation,
    DecisionType,
    Option,
    Outcome,
    Problem,
    Run,
    RunMetrics,
    RunStatus,
    RunSummary,
)

# --------------------------------------------------------------------------------------------- helpers


def opt(option_id: str, description: str | None = None) -> Option:
    return Option(id=option_id, description=description or f"do {option_id}", action_type="tool_call")


def make_decision(
    dec_id: str,
    *,
    node: str = "node",
    intent: str = "intent",
    options: list[Option] | None = None,
    chosen: str = "a",
    decision_type: DecisionType = DecisionType.CUSTOM,
    constraints: list[str] | None = None,
    context: dict[str, Any] | None = None,
    evaluation: DecisionEvaluation | None = None,
) -> Decision:
    return Decision(
        id=dec_id,
        node_id=node,
        intent=intent,
        decision_type=decision_type,
        options=options if options is not None else [opt("a")],
        chosen_option_id=chosen,
        active_constraints=constraints or [],
        input_context=context if context is not None else {"k": "v"},
        evaluation=evaluation,
    )


def add(
    run: Run,
    success: bool | None,
    *,
    error: str | None = None,
    latency_ms: int = 0,
    tokens: int = 0,
    summary: str = "",
    **decision_kwargs: Any,
) -> Decision:
    """Add a decision to `run` and, unless `success` is None, record its outcome."""
    decision = make_decision(f"dec_{len(run.decisions)}", **decision_kwargs)
    run.add_decision(decision)
    if success is not None:
        run.record_outcome(
            decision.id,
            Outcome(success=success, error=error, latency_ms=latency_ms, tokens_used=tokens, summary=summary),
        )
    return decision


def make_run(run_id: str = "run_1", goal: str = "goal", status: RunStatus | None = None) -> Run:
    run = Run(id=run_id, goal_id=goal)
    if status is not None:
        run.complete(status)
    return run


def runs_with_statuses(*statuses: RunStatus) -> list[Run]:
    return [make_run(f"run_{i}", status=s) for i, s in enumerate(statuses)]


# ---------------------------------------------------------------------------------------------- models


def test_enums_have_the_seed_values() -> None:
    assert [t.value for t in DecisionType] == [
        "tool_selection",
        "parameter_choice",
        "path_choice",
        "output_format",
        "retry_strategy",
        "delegation",
        "termination",
        "custom",
    ]
    assert [s.value for s in RunStatus] == ["running", "completed", "failed", "stuck", "cancelled"]
    assert RunStatus("failed") is RunStatus.FAILED


def test_option_outcome_and_evaluation_defaults() -> None:
    option = Option(id="a", description="d", action_type="t")
    assert (option.action_params, option.pros, option.cons, option.confidence) == ({}, [], [], 0.5)
    outcome = Outcome(success=True)
    assert (outcome.result, outcome.error, outcome.state_changes) == (None, None, {})
    assert (outcome.tokens_used, outcome.latency_ms, outcome.summary) == (0, 0, "")
    assert isinstance(outcome.timestamp, datetime)
    ev = DecisionEvaluation()
    assert (ev.goal_aligned, ev.alignment_score, ev.better_option_existed) == (True, 1.0, False)
    assert (ev.better_option_id, ev.why_better, ev.outcome_quality) == (None, None, 1.0)
    assert (ev.contributed_to_success, ev.explanation) == (None, "")


def test_option_requires_action_type() -> None:
    with pytest.raises(ValidationError):
        Option.model_validate({"id": "a", "description": "d"})


@pytest.mark.parametrize("field", ["alignment_score", "outcome_quality"])
@pytest.mark.parametrize("value", [-0.1, 1.1])
def test_evaluation_scores_are_bounded_to_unit_interval(field: str, value: float) -> None:
    with pytest.raises(ValidationError):
        DecisionEvaluation.model_validate({field: value})


def test_decision_defaults_to_custom_type_and_no_outcome() -> None:
    decision = Decision(id="d", node_id="n", intent="i")
    assert decision.decision_type is DecisionType.CUSTOM
    assert (decision.options, decision.chosen_option_id, decision.reasoning) == ([], "", "")
    assert (decision.active_constraints, decision.input_context) == ([], {})
    assert decision.outcome is None and decision.evaluation is None


def test_chosen_option_is_the_option_with_the_chosen_id() -> None:
    decision = make_decision("d", options=[opt("a"), opt("b")], chosen="b")
    assert decision.chosen_option == opt("b")
    assert make_decision("d", options=[opt("a")], chosen="zzz").chosen_option is None


def test_was_successful_requires_a_successful_outcome() -> None:
    decision = make_decision("d")
    assert decision.was_successful is False
    decision.outcome = Outcome(success=False)
    assert decision.was_successful is False
    decision.outcome = Outcome(success=True)
    assert decision.was_successful is True


def test_was_good_decision_follows_success_without_evaluation() -> None:
    decision = make_decision("d")
    assert decision.was_good_decision is False
    decision.outcome = Outcome(success=True)
    assert decision.was_good_decision is True


@pytest.mark.parametrize(
    ("aligned", "quality", "expected"),
    [(True, 0.51, True), (True, 0.5, False), (False, 1.0, False)],
)
def test_was_good_decision_with_evaluation_needs_alignment_and_quality_above_half(
    aligned: bool, quality: float, expected: bool
) -> None:
    decision = make_decision(
        "d", evaluation=DecisionEvaluation(goal_aligned=aligned, outcome_quality=quality)
    )
    decision.outcome = Outcome(success=not expected)  # the outcome must not matter
    assert decision.was_good_decision is expected


def test_summary_for_builder_marks_success_and_failure() -> None:
    decision = make_decision("d", node="search", intent="Find leads", options=[opt("a", "Call API")])
    assert decision.summary_for_builder() == "✗ [search] Find leads → Call API"
    decision.outcome = Outcome(success=True)
    assert decision.summary_for_builder() == "✓ [search] Find leads → Call API"


def test_summary_for_builder_says_unknown_action_without_chosen_option() -> None:
    decision = make_decision("d", node="n", intent="i", chosen="missing")
    assert decision.summary_for_builder() == "✗ [n] i → unknown action"


def test_summary_for_builder_appends_quality_when_evaluated() -> None:
    decision = make_decision(
        "d",
        node="n",
        intent="i",
        options=[opt("a", "A")],
        evaluation=DecisionEvaluation(outcome_quality=0.94),
    )
    assert decision.summary_for_builder() == "✗ [n] i → A [quality: 0.9]"


def test_run_metrics_success_rate_is_zero_without_decisions() -> None:
    assert RunMetrics().success_rate == 0.0
    assert RunMetrics(total_decisions=4, successful_decisions=3).success_rate == 0.75


def test_run_defaults_and_duration_before_completion() -> None:
    run = Run(id="r", goal_id="g")
    assert run.status is RunStatus.RUNNING
    assert (run.completed_at, run.decisions, run.problems, run.narrative) == (None, [], [], "")
    assert (run.goal_description, run.input_data, run.output_data) == ("", {}, {})
    assert run.duration_ms == 0


def test_run_duration_is_milliseconds_from_start_to_completion() -> None:
    run = Run(
        id="r",
        goal_id="g",
        started_at=datetime(2024, 1, 1, 12, 0, 0),
        completed_at=datetime(2024, 1, 1, 12, 0, 1, 500_000),
    )
    assert run.duration_ms == 1500


def test_add_decision_counts_decisions_and_unique_nodes_in_first_seen_order() -> None:
    run = make_run()
    for node in ["b", "a", "b", "c", "a"]:
        add(run, None, node=node)
    assert run.metrics.total_decisions == 5
    assert run.metrics.nodes_executed == ["b", "a", "c"]


def test_record_outcome_updates_metrics() -> None:
    run = make_run()
    add(run, True, latency_ms=10, tokens=100)
    add(run, False, latency_ms=5, tokens=7)
    add(run, None)
    m = run.metrics
    assert (m.total_decisions, m.successful_decisions, m.failed_decisions) == (3, 1, 1)
    assert (m.total_tokens, m.total_latency_ms) == (107, 15)
    assert m.success_rate == pytest.approx(1 / 3)


def test_record_outcome_attaches_to_first_decision_with_the_id() -> None:
    run = make_run()
    first, second = make_decision("dup"), make_decision("dup")
    run.add_decision(first)
    run.add_decision(second)
    assert run.record_outcome("dup", Outcome(success=True)) is True
    assert first.was_successful and second.outcome is None


def test_record_outcome_for_unknown_decision_changes_nothing() -> None:
    run = make_run()
    add(run, None)
    before = run.metrics.model_copy(deep=True)
    assert run.record_outcome("nope", Outcome(success=True, tokens_used=5)) is False
    assert run.metrics == before
    assert run.decisions[0].outcome is None


def test_add_problem_returns_sequential_ids_and_keeps_positional_order() -> None:
    run = make_run()
    assert run.add_problem("critical", "boom", "dec_0", "cause", "fix it") == "prob_0"
    assert run.add_problem("warning", "hmm") == "prob_1"
    problem = run.problems[0]
    assert (problem.id, problem.severity, problem.description) == ("prob_0", "critical", "boom")
    assert (problem.decision_id, problem.root_cause, problem.suggested_fix) == ("dec_0", "cause", "fix it")
    assert run.problems[1].decision_id is None and run.problems[1].suggested_fix is None


def test_complete_sets_status_time_and_keeps_given_narrative() -> None:
    run = make_run()
    run.complete(RunStatus.COMPLETED, "All good.")
    assert run.status is RunStatus.COMPLETED
    assert run.completed_at is not None and run.completed_at >= run.started_at
    assert run.narrative == "All good."


def test_generated_narrative_for_successful_run() -> None:
    run = make_run()
    add(run, True)
    run.complete(RunStatus.COMPLETED)
    assert run.narrative == "Run completed successfully. Made 1 decisions: 1 succeeded, 0 failed."


def test_generated_narrative_lists_issues_warnings_and_first_three_failures() -> None:
    run = make_run()
    add(run, True, intent="ok")
    for intent in ["one", "two", "three", "four"]:
        add(run, False, intent=intent)
    add(run, None, intent="never finished")
    run.add_problem("critical", "c1")
    run.add_problem("warning", "w1")
    run.add_problem("critical", "c2")
    run.add_problem("minor", "m1")
    run.complete(RunStatus.FAILED)
    assert run.narrative == (
        "Run failed. Made 6 decisions: 1 succeeded, 4 failed. Critical issues: c1, c2 Warnings: w1 "
        "Failed on: one, two, three"
    )


def test_generated_narrative_counts_undecided_decisions_as_failed_intents() -> None:
    run = make_run()
    add(run, None, intent="hung")
    run.complete(RunStatus.STUCK)
    assert run.narrative == "Run failed. Made 1 decisions: 0 succeeded, 0 failed. Failed on: hung"


def test_run_summary_from_run_copies_headline_fields() -> None:
    run = Run(
        id="r", goal_id="g", started_at=datetime(2024, 1, 1), completed_at=datetime(2024, 1, 1, 0, 0, 2)
    )
    run.status = RunStatus.COMPLETED
    run.narrative = "story"
    add(run, True)
    add(run, False)
    run.add_problem("minor", "m")
    summary = RunSummary.from_run(run)
    assert (summary.run_id, summary.goal_id, summary.status) == ("r", "g", RunStatus.COMPLETED)
    assert (summary.duration_ms, summary.decision_count, summary.success_rate) == (2000, 2, 0.5)
    assert (summary.problem_count, summary.narrative) == (1, "story")


def test_run_summary_key_decisions_are_failures_and_high_quality_capped_at_five() -> None:
    run = make_run()
    add(run, True, intent="plain success")
    add(run, True, intent="good", evaluation=DecisionEvaluation(outcome_quality=0.81))
    add(run, True, intent="borderline", evaluation=DecisionEvaluation(outcome_quality=0.8))
    for i in range(6):
        add(run, False, intent=f"fail{i}")
    summary = RunSummary.from_run(run)
    assert summary.key_decisions == [d.summary_for_builder() for d in (run.decisions[1], *run.decisions[3:7])]
    assert len(summary.key_decisions) == 5


def test_run_summary_successes_are_nonempty_summaries_capped_at_three() -> None:
    run = make_run()
    add(run, True, summary="")
    add(run, False, summary="failed summary")
    for i in range(4):
        add(run, True, summary=f"s{i}")
    assert RunSummary.from_run(run).successes == ["s0", "s1", "s2"]


def test_run_summary_groups_problems_by_exact_severity() -> None:
    run = make_run()
    for severity, description in [
        ("critical", "c"),
        ("Critical", "C"),
        ("warning", "w"),
        ("warning ", "w-space"),
        ("minor", "m"),
    ]:
        run.add_problem(severity, description)
    summary = RunSummary.from_run(run)
    assert summary.critical_problems == ["c"]
    assert summary.warnings == ["w"]
    assert summary.problem_count == 5


def rich_run() -> Run:
    run = Run(id="r", goal_id="g", goal_description="desc", input_data={"q": 1})
    add(run, True, evaluation=DecisionEvaluation(outcome_quality=0.9), summary="s")
    add(run, False, error="bad", constraints=["c"])
    run.add_problem("warning", "w", "dec_1", "rc", "fix")
    run.complete(RunStatus.FAILED)
    return run


def test_run_revalidates_from_its_own_dump() -> None:
    run = rich_run()
    dumped = run.model_dump()
    assert "duration_ms" in dumped and "was_successful" in dumped["decisions"][0]
    assert Run.model_validate(dumped) == run


def test_run_revalidates_from_its_own_json() -> None:
    run = rich_run()
    assert Run.model_validate_json(run.model_dump_json()) == run


def test_computed_field_keys_in_input_are_ignored_not_kept_as_extras() -> None:
    decision = Decision.model_validate(
        {"id": "d", "node_id": "n", "intent": "i", "was_successful": True, "chosen_option": None}
    )
    assert decision.was_successful is False
    assert decision.model_extra == {}
    metrics = RunMetrics.model_validate(
        {"total_decisions": 2, "successful_decisions": 1, "success_rate": 9.0}
    )
    assert metrics.success_rate == 0.5
    run = Run.model_validate({"id": "r", "goal_id": "g", "duration_ms": 123})
    assert run.duration_ms == 0 and run.model_extra == {}


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (Option, {"id": "a", "description": "d", "action_type": "t"}),
        (Outcome, {"success": True}),
        (DecisionEvaluation, {}),
        (Decision, {"id": "d", "node_id": "n", "intent": "i"}),
        (Problem, {"id": "p", "severity": "minor", "description": "d"}),
        (RunMetrics, {}),
        (Run, {"id": "r", "goal_id": "g"}),
        (
            RunSummary,
            {
                "run_id": "r",
                "goal_id": "g",
                "status": "completed",
                "duration_ms": 0,
                "decision_count": 0,
                "success_rate": 0.0,
                "problem_count": 0,
                "narrative": "",
            },
        ),
    ],
)
def test_every_model_keeps_extra_fields(model: type[Any], data: dict[str, Any]) -> None:
    instance = model.model_validate({**data, "custom_field": [1, 2]})
    assert instance.model_extra == {"custom_field": [1, 2]}
    assert instance.model_dump()["custom_field"] == [1, 2]


# ------------------------------------------------------------------------------------ analyze_failure


@pytest.mark.parametrize(
    "status", [RunStatus.COMPLETED, RunStatus.RUNNING, RunStatus.STUCK, RunStatus.CANCELLED]
)
def test_analyze_failure_returns_none_unless_run_failed(status: RunStatus) -> None:
    run = make_run()
    add(run, False, error="boom")
    run.status = status
    assert analyze_failure(run) is None


def test_analyze_failure_without_failed_decision_blames_external_cause() -> None:
    run = make_run()
    add(run, True)
    add(run, True)
    run.complete(RunStatus.FAILED)
    analysis = analyze_failure(run)
    assert analysis is not None
    assert analysis.failure_point == "Unknown - no decision marked as failed"
    assert analysis.root_cause == "Run failed but all decisions succeeded (external cause?)"
    assert analysis.decision_chain == [d.summary_for_builder() for d in run.decisions]
    assert analysis.suggestions == []


def test_analyze_failure_points_at_first_failed_decision_and_its_error() -> None:
    run = make_run("run_x")
    add(run, True, node="a", intent="first")
    add(run, False, node="b", intent="second", error="timeout", options=[opt("a", "Call")])
    add(run, False, node="c", intent="third", error="later")
    run.complete(RunStatus.FAILED)
    analysis = analyze_failure(run)
    assert analysis is not None
    assert analysis.run_id == "run_x"
    assert analysis.failure_point == "✗ [b] second → Call"
    assert analysis.root_cause == "timeout"


@pytest.mark.parametrize("error", [None, ""])
def test_analyze_failure_root_cause_is_unknown_without_error_text(error: str | None) -> None:
    run = make_run()
    add(run, False, error=error)
    run.complete(RunStatus.FAILED)
    analysis = analyze_failure(run)
    assert analysis is not None and analysis.root_cause == "Unknown"


def test_analyze_failure_treats_decision_without_outcome_as_the_failure() -> None:
    run = make_run()
    add(run, True)
    add(run, None, intent="hung")
    run.complete(RunStatus.FAILED)
    analysis = analyze_failure(run)
    assert analysis is not None
    assert analysis.failure_point == run.decisions[1].summary_for_builder()
    assert analysis.root_cause == "Unknown"


def test_analyze_failure_decision_chain_stops_at_first_failure_inclusive() -> None:
    run = make_run()
    add(run, True, intent="one")
    add(run, True, intent="two")
    add(run, False, intent="three")
    add(run, True, intent="four")
    run.complete(RunStatus.FAILED)
    analysis = analyze_failure(run)
    assert analysis is not None
    assert analysis.decision_chain == [d.summary_for_builder() for d in run.decisions[:3]]


def test_analyze_failure_formats_problems_with_severity() -> None:
    run = make_run()
    add(run, False)
    run.add_problem("critical", "Database down")
    run.add_problem("minor", "slow")
    run.complete(RunStatus.FAILED)
    analysis = analyze_failure(run)
    assert analysis is not None
    assert analysis.problems == ["[critical] Database down", "[minor] slow"]


def test_analyze_failure_suggestions_cover_all_kinds_in_order() -> None:
    run = make_run()
    add(run, True, context={})  # successful decisions get no suggestions
    add(
        run,
        False,
        intent="Pick tool",
        options=[opt("a", "Use search"), opt("b", "Use cache"), opt("c", "Ask user")],
        chosen="b",
        context={},
        constraints=["budget < 1", "no PII"],
    )
    add(run, False, intent="Write", options=[opt("x", "Draft")], chosen="x", context={"k": 1})
    run.add_problem("warning", "no fix here")
    run.add_problem("critical", "cache stale", suggested_fix="Invalidate cache first")
    run.add_problem("minor", "empty fix", suggested_fix="")
    run.complete(RunStatus.FAILED)
    analysis = analyze_failure(run)
    assert analysis is not None
    assert analysis.suggestions == [
        "Consider alternative: 'Use search' instead of 'Use cache'",
        "Decision 'Pick tool' had no input context - ensure relevant data is passed",
        "Review constraints: budget < 1, no PII - may be too restrictive",
        "Invalidate cache first",
    ]


def test_analyze_failure_alternative_names_unknown_when_chosen_option_missing() -> None:
    run = make_run()
    add(run, False, options=[opt("a", "A"), opt("b", "B")], chosen="zzz")
    run.complete(RunStatus.FAILED)
    analysis = analyze_failure(run)
    assert analysis is not None
    assert analysis.suggestions == ["Consider alternative: 'A' instead of 'unknown'"]


def test_analyze_failure_suggests_no_alternative_with_a_single_option() -> None:
    run = make_run()
    add(run, False, options=[opt("a", "A")], chosen="zzz")
    run.complete(RunStatus.FAILED)
    analysis = analyze_failure(run)
    assert analysis is not None and analysis.suggestions == []


def test_analyze_failure_problem_fixes_are_suggested_even_without_failed_decisions() -> None:
    run = make_run()
    add(run, True)
    run.add_problem("critical", "upstream outage", suggested_fix="Retry later")
    run.complete(RunStatus.FAILED)
    analysis = analyze_failure(run)
    assert analysis is not None and analysis.suggestions == ["Retry later"]


def test_failure_analysis_to_dict_has_all_fields() -> None:
    analysis = FailureAnalysis("r", "point", "cause", ["c1"], ["[minor] p"], ["s"])
    assert analysis.to_dict() == {
        "run_id": "r",
        "failure_point": "point",
        "root_cause": "cause",
        "decision_chain": ["c1"],
        "problems": ["[minor] p"],
        "suggestions": ["s"],
    }
    assert json.loads(json.dumps(analysis.to_dict())) == analysis.to_dict()


def test_failure_analysis_str_is_a_readable_report() -> None:
    analysis = FailureAnalysis(
        run_id="run_9",
        failure_point="✗ [n] i → a",
        root_cause="boom",
        decision_chain=["✓ [n] x → y", "✗ [n] i → a"],
        problems=["[critical] down"],
        suggestions=["Retry"],
    )
    assert str(analysis) == "\n".join(
        [
            "=== Failure Analysis for run_9 ===",
            "",
            "Failure Point: ✗ [n] i → a",
            "Root Cause: boom",
            "",
            "Decision Chain Leading to Failure:",
            "  1. ✓ [n] x → y",
            "  2. ✗ [n] i → a",
            "",
            "Reported Problems:",
            "  - [critical] down",
            "",
            "Suggestions:",
            "  → Retry",
        ]
    )


def test_failure_analysis_str_omits_empty_sections() -> None:
    text = str(FailureAnalysis("r", "p", "c", [], [], []))
    assert text.startswith("=== Failure Analysis for r ===")
    assert "Reported Problems:" not in text and "Suggestions:" not in text


# -------------------------------------------------------------------------------------- find_patterns


def test_find_patterns_returns_none_without_runs() -> None:
    assert find_patterns("goal", []) is None


def test_find_patterns_success_rate_is_completed_over_all_runs() -> None:
    runs = runs_with_statuses(RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.RUNNING, RunStatus.COMPLETED)
    runs += runs_with_statuses(RunStatus.STUCK)
    patterns = find_patterns("goal", runs)
    assert patterns is not None
    assert patterns.goal_id == "goal"
    assert patterns.run_count == 5
    assert patterns.success_rate == pytest.approx(0.4)


def test_find_patterns_accepts_a_one_shot_iterator() -> None:
    runs = runs_with_statuses(RunStatus.COMPLETED, RunStatus.FAILED)
    patterns = find_patterns("goal", iter(runs))
    assert patterns is not None and patterns.run_count == 2 and patterns.success_rate == 0.5


def test_find_patterns_common_failures_are_top_five_with_unknown_error() -> None:
    run = make_run(status=RunStatus.FAILED)
    counts = {"e1": 1, "e2": 4, "e3": 2, "e4": 3, "e5": 2, "e6": 1}
    for error, count in counts.items():
        for _ in range(count):
            add(run, False, error=error)
    for _ in range(3):
        add(run, False)  # no error text
    add(run, False, error="")
    add(run, None)  # no outcome: not a reported failure
    add(run, True, error="ignored on success")
    patterns = find_patterns("goal", [run])
    assert patterns is not None
    # Ties keep first-seen order (e3 before e5).
    assert patterns.common_failures == [("e2", 4), ("Unknown error", 4), ("e4", 3), ("e3", 2), ("e5", 2)]


def test_find_patterns_problematic_nodes_above_ten_percent_sorted_descending() -> None:
    run = make_run(status=RunStatus.FAILED)
    plan = {"exactly_10pct": (1, 10), "quarter": (1, 4), "half": (2, 4), "healthy": (0, 3), "hung": (1, 2)}
    for node, (failed, total) in plan.items():
        for i in range(total):
            add(run, i >= failed, node=node)
    run.decisions[-1].outcome = None  # "hung": its success becomes a decision without outcome
    patterns = find_patterns("goal", [run])
    assert patterns is not None
    assert patterns.problematic_nodes == [("hung", 1.0), ("half", 0.5), ("quarter", 0.25)]


def test_find_patterns_counts_nodes_across_runs() -> None:
    run_1, run_2 = make_run("r1", status=RunStatus.FAILED), make_run("r2", status=RunStatus.COMPLETED)
    add(run_1, False, node="n")
    add(run_2, True, node="n")
    add(run_2, True, node="n")
    patterns = find_patterns("goal", [run_1, run_2])
    assert patterns is not None
    [(node, rate)] = patterns.problematic_nodes
    assert node == "n" and rate == pytest.approx(1 / 3)


def test_find_patterns_decision_type_distribution_uses_type_values() -> None:
    run = make_run(status=RunStatus.COMPLETED)
    add(run, True, decision_type=DecisionType.TOOL_SELECTION)
    add(run, True, decision_type=DecisionType.TOOL_SELECTION)
    add(run, None, decision_type=DecisionType.PATH_CHOICE)
    add(run, True)
    patterns = find_patterns("goal", [run])
    assert patterns is not None
    assert patterns.decision_patterns["decision_type_distribution"] == {
        "tool_selection": 2,
        "path_choice": 1,
        "custom": 1,
    }


def test_find_patterns_common_choices_group_by_first_50_chars_of_intent() -> None:
    prefix = "x" * 50
    options = [opt("a", "Search"), opt("b", "Cache"), opt("c", "Ask")]
    run_1, run_2 = make_run("r1", status=RunStatus.COMPLETED), make_run("r2", status=RunStatus.FAILED)
    add(run_1, True, intent=prefix + " first", options=options, chosen="b")
    add(run_1, True, intent=prefix + " second", options=options, chosen="a")
    add(run_2, True, intent=prefix, options=options, chosen="b")
    add(run_2, True, intent=prefix, options=options, chosen="c")
    add(run_2, True, intent="short", options=options, chosen="a")
    add(run_2, True, intent="tie", options=options, chosen="c")
    add(run_2, True, intent="tie", options=options, chosen="a")
    add(run_2, True, intent="unchosen", options=options, chosen="missing")
    patterns = find_patterns("goal", [run_1, run_2])
    assert patterns is not None
    assert patterns.decision_patterns["common_choices"] == {
        prefix: {"choice": "Cache", "count": 2, "alternatives": 2},
        "short": {"choice": "Search", "count": 1, "alternatives": 0},
        "tie": {"choice": "Ask", "count": 1, "alternatives": 1},  # first seen wins a tie
    }


def test_find_patterns_without_decisions_has_empty_patterns() -> None:
    patterns = find_patterns("goal", runs_with_statuses(RunStatus.COMPLETED))
    assert patterns is not None
    assert (patterns.common_failures, patterns.problematic_nodes) == ([], [])
    assert patterns.decision_patterns == {"decision_type_distribution": {}, "common_choices": {}}


def test_pattern_analysis_to_dict_has_all_fields() -> None:
    analysis = PatternAnalysis("g", 2, 0.5, [("e", 2)], [("n", 0.5)], {"decision_type_distribution": {}})
    assert analysis.to_dict() == {
        "goal_id": "g",
        "run_count": 2,
        "success_rate": 0.5,
        "common_failures": [("e", 2)],
        "problematic_nodes": [("n", 0.5)],
        "decision_patterns": {"decision_type_distribution": {}},
    }


def test_pattern_analysis_str_is_a_readable_report() -> None:
    analysis = PatternAnalysis("g", 4, 0.5, [("timeout", 3)], [("search", 0.4)], {})
    assert str(analysis) == "\n".join(
        [
            "=== Pattern Analysis for Goal g ===",
            "",
            "Runs Analyzed: 4",
            "Success Rate: 50.0%",
            "",
            "Common Failures:",
            "  - timeout (3 occurrences)",
            "",
            "Problematic Nodes (failure rate):",
            "  - search: 40.0% failure rate",
        ]
    )


def test_pattern_analysis_str_omits_empty_sections() -> None:
    text = str(PatternAnalysis("g", 1, 1.0, [], [], {}))
    assert text.startswith("=== Pattern Analysis for Goal g ===")
    assert "Success Rate: 100.0%" in text
    assert "Common Failures:" not in text and "Problematic Nodes" not in text


# ------------------------------------------------------------------------------- suggest_improvements


def node_run(failed: int, total: int, node: str = "n", status: RunStatus = RunStatus.COMPLETED) -> Run:
    """A run whose `node` failed `failed` of `total` decisions, with distinct errors (no error patterns)."""
    run = make_run(f"run_{node}", status=status)
    for i in range(total):
        add(run, i >= failed, node=node, error=f"{node}-{i}")
    return run


SEED_SUGGESTION_TYPES = ("node_improvement", "error_handling", "architecture")
SEED_SUGGESTION_KEYS = ["type", "target", "reason", "recommendation", "priority"]


def seed_part(suggestions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The seed's suggestions as the seed returns them (no `evidence` key).

    Every suggestion has the seed's keys in the seed's order plus `evidence`; the seed's rules come
    first, before any evidence-based rule (which the seed does not have).
    """
    for suggestion in suggestions:
        assert list(suggestion) == [*SEED_SUGGESTION_KEYS, "evidence"]
    kinds = [s["type"] for s in suggestions]
    count = sum(kind in SEED_SUGGESTION_TYPES for kind in kinds)
    assert all(kind in SEED_SUGGESTION_TYPES for kind in kinds[:count]), kinds
    return [{k: v for k, v in s.items() if k != "evidence"} for s in suggestions[:count]]


def evidence_of(run_ids: list[str], decisions: list[tuple[str, str]]) -> dict[str, Any]:
    """The evidence dict citing `run_ids` and `(run id, decision id)` pairs (fewer than the limit)."""
    return {
        "run_ids": run_ids,
        "decisions": [{"run_id": run_id, "decision_id": dec_id} for run_id, dec_id in decisions],
        "run_count": len(run_ids),
        "decision_count": len(decisions),
    }


def test_suggest_improvements_is_empty_without_runs() -> None:
    assert suggest_improvements("goal", []) == []


def test_suggest_improvements_is_empty_for_a_healthy_goal() -> None:
    statuses = [RunStatus.COMPLETED] * 3 + [RunStatus.FAILED]
    runs = [node_run(1, 10), *runs_with_statuses(*statuses)]
    assert suggest_improvements("goal", runs) == []  # 10% node failure and 80% success are both fine


def test_suggest_improvements_node_improvement_priority_high_above_thirty_percent() -> None:
    runs = [node_run(4, 10, "search"), node_run(3, 10, "write"), node_run(2, 10, "plan")]
    suggestions = suggest_improvements("goal", runs)
    assert seed_part(suggestions) == [
        {
            "type": "node_improvement",
            "target": node,
            "reason": reason,
            "recommendation": (
                f"Review and improve node '{node}' - high failure rate suggests prompt or tool issues"
            ),
            "priority": priority,
        }
        for node, reason, priority in [
            ("search", "Node has 40.0% failure rate", "high"),
            ("write", "Node has 30.0% failure rate", "medium"),
            ("plan", "Node has 20.0% failure rate", "medium"),
        ]
    ]
    # The evidence of a weak node: its run, and every decision of the node that did not succeed.
    assert [s["evidence"] for s in suggestions[:3]] == [
        evidence_of([f"run_{node}"], [(f"run_{node}", f"dec_{i}") for i in range(failed)])
        for node, failed in [("search", 4), ("write", 3), ("plan", 2)]
    ]


def test_suggest_improvements_error_handling_needs_two_occurrences_and_is_high_from_five() -> None:
    run = make_run(status=RunStatus.COMPLETED)
    for error, count in [("rate limit", 5), ("timeout", 4), ("parse", 2), ("once", 1)]:
        for _ in range(count):
            add(run, False, node="n", error=error)
    add(run, False, node="n")
    add(run, False, node="n")
    suggestions = [s for s in seed_part(suggest_improvements("goal", [run])) if s["type"] == "error_handling"]
    assert suggestions == [
        {
            "type": "error_handling",
            "target": error,
            "reason": f"Error occurred {count} times",
            "recommendation": f"Add handling for: {error}",
            "priority": priority,
        }
        for error, count, priority in [
            ("rate limit", 5, "high"),
            ("timeout", 4, "medium"),
            ("parse", 2, "medium"),
            ("Unknown error", 2, "medium"),
        ]
    ]
    # The evidence of an error: the decisions whose outcome failed with it (dec_11, "once", is alone).
    evidence = {
        s["target"]: s["evidence"]
        for s in suggest_improvements("goal", [run])
        if s["type"] == "error_handling"
    }
    assert evidence == {
        error: evidence_of(["run_1"], [("run_1", f"dec_{i}") for i in indexes])
        for error, indexes in [
            ("rate limit", range(0, 5)),
            ("timeout", range(5, 9)),
            ("parse", range(9, 11)),
            ("Unknown error", range(12, 14)),
        ]
    }


def test_suggest_improvements_architecture_when_success_rate_below_eighty_percent() -> None:
    runs = runs_with_statuses(RunStatus.COMPLETED, RunStatus.FAILED)
    suggestions = suggest_improvements("goal", runs)
    assert seed_part(suggestions) == [
        {
            "type": "architecture",
            "target": "goal",
            "reason": "Goal success rate is only 50.0%",
            "recommendation": "Consider restructuring the agent graph or improving goal definition",
            "priority": "high",
        }
    ]
    assert len(suggestions) == 1
    # The evidence: the run that did not complete; it made no decision, so none is cited.
    assert suggestions[0]["evidence"] == evidence_of(["run_1"], [])


def test_suggest_improvements_orders_nodes_then_errors_then_architecture() -> None:
    run = make_run(status=RunStatus.FAILED)
    add(run, False, node="n", error="boom")
    add(run, False, node="n", error="boom")
    assert [s["type"] for s in suggest_improvements("goal", [run])] == [
        "node_improvement",
        "error_handling",
        "architecture",
    ]


# ---------------------------------------------------------------------------------------- compare_runs


@pytest.mark.parametrize("missing", ["first", "second", "both"])
def test_compare_runs_reports_missing_runs(missing: str) -> None:
    run = make_run()
    first = None if missing in ("first", "both") else run
    second = None if missing in ("second", "both") else run
    assert compare_runs(first, second) == {"error": "One or both runs not found"}


def test_compare_runs_identical_runs_have_no_differences() -> None:
    run_1, run_2 = make_run("r1", status=RunStatus.COMPLETED), make_run("r2", status=RunStatus.COMPLETED)
    add(run_1, True, node="n", chosen="a")
    add(run_2, False, node="n", chosen="a")
    result = compare_runs(run_1, run_2)
    assert result == {
        "run_1": {"id": "r1", "status": "completed", "decisions": 1, "success_rate": 1.0},
        "run_2": {"id": "r2", "status": "completed", "decisions": 1, "success_rate": 0.0},
        "differences": [],
    }


def test_compare_runs_lists_differences_in_order() -> None:
    options = [opt("a"), opt("b"), opt("c")]
    run_1, run_2 = make_run("r1", status=RunStatus.COMPLETED), make_run("r2", status=RunStatus.FAILED)
    for node, chosen in [("shared", "a"), ("x", "b"), ("y", "c"), ("z", "a")]:
        add(run_1, True, node=node, chosen=chosen, options=options)
    for node, chosen in [("shared", "a"), ("w", "c"), ("shared", "b")]:
        add(run_2, False, node=node, chosen=chosen, options=options)
    result = compare_runs(run_1, run_2)
    assert result["run_1"] == {"id": "r1", "status": "completed", "decisions": 4, "success_rate": 1.0}
    assert result["run_2"] == {"id": "r2", "status": "failed", "decisions": 3, "success_rate": 0.0}
    assert result["differences"] == [
        "Status: completed vs failed",
        "Decision count: 4 vs 3",
        "Diverged at decision 1: chose 'b' vs 'c'",
        "Nodes only in run 1: {'x', 'y', 'z'}",
        "Nodes only in run 2: {'w'}",
    ]


def test_compare_runs_node_sets_print_like_python_sets() -> None:
    run_1, run_2 = make_run("r1"), make_run("r2")
    add(run_1, True, node="only-1")
    add(run_2, True, node="only-2")
    differences = compare_runs(run_1, run_2)["differences"]
    assert differences == [
        "Nodes only in run 1: " + str({"only-1"}),
        "Nodes only in run 2: " + str({"only-2"}),
    ]


def test_compare_runs_reports_only_the_first_divergence_within_the_shorter_run() -> None:
    run_1, run_2 = make_run("r1"), make_run("r2")
    for chosen in ["a", "b", "c"]:
        add(run_1, True, chosen=chosen)
    for chosen in ["a", "x", "y", "extra"]:
        add(run_2, True, chosen=chosen)
    assert compare_runs(run_1, run_2)["differences"] == [
        "Decision count: 3 vs 4",
        "Diverged at decision 1: chose 'b' vs 'x'",
    ]


# ------------------------------------------------------------------------------------ node_performance


def test_node_performance_counts_only_the_nodes_decisions() -> None:
    run_1, run_2 = make_run("r1"), make_run("r2")
    add(run_1, True, node="n", latency_ms=100, tokens=10, decision_type=DecisionType.TOOL_SELECTION)
    add(run_1, False, node="n", latency_ms=50, tokens=5)
    add(run_1, True, node="other", latency_ms=1000, tokens=1000)
    add(run_2, None, node="n", decision_type=DecisionType.TOOL_SELECTION)
    add(run_2, True, node="n", latency_ms=30, tokens=1)
    assert node_performance("n", [run_1, run_2]) == {
        "node_id": "n",
        "total_decisions": 4,
        "success_rate": 0.5,
        "avg_latency_ms": 45.0,  # 180 ms over all 4 decisions, including the one without outcome
        "total_tokens": 16,
        "decision_type_distribution": {"tool_selection": 2, "custom": 2},
    }


def test_node_performance_for_unknown_node_is_all_zero() -> None:
    run = make_run()
    add(run, True, node="n", latency_ms=10)
    assert node_performance("missing", [run]) == {
        "node_id": "missing",
        "total_decisions": 0,
        "success_rate": 0,
        "avg_latency_ms": 0,
        "total_tokens": 0,
        "decision_type_distribution": {},
    }
