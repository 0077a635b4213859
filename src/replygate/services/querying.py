"""Read-side use cases for the API, CLI and console: lists, a request's full story, states."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from replygate.domain.model import ApprovalRequest, Decision
from replygate.errors import InvalidInput, NotFound
from replygate.services.query_ports import (
    QueryUnitOfWork,
    RequestFacts,
    RequestFilter,
    TimelineEntry,
)
from replygate.services.webhook_ports import DeliveryLog

MAX_PAGE = 200


@dataclass(frozen=True, slots=True)
class ApproverView:
    address: str
    delivery_state: str
    delivery_error: str
    decision: Decision | None


@dataclass(frozen=True, slots=True)
class RequestView:
    request: ApprovalRequest
    facts: RequestFacts
    approvers: Sequence[ApproverView]


@dataclass(frozen=True, slots=True)
class RequestDetail(RequestView):
    timeline: Sequence[TimelineEntry]
    webhooks: Sequence[DeliveryLog]


@dataclass(frozen=True, slots=True)
class RequestPage:
    items: Sequence[RequestView]
    total: int
    limit: int
    offset: int

    @property
    def next_offset(self) -> int | None:
        following = self.offset + len(self.items)
        return following if following < self.total else None


def parse_metadata_filters(pairs: Sequence[str]) -> dict[str, str]:
    """``key=value`` pairs (a value may itself contain ``=``)."""
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"metadata filter {pair[:60]!r}: expected key=value")
        found[key.strip()] = value
    return found


def _view(uow: QueryUnitOfWork, request: ApprovalRequest) -> RequestView:
    facts = uow.queries.facts(request.id)
    if facts is None:  # deleted between the two reads
        raise NotFound(f"no approval request {request.id}")
    approvers = [
        ApproverView(a.address, a.delivery_state, a.delivery_error, request.decision_of(a.address))
        for a in uow.queries.approver_deliveries(request.id)
    ]
    return RequestView(request, facts, approvers)


def list_requests(
    uow: QueryUnitOfWork, where: RequestFilter, *, limit: int = 50, offset: int = 0
) -> RequestPage:
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise InvalidInput(f"limit: 1 to {MAX_PAGE}; offset: 0 or more")
    with uow:
        found = uow.queries.search(where, limit=limit, offset=offset)
        total = uow.queries.count(where)
        return RequestPage([_view(uow, r) for r in found], total, limit, offset)


def request_view(uow: QueryUnitOfWork, request_id: str) -> RequestView:
    with uow:
        return _view(uow, _one(uow, request_id))


def request_detail(uow: QueryUnitOfWork, request_id: str) -> RequestDetail:
    """The request, each approver's mail delivery and decision, and its timeline."""
    with uow:
        request = _one(uow, request_id)
        view = _view(uow, request)
        timeline = list(uow.queries.timeline(request.id))
        for d in request.decisions:
            evidence = {"channel": d.channel.value, **dict(d.evidence)}
            summary = f"{d.approver}: {d.verdict.value}"
            timeline.append(TimelineEntry(d.decided_at, "decision", summary, evidence))
        if request.closed_at is not None:
            timeline.append(
                TimelineEntry(request.closed_at, request.state.value, request.closed_reason)
            )
        timeline.sort(key=lambda e: e.at)
        deliveries = uow.webhooks.deliveries(request_id=request.id)
        return RequestDetail(view.request, view.facts, view.approvers, timeline, deliveries)


def states(uow: QueryUnitOfWork, request_ids: Sequence[str]) -> dict[str, str]:
    """Current state of each id that exists (one query, for many long-polls at once)."""
    if not request_ids:
        return {}
    with uow:
        return uow.queries.states(request_ids)


def _one(uow: QueryUnitOfWork, request_id: str) -> ApprovalRequest:
    request = uow.queries.get(normalise_id(request_id))
    if request is None:
        raise NotFound(f"no approval request {request_id}", fix="check the id (RG-... token ok)")
    return request


def normalise_id(text: str) -> str:
    """Accept the bare id or the whole reply token ``RG-<instance>-<id>``."""
    value = text.strip().upper()
    if value.startswith("RG-") and value.count("-") >= 2:
        value = value.rsplit("-", 1)[1]
    return value
