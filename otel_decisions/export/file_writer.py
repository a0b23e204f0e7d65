"""Appending whole lines to `traces.jsonl` in a directory shared by threads and processes.

Guarantees: a line is never interleaved with, or torn by, another writer. Each batch goes out as one
`os.write` on an `O_APPEND` descriptor while holding an exclusive `flock` on `<dir>/.lock`, and the
same lock serialises size-based rotation: when `traces.jsonl` would grow past `max_bytes`, it is renamed
to `traces-<UTC time>-<pid>[-<n>].jsonl` (the Collector's rotated-name shape, so both glob alike) and a new
file is started. A writer whose file was rotated, deleted or moved away notices (the path names another
inode, or none) and reopens. A crashed writer's torn last line is never glued to ours (we start on a new
line). The recorder writes each decision as it is made, so a write is kept to a few system calls.

`write` never raises: a full disk or an unwritable directory logs one warning per kind of error and
returns False, so the agent keeps running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import weakref
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
        self._path = str(self.path)
        self.max_bytes = max_bytes
        self.fsync = fsync
        self._lock = threading.RLock()  # re-entrant: a SIGTERM handler may write mid-write and exit
        self._fd = -1
        self._lock_fd = -1
        self._inode = -1
        self._end = -1  # the file's size after our last write: when it still is, no one else wrote
        self._lock_inode = -1
        self._warned: set[str] = set()
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        # The child must not share descriptors' locks or a held thread lock with the parent.
        self._lock = threading.RLock()
        self._fd = self._lock_fd = self._inode = self._end = self._lock_inode = -1

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._lock_fd < 0:
            self._lock_fd = os.open(self.directory / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
            self._lock_inode = os.fstat(self._lock_fd).st_ino
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        self._inode = os.fstat(self._fd).st_ino
        _OPEN.track(self)

    def write(self, data: bytes) -> bool:
        """Append `data` (one or more complete lines) atomically; False if it could not be written."""
        if not data:
            return True
        with self._lock:
            try:
                for _ in range(2):
                    if self._fd < 0:
                        self._open()
                    if fcntl is not None:
                        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
                    try:
                        if self._append(data):
                            return True
                    finally:
                        if fcntl is not None:
                            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                    self._close_quietly()  # the directory was moved or recreated: start over in it
                return False  # moved again while we reopened: kept for the next write
            except OSError as exc:
                self._warn_once(exc)
                self._close_quietly()
                return False

    def _append(self, data: bytes) -> bool:
        """Under the lock: reopen or rotate if needed, then append `data` on a line of its own.
        False (nothing written) when the lock we hold is no longer the directory's."""
        try:
            st = os.stat(self._path)  # one system call for both: they are slow in some sandboxes
            inode, size = st.st_ino, st.st_size
        except OSError:  # gone, or its directory is no longer one: reopening says why
            inode = -1
        if inode != self._inode:  # rotated by another process, deleted, or moved away
            if self._lock_moved():
                return False
            self._open()
            size = os.fstat(self._fd).st_size
        if self.max_bytes > 0 and size and size + len(data) > self.max_bytes:
            self._rotate()
            size = 0
        if size and size != self._end and os.pread(self._fd, 1, size - 1) != b"\n":
            # a torn line (a crashed writer, a full disk): never glue a run onto it
            data = b"\n" + data
        written = os.write(self._fd, data)
        if written < len(data):  # a short write (a full disk, a signal): finish the line
            view = memoryview(data)[written:]
            while view:
                view = view[os.write(self._fd, view) :]
        self._end = size + len(data)  # while it still is the size, no one else wrote since
        if self.fsync:
            os.fsync(self._fd)
        return True

    def _lock_moved(self) -> bool:
        """Whether `<dir>/.lock` is no longer the file we lock (the directory was moved or recreated):
        other writers would no longer exclude us."""
        try:
            return os.stat(self.directory / _LOCK_NAME).st_ino != self._lock_inode
        except OSError:
            return True

    def _rotate(self) -> None:
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
        self._fd = self._lock_fd = self._inode = self._end = self._lock_inode = -1
        _OPEN.forget(self)

    def close(self) -> None:
        """Close the descriptors; a later `write` reopens them."""
        with self._lock:
            self._close_quietly()

    def close_if_idle(self) -> bool:
        """Close the descriptors unless a write is in progress (then False)."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            self._close_quietly()
            return True
        finally:
            self._lock.release()


class _OpenWriters:
    """Bounds the descriptors writers hold open: past `limit` writers (each holds two), the least
    recently opened are closed, to be reopened by their next write. A process that records into
    thousands of directories (a test suite with a directory per test) never runs out of descriptors."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._writers: dict[int, weakref.ref[JsonLinesWriter]] = {}
        self._lock = threading.RLock()  # re-entrant: reached from a SIGTERM handler (see pipeline)
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.RLock()

    def track(self, writer: JsonLinesWriter) -> None:
        with self._lock:
            self._writers.pop(id(writer), None)
            self._writers[id(writer)] = weakref.ref(writer)
            excess = [k for k in list(self._writers)[: max(0, len(self._writers) - self.limit)]]
            victims = [self._writers.pop(k)() for k in excess]
        for victim in victims:
            if victim is not None and victim is not writer:
                victim.close_if_idle()

    def forget(self, writer: JsonLinesWriter) -> None:
        with self._lock:
            self._writers.pop(id(writer), None)


_OPEN = _OpenWriters(limit=64)
