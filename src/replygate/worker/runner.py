"""The worker's loops on a background thread, for processes that also serve the web app."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from replygate.bootstrap import Container
from replygate.worker.guard import WorkerLock, hold_worker_lock
from replygate.worker.loops import Worker

log = logging.getLogger(__name__)


@dataclass
class BackgroundWorker:
    worker: Worker
    interval: float = 2.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: WorkerLock | None = None

    def start(self) -> BackgroundWorker:
        # On SQLite one process runs the loops: refuse (ConfigurationError) before starting.
        self._lock = hold_worker_lock(self.worker.container.settings)
        self._thread = threading.Thread(
            target=self.worker.run_forever,
            args=(self._stop, self.interval),
            name="replygate-worker",
            daemon=True,
        )
        self._thread.start()
        log.info("background loops started (%s)", self.worker.worker_id)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.worker.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def start_in_background(container: Container, interval: float = 2.0) -> BackgroundWorker:
    return BackgroundWorker(Worker(container), interval).start()
