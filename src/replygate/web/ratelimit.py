"""Sign-in rate limiting, in memory: failures per username and per client address.

Only failures count, inside a sliding window; a success clears the username's count. Each
replica counts on its own, which is enough to make guessing slow. Checking happens before
the password is verified, so a locked-out attempt costs no argon2 run.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from datetime import datetime, timedelta

from replygate.errors import UserError
from replygate.services.ports import Clock

MAX_KEYS = 10_000  # bounds memory under a spray of usernames or addresses


class TooManyAttempts(UserError):
    """Too many failed sign-ins recently; ``retry_after`` is in whole seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, fix=f"wait {_minutes(retry_after)} and try again")
        self.retry_after = retry_after


def _minutes(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


class _Window:
    """Failure times per key, oldest first, forgetting those older than the window."""

    def __init__(self, limit: int, window: timedelta) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[datetime]] = {}

    def retry_after(self, key: str, now: datetime) -> int:
        times = self._prune(key, now)
        if times is None or len(times) < self.limit:
            return 0
        return max(1, math.ceil((times[0] + self.window - now).total_seconds()))

    def add(self, key: str, now: datetime) -> None:
        if key not in self._failures and len(self._failures) >= MAX_KEYS:
            oldest = min(self._failures, key=lambda k: self._failures[k][-1])
            del self._failures[oldest]
        times = self._failures.setdefault(key, deque())
        times.append(now)
        while len(times) > self.limit:
            times.popleft()

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)

    def _prune(self, key: str, now: datetime) -> deque[datetime] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times


class LoginThrottle:
    def __init__(
        self,
        clock: Clock,
        *,
        per_username: int = 5,
        per_address: int = 20,
        starts_per_address: int = 30,
        window: timedelta = timedelta(minutes=15),
    ) -> None:
        self._clock = clock
        self._users = _Window(per_username, window)
        self._addresses = _Window(per_address, window)
        # Each started Microsoft sign-in stores a flow and asks Microsoft's discovery: an
        # anonymous loop of starts is capped per address, successful or not.
        self._starts = _Window(starts_per_address, window)
        self._lock = threading.Lock()  # sign-in runs in the thread pool

    def check(self, username: str, address: str) -> None:
        """Raise ``TooManyAttempts`` when this username or address must wait."""
        now = self._clock.now()
        with self._lock:
            user_wait = self._users.retry_after(username.strip().lower(), now)
            address_wait = self._addresses.retry_after(address, now)
        if user_wait:
            raise TooManyAttempts(
                "too many failed sign-ins for this username", retry_after=user_wait
            )
        if address_wait:
            raise TooManyAttempts(
                "too many failed sign-ins from your network address", retry_after=address_wait
            )

    def check_address(self, address: str) -> None:
        """Like ``check`` for a sign-in without a password (Microsoft's): the address only.

        The username's count is about guessing its password; it must not also let whoever
        guesses lock its owner out of signing in through Microsoft."""
        with self._lock:
            wait = self._addresses.retry_after(address, self._clock.now())
        if wait:
            raise TooManyAttempts(
                "too many failed sign-ins from your network address", retry_after=wait
            )

    def start_without_password(self, address: str) -> None:
        """``check_address``, then count one started sign-in; raise past the cap."""
        self.check_address(address)
        now = self._clock.now()
        with self._lock:
            wait = self._starts.retry_after(address, now)
            if not wait:
                self._starts.add(address, now)
        if wait:
            raise TooManyAttempts(
                "too many sign-ins started from your network address", retry_after=wait
            )

    def failed_address(self, address: str) -> None:
        with self._lock:
            self._addresses.add(address, self._clock.now())

    def failed(self, username: str, address: str) -> None:
        now = self._clock.now()
        with self._lock:
            self._users.add(username.strip().lower(), now)
            self._addresses.add(address, now)

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._users.clear(username.strip().lower())
