"""Appending whole lines to `traces.jsonl` in a directory shared by threads and processes.

Guarantees: a line is never interleaved with, or torn by, another writer. Each batch goes out as one
`os.write` on an `O_APPEND` descriptor while holding an exclusive `flock` on `<dir>/.lock`, and the
same lock serialises size-based rotation: when `traces.jsonl` would grow past `max_bytes`, it is renamed
to `traces-<UTC time>-<pid>[-<n>].jsonl` (the Collector's rotated-name shape, so both glob alike) and a new
file is started. A writer whose file was rotated by another process notices (inode changed) and reopens.

`write` never raises: a full disk or an unwritable directory logs one warning per kind of error and
returns False, so the agent keeps running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: threads are still serialised by the lock below
    fcntl = None  # type: ignore[assignment]

__all__ = ["DEFAULT_MAX_BYTES", "FILE_NAME", "JsonLinesWriter"]

_logger = logging.getLogger(__name__)

FILE_NAME: Final = "traces.jsonl"
DEFAULT_MAX_BYTES: Final = 64 * 1024 * 1024
_LOCK_NAME: Final = ".lock"


class JsonLinesWriter:
    """Thread- and process-safe appender of complete lines with size-based rotation."""

    def __init__(self, directory: Path, max_bytes: int = DEFAULT_MAX_BYTES, fsync: bool = False) -> None:
        self.directory = directory
        self.path = directory / FILE_NAME
        self.max_bytes = max_bytes
        self.fsync = fsync
        self._lock = threading.Lock()
        self._fd = -1
        self._lock_fd = -1
        self._inode = -1
        self._warned: set[str] = set()
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        # The child must not share descriptors' locks or a held thread lock with the parent.
        self._lock = threading.Lock()
        self._fd = self._lock_fd = self._inode = -1

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._lock_fd < 0:
            self._lock_fd = os.open(self.directory / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        self._inode = os.fstat(self._fd).st_ino

    def write(self, data: bytes) -> bool:
        """Append `data` (one or more complete lines) atomically; False if it could not be written."""
        if not data:
            return True
        with self._lock:
            try:
                if self._fd < 0:
                    self._open()
                if fcntl is not None:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
                try:
                    self._reopen_if_rotated()
                    if self.max_bytes > 0:
                        self._rotate_if_full(len(data))
                    size = os.fstat(self._fd).st_size
                    if size and os.pread(self._fd, 1, size - 1) != b"\n":
                        # a torn line (a crashed writer, a full disk): never glue a run onto it
                        data = b"\n" + data
                    view = memoryview(data)
                    while view:
                        written = os.write(self._fd, view)
                        view = view[written:]
                    if self.fsync:
                        os.fsync(self._fd)
                finally:
                    if fcntl is not None:
                        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                return True
            except OSError as exc:
                self._warn_once(exc)
                self._close_quietly()
                return False

    def _reopen_if_rotated(self) -> None:
        try:
            current = os.stat(self.path).st_ino
        except FileNotFoundError:
            current = -1
        if current != self._inode:
            self._open()

    def _rotate_if_full(self, incoming: int) -> None:
        size = os.fstat(self._fd).st_size
        if size == 0 or size + incoming <= self.max_bytes:
            return
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%S.%f")[:-3]
        target = self.directory / f"traces-{stamp}-{os.getpid()}.jsonl"
        serial = 0
        while target.exists():  # two rotations within a millisecond: never replace a rotated file
            serial += 1
            target = self.directory / f"traces-{stamp}-{os.getpid()}-{serial}.jsonl"
        os.rename(self.path, target)  # safe: every writer rotates only while holding the lock
        self._open()

    def _warn_once(self, exc: OSError) -> None:
        kind = f"{type(exc).__name__}:{exc.errno}"
        if kind not in self._warned:
            self._warned.add(kind)
            _logger.warning("otel_decisions: cannot write spans to %s: %s", self.path, exc)

    def _close_quietly(self) -> None:
        for fd in (self._fd, self._lock_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = self._lock_fd = self._inode = -1

    def close(self) -> None:
        """Close the descriptors; a later `write` reopens them."""
        with self._lock:
            self._close_quietly()
