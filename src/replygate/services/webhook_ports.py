"""Webhooks: the events, the values use cases see, and the ports they go through."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class Event(StrEnum):
    CREATED = "request.created"
    SENT = "request.sent"
    DELIVERY_FAILED = "request.delivery_failed"
    DECISION = "request.decision"
    CLOSED = "request.closed"


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    name: str
    url: str
    events: frozenset[str]
    active: bool
    created_at: datetime
    created_by: str
    secret_encrypted: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class Target:
    """Where one event goes: a global subscription (with its secret) or a request's callback."""

    url: str
    subscription_id: int | None = None


@dataclass(frozen=True, slots=True)
class DeliveryItem:
    """A claimed delivery: what to POST where, and how many times it was tried."""

    id: int
    url: str
    event: str
    event_id: str
    payload: dict[str, Any]
    attempts: int
    request_id: str | None
    subscription_id: int | None
    created_at: datetime
    secret_encrypted: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Attempt:
    at: datetime
    status_code: int | None
    duration_ms: int
    error: str = ""


@dataclass(frozen=True, slots=True)
class DeliveryLog:
    """A delivery as the API and console show it, with every attempt."""

    id: int
    url: str
    event: str
    event_id: str
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_status: int | None
    last_error: str
    request_id: str | None
    subscription_id: int | None
    log: Sequence[Attempt] = ()


class WebhookRepository(Protocol):
    def targets(self, event: str, request_id: str) -> list[Target]: ...

    def enqueue(
        self,
        target: Target,
        *,
        event: str,
        event_id: str,
        payload: dict[str, Any],
        request_id: str | None,
    ) -> int: ...

    def claim_due(
        self, worker: str, lease_until: datetime, limit: int = 10
    ) -> list[DeliveryItem]: ...

    def record_attempt(self, delivery_id: int, attempt: Attempt) -> None: ...

    def mark_delivered(self, delivery_id: int, at: datetime, status: int) -> None: ...

    def reschedule(
        self, delivery_id: int, at: datetime, status: int | None, error: str
    ) -> None: ...

    def mark_failed(self, delivery_id: int, status: int | None, error: str) -> None: ...

    def add_subscription(
        self, *, name: str, url: str, events: frozenset[str], secret_encrypted: str, by: str
    ) -> Subscription: ...

    def subscriptions(self) -> Sequence[Subscription]: ...

    def get_subscription(self, subscription_id: int) -> Subscription | None: ...

    def remove_subscription(self, subscription_id: int) -> bool: ...

    def deliveries(
        self,
        *,
        request_id: str | None = None,
        subscription_id: int | None = None,
        limit: int = 50,
    ) -> Sequence[DeliveryLog]: ...


class Sealer(Protocol):
    def encrypt(self, plaintext: str, purpose: str) -> str: ...

    def decrypt(self, stored: str, purpose: str) -> str: ...


@dataclass(frozen=True, slots=True)
class PostResult:
    status_code: int
    duration_ms: int


class WebhookPoster(Protocol):
    """POSTs a body to ``url``, connecting to the address ``connect_to`` (TLS and ``Host``
    still name the URL's host); raises ``OSError`` (or a subclass) when no answer came."""

    def post(
        self, url: str, body: bytes, headers: dict[str, str], *, connect_to: str
    ) -> PostResult: ...


class Resolver(Protocol):
    """The IP addresses a host name resolves to (raises ``OSError`` when it does not)."""

    def __call__(self, host: str, port: int) -> list[str]: ...
