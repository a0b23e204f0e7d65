"""The reader's shortcut for one-span lines (`otlp_files._Prefixes`) reads exactly what a full parse reads.

Our writer repeats the resource and scope before every span; the reader parses them once per file
block and then only the spans array. These tests prove the shortcut never changes a result: for real
lines, for lines whose middle is not one array (more scopes, more resources, extra keys, junk), and
for prefixes that are not one resource with one scope.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_decisions import Runtime
from otel_decisions.contract import SpanRecord
from otel_decisions.export.file_writer import FILE_NAME
from otel_decisions.reading import otlp_files
from otel_decisions.reading.otlp_files import _ONE_SCOPE_END, _SPANS_KEY, _Prefixes, parse_line


def _record(tmp_path: Path) -> list[bytes]:
    runtime = Runtime(tmp_path)
    runtime.start_run("goal", "a goal", {"n": 1})
    first = runtime.decide("route", [{"id": "a"}, {"id": "b"}], "a", "why")
    runtime.record_outcome(first, True, result={"ok": True})
    runtime.report_problem("warning", "slow", first)
    runtime.end_run(True)
    return (tmp_path / FILE_NAME).read_bytes().splitlines()


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    return _record(tmp_path_factory.mktemp("prefixes"))


def _either(parse: object, *args: object) -> list[SpanRecord] | str:
    try:
        return parse(*args)  # type: ignore[operator, no-any-return]
    except ValueError:
        return "ValueError"


def _shortcut(primer: bytes, line: bytes) -> tuple[list[SpanRecord] | str, _Prefixes]:
    prefixes = _Prefixes()
    data = primer + b"\n" + line
    prefixes.parse(data, 0, len(primer), memoryview(data))
    start = len(primer) + 1
    return _either(prefixes.parse, data, start, len(data), memoryview(data)), prefixes


def test_real_lines_are_read_through_the_shortcut_with_the_same_spans(lines: list[bytes]) -> None:
    prefixes = _Prefixes()
    for line in lines:
        assert prefixes.parse(line, 0, len(line), memoryview(line)) == parse_line(line)
    (known,) = prefixes.known  # one resource and scope: learned once
    assert all(line.startswith(known) for line in lines)


def test_known_prefixes_skip_the_full_parse(lines: list[bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    full_parses: list[object] = []
    real = otlp_files.parse_line

    def counted(line: bytes | str | memoryview) -> list[SpanRecord]:
        full_parses.append(line)
        return real(line)

    monkeypatch.setattr(otlp_files, "parse_line", counted)
    prefixes = _Prefixes()
    read = [prefixes.parse(line, 0, len(line), memoryview(line)) for line in lines]
    assert read == [real(line) for line in lines]
    assert len(full_parses) == 1  # the first line only: it taught the prefix


def test_many_interleaved_resources_are_all_known(lines: list[bytes]) -> None:
    """Each process writing a directory has its own `service.instance.id`: 40 of them interleaved."""
    prefixes = _Prefixes()
    for _ in range(2):
        for n in range(40):
            line = lines[1].replace(b'"unknown_service:python"', b'"service-%d"' % n)
            assert prefixes.parse(line, 0, len(line), memoryview(line)) == parse_line(line)
    assert len(prefixes.known) == 40


def test_a_prefix_opening_a_duplicate_key_is_not_learned(lines: list[bytes]) -> None:
    """`"spans": [` with a space is not found, so the first `"spans":[` is under a later duplicate key
    of the resource object, whose real `scopeSpans` comes elsewhere (found by an independent review)."""
    real_prefix = lines[1][: lines[1].find(_SPANS_KEY) + len(_SPANS_KEY)]
    span = lines[1][len(real_prefix) : -len(_ONE_SCOPE_END)]
    decoy = (
        b'{"resourceSpans":[{"foo":0,"resource":{},"scopeSpans":[{"scope":{},"spans": []}],"foo":[{"spans":['
    )
    teacher = decoy + b']}],"scopeSpans":[{"scope":{},"spans":[' + span + b"]}]}]}"
    assert parse_line(teacher)  # holds our span: its prefix is a candidate
    later = decoy + span + _ONE_SCOPE_END
    result, prefixes = _shortcut(teacher, later)
    assert result == parse_line(later) == [] and prefixes.known == set()


def test_a_line_of_another_resource_is_learned_as_a_second_prefix(lines: list[bytes]) -> None:
    other = lines[1].replace(b'"unknown_service:python"', b'"another-service"')
    assert other != lines[1]
    result, prefixes = _shortcut(lines[0], other)
    assert result == parse_line(other) and len(prefixes.known) == 2


MIDDLES = [
    b'{}]},{"scope":{},"spans":[{}',  # a second scope
    b']}]},{"resource":{},"scopeSpans":[{"scope":{},"spans":[',  # a second resource
    b'],"schemaUrl":"x","spans":[',  # a later duplicate key replaces the array
    b"]],[[",
    b'"not a span"',
    b"{}",
    b"",
    b"[",
    b"1,2",
]


@pytest.mark.parametrize("middle", MIDDLES)
def test_lines_whose_middle_is_not_one_array_read_as_a_full_parse(lines: list[bytes], middle: bytes) -> None:
    prefix = lines[1][: lines[1].find(_SPANS_KEY) + len(_SPANS_KEY)]
    span = lines[1][len(prefix) : -len(_ONE_SCOPE_END)]
    line = prefix + span + middle + _ONE_SCOPE_END
    assert _shortcut(lines[0], line)[0] == _either(parse_line, line)


def _variants(line: bytes) -> list[bytes]:
    """Lines holding our span whose first `"spans":[` does not open one resource's one scope's spans."""
    doc = orjson.loads(line)
    rs = doc["resourceSpans"][0]
    ss = rs["scopeSpans"][0]
    decoy: list[Any] = [{"x": [{"spans": []}]}]  # closes like a resource's scope, under other keys
    variants = [
        {"other": decoy, "resourceSpans": [rs]},
        {"resourceSpans": [{"other": decoy, **rs}]},
        {"resourceSpans": [{"x": 1}, rs]},
        {"resourceSpans": [{**rs, "scopeSpans": [{"scope": {}}, ss]}]},
        {"resourceSpans": [{"scopeSpans": [ss], "resource": rs["resource"]}]},
        {"resourceSpans": [{**rs, "scopeSpans": [{"spans": ss["spans"], "scope": ss["scope"]}]}]},
        {"resourceSpans": [rs, rs]},
        {"resourceSpans": [rs], "extra": 1},
    ]
    return [orjson.dumps(v) for v in variants]


def test_a_learned_prefix_is_always_one_resource_and_one_scope(lines: list[bytes]) -> None:
    for variant in _variants(lines[1]):
        assert parse_line(variant)  # the variant holds our span: its prefix is a candidate
        prefix = variant[: variant.find(_SPANS_KEY) + len(_SPANS_KEY)]
        span = lines[1][lines[1].find(_SPANS_KEY) + len(_SPANS_KEY) : -len(_ONE_SCOPE_END)]
        later = prefix + span + _ONE_SCOPE_END  # a later line starting like the variant
        result, prefixes = _shortcut(variant, later)
        assert result == _either(parse_line, later), variant
        for known in prefixes.known:
            closed = orjson.loads(known + _ONE_SCOPE_END)
            assert list(closed) == ["resourceSpans"] and len(closed["resourceSpans"]) == 1


_TOKENS = st.sampled_from([b"{", b"}", b"[", b"]", b",", b'"spans":', b'"a"', b"1", b":"])


@settings(max_examples=300, deadline=None)
@given(
    middle=st.binary(max_size=40) | st.sampled_from(MIDDLES) | st.lists(_TOKENS, max_size=12).map(b"".join),
    keep_span=st.booleans(),
)
def test_any_line_with_a_known_prefix_reads_as_a_full_parse(
    lines: list[bytes], middle: bytes, keep_span: bool
) -> None:
    prefix = lines[1][: lines[1].find(_SPANS_KEY) + len(_SPANS_KEY)]
    span = lines[1][len(prefix) : -len(_ONE_SCOPE_END)] if keep_span else b""
    line = prefix + span + middle + _ONE_SCOPE_END
    if b"\n" in line:
        line = line.replace(b"\n", b" ")
    assert _shortcut(lines[0], line)[0] == _either(parse_line, line)
