"""The Graph HTTP client: immutable ids, a per-mailbox budget, Retry-After and backoff.

Microsoft's Outlook limits are per app and mailbox: 4 requests in flight and 10,000 requests
per 10 minutes. Each mailbox gets a semaphore and a sliding request window here, so replygate waits
on its own side instead of collecting 429s. Retry-After is always obeyed; a wait longer than
`max_inline_wait` is not slept here but raised (GraphTransient.retry_after) so that a loop
can re-queue the work.
"""

from __future__ import annotations

import bisect
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from replygate.graph.errors import GraphFailure, GraphTransient
from replygate.graph.responses import Who, error_for

IMMUTABLE_IDS = 'IdType="ImmutableId"'
log = logging.getLogger(__name__)  # never logs URLs' queries, bodies or tokens


def segment(value: str) -> str:
    """A path segment. Immutable ids are URL-safe base64 and addresses keep their `@`, so
    those stay verbatim (a `$batch` step's URL is not always percent-decoded)."""
    return quote(value, safe="@=")


@dataclass(frozen=True)
class Budget:
    concurrency: int = 4  # requests in flight per mailbox
    requests: int = 10_000  # per `window` seconds per mailbox
    window: float = 600.0
    max_attempts: int = 5
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    max_inline_wait: float = 60.0


@dataclass
class MailboxCounters:
    requests: int = 0
    throttled: int = 0  # 429 answers
    retries: int = 0
    failures: int = 0


@dataclass
class Counters:
    """Requests and 429s per mailbox, for health and benchmarks."""

    by_mailbox: dict[str, MailboxCounters] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def bump(self, mailbox: str, name: str, amount: int = 1) -> None:
        with self._lock:
            counters = self.by_mailbox.setdefault(mailbox, MailboxCounters())
            setattr(counters, name, getattr(counters, name) + amount)

    def snapshot(self) -> dict[str, MailboxCounters]:
        with self._lock:
            return {k: MailboxCounters(**vars(v)) for k, v in self.by_mailbox.items()}


class SlidingWindow:
    """At most `limit` events in any `window` seconds; `take` waits until that holds.

    A token bucket would allow twice the limit across a window boundary, which a fixed or
    sliding window on Microsoft's side would answer with 429s; remembering the times of
    the last `limit` events cannot. An event is re-stamped when its request completes
    (`settle`): the server saw it no later than that, so our window never starts later
    than the server's. `margin` (a share of the window) absorbs clock differences."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleeper: Callable[[float], None] = time.sleep,
        margin: float = 0.02,
    ) -> None:
        self.limit = limit
        self.window = window * (1 + margin)
        self.clock, self.sleeper = clock, sleeper
        self._times: list[float] = []  # sorted
        self._lock = threading.Lock()

    def take(self, count: int = 1) -> float:
        """Record `count` events, sleeping first if needed; returns their time stamp."""
        count = min(count, self.limit)
        while True:
            with self._lock:
                now = self.clock()
                del self._times[: bisect.bisect_right(self._times, now - self.window)]
                if len(self._times) + count <= self.limit:
                    self._times.extend([now] * count)  # now >= every stamp: still sorted
                    return now
                # wait until enough of the oldest events leave the window
                oldest_needed = self._times[len(self._times) + count - self.limit - 1]
                wait = oldest_needed + self.window - now
            self.sleeper(max(wait, 0.001))

    def settle(self, stamp: float, count: int = 1) -> None:
        """Move `count` events taken at `stamp` to now (their request has completed)."""
        with self._lock:
            now = self.clock()
            for _ in range(min(count, self.limit)):
                at = bisect.bisect_left(self._times, stamp)
                if at < len(self._times) and self._times[at] == stamp:
                    del self._times[at]
                    bisect.insort(self._times, now)


class GraphClient:
    """Calls Graph v1.0 for any number of mailboxes, within each mailbox's budget."""

    def __init__(
        self,
        graph_url: str,
        auth: httpx.Auth | None = None,
        *,
        acting_user: str | None = None,
        transport: httpx.BaseTransport | None = None,
        verify: Any = True,
        budget: Budget | None = None,
        sleeper: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        timeout: httpx.Timeout | None = None,
    ) -> None:
        self.budget = budget or Budget()
        self.acting_user = acting_user  # named in fixes ("grant Send As ... to <user>")
        self.counters = Counters()
        self.sleeper, self.clock, self._jitter = sleeper, clock, jitter
        self._http = httpx.Client(
            base_url=graph_url.rstrip("/") + "/v1.0/",
            auth=auth,
            transport=transport,
            verify=verify,
            timeout=timeout or httpx.Timeout(30.0, connect=10.0),
            headers={"Accept": "application/json"},
        )
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._buckets: dict[str, SlidingWindow] = {}

    def close(self) -> None:
        self._http.close()

    def _mailbox_budget(self, mailbox: str) -> tuple[threading.BoundedSemaphore, SlidingWindow]:
        with self._lock:
            if mailbox not in self._slots:
                self._slots[mailbox] = threading.BoundedSemaphore(self.budget.concurrency)
                self._buckets[mailbox] = SlidingWindow(
                    self.budget.requests, self.budget.window, clock=self.clock, sleeper=self.sleeper
                )
            return self._slots[mailbox], self._buckets[mailbox]

    @contextmanager
    def _slot(self, mailbox: str, cost: int) -> Iterator[None]:
        slots, window = self._mailbox_budget(mailbox)
        stamp = window.take(cost)  # before the slot: a waiting request must not hold one
        try:
            with slots:
                yield
        finally:
            window.settle(stamp, cost)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter, in [ceiling/2, ceiling] where ceiling is
        min(cap, base * 2**(attempt-1)): never an immediate retry, which Graph also counts."""
        ceiling = min(self.budget.backoff_cap, self.budget.backoff_base * 2.0 ** (attempt - 1))
        return ceiling / 2 + ceiling / 2 * self._jitter()

    def request(
        self,
        method: str,
        url: str,
        *,
        mailbox: str,
        json: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        prefer: tuple[str, ...] = (),
        headers: Mapping[str, str] | None = None,
        idempotent: bool = True,
        cost: int = 1,
    ) -> httpx.Response:
        """One Graph call with retries. `url` is relative to /v1.0 or an absolute next link.

        Non-idempotent calls are repeated here only when Graph refused them before doing
        anything (429, 503, no connection); other failures are raised, still classified
        transient or permanent, for the caller to decide."""
        box = mailbox.casefold()
        sent_headers = {
            "Prefer": ", ".join((IMMUTABLE_IDS, *prefer)),
            "client-request-id": str(uuid.uuid4()),
            **(headers or {}),
        }
        attempt = 0
        while True:
            attempt += 1
            error: GraphFailure
            refused_before_work = False  # Graph did nothing: safe to repeat any request
            with self._slot(box, cost):
                self.counters.bump(box, "requests", cost)
                try:
                    response = self._http.request(
                        method,
                        url,
                        json=json,
                        content=content,
                        params=params,
                        headers=sent_headers,
                    )
                except httpx.TransportError as failure:
                    error = self._network_error(failure, box)
                    refused_before_work = isinstance(failure, httpx.ConnectError)
                else:
                    if response.status_code < 400:
                        return response
                    error = error_for(response, Who(mailbox, self.acting_user))
                    if response.status_code == 429:
                        self.counters.bump(box, "throttled")
                    refused_before_work = response.status_code in (429, 503)
            wait = self._wait(error, attempt) if idempotent or refused_before_work else None
            if wait is None:
                self.counters.bump(box, "failures")
                raise error
            self.counters.bump(box, "retries")
            log.info(
                "Graph %s for %s: HTTP %s %s (request-id %s); retry %d in %.1f s",
                method,
                box,
                error.status,
                error.code,
                error.request_id,
                attempt,
                wait,
            )
            self.sleeper(wait)

    def _wait(self, error: GraphFailure, attempt: int) -> float | None:
        if error.permanent or attempt >= self.budget.max_attempts:
            return None
        wait = error.retry_after if error.retry_after is not None else self.backoff(attempt)
        return None if wait > self.budget.max_inline_wait else wait

    def _network_error(self, failure: httpx.TransportError, box: str) -> GraphFailure:
        return GraphTransient(
            f"Microsoft Graph could not be reached for {box}.",
            fix="Check the network; replygate will retry.",
            description=type(failure).__name__,
        )

    def get_json(self, url: str, *, mailbox: str, **kwargs: Any) -> dict[str, Any]:
        body: dict[str, Any] = self.request("GET", url, mailbox=mailbox, **kwargs).json()
        return body

    def post_json(self, url: str, *, mailbox: str, json: Any, **kwargs: Any) -> dict[str, Any]:
        response = self.request("POST", url, mailbox=mailbox, json=json, **kwargs)
        body: dict[str, Any] = response.json() if response.content else {}
        return body

    def batch(self, mailbox: str, steps: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """One `$batch` (at most 20 steps); the answers by step id. Each inner request counts
        against the mailbox's quota, so the bucket is charged for all of them."""
        if len(steps) > 20:
            raise ValueError("a Graph $batch takes at most 20 requests")
        body = self.post_json("$batch", mailbox=mailbox, json={"requests": steps}, cost=len(steps))
        return {str(r.get("id")): r for r in body.get("responses", [])}
