"""The calculator agent, with Claude for the questions its parser cannot read.

    python examples/calculator_claude.py [DIR]

Each question is a run. The agent decides how to answer it: arithmetic it can parse is evaluated
exactly (`ast`, no `eval`); anything else ("the square root of 81") goes to Claude. With
`ANTHROPIC_API_KEY` set, that is the real Messages API (`ANTHROPIC_BASE_URL` and
`OTEL_DECISIONS_LLM_MODEL` are honoured); without it, a deterministic stand-in answers, so the example
runs offline and always prints the same analysis.

`otel_decisions.instrument_anthropic()` is the only instrumentation line: each Claude call becomes a
GenAI `chat` span in the run, and its tokens count towards the decision's outcome and the run's total
with no code here.
"""

from __future__ import annotations

import ast
import operator
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import otel_decisions as od

GOAL = "calculator-claude"
QUESTIONS = [
    "2 + 3 * 4",
    "(7 - 2) / 4",
    "the square root of 81",
    "ten percent of 250",
    "12 / 0",
    "how many legs do three spiders have",
]
OPTIONS = [
    {"id": "parse", "description": "Evaluate the arithmetic exactly", "action_type": "tool_call"},
    {"id": "claude", "description": "Ask Claude", "action_type": "llm_call"},
]
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
#: What the offline stand-in for Claude answers (and the token counts it reports).
OFFLINE_ANSWERS = {"the square root of 81": "9", "ten percent of 250": "25"}


def evaluate(expression: str) -> float:
    """Exact arithmetic over + - * / and parentheses; ValueError for anything else."""

    def walk(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](walk(node.left), walk(node.right))
        raise ValueError(f"not arithmetic: {ast.dump(node)[:40]}")

    try:
        return float(walk(ast.parse(expression, mode="eval").body))
    except SyntaxError as exc:
        raise ValueError(f"not arithmetic: {exc.msg}") from exc


def ask_claude(question: str) -> tuple[str, int]:
    """Claude's answer (just the number), and the tokens the call used (0 when counted by the SDK)."""
    if not os.environ.get("ANTHROPIC_API_KEY"):
        return OFFLINE_ANSWERS.get(question, "I cannot tell"), 42  # the stand-in reports its own tokens
    import anthropic

    with anthropic.Anthropic() as client:
        message = client.messages.create(
            model=os.environ.get("OTEL_DECISIONS_LLM_MODEL", "claude-sonnet-5-5"),
            max_tokens=32,
            system="Answer with the number only, no words.",
            messages=[{"role": "user", "content": question}],
        )
    text = "".join(block.text for block in message.content if block.type == "text")
    return text.strip(), 0  # the instrumentation counts the real call's tokens


def answer(runtime: od.Runtime, question: str) -> float | None:
    """One run: choose how to answer, answer, record the outcome."""
    runtime.start_run(GOAL, "Answer an arithmetic question", {"question": question})
    try:
        evaluate(question)
        chosen, why = "parse", "the question is plain arithmetic"
    except ValueError:
        chosen, why = "claude", "the parser cannot read it"
    except ZeroDivisionError:
        chosen, why = "parse", "plain arithmetic (it divides by zero)"
    runtime.set_node("solver")
    decision = runtime.decide(
        "Choose how to answer", OPTIONS, chosen, why, decision_type=od.DecisionType.TOOL_SELECTION
    )
    tokens = 0
    try:
        if chosen == "parse":
            result = evaluate(question)
        else:
            text, tokens = ask_claude(question)
            result = float(text)
    except (ValueError, ZeroDivisionError) as exc:
        error = "Division by zero" if isinstance(exc, ZeroDivisionError) else f"Not a number: {exc}"
        runtime.record_outcome(decision, False, error=error, tokens_used=tokens)
        runtime.end_run(False, narrative=f"{question}: {error}")
        return None
    runtime.record_outcome(decision, True, result=result, tokens_used=tokens)
    runtime.end_run(True, narrative=f"{question} = {result:g}")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    directory = Path(args[0]) if args else Path(os.environ.get("OTEL_DECISIONS_DIR") or ".otel-decisions")
    od.instrument_anthropic()
    runtime = od.Runtime(directory)
    mode = "Claude" if os.environ.get("ANTHROPIC_API_KEY") else "offline stand-in for Claude"
    print(f"Answering {len(QUESTIONS)} questions ({mode}); spans go to {directory}")
    for question in QUESTIONS:
        result = answer(runtime, question)
        print(f"  {question!r:45} -> {'failed' if result is None else f'{result:g}'}")

    query = od.BuilderQuery(directory)
    runs = [r for r in query.storage.runs() if r.goal_id == GOAL]
    print(f"\nTokens used: {sum(r.metrics.total_tokens for r in runs)} over {len(runs)} runs")
    print(query.find_patterns(GOAL))
    print("\nSuggestions:")
    for s in query.suggest_improvements(GOAL):
        print(f"  [{s['priority']}] {s['type']} {s['target']}: {s['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
