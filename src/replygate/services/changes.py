"""In-process news of changed requests, so that long-polls in this process wake at once.

Listeners (the API's wait hub) register weakly; ``publish`` may be called from any thread
(the worker's, a request handler's). It is a hint only: a listener must re-read the
database, because the change may not be committed yet or may come from another process.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Protocol

log = logging.getLogger(__name__)


class Listener(Protocol):
    def notify(self, request_id: str) -> None: ...


_listeners: weakref.WeakSet[Listener] = weakref.WeakSet()
_lock = threading.Lock()


def subscribe(listener: Listener) -> None:
    with _lock:
        _listeners.add(listener)


def publish(request_id: str) -> None:
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener.notify(request_id)
        except Exception:  # a hint must never break the change that caused it
            log.debug("listener %r failed", listener, exc_info=True)
