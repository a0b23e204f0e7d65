"""`examples/calculator_claude.py`: offline and deterministic without a key; through the real SDK with one.

With a key, the script runs against a local server that speaks the Messages API (the key and the base
URL are the SDK's standard environment variables), so the real `anthropic` SDK, `instrument_anthropic()`
and the token roll-up are what is exercised.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from anthropic_server import AnthropicServer, Reply

from otel_decisions import BuilderQuery

ROOT = Path(__file__).parents[1]
GOAL = "calculator-claude"


def run_example(directory: Path, env: dict[str, str]) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OTEL_"))}
    result = subprocess.run(
        [sys.executable, "examples/calculator_claude.py", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**clean, "HOME": str(directory.parent), **env},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def test_offline_runs_are_deterministic(tmp_path: Path) -> None:
    first = run_example(tmp_path / "a", {})
    second = run_example(tmp_path / "b", {})

    assert "offline stand-in for Claude" in first
    assert [line for line in first.splitlines() if "->" in line] == [
        line for line in second.splitlines() if "->" in line
    ]
    assert "'the square root of 81'" in first and "-> 9" in first
    runs = BuilderQuery(tmp_path / "a").storage.runs()
    assert len(runs) == 6 and sum(r.metrics.total_tokens for r in runs) == 3 * 42


def test_with_a_key_claude_answers_and_its_tokens_roll_up(tmp_path: Path) -> None:
    with AnthropicServer() as server:
        server.script(
            Reply.text("9", input_tokens=20, output_tokens=1),
            Reply.text("25", input_tokens=22, output_tokens=2),
            Reply.text("24", input_tokens=25, output_tokens=2),
        )
        out = run_example(
            tmp_path / "spans", {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": server.url}
        )
        requests = server.requests

    assert "(Claude)" in out
    assert [r.body["messages"][0]["content"] for r in requests] == [
        "the square root of 81",
        "ten percent of 250",
        "how many legs do three spiders have",
    ]
    query = BuilderQuery(tmp_path / "spans")
    runs = {r.input_data["question"]: r for r in query.storage.runs()}
    spiders = runs["how many legs do three spiders have"]
    assert spiders.status.value == "completed" and spiders.output_data == {}
    outcome = spiders.decisions[0].outcome
    assert outcome is not None and outcome.result == 24.0
    assert outcome.tokens_used == 27  # counted from the call, with no code in the agent
    assert sum(r.metrics.total_tokens for r in runs.values()) == 21 + 24 + 27
    chat = [s for s in query.storage.spans(spiders.id) if s.attributes.get("gen_ai.operation.name") == "chat"]
    assert len(chat) == 1 and chat[0].attributes["otel_decisions.llm.decision_id"] == spiders.decisions[0].id
