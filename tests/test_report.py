"""The HTML report (`otel_decisions.report`), checked on runs really recorded with `Runtime`.

Runs are written as spans under `tmp_path` and read back by a fresh `BuilderQuery`, as `otel-decisions
report` would. The page is then parsed with `html.parser` into a small tree, and its charts are checked
against figures recomputed here from the full runs (`get_full_run`), not from the analysis the report
draws, so a report that drew the wrong numbers would fail. Runs spread over days are built with the
seed's `Run` models, because `Runtime` stamps the current time.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from otel_decisions import BuilderQuery, Decision, Option, Outcome, Run, RunStatus, Runtime
from otel_decisions._demo.calculator import DEMO_EXPRESSIONS, GOAL_ID, run_calculator
from otel_decisions.analysis import GoalInsights, analyze_goal
from otel_decisions.analysis.patterns import INTENT_KEY_CHARS
from otel_decisions.analysis.run_shapes import TimeBucket
from otel_decisions.report import render_report, write_report
from otel_decisions.report._data import time_slots

AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
SVG_NS = 'xmlns="http://www.w3.org/2000/svg"'
RUN_ID = re.compile(r"run_\d{8}_\d{6}_[0-9a-f]{8}")
HOSTILE = "<script>alert(1)</script>"
LONG_LABEL = "Summarise the ticket thread " + "and quote every customer message verbatim " * 12


# --- a small DOM, and the checks any page must pass ----------------------------------------------------
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element] = field(default_factory=list)
    text: list[str] = field(default_factory=list)  # direct text, in order

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def walk(self) -> Iterator[Element]:
        yield self
        for child in self.children:
            yield from child.walk()

    def find_all(self, tag: str, css: str | None = None) -> list[Element]:
        return [e for e in self.walk() if e.tag == tag and (css is None or css in e.classes)]

    def all_text(self) -> str:
        """Text of this element and its descendants, without SVG tooltips (`<title>`) or styles."""
        parts = list(self.text)
        for child in self.children:
            if child.tag not in ("title", "style"):
                parts.append(child.all_text())
        return " ".join(parts)

    def data(self, name: str) -> str:
        return self.attrs[f"data-{name}"]

    def number(self, name: str) -> int:
        return int(self.data(name))


class TreeBuilder(HTMLParser):
    """Builds an `Element` tree and records what makes a page malformed: unbalanced or misnested tags,
    self-closed HTML elements (`<div/>` is an open tag in HTML), stray end tags, duplicate ids."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]
        self.errors: list[str] = []
        self.ids: Counter[str] = Counter()
        self.doctype = False

    def handle_decl(self, decl: str) -> None:
        self.doctype = self.doctype or decl.lower() == "doctype html"

    def _element(self, tag: str, attrs: list[tuple[str, str | None]]) -> Element:
        element = Element(tag, {k: v or "" for k, v in attrs})
        if "id" in element.attrs:
            self.ids[element.attrs["id"]] += 1
        self.stack[-1].children.append(element)
        return element

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = self._element(tag, attrs)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        in_svg = any(e.tag == "svg" for e in self.stack)
        if tag not in VOID and not in_svg:
            self.errors.append(f"self-closed HTML element <{tag}/>")
        self._element(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.errors.append(f"end tag of void element </{tag}>")
        elif len(self.stack) == 1 or self.stack[-1].tag != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1].tag}>")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.stack[-1].text.append(data)


@dataclass(frozen=True)
class Page:
    html: str
    root: Element

    @property
    def visible_text(self) -> str:
        body = self.root.find_all("body")
        return body[0].all_text() if body else ""

    def svg(self, css: str) -> Element:
        (chart,) = self.root.find_all("svg", css)
        return chart


def parse(html: str) -> Page:
    """Parse `html`, asserting it is a well-formed, self-contained page."""
    builder = TreeBuilder()
    builder.feed(html)
    builder.close()
    assert builder.doctype, "missing <!DOCTYPE html>"
    assert builder.errors == []
    assert [e.tag for e in builder.stack] == ["#document"], "unclosed elements"
    assert [i for i, n in builder.ids.items() if n > 1] == []
    root = builder.root
    # Nothing executable and nothing fetched: no script or external resource element at all …
    assert root.find_all("script") == [] and root.find_all("link") == [] and root.find_all("img") == []
    for element in root.walk():
        assert not any(name.startswith("on") for name in element.attrs), element
        assert "src" not in element.attrs
        href = element.attrs.get("href")
        assert href is None or (href.startswith("#") and builder.ids[href[1:]] == 1), href
    # … and no address anywhere, except the SVG namespace name (an identifier, never fetched).
    assert "http://" not in html.replace(SVG_NS, "") and "https://" not in html
    assert "url(" not in html and "@import" not in html
    return Page(html, root)


def render(insights: GoalInsights, **kwargs: str) -> Page:
    return parse(render_report(insights, generated_at=AT, **kwargs))


# --- recorded runs -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recorded:
    directory: Path
    goal: str
    insights: GoalInsights
    runs: list[Run]  # the full runs, read back from the spans


def read_back(directory: Path, goal: str) -> Recorded:
    query = BuilderQuery(directory)
    insights = query.insights(goal)
    assert insights is not None
    runs = [query.get_full_run(s.run_id) for s in query.list_runs_for_goal(goal)]
    return Recorded(directory, goal, insights, [r for r in runs if r is not None])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """The calculator demo, three times over its inputs (36 runs, a third failing)."""
    directory = tmp_path_factory.mktemp("demo")
    runtime = Runtime(directory)
    for _ in range(3):
        for expression in DEMO_EXPRESSIONS:
            run_calculator(runtime, expression)
    return read_back(directory, GOAL_ID)


TRIAGE_MODELS = [
    {"id": "small", "description": "Small fast model", "action_type": "llm"},
    {"id": "large", "description": "Large careful model", "action_type": "llm"},
    {"id": "human", "description": "Escalate to a human", "action_type": "handoff"},
]


def record_triage(runtime: Runtime, goal: str, runs: int, option_label: str = "Call the ticket API") -> None:
    """A ticket-triage agent with latencies, tokens, a retry loop, a flip-flop, a decision left without
    outcome, and a run cancelled by the next one: the features the demo does not exercise."""
    fetch = [{"id": "api", "description": option_label, "action_type": "http"}]
    for i in range(runs):
        runtime.start_run(goal, "Triage a support ticket", input_data={"ticket": i})
        runtime.set_node("fetcher")
        attempts = 3 if i % 3 == 0 else 1  # every third run retries the fetch: a retry loop
        for attempt in range(attempts):
            d = runtime.decide("Fetch the ticket", fetch, "api", "The ticket is needed first")
            ok = attempt == attempts - 1
            runtime.record_outcome(d, success=ok, error=None if ok else "HTTP 503", latency_ms=40 + attempt)
        runtime.set_node("classifier")
        chosen = "small" if i % 2 == 0 else "large"
        d = runtime.decide("Pick a model for the triage", TRIAGE_MODELS, chosen, "Cost against accuracy")
        failed = chosen == "small" and i % 4 == 0
        runtime.record_outcome(
            d,
            success=not failed,
            error="Misclassified" if failed else None,
            latency_ms=300 + 100 * i,
            tokens_used=1000 + i,
        )
        if i % 5 == 1:  # small → large → small at one point: a flip-flop
            for j, option in enumerate(["small", "large", "small"]):
                d = runtime.decide("Re-check the category", TRIAGE_MODELS, option, "Second opinion")
                runtime.record_outcome(d, success=True, latency_ms=5 * j)
                runtime.decide("Note the opinion", fetch, "api", "Keep a trace", node_id="notes")
        summaries = [
            {"id": "short", "description": "A short summary", "action_type": "llm"},
            {"id": "long", "description": LONG_LABEL, "action_type": "llm"},  # never chosen
        ]
        runtime.decide("Summarise", summaries, "short", "Brevity", node_id="writer")  # left without outcome
        runtime.end_run(success=not failed)
    runtime.start_run(goal, "Abandoned")
    runtime.decide("Fetch the ticket", fetch, "api", "Started, then replaced", node_id="fetcher")
    runtime.start_run(goal, "Replaces the abandoned run")  # the open run ends as cancelled
    runtime.end_run(success=True)


@pytest.fixture(scope="module")
def triage(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    directory = tmp_path_factory.mktemp("triage")
    record_triage(Runtime(directory), "triage", 12)
    return read_back(directory, "triage")


# --- oracles, from the full runs -----------------------------------------------------------------------
def label_of(decision: Decision) -> str:
    chosen = decision.chosen_option
    return chosen.description if chosen is not None else decision.chosen_option_id


def node_figures(runs: list[Run]) -> dict[str, tuple[int, int, int, int]]:
    """node → (decisions, succeeded, failed, without outcome)."""
    figures: dict[str, list[int]] = {}
    for run in runs:
        for d in run.decisions:
            f = figures.setdefault(d.node_id, [0, 0, 0, 0])
            f[0] += 1
            if d.outcome is None:
                f[3] += 1
            elif d.outcome.success:
                f[1] += 1
            else:
                f[2] += 1
    return {node: (f[0], f[1], f[2], f[3]) for node, f in figures.items()}


def option_figures(runs: list[Run]) -> dict[tuple[str, str, str], tuple[int, ...]]:
    """(node, intent key, option) → (chosen, succeeded, failed, no outcome, runs, failed runs)."""
    figures: dict[tuple[str, str, str], list[int]] = {}
    for run in runs:
        seen: set[tuple[str, str, str]] = set()
        for d in run.decisions:
            key = (d.node_id, d.intent[:INTENT_KEY_CHARS], label_of(d))
            f = figures.setdefault(key, [0, 0, 0, 0, 0, 0])
            f[0] += 1
            f[1 if d.outcome is not None and d.outcome.success else 2 if d.outcome is not None else 3] += 1
            if key not in seen:
                seen.add(key)
                f[4] += 1
                f[5] += run.status == RunStatus.FAILED
    return {k: tuple(f) for k, f in figures.items()}


def chart_nodes(page: Page) -> dict[str, tuple[int, int, int, int]]:
    bars = page.svg("node-success").find_all("g", "node-bar")
    return {
        b.data("node"): (
            b.number("decisions"),
            b.number("succeeded"),
            b.number("failed"),
            b.number("no-outcome"),
        )
        for b in bars
    }


def chart_options(page: Page) -> dict[tuple[str, str, str], tuple[int, ...]]:
    rows = page.svg("matrix").find_all("g", "option-row")
    figures = {
        (r.data("node"), r.data("intent"), r.data("option")): tuple(
            r.number(n) for n in ("chosen", "succeeded", "failed", "no-outcome", "runs", "failed-runs")
        )
        for r in rows
    }
    assert len(figures) == len(rows), "one row per option"
    return figures


# --- the charts carry the real numbers -----------------------------------------------------------------
@pytest.mark.parametrize("dataset", ["demo", "triage"])
def test_charts_show_the_recorded_figures(dataset: str, request: pytest.FixtureRequest) -> None:
    recorded: Recorded = request.getfixturevalue(dataset)
    page = render(recorded.insights)
    assert len(page.root.find_all("svg")) == 4

    nodes = node_figures(recorded.runs)
    assert chart_nodes(page) == nodes
    for bar in page.svg("node-success").find_all("g", "node-bar"):
        decisions, succeeded, _failed, _none = nodes[bar.data("node")]
        assert float(bar.data("success-rate")) == succeeded / decisions
        assert f"{succeeded / decisions:.0%} of {decisions}" in bar.all_text()

    options = option_figures(recorded.runs)
    assert chart_options(page) == options
    for row in page.svg("matrix").find_all("g", "option-row"):
        cells = {c.data("col"): int(c.data("value")) for c in row.find_all("rect", "cell")}
        assert list(cells) == ["chosen", "succeeded", "failed", "no_outcome", "failed_runs"]
        key = (row.data("node"), row.data("intent"), row.data("option"))
        assert tuple(cells.values()) == (*options[key][:4], options[key][5])

    buckets = page.svg("timeline").find_all("g", "bucket")
    statuses = Counter(r.status for r in recorded.runs)
    assert sum(b.number("runs") for b in buckets) == len(recorded.runs)
    assert sum(b.number("failed") for b in buckets) == statuses[RunStatus.FAILED]
    assert sum(b.number("completed") for b in buckets) == statuses[RunStatus.COMPLETED]

    by_id = {r.id: r for r in recorded.runs}
    bars = page.svg("slowest").find_all("g", "slow-bar")
    assert len(bars) == len(recorded.insights.slowest_decisions) > 0
    latencies = []
    for bar in bars:
        (decision,) = [d for d in by_id[bar.data("run-id")].decisions if d.id == bar.data("decision-id")]
        assert decision.outcome is not None
        # The agent's reported latency, else the recorded time from the decision to its outcome.
        elapsed = max(0, (decision.outcome.timestamp - decision.timestamp) // timedelta(milliseconds=1))
        assert bar.number("latency-ms") == (decision.outcome.latency_ms or elapsed)
        assert bar.data("run-id") in bar.all_text()
        latencies.append(bar.number("latency-ms"))
    assert latencies == sorted(latencies, reverse=True)


def test_header_states_the_goal_and_its_runs(demo: Recorded) -> None:
    page = render(demo.insights, source=str(demo.directory))
    (header,) = page.root.find_all("header")
    text = header.all_text()
    statuses = Counter(r.status.value for r in demo.runs)
    completed = statuses["completed"]
    assert GOAL_ID in text and str(demo.directory) in text
    assert f"{len(demo.runs)} runs" in text
    assert f"{completed / len(demo.runs):.1%} of runs completed" in text
    assert f"completed {completed}" in text and f"failed {statuses['failed']}" in text
    assert "2025-01-02 03:04:05+00:00" in text


def test_suggestions_and_tables_cite_their_evidence(demo: Recorded) -> None:
    page = render(demo.insights)
    items = page.root.find_all("li", "suggestion")
    assert len(items) == len(demo.insights.suggestions) > 0
    texts = [item.all_text() for item in items]
    for suggestion in demo.insights.suggestions:
        (text,) = [t for t in texts if suggestion["reason"] in t and suggestion["recommendation"] in t]
        assert suggestion["type"] in text and suggestion["priority"] in text
        for run_id in suggestion["evidence"]["run_ids"]:
            assert run_id in text
    priorities = [next(iter(item.classes - {"suggestion"})) for item in items]
    assert priorities == sorted(priorities, key=["high", "medium", "low"].index)

    (risky_section,) = [s for s in page.root.find_all("section") if s.attrs["id"] == "risky"]
    assert len(risky_section.find_all("tr", "risky")) == len(demo.insights.risky_options) > 0
    for risky in demo.insights.risky_options:
        (row,) = [
            r
            for r in page.svg("matrix").find_all("g", "option-row")
            if (r.data("node"), r.data("option")) == (risky.node_id, risky.option)
        ]
        assert "risky" in row.classes and float(row.data("p-value")) == risky.p_value
        assert f"p={risky.p_value:.2g}" in row.all_text()
        assert all(run_id in risky_section.all_text() for run_id in risky.evidence.run_ids[:5])
    (unexplored,) = [s for s in page.root.find_all("section") if s.attrs["id"] == "unexplored"]
    assert all(u.option in unexplored.all_text() for u in demo.insights.unexplored_options)


def test_every_run_id_on_the_page_is_visible_text(demo: Recorded, triage: Recorded) -> None:
    for recorded in (demo, triage):
        page = render(recorded.insights)
        shown = set(RUN_ID.findall(page.html))
        assert shown, "the page cites runs"
        assert shown <= {r.id for r in recorded.runs}
        visible = page.visible_text
        assert [run_id for run_id in sorted(shown) if run_id not in visible] == []


def test_loops_hot_spots_and_other_statuses_are_shown(triage: Recorded) -> None:
    page = render(triage.insights)
    sections = {s.attrs["id"]: s.all_text() for s in page.root.find_all("section")}
    kinds = {lp.kind for lp in triage.insights.loops}
    assert kinds == {"retry_loop", "flip_flop"}
    assert "retry loop" in sections["loops"] and "flip-flop" in sections["loops"]
    assert "small fast model → large careful model → small fast model" in sections["loops"].lower()
    for spot in triage.insights.hotspots:
        assert spot.node_id in sections["hotspots"]
    classifier = next(h for h in triage.insights.hotspots if h.node_id == "classifier")
    assert f"{classifier.total_tokens:,}" in sections["hotspots"]
    assert "cancelled 1" in page.root.find_all("header")[0].all_text()
    buckets = page.svg("timeline").find_all("g", "bucket")
    assert sum(b.number("runs") - b.number("failed") - b.number("completed") for b in buckets) == 1


# --- hostile and awkward labels ------------------------------------------------------------------------
def test_agent_text_is_escaped_everywhere(tmp_path: Path) -> None:
    """Node ids, intents, options, errors and the goal itself are agent data: shown, never interpreted."""
    goal = '<b onmouseover="alert(4)">goal</b>'
    node = "<img src=x onerror=alert(2)>"
    intent = '"><script>alert(3)</script>'
    error = "</svg></section><script>alert(5)</script>"
    hostile = [
        {"id": "x", "description": HOSTILE, "action_type": "<i>"},
        {"id": "y", "description": "' onload='alert(6)", "action_type": "&amp;"},
    ]
    runtime = Runtime(tmp_path)
    for i in range(4):
        runtime.start_run(goal)
        d = runtime.decide(intent, hostile, "x", "<reasoning>", node_id=node)
        runtime.record_outcome(d, success=False, error=error, latency_ms=7)
        runtime.end_run(success=i == 0)
    recorded = read_back(tmp_path, goal)
    page = render(recorded.insights, source="<source>")

    assert "<script" not in page.html and "<img" not in page.html and "<b " not in page.html
    visible = page.visible_text
    for text in (goal, node, HOSTILE, error, "<source>"):
        assert text in visible
    assert intent[:INTENT_KEY_CHARS] in visible
    (row,) = page.svg("matrix").find_all("g", "option-row")
    assert (row.data("node"), row.data("intent"), row.data("option")) == (node, intent, HOSTILE)
    (bar,) = page.svg("node-success").find_all("g", "node-bar")
    assert bar.data("node") == node and bar.number("failed") == 4


def test_long_labels_are_clipped_with_the_full_text_on_hover(triage: Recorded) -> None:
    page = render(triage.insights)
    assert 500 < len(LONG_LABEL) < 1000
    (unexplored,) = [s for s in page.root.find_all("section") if s.attrs["id"] == "unexplored"]
    (clipped,) = [e for e in unexplored.walk() if e.attrs.get("title") == LONG_LABEL]
    assert clipped.all_text().endswith("…") and len(clipped.all_text()) <= 60
    assert LONG_LABEL not in page.visible_text


def test_long_option_labels_stay_bounded(tmp_path: Path) -> None:
    huge = "A very long option label " * 400  # 10,000 characters
    record_triage(Runtime(tmp_path), "triage", 2, option_label=huge)
    page = render(read_back(tmp_path, "triage").insights)
    (row,) = [r for r in page.svg("matrix").find_all("g", "option-row") if r.data("node") == "fetcher"]
    assert row.data("option") == huge[:999] + "…"  # data attributes are bounded like tooltips
    titles = [e.attrs["title"] for e in page.root.walk() if "title" in e.attrs]
    assert titles and max(len(t) for t in titles) < 1100  # tooltips say how much more there is
    assert any(t.endswith("more characters)") for t in titles)


# --- edge cases ----------------------------------------------------------------------------------------
def test_one_run_without_outcomes(tmp_path: Path) -> None:
    runtime = Runtime(tmp_path)
    runtime.start_run("lonely")
    runtime.decide("Pick a path", TRIAGE_MODELS, "large", "Unsure", node_id="planner")
    runtime.quick_decision("Write the answer", "Answer directly", "No tools needed", node_id="writer")
    runtime.end_run(success=False)
    recorded = read_back(tmp_path, "lonely")
    page = render(recorded.insights)

    assert chart_nodes(page) == {"planner": (1, 0, 0, 1), "writer": (1, 0, 0, 1)}
    (bucket,) = page.svg("timeline").find_all("g", "bucket")
    assert (bucket.number("runs"), bucket.number("failed"), bucket.number("completed")) == (1, 1, 0)
    assert page.root.find_all("svg", "slowest") == []
    assert "No decision has an outcome yet" in page.visible_text
    assert "0.0% of runs completed" in page.visible_text


def test_runs_without_decisions(tmp_path: Path) -> None:
    runtime = Runtime(tmp_path)
    for success in (True, True):
        runtime.start_run("quiet")
        runtime.end_run(success=success)
    page = render(read_back(tmp_path, "quiet").insights)
    assert [s.attrs["class"] for s in page.root.find_all("svg")] == ["chart timeline"]
    assert page.visible_text.count("The runs made no decisions.") == 2
    assert (
        "No suggestions" in page.visible_text and "No decision reported a failed outcome" in page.visible_text
    )


def dated_run(goal: str, started_at: datetime, status: RunStatus, latency_ms: int = 10) -> Run:
    """A run of one decision started at `started_at` (naive local time, as the seed's models keep it)."""
    run = Run(id=f"run_{started_at:%Y%m%d_%H%M%S}_0000abcd", goal_id=goal, started_at=started_at)
    run.add_decision(
        Decision(
            id="dec_0",
            node_id="worker",
            intent="Do the work",
            options=[Option(id="a", description="Work", action_type="tool")],
            chosen_option_id="a",
            reasoning="Only way",
            timestamp=started_at,
        )
    )
    outcome = Outcome(success=status == RunStatus.COMPLETED, latency_ms=latency_ms, timestamp=started_at)
    run.record_outcome("dec_0", outcome)
    run.complete(status)
    return run


def test_zero_latencies_are_drawn_and_explained() -> None:
    """Outcomes that report 0 ms and follow their decision at once (fast tools do)."""
    start = datetime(2025, 3, 1, 12, 0)
    runs = [
        dated_run("instant", start + timedelta(seconds=k), RunStatus.COMPLETED, latency_ms=0)
        for k in range(3)
    ]
    insights = analyze_goal("instant", runs)
    assert insights is not None
    page = render(insights)
    bars = page.svg("slowest").find_all("g", "slow-bar")
    assert len(bars) == 3 and all(b.number("latency-ms") == 0 and "0 ms" in b.all_text() for b in bars)
    assert "Every latency here is 0 ms" in page.visible_text
    assert {b.data("run-id") for b in bars} == {r.id for r in runs}


def test_days_without_runs_are_empty_periods() -> None:
    start = datetime(2025, 3, 1, 12, 0)
    runs = [
        dated_run("daily", start, RunStatus.COMPLETED),
        dated_run("daily", start + timedelta(hours=1), RunStatus.FAILED),
        dated_run("daily", start + timedelta(days=3), RunStatus.COMPLETED),
        dated_run("daily", start + timedelta(days=9), RunStatus.FAILED),
    ]
    insights = analyze_goal("daily", runs)
    assert insights is not None
    assert len(insights.failures_over_time) == 3  # only the periods that had runs
    buckets = render(insights).svg("timeline").find_all("g", "bucket")
    width = insights.failures_over_time[0].seconds
    assert len(buckets) == round(timedelta(days=9).total_seconds() / width) + 1
    assert [b.number("runs") for b in buckets if b.number("runs")] == [2, 1, 1]
    assert sum(1 for b in buckets if b.number("runs") == 0) == len(buckets) - 3
    assert sum(b.number("failed") for b in buckets) == 2


def test_time_slots_leave_buckets_they_cannot_place_unchanged() -> None:
    a = TimeBucket("2025-01-01T00:00:00+00:00", 3600, 1, 0, 1)
    far = TimeBucket("2025-02-01T00:00:00+00:00", 3600, 1, 1, 0)  # 744 periods later: too many to fill
    mixed = TimeBucket("2025-01-01T05:00:00+00:00", 60, 1, 1, 0)
    odd = TimeBucket("not a time", 3600, 2, 1, 1)
    for buckets in ([a], [a, far], [a, mixed], [a, odd], [far, a]):
        assert time_slots(buckets) == buckets
    assert [b.runs for b in time_slots([a, TimeBucket("2025-01-01T03:00:00+00:00", 3600, 4, 0, 4)])] == [
        1,
        0,
        0,
        4,
    ]


def test_large_goals_are_capped_and_say_so(tmp_path: Path) -> None:
    runtime = Runtime(tmp_path)
    runtime.start_run("wide")
    for i in range(65):
        d = runtime.decide(
            f"Step {i:02d}", [{"id": "go", "description": f"Go {i}"}], "go", "Next", node_id=f"n{i}"
        )
        runtime.record_outcome(d, success=True)
    runtime.end_run(success=True)
    insights = read_back(tmp_path, "wide").insights
    assert len(insights.options) == 65
    page = render(insights)
    assert len(page.svg("matrix").find_all("g", "option-row")) == 50
    assert len(page.svg("node-success").find_all("g", "node-bar")) == 40
    assert "15 more options not shown (chosen in 15 decisions" in page.visible_text
    assert "25 more nodes not shown (25 decisions)" in page.visible_text


# --- determinism and files -----------------------------------------------------------------------------
def test_output_is_deterministic(demo: Recorded) -> None:
    first = render_report(demo.insights, generated_at=AT, source="spans")
    again = read_back(demo.directory, GOAL_ID).insights  # a fresh reader over the same spans
    assert render_report(again, generated_at=AT, source="spans") == first
    later = render_report(demo.insights, generated_at=AT + timedelta(days=1), source="spans")
    assert later != first
    assert later.replace("2025-01-03", "2025-01-02") == first


def test_default_time_is_now(demo: Recorded) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    page = parse(render_report(demo.insights))
    (meta,) = page.root.find_all("p", "meta")
    stamp = datetime.fromisoformat(meta.text[0].removeprefix("Generated ").strip())
    assert before <= stamp <= datetime.now(UTC)


@pytest.mark.parametrize("as_text", [True, False])
def test_write_report_writes_the_rendered_page(demo: Recorded, tmp_path: Path, as_text: bool) -> None:
    target = tmp_path / "report.html"
    written = write_report(demo.insights, str(target) if as_text else target, generated_at=AT, source="s")
    assert written == target
    assert target.read_bytes() == render_report(demo.insights, generated_at=AT, source="s").encode("utf-8")
    assert target.stat().st_size < 200_000


def test_file_stays_small_for_many_runs(tmp_path: Path) -> None:
    runtime = Runtime(tmp_path)
    record_triage(runtime, "triage", 60)
    html = render_report(read_back(tmp_path, "triage").insights, generated_at=AT)
    assert len(html.encode("utf-8")) < 250_000
    parse(html)
