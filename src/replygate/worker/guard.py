"""One process runs the loops on a SQLite database: ``DATA_DIR/worker.lock``.

SQLite has no ``SKIP LOCKED`` and one writer at a time, so several workers on one file
would only queue behind each other (and two readers of one folder must never overlap).
A process that runs the loops takes an exclusive ``flock`` on the lock file; the kernel
drops it when the process ends, however it ends, so a crash never leaves a stale lock.
The holder writes its pid into the file so the refusal can name it.

The lock is counted per process: ``serve`` takes it at start (to refuse with a clear
message before anything listens) and its background loops take it again.
"""

from __future__ import annotations

import fcntl
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from replygate.config import Settings
from replygate.errors import ConfigurationError

LOCK_NAME = "worker.lock"

_mutex = threading.Lock()
_held: dict[Path, WorkerLock] = {}


@dataclass
class WorkerLock:
    path: Path
    fd: int
    count: int = 1

    def release(self) -> None:
        with _mutex:
            self.count -= 1
            if self.count > 0:
                return
            _held.pop(self.path, None)
            try:
                os.ftruncate(self.fd, 0)  # no pid of a process that is gone
            finally:
                os.close(self.fd)  # closing drops the flock

    def __enter__(self) -> WorkerLock:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


def uses_sqlite(settings: Settings) -> bool:
    return settings.effective_database_url.startswith("sqlite")


def hold_worker_lock(settings: Settings) -> WorkerLock | None:
    """Take the lock when the database is SQLite (None on PostgreSQL: any number may run).

    Raises ``ConfigurationError`` naming the process that holds it.
    """
    if not uses_sqlite(settings):
        return None
    path = (settings.data_dir / LOCK_NAME).resolve()
    with _mutex:
        mine = _held.get(path)
        if mine is not None:
            mine.count += 1
            return mine
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = _pid_in(fd)
            os.close(fd)
            raise ConfigurationError(
                f"another replygate process{f' (pid {other})' if other else ''} already runs "
                f"the background loops on this SQLite database ({path} is locked); "
                "a SQLite database takes one worker process",
                fix="use PostgreSQL for several workers, or start this one with "
                "`replygate serve --no-workers`",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        lock = _held[path] = WorkerLock(path, fd)
        return lock


def _pid_in(fd: int) -> str:
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return text if text.isdigit() else ""
