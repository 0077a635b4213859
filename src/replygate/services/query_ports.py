"""Read-side records and ports: what the API, CLI and console show of a request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from replygate.domain.model import ApprovalRequest
from replygate.services.ports import Scope
from replygate.services.webhook_ports import WebhookRepository


@dataclass(frozen=True, slots=True)
class ApproverDelivery:
    address: str
    delivery_state: str  # pending | failed (a bounce names the address) | ...
    delivery_error: str = ""


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    kind: str  # created | mail_sent | mail_failed | mail_pending | reply | decision | closed...
    summary: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """Stored beside a request but not part of the domain object."""

    instance: str
    created_by: str | None
    callback_url: str | None
    message_id: str | None


@dataclass(frozen=True, slots=True)
class RequestFilter:
    state: str | None = None
    requester: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


class RequestQueries(Protocol):
    def get(self, request_id: str) -> ApprovalRequest | None: ...

    def search(
        self, where: RequestFilter, *, limit: int, offset: int
    ) -> Sequence[ApprovalRequest]: ...

    def count(self, where: RequestFilter) -> int: ...

    def states(self, request_ids: Sequence[str]) -> dict[str, str]: ...

    def facts(self, request_id: str) -> RequestFacts | None: ...

    def approver_deliveries(self, request_id: str) -> Sequence[ApproverDelivery]: ...

    def timeline(self, request_id: str) -> Sequence[TimelineEntry]: ...


class QueryUnitOfWork(Scope, Protocol):
    @property
    def queries(self) -> RequestQueries: ...

    @property
    def webhooks(self) -> WebhookRepository: ...
