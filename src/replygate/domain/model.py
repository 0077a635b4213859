"""Approval requests, their policies and decisions, and the rules that change them.

An ``ApprovalRequest`` is the aggregate: every state change goes through its methods,
which either apply the change or raise ``DecisionRefused`` with a machine-readable
``reason``. A closed request never changes again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class RequestState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def is_closed(self) -> bool:
        return self is not RequestState.PENDING


class Verdict(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class Channel(StrEnum):
    EMAIL = "email"
    WEB = "web"
    API = "api"


class PolicyKind(StrEnum):
    ANY = "any"
    ALL = "all"
    QUORUM = "quorum"


class RefusalReason(StrEnum):
    """Why a decision was not counted."""

    REQUEST_CLOSED = "request_closed"
    NOT_AN_APPROVER = "not_an_approver"
    ALREADY_DECIDED = "already_decided"
    SELF_APPROVAL = "self_approval"


class DecisionRefused(Exception):
    """A decision that the rules do not allow; nothing was changed."""

    def __init__(self, reason: RefusalReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class InvalidRequest(ValueError):
    """A request that cannot exist as given (the message says which field and why)."""


_POLICY_TEXT = re.compile(r"^(any|all|quorum[:= ]?(\d+))$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Policy:
    """How decisions combine.

    ``reject_vetoes``: one reject closes the request as rejected (the default). When off,
    rejects only count against the threshold, and the request is rejected once the
    threshold can no longer be reached.
    """

    kind: PolicyKind = PolicyKind.ANY
    quorum: int | None = None
    reject_vetoes: bool = True
    allow_self_approval: bool = False
    allow_delegates: bool = False

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", PolicyKind(self.kind))  # accept "any", "all"...
        except ValueError:
            raise InvalidRequest(
                f"policy: expected any, all or quorum, not {self.kind!r}"
            ) from None
        if self.kind is PolicyKind.QUORUM:
            if self.quorum is None or self.quorum < 1:
                raise InvalidRequest("policy: quorum needs a number of approvals of at least 1")
        elif self.quorum is not None:
            raise InvalidRequest(f"policy: '{self.kind}' takes no quorum number")

    @classmethod
    def parse(cls, text: str, **options: bool) -> Policy:
        """``any``, ``all`` or ``quorum:N`` (also ``quorum N``, ``quorum=N``)."""
        match = _POLICY_TEXT.fullmatch(text.strip())
        if match is None:
            raise InvalidRequest(f"policy: expected 'any', 'all' or 'quorum:N', not {text!r}")
        word = match.group(1).lower()
        if word.startswith("quorum"):
            return cls(PolicyKind.QUORUM, int(match.group(2)), **options)
        return cls(PolicyKind(word), None, **options)

    def __str__(self) -> str:
        return f"quorum:{self.quorum}" if self.kind is PolicyKind.QUORUM else self.kind.value

    def approvals_needed(self, approver_count: int) -> int:
        if self.kind is PolicyKind.ANY:
            return 1
        if self.kind is PolicyKind.ALL:
            return approver_count
        assert self.quorum is not None  # checked in __post_init__
        return self.quorum


@dataclass(frozen=True, slots=True)
class Decision:
    approver: str
    verdict: Verdict
    comment: str
    channel: Channel
    decided_at: datetime
    evidence: Mapping[str, str] = field(default_factory=dict)


def normalise_address(address: str) -> str:
    """Addresses compare case-insensitively (RFC 5321 local parts aside, as Exchange does)."""
    return address.strip().lower()


@dataclass(slots=True)
class ApprovalRequest:
    id: str
    title: str
    requester: str
    approvers: tuple[str, ...]
    policy: Policy
    created_at: datetime
    expires_at: datetime
    details: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    state: RequestState = RequestState.PENDING
    decisions: list[Decision] = field(default_factory=list)
    closed_at: datetime | None = None
    closed_reason: str = ""

    def __post_init__(self) -> None:
        self.approvers = tuple(dict.fromkeys(normalise_address(a) for a in self.approvers))
        self.requester = normalise_address(self.requester)
        if not self.title.strip():
            raise InvalidRequest("title: must not be empty")
        if not self.approvers:
            raise InvalidRequest("approvers: at least one approver is needed")
        if self.expires_at <= self.created_at:
            raise InvalidRequest("expires_at: must be after the request is created")
        needed = self.policy.approvals_needed(len(self.approvers))
        if needed > len(self._eligible_to_approve()):
            raise InvalidRequest(
                f"policy: {self.policy} needs {needed} approvals but only "
                f"{len(self._eligible_to_approve())} approver(s) may approve"
                + (
                    " (the requester cannot approve their own request)"
                    if self._requester_is_approver_blocked()
                    else ""
                )
            )

    # -- queries -------------------------------------------------------------------

    def is_approver(self, address: str) -> bool:
        return normalise_address(address) in self.approvers

    def decision_of(self, address: str) -> Decision | None:
        wanted = normalise_address(address)
        return next((d for d in self.decisions if d.approver == wanted), None)

    def count(self, verdict: Verdict) -> int:
        return sum(1 for d in self.decisions if d.verdict is verdict)

    @property
    def approvals_needed(self) -> int:
        return self.policy.approvals_needed(len(self.approvers))

    def _requester_is_approver_blocked(self) -> bool:
        return self.requester in self.approvers and not self.policy.allow_self_approval

    def _eligible_to_approve(self) -> list[str]:
        return [a for a in self.approvers if self.policy.allow_self_approval or a != self.requester]

    def approvals_still_possible(self) -> int:
        """Approvals counted so far plus those that undecided, eligible approvers could give."""
        undecided = [a for a in self._eligible_to_approve() if self.decision_of(a) is None]
        return self.count(Verdict.APPROVE) + len(undecided)

    # -- commands ------------------------------------------------------------------

    def check_decision(self, approver: str, verdict: Verdict) -> None:
        """Raise ``DecisionRefused`` if ``approver`` may not give ``verdict`` now."""
        who = normalise_address(approver)
        if self.state.is_closed:
            raise DecisionRefused(
                RefusalReason.REQUEST_CLOSED, f"the request is already {self.state.value}"
            )
        if who not in self.approvers:
            raise DecisionRefused(
                RefusalReason.NOT_AN_APPROVER, f"{who} is not an approver of this request"
            )
        earlier = self.decision_of(who)
        if earlier is not None:
            raise DecisionRefused(
                RefusalReason.ALREADY_DECIDED,
                f"{who} already decided ({earlier.verdict.value}); only the first decision counts",
            )
        if (
            verdict is Verdict.APPROVE
            and who == self.requester
            and not self.policy.allow_self_approval
        ):
            raise DecisionRefused(
                RefusalReason.SELF_APPROVAL,
                "the requester cannot approve their own request under this policy",
            )

    def decide(self, decision: Decision) -> RequestState:
        """Record ``decision`` and close the request if the policy is settled."""
        self.check_decision(decision.approver, decision.verdict)
        normalised = Decision(
            approver=normalise_address(decision.approver),
            verdict=decision.verdict,
            comment=decision.comment,
            channel=decision.channel,
            decided_at=decision.decided_at,
            evidence=dict(decision.evidence),
        )
        self.decisions.append(normalised)
        self._settle(decision.decided_at)
        return self.state

    def _settle(self, now: datetime) -> None:
        if self.policy.reject_vetoes and self.count(Verdict.REJECT) > 0:
            self._close(RequestState.REJECTED, now, "rejected by an approver")
        elif self.count(Verdict.APPROVE) >= self.approvals_needed:
            self._close(RequestState.APPROVED, now, "enough approvals")
        elif self.approvals_still_possible() < self.approvals_needed:
            self._close(RequestState.REJECTED, now, "the policy can no longer be met")

    def expire(self, now: datetime) -> bool:
        """Close as expired if pending and past its expiry; return whether it changed."""
        if self.state.is_closed or now < self.expires_at:
            return False
        self._close(RequestState.EXPIRED, now, "expired without enough approvals")
        return True

    def cancel(self, now: datetime, reason: str = "cancelled by the requester") -> None:
        if self.state.is_closed:
            raise DecisionRefused(
                RefusalReason.REQUEST_CLOSED, f"the request is already {self.state.value}"
            )
        self._close(RequestState.CANCELLED, now, reason)

    def _close(self, state: RequestState, now: datetime, reason: str) -> None:
        self.state = state
        self.closed_at = now
        self.closed_reason = reason
