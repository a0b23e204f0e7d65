"""Hostile values, and checks of what recording them wrote (shared by the `test_hostile_*` modules).

`hostile()` draws what an agent may hand us by mistake or malice: objects that are not JSON, cycles,
1-5 MB strings and 100k-item containers, NaN and infinities, bytes, lone surrogates and undecodable
bytes, integers beyond 64 bits, generators (endless ones too), and objects whose `__repr__`, `__str__`,
`__eq__`, `__hash__`, `__iter__`, `__len__`, `__bool__`, `__float__` or `__getattr__` raise.

Sizes never sit near the attribute cap: a value is either small (its JSON at most a few kB) or huge
(its text at least 1 MB). So an attribute that reaches the cap was cut, and must say so (`check_file`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, Final

import orjson
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from otel_decisions import _config
from otel_decisions._values import TRUNCATED_KEY

FUZZ: Final = settings(
    max_examples=int(os.environ.get("HOSTILE_EXAMPLES", "25")),  # more for a deep run, e.g. 2000
    deadline=None,  # sizes are bounded by the checks below, never by the clock
    phases=(Phase.explicit, Phase.reuse, Phase.generate),  # shrinking megabyte values takes minutes
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
MB: Final = 1 << 20
SLACK: Final = 64
"""Characters an attribute may exceed the cap by: the `…[truncated N chars]` suffix of `cap_text`."""
NEAR_CAP: Final = 256
"""An attribute this close to the cap (or over it) must be a cut value, marked as such."""
INT64: Final = range(-(2**63), 2**63)


class HostileError(Exception):
    """What the dunders of hostile objects raise."""


def _raise(*_args: Any, **_kwargs: Any) -> Any:
    raise HostileError("hostile")


DUNDERS: Final = (
    "__repr__",
    "__str__",
    "__eq__",
    "__hash__",
    "__iter__",
    "__len__",
    "__bool__",
    "__float__",
    "__index__",
    "__getattr__",
)


@cache
def raising_class(names: frozenset[str], base: type = object) -> type:
    """A class (of `base`: object, str, dict or list) whose dunders `names` raise `HostileError`."""
    return type(
        f"Raises_{'_'.join(sorted(n.strip('_') for n in names))}", (base,), dict.fromkeys(names, _raise)
    )


@dataclasses.dataclass
class Point:
    x: Any
    y: Any = None


class Model(BaseModel):
    value: Any = None


def _cycle(kind: str) -> Any:
    if kind == "dict":
        d: dict[str, Any] = {"a": 1}
        d["self"] = d
        return d
    if kind == "list":
        items: list[Any] = [1]
        items.append(items)
        return items
    outer: dict[str, Any] = {"inner": [{"x": None}]}
    outer["inner"][0]["x"] = outer  # a cycle through a list and two dicts
    return outer


def _nested(depth: int) -> list[Any]:
    root: list[Any] = []
    current = root
    for _ in range(depth):
        child: list[Any] = []
        current.append(child)
        current = child
    return root


def _huge_container(kind: str) -> Any:
    n = 100_000
    if kind == "list":
        return list(range(n))
    if kind == "dict":
        return {f"k{i}": i for i in range(n)}
    if kind == "set":
        return set(range(n))
    return tuple("x" for _ in range(n))


def _generator(endless: bool) -> Iterator[Any]:
    return itertools.count() if endless else (i for i in range(3))


class SelfIterating:
    """Iterates to itself, forever: flattening it never ends."""

    def __iter__(self) -> Iterator[Any]:
        while True:
            yield self


_text = st.text(st.characters(codec="utf-8") | st.characters(categories=["Cs"]), max_size=40)
_undecodable = st.binary(max_size=40).map(lambda b: b.decode("utf-8", "surrogateescape"))
_floats = st.sampled_from([math.nan, math.inf, -math.inf, -0.0]) | st.floats()
_big_ints = st.integers(min_value=2**64) | st.integers(max_value=-(2**63) - 1)
_raising = st.frozensets(st.sampled_from(DUNDERS), min_size=1).map(lambda names: raising_class(names)())
_evil_str = st.builds(
    lambda names, text: raising_class(names, str)(text),
    st.frozensets(st.sampled_from(("__repr__", "__str__", "__hash__", "__eq__", "__len__")), min_size=1),
    _text,
)
_evil_containers = st.builds(
    lambda names, base: raising_class(names, base)(),
    st.frozensets(st.sampled_from(("__iter__", "__len__", "__repr__", "__getitem__")), min_size=1),
    st.sampled_from([dict, list]),
)
_huge_text = st.builds(
    lambda n, tail: "x" * n + tail, st.integers(MB, 5 * MB), st.sampled_from(["", "\udcff", "é"])
)
_oddities = st.sampled_from([object, len, print, type, math, Ellipsis, NotImplemented]) | st.builds(object)

small_scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    _big_ints,
    _floats,
    _text,
    _undecodable,
    st.binary(max_size=40),
    st.binary(max_size=40).map(bytearray),
    st.binary(max_size=40).map(lambda b: memoryview(b)),
    _oddities,
    _raising,
    _evil_str,
    _evil_containers,
    st.booleans().map(_generator),
    st.builds(SelfIterating),
)
_keys = st.one_of(
    _text, st.integers(), _big_ints, _floats, st.none(), st.tuples(st.integers()), st.builds(object)
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(_keys, children, max_size=4),
        st.frozensets(st.integers() | _text, max_size=4),
        st.sets(st.integers() | _text, max_size=4),
        st.builds(Point, children, children),
        st.builds(Model, value=children),
    )


def hostile(*, huge: bool = True) -> st.SearchStrategy[Any]:
    """Any hostile value; `huge=False` leaves out the 1-5 MB strings and the 100k-item containers."""
    base = st.one_of(
        small_scalars,
        st.sampled_from(["dict", "list", "through"]).map(_cycle),
        st.integers(1000, 3000).map(_nested),
    )
    if huge:
        base = base | _huge_text | st.sampled_from(["list", "dict", "set", "tuple"]).map(_huge_container)
    return st.recursive(base, _containers, max_leaves=6)


def small_hostile() -> st.SearchStrategy[Any]:
    return hostile(huge=False)


ALL_RAISING: Final = frozenset(DUNDERS)
NASTIEST: Final[dict[str, Callable[[], Any]]] = {
    "raising object": lambda: raising_class(ALL_RAISING)(),
    "raising str": lambda: raising_class(
        frozenset({"__repr__", "__str__", "__hash__", "__eq__", "__len__"}), str
    )("evil"),
    "raising dict": lambda: raising_class(
        frozenset({"__iter__", "__len__", "__repr__", "__getitem__"}), dict
    )(k=1),
    "raising list": lambda: raising_class(
        frozenset({"__iter__", "__len__", "__repr__", "__getitem__"}), list
    )([1]),
    "dict cycle": lambda: _cycle("dict"),
    "list cycle": lambda: _cycle("list"),
    "cycle through list": lambda: _cycle("through"),
    "nested 3000 deep": lambda: _nested(3000),
    "5 MB text": lambda: "x" * (5 * MB),
    "5 MB text, lone surrogate": lambda: "x" * (5 * MB) + "\udcff",
    "5 MB of quotes": lambda: '"' * (5 * MB),
    "100k list": lambda: _huge_container("list"),
    "100k dict": lambda: _huge_container("dict"),
    "100k set": lambda: _huge_container("set"),
    "nan": lambda: math.nan,
    "-inf": lambda: -math.inf,
    "2**100": lambda: 2**100,
    "bytes": lambda: b"\xff\x00" * 1000,
    "memoryview": lambda: memoryview(b"\xff" * 10),
    "lone surrogate": lambda: "\udcff",
    "undecodable": lambda: b"ok \xff\xfe".decode("utf-8", "surrogateescape"),
    "endless generator": itertools.count,
    "self-iterating": SelfIterating,
    "model holding a cycle": lambda: Model(value=_cycle("dict")),
    "dataclass of NaN": lambda: Point(math.nan, [math.inf]),
    "set": lambda: {1, "a", (2, 3)},
    "type": lambda: int,
    "plain object": object,
}
"""One of each kind of hostile value, to put in every argument at once (deterministic examples)."""
HUGE: Final = frozenset(name for name in NASTIEST if name.startswith(("5 MB", "100k")))


# ----------------------------------------------------------------------------------- file checks
def new_lines(path: Path, offset: int) -> list[bytes]:
    """The complete lines appended to `path` since byte `offset`."""
    if not path.exists():
        return []
    with path.open("rb") as f:
        f.seek(offset)
        data = f.read()
    return [line for line in data.split(b"\n") if line]


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _values(document: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(key, AnyValue) of every attribute in a TracesData document, plus span names and messages."""
    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                yield "<span name>", {"stringValue": span["name"]}
                yield "<status message>", {"stringValue": span.get("status", {}).get("message", "")}
                attribute_lists = [span.get("attributes", [])]
                attribute_lists += [e.get("attributes", []) for e in span.get("events", [])]
                attribute_lists += [k.get("attributes", []) for k in span.get("links", [])]
                for attributes in attribute_lists:
                    for kv in attributes:
                        yield kv["key"], kv.get("value", {})


def _strings(value: dict[str, Any]) -> Iterator[str]:
    if "stringValue" in value:
        yield value["stringValue"]
    for item in value.get("arrayValue", {}).get("values", []):
        yield from _strings(item)


def check_line(line: bytes) -> None:
    """Every attribute string of one OTLP/JSON line is bounded by the cap, and marked when it was cut;
    every integer fits OTLP's int64."""
    cap = _config.max_value_chars()
    document = orjson.loads(line)  # a line is one complete JSON document, however hostile the input
    for key, value in _values(document):
        if "intValue" in value:
            assert int(value["intValue"]) in INT64, (key, value["intValue"][:40])
        for text in _strings(value):
            assert len(text) <= cap + SLACK, (key, len(text))
            if len(text) >= cap - NEAR_CAP:
                assert is_marked(text, cap), (key, text[:60], text[-60:])


def is_marked(text: str, cap: int) -> bool:
    """`text` is a value cut at `cap`: a truncation marker object (`encode_json`), JSON whose cut parts
    carry the marker key (options shortened one by one), or text with the visible `cap_text` suffix."""
    if text.startswith('{"' + TRUNCATED_KEY):
        marker = orjson.loads(text)
        return marker[TRUNCATED_KEY] is True and marker["original_chars"] > cap
    if text.startswith("[") and f'"{TRUNCATED_KEY}":true' in text:
        items = orjson.loads(text)
        return any(isinstance(item, dict) and item.get(TRUNCATED_KEY) is True for item in items)
    return text.endswith(" chars]") and "…[truncated " in text[-40:]


def check_file(path: Path, offset: int) -> int:
    """Check every line written to `path` after `offset`; return how many there were."""
    lines = new_lines(path, offset)
    for line in lines:
        check_line(line)
    return len(lines)
