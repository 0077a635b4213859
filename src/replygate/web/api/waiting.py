"""Long-polls that cost no thread: one asyncio.Event per waiter, one poller per process.

The poller re-reads the states of every awaited request in one query every
``interval`` seconds (changes made by other processes: another replica, the worker, the
CLI), and at once when ``notify`` says a request changed in this process (the API, the
worker thread: through ``services.changes``). A notification may arrive before its
transaction commits, so a notified check is repeated shortly after.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

StateReader = Callable[[Sequence[str]], dict[str, str]]
CLOSED = frozenset({"approved", "rejected", "expired", "cancelled"})
RECHECK_AFTER_NOTIFY = 0.3


class WaitHub:
    def __init__(self, read_states: StateReader, interval: float = 2.0) -> None:
        self._read_states = read_states
        self._interval = interval
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._kick = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def serves(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether this hub belongs to ``loop`` (its events cannot be awaited in another)."""
        return self._loop is None or self._loop is loop

    @property
    def waiting(self) -> int:
        return sum(len(events) for events in self._waiters.values())

    async def wait_closed(self, request_id: str, timeout: float) -> bool:
        """True once the request is closed, False when ``timeout`` passes first."""
        self._loop = asyncio.get_running_loop()
        event = asyncio.Event()
        self._waiters.setdefault(request_id, set()).add(event)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="replygate-wait-poller")
        try:
            await asyncio.wait_for(event.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            events = self._waiters.get(request_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._waiters[request_id]

    def notify(self, request_id: str) -> None:
        """A hint from any thread that ``request_id`` changed."""
        loop = self._loop
        if loop is None or loop.is_closed() or request_id not in self._waiters:
            return
        loop.call_soon_threadsafe(self._kick.set)

    async def _run(self) -> None:
        pause = self._interval
        while self._waiters:
            try:
                await asyncio.wait_for(self._kick.wait(), pause)
                pause = RECHECK_AFTER_NOTIFY  # the change may commit a moment later
            except TimeoutError:
                pause = self._interval
            self._kick.clear()
            ids = list(self._waiters)
            if not ids:
                break
            try:
                found = await asyncio.to_thread(self._read_states, ids)
            except Exception:  # the database may be briefly away: keep waiting, try again
                log.warning("wait poller could not read request states", exc_info=True)
                continue
            for request_id, state in found.items():
                if state in CLOSED:
                    for event in self._waiters.get(request_id, ()):
                        event.set()
