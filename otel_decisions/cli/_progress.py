"""A progress bar for reading span files: `BuilderQuery(source, progress=ProgressBar(sys.stderr))`.

The store calls `bar(bytes_read, bytes_total)` repeatedly while it reads; the last call of a pass has
`bytes_read == bytes_total`. The bar is redrawn in place with `\\r` at most every `min_interval` seconds,
ends with a newline when the pass completes, and only ever writes to its own stream (stderr), so
`--json` output on stdout stays parseable.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import Final, TextIO

__all__ = ["AUTO_PROGRESS_BYTES", "ProgressBar"]

#: Without `--progress`/`--no-progress`, the bar is shown on a terminal for sources larger than this.
AUTO_PROGRESS_BYTES: Final = 8 * 1024 * 1024
MIN_BAR: Final = 10
MAX_BAR: Final = 40


class ProgressBar:
    """`Reading spans [#######-------]  45%  12.3/27.0 MB`, one line on `stream`.

    Usage::

        bar = ProgressBar(sys.stderr)
        query = BuilderQuery(".otel-decisions", progress=bar)
        ...
        bar.close()  # ends a bar left half-drawn (an error or Ctrl-C), else does nothing

    **Parameters:** `label` is printed first; `width` is the line width (default: the terminal's);
    `min_interval` the seconds between redraws; `clock` a monotonic clock (tests pass a fake).
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        label: str = "Reading spans",
        width: int | None = None,
        min_interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._label = label
        self._width = width
        self._min_interval = min_interval
        self._clock = clock
        self._active = False  # a bar is drawn and its line not yet ended
        self._last_draw = 0.0
        self._drawn_chars = 0
        self._finished: tuple[int, int] | None = None  # the last completed pass, to skip repeats

    def __call__(self, bytes_read: int, bytes_total: int) -> None:
        if bytes_total <= 0:
            return  # nothing to read: no bar
        done = min(max(bytes_read, 0), bytes_total)
        now = self._clock()
        if done >= bytes_total:
            # A store refreshes before each question; a pass that read nothing new is not redrawn.
            if self._active or self._finished != (done, bytes_total):
                self._draw(done, bytes_total, now)
                self._end_line()
            self._finished = (done, bytes_total)
            return
        self._finished = None
        if not self._active or now - self._last_draw >= self._min_interval:
            self._draw(done, bytes_total, now)

    def close(self) -> None:
        """End the current line if a bar is half-drawn (before an error message, or on exit)."""
        if self._active:
            self._end_line()

    def render(self, bytes_read: int, bytes_total: int) -> str:
        """The bar's text (no `\\r`), fitted to the line width."""
        fraction = bytes_read / bytes_total if bytes_total else 1.0
        tail = f" {fraction:4.0%}  {_size(bytes_read, bytes_total)}"
        width = self._width if self._width is not None else shutil.get_terminal_size((80, 24)).columns
        room = width - 1 - len(self._label) - len(tail) - 3  # 1: no wrap in the last column; 3: " []"
        cells = max(MIN_BAR, min(MAX_BAR, room))
        filled = int(cells * fraction)
        return f"{self._label} [{'#' * filled}{'-' * (cells - filled)}]{tail}"

    def _draw(self, bytes_read: int, bytes_total: int, now: float) -> None:
        text = self.render(bytes_read, bytes_total)
        padding = " " * max(0, self._drawn_chars - len(text))  # wipe a longer previous line
        self._stream.write(f"\r{text}{padding}")
        self._stream.flush()
        self._drawn_chars = len(text)
        self._active = True
        self._last_draw = now

    def _end_line(self) -> None:
        self._stream.write("\n")
        self._stream.flush()
        self._active = False
        self._drawn_chars = 0


def _size(done: int, total: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if total >= scale:
            return f"{done / scale:.1f}/{total / scale:.1f} {unit}"
    return f"{done}/{total} B"
