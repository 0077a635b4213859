"""Outlook service limits per app per mailbox, answered like Graph with 429 + Retry-After.

Limits (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits):
10,000 requests per 10 minutes and 4 concurrent requests per app ID per mailbox. The
window is a fixed window starting at the first request of the pair, which is the simplest
model that keeps Retry-After honest (it names the moment the window reopens).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

CONCURRENCY_MESSAGE = "Application is over its MailboxConcurrency limit."
QUOTA_MESSAGE = "Application is over its incoming request limit for this mailbox."


@dataclass
class _Window:
    started: float
    count: int = 0


@dataclass
class Rejection:
    code: str
    message: str
    retry_after: int


@dataclass
class Throttle:
    windows: dict[tuple[str, str], _Window] = field(default_factory=dict)
    in_flight: dict[tuple[str, str], int] = field(default_factory=dict)

    def acquire(
        self,
        key: tuple[str, str],
        now: float,
        requests_per_window: int,
        window_seconds: float,
        max_concurrent: int,
    ) -> Rejection | None:
        """Take a slot for `key` (app, mailbox) or say why not; call `release` after."""
        if self.in_flight.get(key, 0) >= max_concurrent:
            return Rejection("ApplicationThrottled", CONCURRENCY_MESSAGE, 1)
        win = self.windows.get(key)
        if win is None or now - win.started >= window_seconds:
            win = self.windows[key] = _Window(started=now)
        if win.count >= requests_per_window:
            wait = max(1, math.ceil(win.started + window_seconds - now))
            return Rejection("ApplicationThrottled", QUOTA_MESSAGE, wait)
        win.count += 1
        self.in_flight[key] = self.in_flight.get(key, 0) + 1
        return None

    def release(self, key: tuple[str, str]) -> None:
        left = self.in_flight.get(key, 1) - 1
        if left <= 0:
            self.in_flight.pop(key, None)
        else:
            self.in_flight[key] = left

    def reset(self) -> None:
        self.windows.clear()
        self.in_flight.clear()
