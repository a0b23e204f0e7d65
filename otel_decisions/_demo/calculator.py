"""The seed's calculator agent, deterministic and offline, recording *why* it computes the way it does.

Usage::

    from otel_decisions import Runtime
    from otel_decisions._demo.calculator import run_calculator

    runtime = Runtime(".otel-decisions")
    run_calculator(runtime, "(1 + 2) / 3")   # 1.0, recorded as a run of goal "calculator"

The seed's README shows an LLM-powered calculator; this one makes the same kind of decisions without an
LLM, so the Builder's analysis has real choices, failures and fixes to work on, and the demo gives the
same answer every time. It ships inside the package (not only in `examples/`) because the
`otel-decisions demo` command runs it; `examples/calculator.py` imports it, so there is one copy. It
uses only the public API.

One run per expression, through three nodes:

- **parser** chooses a regex tokenizer for flat input (numbers and ``+ - * /``; deliberately minimal,
  it has no unary minus) or Python's `ast` for anything else, and falls back to `ast` when the tokenizer
  fails. Code is never executed: only a whitelist of `ast` nodes is accepted.
- **evaluator** chooses exact `fractions.Fraction` arithmetic when division or decimal literals would
  make floats round, and plain floats otherwise.
- **validator** checks that the result is a finite float before returning it.

Some of `DEMO_EXPRESSIONS` fail on purpose (division by zero, a function call, an incomplete
expression) and some need the tokenizer fallback, so the Builder finds failures, patterns and
suggestions in the demo's runs.
"""

from __future__ import annotations

import ast
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final, TypeAlias, TypeVar

from otel_decisions import DecisionType, Runtime

__all__ = ["DEMO_EXPRESSIONS", "GOAL_ID", "run_calculator"]

GOAL_ID: Final = "calculator"
GOAL_DESCRIPTION: Final = "Evaluate an arithmetic expression exactly and safely"

#: The demo's inputs. A third fail on purpose; two need the tokenizer's fallback to `ast`.
DEMO_EXPRESSIONS: Final[list[str]] = [
    "2 + 3 * 4",
    "(1 + 2) / 3",
    "10 / 0",
    "2 ** 10",
    "7 / (3 - 3)",
    "sqrt(16)",
    "1 +",
    "-(4 - 6) * 2.5",
    "0.1 + 0.2",
    "2 * -3",
    "-5 + 2 * 3",
    "100 / 8 - 3",
]

MAX_LENGTH: Final = 200
#: Exact arithmetic on huge powers would hang the agent; results are capped at this many bits.
MAX_EXACT_BITS: Final = 100_000

PARSER_OPTIONS: Final[list[dict[str, Any]]] = [
    {
        "id": "ast",
        "description": "Parse with Python's ast module and accept only arithmetic nodes",
        "action_type": "parse",
        "pros": ["Full grammar: parentheses, **, unary minus", "Never executes code"],
        "cons": ["Compiles Python syntax, heavier than needed for flat input"],
        "confidence": 0.9,
    },
    {
        "id": "regex_tokenizer",
        "description": "Tokenize with a regex and apply * / before + -",
        "action_type": "parse",
        "pros": ["Fast and simple for flat expressions"],
        "cons": ["No parentheses, ** or unary minus"],
        "confidence": 0.7,
    },
]
PARSER_CONSTRAINTS: Final = ["never eval() user input", f"at most {MAX_LENGTH} characters"]

FALLBACK_OPTIONS: Final[list[dict[str, Any]]] = [
    {
        "id": "fallback_ast",
        "description": "Parse again with the ast parser",
        "action_type": "parse",
        "pros": ["The ast grammar is a superset of the tokenizer's"],
    },
    {
        "id": "give_up",
        "description": "Fail the run with the tokenizer's error",
        "action_type": "terminate",
        "cons": ["Valid input would be rejected"],
    },
]

EVALUATOR_OPTIONS: Final[list[dict[str, Any]]] = [
    {
        "id": "exact_fraction",
        "description": "Evaluate with fractions.Fraction (exact rational arithmetic)",
        "action_type": "tool_call",
        "action_params": {"tool": "fractions.Fraction"},
        "pros": ["No rounding: (1 + 2) / 3 == 1 and 0.1 + 0.2 == 0.3"],
        "cons": ["Slower; large powers build huge integers"],
    },
    {
        "id": "float",
        "description": "Evaluate with binary floating point",
        "action_type": "tool_call",
        "action_params": {"tool": "float"},
        "pros": ["Fast; exact for integers below 2**53"],
        "cons": ["Rounds decimals and quotients", "Overflows past ~1.8e308"],
    },
]
EVALUATOR_CONSTRAINTS: Final = [
    "division by zero is an error, not infinity",
    f"exact results under {MAX_EXACT_BITS} bits",
]


# --- the calculator's syntax tree (both parsers produce it, so the evaluator has one input) --------
@dataclass(frozen=True, slots=True)
class Num:
    """A number literal, kept as written so `Fraction("0.1")` is exactly one tenth."""

    text: str


@dataclass(frozen=True, slots=True)
class Neg:
    """Unary minus."""

    operand: Node


@dataclass(frozen=True, slots=True)
class BinOp:
    """A binary operation; `op` is one of ``+ - * / **``."""

    op: str
    left: Node
    right: Node


Node: TypeAlias = Num | Neg | BinOp
Number: TypeAlias = Fraction | float
T = TypeVar("T")


def render(node: Node) -> str:
    """The tree as canonical text (for outcomes and problem descriptions)."""
    if isinstance(node, Num):
        return node.text
    if isinstance(node, Neg):
        inner = render(node.operand)
        return f"-({inner})" if isinstance(node.operand, BinOp) else f"-{inner}"
    left, right = (render(c) if isinstance(c, Num) else f"({render(c)})" for c in (node.left, node.right))
    return f"{left} {node.op} {right}"


class StepError(Exception):
    """An expected failure of one step, with what the agent records about it.

    `error` is the outcome's error and must not contain the input, so that the same failure groups
    across runs in `find_patterns`; the specifics go into `root_cause`.
    """

    def __init__(self, error: str, *, severity: str, root_cause: str, suggested_fix: str) -> None:
        super().__init__(error)
        self.error = error
        self.severity = severity
        self.root_cause = root_cause
        self.suggested_fix = suggested_fix


class TokenizerError(StepError):
    """The tokenizer could not read the input; the `ast` parser may still read it."""

    def __init__(self, error: str, expression: str) -> None:
        super().__init__(
            error,
            severity="minor",
            root_cause=f"The regex tokenizer could not read '{expression}'",
            suggested_fix="Teach the tokenizer unary minus, or route every expression to the ast parser",
        )


# --- parser ------------------------------------------------------------------------------------------
_FLAT = re.compile(r"[0-9.\s+\-*/]+")
_LITERAL = re.compile(r"(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")
_TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d*)?|\.\d+)|(?P<op>[-+*/]))")
_AST_OPS: Final[dict[type[ast.operator], str]] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Pow: "**",
}


def _features(expression: str) -> list[str]:
    """What the input contains that matters for choosing a parser and a number type."""
    checks = {
        "parentheses": "(" in expression or ")" in expression,
        "power": "**" in expression,
        "division": re.search(r"(?<!/)/(?!/)", expression) is not None,
        "decimals": re.search(r"\d\.|\.\d|\de", expression) is not None,
        "names": re.search(r"(?<![\d.])[A-Za-z_]", expression) is not None,
    }
    return [name for name, present in checks.items() if present]


def choose_parser(expression: str) -> tuple[str, str]:
    """(parser id, reasoning): the tokenizer for flat input, `ast` for anything richer."""
    if "**" not in expression and _FLAT.fullmatch(expression):
        return "regex_tokenizer", "Flat expression (numbers and + - * / only): a tokenizer is enough"
    found = [f for f in _features(expression) if f in ("parentheses", "power", "names")] or ["other syntax"]
    return "ast", f"Input has {', '.join(found)}: needs the full expression grammar"


def parse(expression: str, parser_id: str) -> Node:
    """The syntax tree of `expression` by parser `parser_id` ("ast" or "regex_tokenizer")."""
    if len(expression) > MAX_LENGTH:
        raise StepError(
            "Expression too long",
            severity="warning",
            root_cause=f"The input has {len(expression)} characters; the limit is {MAX_LENGTH}",
            suggested_fix="Split the calculation into smaller expressions",
        )
    return parse_with_ast(expression) if parser_id == "ast" else parse_with_tokenizer(expression)


def parse_with_tokenizer(expression: str) -> Node:
    """Numbers and binary + - * / with the usual precedence, left-associative; nothing else."""
    numbers: list[Node] = []
    ops: list[str] = []
    position = 0
    while position < len(expression.rstrip()):
        match = _TOKEN.match(expression, position)
        if match is None:
            char = expression[position:].strip()[:1]
            raise TokenizerError(f"Tokenizer: unexpected character '{char}'", expression)
        position = match.end()
        number, op = match.group("num"), match.group("op")
        expecting_number = len(numbers) == len(ops)
        if number is not None and expecting_number:
            numbers.append(Num(number))
        elif number is not None:
            raise TokenizerError(f"Tokenizer: expected an operator before '{number}'", expression)
        elif expecting_number:
            raise TokenizerError("Tokenizer does not support unary operators", expression)
        else:
            ops.append(op)
    if not numbers:
        raise TokenizerError("Tokenizer: empty expression", expression)
    if len(ops) == len(numbers):
        raise TokenizerError(f"Tokenizer: expected a number after '{ops[-1]}'", expression)
    # * and / bind tighter: fold them into terms first, then fold the terms with + and -.
    terms: list[Node] = [numbers[0]]
    term_ops: list[str] = []
    for op, number_node in zip(ops, numbers[1:], strict=True):
        if op in "*/":
            terms[-1] = BinOp(op, terms[-1], number_node)
        else:
            term_ops.append(op)
            terms.append(number_node)
    tree = terms[0]
    for op, term in zip(term_ops, terms[1:], strict=True):
        tree = BinOp(op, tree, term)
    return tree


def parse_with_ast(expression: str) -> Node:
    """Python's parser, then a walk that accepts only numbers, + - * / **, unary +/- and parentheses."""
    source = expression.strip()
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise StepError(
            f"Syntax error: {exc.msg}",
            severity="warning",
            root_cause=f"'{expression}' is not a complete arithmetic expression",
            suggested_fix="Ask the user to complete or correct the expression before evaluating it",
        ) from None
    return _from_ast(tree.body, source)


def _from_ast(node: ast.expr, source: str) -> Node:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        # Keep the literal as written (exact as a Fraction); fall back to repr for forms like 1_000.
        text = ast.get_source_segment(source, node) or ""
        return Num(text if _LITERAL.fullmatch(text) else repr(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _from_ast(node.operand, source)
        return Neg(operand) if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and type(node.op) in _AST_OPS:
        return BinOp(_AST_OPS[type(node.op)], _from_ast(node.left, source), _from_ast(node.right, source))
    kind = {ast.Call: "function call", ast.Name: "name"}.get(type(node), type(node).__name__.lower())
    raise StepError(
        f"Unsupported syntax: {kind}",
        severity="warning",
        root_cause=f"'{ast.unparse(node)}' is outside the grammar: numbers, + - * / **, parentheses",
        suggested_fix="Whitelist math functions (sqrt, abs, ...) in the ast parser, or reject them up front",
    )


# --- evaluator ---------------------------------------------------------------------------------------
def _walk(node: Node) -> list[Node]:
    children: list[Node] = [node]
    if isinstance(node, Neg):
        children += _walk(node.operand)
    elif isinstance(node, BinOp):
        children += _walk(node.left) + _walk(node.right)
    return children


def _operators(tree: Node) -> set[str]:
    return {n.op for n in _walk(tree) if isinstance(n, BinOp)}


def choose_strategy(tree: Node) -> tuple[str, str]:
    """(strategy id, reasoning): exact fractions when floats would round, floats otherwise."""
    nodes = _walk(tree)
    if any(isinstance(n, BinOp) and n.op == "/" for n in nodes):
        return "exact_fraction", "Division present: exact fractions keep quotients like (1 + 2) / 3 exact"
    if any(isinstance(n, Num) and not n.text.isdigit() for n in nodes):
        return "exact_fraction", "Decimal literals (e.g. 0.1) are not exact in binary floating point"
    return "float", "Integers with + - * ** only: floats are exact below 2**53 and fastest"


def evaluate(node: Node, exact: bool) -> Number:
    """The value of `node`, exact (`Fraction`) or as floats; failures raise `StepError`."""
    if isinstance(node, Num):
        if exact and _literal_bits(node.text) > MAX_EXACT_BITS:
            raise _too_large(node)
        return Fraction(node.text) if exact else float(node.text)
    if isinstance(node, Neg):
        return -evaluate(node.operand, exact)
    left, right = evaluate(node.left, exact), evaluate(node.right, exact)
    try:
        if node.op == "+":
            return left + right
        if node.op == "-":
            return left - right
        if node.op == "*":
            return left * right
        if node.op == "/":
            return left / right
        return _power(node, left, right)
    except ZeroDivisionError:
        divisor = render(node.right) if node.op == "/" else render(node)
        raise StepError(
            "Division by zero",
            severity="critical",
            root_cause=f"'{divisor}' evaluates to 0 in '{render(node)}'",
            suggested_fix="Check divisors before dividing and answer 'undefined' instead of failing the run",
        ) from None
    except OverflowError:
        raise StepError(
            "Float overflow: result out of range",
            severity="warning",
            root_cause=f"'{render(node)}' exceeds the largest float (~1.8e308)",
            suggested_fix="Choose exact_fraction when powers or literals are large",
        ) from None


def _power(node: BinOp, base: Number, exponent: Number) -> Number:
    if isinstance(base, Fraction) and isinstance(exponent, Fraction) and exponent.denominator == 1:
        size = max(base.numerator.bit_length(), base.denominator.bit_length()) * abs(exponent.numerator)
        if size > MAX_EXACT_BITS:
            raise _too_large(node)
    result: Fraction | float | complex = base**exponent
    if isinstance(result, complex):
        raise StepError(
            "Complex result",
            severity="warning",
            root_cause=f"'{render(node)}' takes a fractional power of a negative number",
            suggested_fix="Reject fractional powers of negative numbers in the parser",
        )
    return result


def _literal_bits(text: str) -> int:
    """Rough size in bits of a literal as a Fraction, without building it (1e999999 would hang)."""
    mantissa, _, exponent = text.lower().partition("e")
    return int(len(mantissa) * 3.33 + abs(int(exponent or "0")) * 3.33)


def _too_large(node: Node) -> StepError:
    return StepError(
        "Exact result too large",
        severity="warning",
        root_cause=f"'{render(node)}' would need more than {MAX_EXACT_BITS} bits",
        suggested_fix="Use float for very large magnitudes, or reject them as out of range",
    )


def _as_text(value: Number) -> str:
    return str(value) if isinstance(value, Fraction) else repr(value)


# --- the agent ---------------------------------------------------------------------------------------
def run_calculator(runtime: Runtime, expression: str) -> float | None:
    """Evaluate `expression` as one run of goal "calculator"; the value, or None when the run failed.

    Every step is a recorded decision with its options, reasoning, constraints, context and outcome.
    An expected failure is recorded as a failed outcome plus a problem with a suggested fix, and ends
    the run as failed. The run is readable by a `BuilderQuery` as soon as this returns.
    """
    runtime.start_run(GOAL_ID, GOAL_DESCRIPTION, input_data={"expression": expression})
    try:
        tree = _parse(runtime, expression)
        number = _evaluate(runtime, expression, tree)
        value = _validate(runtime, expression, number)
    except StepError as failure:
        runtime.end_run(success=False, output_data={"error": failure.error})
        return None
    runtime.end_run(success=True, output_data={"result": value, "exact": _as_text(number)})
    return value


def _attempt(runtime: Runtime, decision_id: str, expression: str, step: Callable[[], T]) -> tuple[T, int]:
    """`step()` and its latency in ms; on `StepError`, record the failed outcome and the problem, re-raise.

    The success outcome is left to the caller, which knows what to summarise.
    """
    start = time.perf_counter()
    try:
        result = step()
    except StepError as failure:
        runtime.record_outcome(
            decision_id,
            success=False,
            error=failure.error,
            summary=f"{failure.error} while handling '{expression}'",
            latency_ms=_elapsed_ms(start),
        )
        runtime.report_problem(
            failure.severity,
            f"{failure.error} in '{expression}'",
            decision_id=decision_id,
            root_cause=failure.root_cause,
            suggested_fix=failure.suggested_fix,
        )
        raise
    return result, _elapsed_ms(start)


def _elapsed_ms(start: float) -> int:
    return int((time.perf_counter() - start) * 1000)


def _parse(runtime: Runtime, expression: str) -> Node:
    runtime.set_node("parser")
    context = {"expression": expression, "length": len(expression), "features": _features(expression)}
    chosen, reasoning = choose_parser(expression)
    decision_id = runtime.decide(
        intent="Choose how to parse the expression",
        options=PARSER_OPTIONS,
        chosen=chosen,
        reasoning=reasoning,
        decision_type=DecisionType.PATH_CHOICE,
        constraints=PARSER_CONSTRAINTS,
        context=context,
    )
    try:
        tree, latency_ms = _attempt(runtime, decision_id, expression, lambda: parse(expression, chosen))
    except TokenizerError as failure:
        # The ast grammar is a superset of the tokenizer's, so its answer is the authoritative one.
        decision_id = runtime.decide(
            intent="Recover from a tokenizer failure",
            options=FALLBACK_OPTIONS,
            chosen="fallback_ast",
            reasoning=f"The tokenizer failed ({failure.error}); the ast parser accepts a superset",
            decision_type=DecisionType.RETRY_STRATEGY,
            context={**context, "tokenizer_error": failure.error},
        )
        tree, latency_ms = _attempt(runtime, decision_id, expression, lambda: parse(expression, "ast"))
    runtime.record_outcome(
        decision_id,
        success=True,
        result=render(tree),
        summary=f"Parsed '{expression}' as {render(tree)}",
        state_changes={"syntax_tree": render(tree)},
        latency_ms=latency_ms,
    )
    return tree


def _evaluate(runtime: Runtime, expression: str, tree: Node) -> Number:
    runtime.set_node("evaluator")
    chosen, reasoning = choose_strategy(tree)
    exact = chosen == "exact_fraction"
    decision_id = runtime.decide(
        intent="Choose the number type to evaluate with",
        options=EVALUATOR_OPTIONS,
        chosen=chosen,
        reasoning=reasoning,
        decision_type=DecisionType.TOOL_SELECTION,
        constraints=EVALUATOR_CONSTRAINTS,
        context={"syntax_tree": render(tree), "operators": sorted(_operators(tree))},
    )
    number, latency_ms = _attempt(runtime, decision_id, expression, lambda: evaluate(tree, exact))
    runtime.record_outcome(
        decision_id,
        success=True,
        result=_as_text(number),
        summary=f"{render(tree)} = {_as_text(number)} ({chosen})",
        latency_ms=latency_ms,
    )
    return number


def _validate(runtime: Runtime, expression: str, number: Number) -> float:
    runtime.set_node("validator")
    decision_id = runtime.quick_decision(
        "Check the result before returning it",
        "Return the result as a finite float",
        f"Callers expect a float; {_as_text(number)} must convert without overflow",
    )
    value, latency_ms = _attempt(runtime, decision_id, expression, lambda: finite_float(number))
    runtime.record_outcome(
        decision_id,
        success=True,
        result=value,
        summary=f"{expression} = {value!r}",
        latency_ms=latency_ms,
    )
    return value


def finite_float(number: Number) -> float:
    """`number` as a float, refusing infinities and overflow (a float caller cannot use them)."""
    try:
        value = float(number)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        raise StepError(
            "Result is not a finite float",
            severity="warning",
            root_cause=f"{_as_text(number)} is outside the float range",
            suggested_fix="Return the exact result as text when it does not fit in a float",
        )
    return value
