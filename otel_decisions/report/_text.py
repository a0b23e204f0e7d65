"""Text helpers for the report: escaping, visual truncation and number formats.

Every string that comes from an agent (node ids, intents, option labels, errors, run ids) passes through
`esc` before it reaches the page, so a label such as ``<script>`` is shown, never run. Formatting lives
here so that every number is written the same way in charts and tables, and deterministically (no
locale, fixed precision).
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from typing import Final

#: Longest text kept in a `title` tooltip: the full label, unless it is absurdly long (keeps the file small).
TITLE_LIMIT: Final = 1000
ELLIPSIS: Final = "…"
UTC_OFFSET: Final = timedelta(0)

# C0/C1 controls (except tab, newline, carriage return) are HTML parse errors, and lone surrogates cannot
# be written as UTF-8: agents' text may contain either, so both are shown as U+FFFD.
_UNSAFE: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def clean(value: object) -> str:
    """`value` as text that is safe to encode as UTF-8 and legal in HTML (not yet escaped)."""
    return _UNSAFE.sub("\ufffd", value if isinstance(value, str) else str(value))


def esc(value: object) -> str:
    """`value` as text escaped for HTML content and quoted attribute values alike."""
    return html.escape(clean(value), quote=True)


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending with an ellipsis when cut."""
    if limit < 1:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def title_text(text: str) -> str:
    """The tooltip for a clipped label: the full text, or its first `TITLE_LIMIT` characters and a count."""
    if len(text) <= TITLE_LIMIT:
        return text
    return f"{text[:TITLE_LIMIT]}{ELLIPSIS} ({len(text) - TITLE_LIMIT} more characters)"


def label(value: object, limit: int, css: str = "") -> str:
    """An escaped HTML `<span>` showing at most `limit` characters, with the full text as its title
    when cut (so a very long label keeps the layout and can still be read by hovering)."""
    text = clean(value)
    shown = clip(text, limit)
    attributes = f' class="{css}"' if css else ""
    if shown != text:
        attributes += f' title="{esc(title_text(text))}"'
    return f"<span{attributes}>{esc(shown)}</span>" if attributes else esc(shown)


def code(value: object, limit: int = 80) -> str:
    """An id (run, decision, node) as copyable monospace text."""
    text = clean(value)
    shown = clip(text, limit)
    title = f' title="{esc(title_text(text))}"' if shown != text else ""
    return f'<code class="id"{title}>{esc(shown)}</code>'


def pct(rate: float, digits: int = 0) -> str:
    """A rate in [0, 1] as a percentage with fixed precision: `0.667` → `"67%"`."""
    return f"{rate:.{digits}%}"


def num(value: int | float) -> str:
    """A count or amount with thousands separators (floats to one decimal)."""
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def ms(value: int | float) -> str:
    """A latency in milliseconds."""
    return f"{num(value)} ms"


def p_value(value: float) -> str:
    """A p- or q-value with two significant digits, as the suggestions print it."""
    return f"{value:.2g}"


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """`"1 run"`, `"3 runs"`."""
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{num(count)} {word}"


def attr_number(value: int | float) -> str:
    """A number for a `data-` attribute, exactly (a float's repr reads back as the same float)."""
    return repr(value)


def duration(seconds: int) -> str:
    """A period in words: `60` → `"1 minute"`, `21600` → `"6 hours"`."""
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size and seconds % size == 0:
            return plural(seconds // size, unit)
    return plural(seconds, "second")


def moment(iso: str) -> str:
    """An ISO 8601 time as `2026-01-31 12:00 UTC` (as given when it does not parse)."""
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        return clean(iso)
    zone = (
        ""
        if parsed.tzinfo is None
        else " UTC"
        if parsed.utcoffset() == UTC_OFFSET
        else parsed.strftime(" %z")
    )
    return parsed.strftime("%Y-%m-%d %H:%M") + zone
