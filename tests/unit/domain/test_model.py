from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replygate.domain.model import (
    ApprovalRequest,
    Channel,
    Decision,
    DecisionRefused,
    InvalidRequest,
    Policy,
    PolicyKind,
    RefusalReason,
    RequestState,
    Verdict,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
APPROVERS = ("alice@contoso.test", "bob@contoso.test", "carol@contoso.test", "dave@contoso.test")


def make(
    policy: Policy, approvers: tuple[str, ...] = APPROVERS, requester: str = "ci@contoso.test"
) -> ApprovalRequest:
    return ApprovalRequest(
        id="7KQ2M9XW4D",
        title="Deploy payments-api 2.3.1",
        requester=requester,
        approvers=approvers,
        policy=policy,
        created_at=T0,
        expires_at=T0 + timedelta(hours=4),
    )


def vote(who: str, verdict: Verdict, minutes: int = 1) -> Decision:
    return Decision(who, verdict, "", Channel.EMAIL, T0 + timedelta(minutes=minutes))


def test_any_policy_approves_on_first_approval() -> None:
    request = make(Policy())
    assert request.decide(vote("Alice@Contoso.test", Verdict.APPROVE)) is RequestState.APPROVED
    assert request.decisions[0].approver == "alice@contoso.test"


def test_reject_vetoes_by_default() -> None:
    request = make(Policy(PolicyKind.ALL))
    request.decide(vote("alice@contoso.test", Verdict.APPROVE))
    assert request.decide(vote("bob@contoso.test", Verdict.REJECT)) is RequestState.REJECTED


def test_without_veto_reject_counts_against_and_closes_when_quorum_unreachable() -> None:
    request = make(Policy(PolicyKind.QUORUM, 3, reject_vetoes=False))
    request.decide(vote("alice@contoso.test", Verdict.REJECT))
    assert request.state is RequestState.PENDING
    assert request.decide(vote("bob@contoso.test", Verdict.REJECT)) is RequestState.REJECTED
    assert request.closed_reason == "the policy can no longer be met"


def test_quorum_approves_when_reached() -> None:
    request = make(Policy(PolicyKind.QUORUM, 2, reject_vetoes=False))
    request.decide(vote("alice@contoso.test", Verdict.APPROVE))
    request.decide(vote("bob@contoso.test", Verdict.REJECT))
    assert request.decide(vote("carol@contoso.test", Verdict.APPROVE)) is RequestState.APPROVED


def test_second_decision_of_an_approver_is_refused() -> None:
    request = make(Policy(PolicyKind.ALL))
    request.decide(vote("alice@contoso.test", Verdict.APPROVE))
    with pytest.raises(DecisionRefused) as refused:
        request.decide(vote("ALICE@contoso.test", Verdict.REJECT))
    assert refused.value.reason is RefusalReason.ALREADY_DECIDED
    assert len(request.decisions) == 1


def test_only_approvers_decide() -> None:
    request = make(Policy())
    with pytest.raises(DecisionRefused) as refused:
        request.decide(vote("mallory@contoso.test", Verdict.APPROVE))
    assert refused.value.reason is RefusalReason.NOT_AN_APPROVER


def test_requester_cannot_approve_own_request_unless_allowed() -> None:
    request = make(Policy(), requester="alice@contoso.test")
    with pytest.raises(DecisionRefused) as refused:
        request.decide(vote("alice@contoso.test", Verdict.APPROVE))
    assert refused.value.reason is RefusalReason.SELF_APPROVAL
    # Rejecting one's own request is allowed: it only stops it.
    assert request.decide(vote("alice@contoso.test", Verdict.REJECT)) is RequestState.REJECTED
    allowed = make(Policy(allow_self_approval=True), requester="alice@contoso.test")
    assert allowed.decide(vote("alice@contoso.test", Verdict.APPROVE)) is RequestState.APPROVED


def test_policy_that_cannot_be_met_is_refused_at_creation() -> None:
    with pytest.raises(InvalidRequest, match="needs 5 approvals"):
        make(Policy(PolicyKind.QUORUM, 5))
    with pytest.raises(InvalidRequest, match="requester cannot approve"):
        make(Policy(PolicyKind.ALL), requester="alice@contoso.test")


def test_closed_request_never_changes() -> None:
    request = make(Policy())
    request.cancel(T0)
    with pytest.raises(DecisionRefused) as refused:
        request.decide(vote("alice@contoso.test", Verdict.APPROVE))
    assert refused.value.reason is RefusalReason.REQUEST_CLOSED
    assert request.expire(T0 + timedelta(days=1)) is False
    assert request.state is RequestState.CANCELLED


def test_expiry_only_after_the_deadline() -> None:
    request = make(Policy())
    assert request.expire(T0 + timedelta(hours=3)) is False
    assert request.expire(T0 + timedelta(hours=4)) is True
    assert request.state is RequestState.EXPIRED


@pytest.mark.parametrize(
    ("text", "expected"),
    [("any", "any"), ("ALL", "all"), ("quorum:2", "quorum:2"), ("quorum 3", "quorum:3")],
)
def test_policy_parse(text: str, expected: str) -> None:
    assert str(Policy.parse(text)) == expected


@pytest.mark.parametrize("text", ["some", "quorum", "quorum:0", "quorum:-1", ""])
def test_policy_parse_rejects(text: str) -> None:
    with pytest.raises(InvalidRequest, match="policy"):
        Policy.parse(text)


def test_empty_title_and_no_approvers_are_invalid() -> None:
    with pytest.raises(InvalidRequest, match="title"):
        ApprovalRequest("X", " ", "ci@x.test", ("a@x.test",), Policy(), T0, T0 + timedelta(hours=1))
    with pytest.raises(InvalidRequest, match="approvers"):
        ApprovalRequest("X", "t", "ci@x.test", (), Policy(), T0, T0 + timedelta(hours=1))


policies = st.one_of(
    st.builds(Policy, st.just(PolicyKind.ANY), st.none(), st.booleans(), st.booleans()),
    st.builds(Policy, st.just(PolicyKind.ALL), st.none(), st.booleans(), st.booleans()),
    st.builds(Policy, st.just(PolicyKind.QUORUM), st.integers(1, 3), st.booleans(), st.booleans()),
)
voters = st.sampled_from([*APPROVERS, "mallory@contoso.test", "ci@contoso.test"])
votes = st.lists(st.tuples(voters, st.sampled_from(list(Verdict))), max_size=12)


@given(policies, st.booleans(), votes)
def test_invariants_over_random_decision_sequences(
    policy: Policy, requester_is_approver: bool, sequence: list[tuple[str, Verdict]]
) -> None:
    requester = APPROVERS[0] if requester_is_approver else "ci@contoso.test"
    try:
        request = make(policy, requester=requester)
    except InvalidRequest:
        return  # a policy the approvers cannot meet is refused up front
    for minute, (who, verdict) in enumerate(sequence):
        before_state, before_count = request.state, len(request.decisions)
        refusal: RefusalReason | None = None
        try:
            request.decide(vote(who, verdict, minute))
        except DecisionRefused as refused:
            refusal = refused.reason
        if refusal is not None:
            assert len(request.decisions) == before_count
            assert request.state is before_state
            if before_state.is_closed:
                assert refusal is RefusalReason.REQUEST_CLOSED
            continue
        assert not before_state.is_closed, "a closed request changed"

    deciders = [d.approver for d in request.decisions]
    assert len(deciders) == len(set(deciders)), "an approver counted twice"
    assert set(deciders) <= set(APPROVERS), "a non-approver decided"
    if not policy.allow_self_approval:
        assert (requester, Verdict.APPROVE) not in {
            (d.approver, d.verdict) for d in request.decisions
        }
    approvals = request.count(Verdict.APPROVE)
    if request.state is RequestState.APPROVED:
        assert approvals >= request.approvals_needed
    if request.state is RequestState.PENDING:
        assert approvals < request.approvals_needed
        assert request.approvals_still_possible() >= request.approvals_needed
        if policy.reject_vetoes:
            assert request.count(Verdict.REJECT) == 0
    if request.state is RequestState.REJECTED and policy.reject_vetoes:
        assert (
            request.count(Verdict.REJECT) >= 1
            or request.approvals_still_possible() < request.approvals_needed
        )
