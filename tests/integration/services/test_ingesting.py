"""Replies through screening into decisions, on SQLite and PostgreSQL.

The messages are the sample replies in tests/data/replies, given the ``Received`` header
that delivery adds, answering requests created with the samples' tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from replygate.db.uow import SqlAlchemyUnitOfWork
from replygate.domain.model import Policy, RequestState
from replygate.services.ingesting import Arrival, IngestContext, ingest_message
from replygate.services.requesting import OutboxKind, RequestDraft, create_request
from tests.conftest import FixedClock

UowFactory = Callable[[], SqlAlchemyUnitOfWork]
REPLIES = Path(__file__).parents[2] / "data" / "replies"
SAMPLE_APPROVERS = [
    "priya.nair@contoso.com",
    "marc.weber@contoso.com",
    "tom.becker@contoso.com",
    "hannah.schmidt@contoso.com",
    "leon.hartmann@contoso.com",
    "sofia.rossi@contoso.com",
    "ethan.clarke@contoso.com",
    "lena.vogt@contoso.com",
    "juergen.mueller@contoso.de",
    "mei.chen.ops@gmail.com",
    "nikhil.rao.sre@gmail.com",
    "julien.moreau.sre@gmail.com",
    "bram.jansen.ops@gmail.com",
    "oliver.grant@fabrikam.com",
    "aisha.khan@contoso.com",
    "grace.liu@contoso.com",
    "daniel.okafor@contoso.com",
    "camille.dubois@contoso.fr",
    "carlos.ruiz@contoso.es",
    "maria.garcia@contoso.es",
    "pieter.devries@contoso.nl",
    "sanne.bakker@contoso.nl",
    "lukas.braun@contoso.de",
    "anna.schulz@contoso.de",
]
RECEIVED = (
    b"Received: from mail.example by EXO.prod.outlook.com; Tue, 4 Mar 2025 10:28:00 +0000\r\n"
)


def sample(name: str) -> bytes:
    return RECEIVED + next(REPLIES.glob(f"{name}*.eml")).read_bytes()


@pytest.fixture
def ctx(clock: FixedClock) -> IngestContext:
    return IngestContext(
        instance="prod",
        mailbox="release-gate@contoso.com",
        folder="Inbox/Approvals",
        clock=clock,
        internal_domains=frozenset({"contoso.com"}),
    )


def make_request(
    make_uow: UowFactory, clock: FixedClock, request_id: str, **policy: object
) -> None:
    draft = RequestDraft(
        title="Deploy payments-api 2.3.1 to production",
        approvers=SAMPLE_APPROVERS,
        requester="jonas.berg@contoso.com",
        policy=Policy(**policy),  # type: ignore[arg-type]
        expires_in=timedelta(days=60),
    )
    create_request(make_uow(), clock, "prod", draft, created_by="t", new_id=lambda: request_id)


def ingest(
    make_uow: UowFactory, ctx: IngestContext, raw: bytes, clock: FixedClock
) -> tuple[str, bool, list[str]]:
    configured = clock.now() - timedelta(days=400)  # before the samples' dates
    result = ingest_message(make_uow, ctx, Arrival(raw=raw, transport_id="id-1"), configured)
    return result.outcome, result.dispose, result.hits


def answers(make_uow: UowFactory) -> list[dict[str, object]]:
    with make_uow() as uow:
        rows = sorted(uow.outbox.list(), key=lambda r: r.id)
        return [dict(r.payload) for r in rows if r.kind == OutboxKind.ANSWER]


def test_approval_decides_records_evidence_and_confirms(
    make_uow: UowFactory, clock: FixedClock, ctx: IngestContext
) -> None:
    make_request(make_uow, clock, "7KQ2M9XW4D")
    outcome, dispose, _ = ingest(make_uow, ctx, sample("001"), clock)
    assert (outcome, dispose) == ("decided", True)
    with make_uow() as uow:
        request = uow.requests.get("7KQ2M9XW4D")
        assert request is not None
        assert request.state is RequestState.APPROVED
        decision = request.decisions[0]
        assert decision.approver == "priya.nair@contoso.com"
        assert "Change window confirmed" in decision.comment
        assert decision.evidence["message_id"].startswith("<AM9PR04MB8147")
        entry = uow.ledger.find("release-gate@contoso.com", decision.evidence["message_id"])
        assert entry is not None
        assert entry.disposal == "pending"
        assert entry.raw_mime is not None
    assert [a["answer"] for a in answers(make_uow)] == ["confirm"]


def test_same_message_twice_is_applied_once(
    make_uow: UowFactory, clock: FixedClock, ctx: IngestContext
) -> None:
    make_request(make_uow, clock, "7KQ2M9XW4D", kind="all")  # type: ignore[arg-type]
    ingest(make_uow, ctx, sample("001"), clock)
    _outcome, dispose, hits = ingest(make_uow, ctx, sample("001"), clock)
    assert hits == ["duplicate"]
    assert dispose  # its disposal is still owed
    with make_uow() as uow:
        request = uow.requests.get("7KQ2M9XW4D")
        assert request is not None
        assert len(request.decisions) == 1
    assert len(answers(make_uow)) == 1


def test_out_of_office_is_recorded_never_answered(
    make_uow: UowFactory, clock: FixedClock, ctx: IngestContext
) -> None:
    make_request(make_uow, clock, "7KQ2M9XW4D")
    outcome, _dispose, _ = ingest(make_uow, ctx, sample("047"), clock)
    assert outcome == "automatic"
    assert answers(make_uow) == []


def test_foreign_and_unknown_mail_is_left_untouched(
    make_uow: UowFactory, clock: FixedClock, ctx: IngestContext
) -> None:
    # 025: a new message without a token; the dev-instance sample carries RG-dev-...
    outcome, dispose, hits = ingest(make_uow, ctx, sample("025"), clock)
    assert (outcome, dispose) == ("not_ours", False)
    dev = next(p for p in sorted(REPLIES.glob("*.eml")) if b"RG-dev-" in p.read_bytes())
    outcome, dispose, hits = ingest(make_uow, ctx, RECEIVED + dev.read_bytes(), clock)
    assert (outcome, dispose) == ("not_ours", False)
    assert "not_ours:foreign_token" in hits
    # A token of ours that was never issued is not ours either.
    outcome, dispose, hits = ingest(make_uow, ctx, sample("001"), clock)
    assert (outcome, dispose, hits[0]) == ("not_ours", False, "not_ours:never_issued")


def test_mail_from_before_the_folder_was_configured_is_not_processed(
    make_uow: UowFactory, clock: FixedClock, ctx: IngestContext
) -> None:
    make_request(make_uow, clock, "7KQ2M9XW4D")
    result = ingest_message(make_uow, ctx, Arrival(raw=sample("001")), clock.now())
    assert (result.outcome, result.dispose) == ("before_folder_configured", False)


def test_ambiguous_reply_asks_again_only_once(
    make_uow: UowFactory, clock: FixedClock, ctx: IngestContext
) -> None:
    make_request(make_uow, clock, "7KQ2M9XW4D")
    first = sample("018")  # "Approve?"
    outcome, dispose, _ = ingest(make_uow, ctx, first, clock)
    assert (outcome, dispose) == ("grammar", True)
    second = first.replace(b"Message-ID: <", b"Message-ID: <again-")
    ingest(make_uow, ctx, second, clock)
    assert [a["answer"] for a in answers(make_uow)] == ["ask_again"]


def test_non_approver_cannot_decide(
    make_uow: UowFactory, clock: FixedClock, ctx: IngestContext
) -> None:
    draft = RequestDraft(
        title="t",
        approvers=["someone.else@contoso.com"],
        requester="jonas.berg@contoso.com",
        expires_in=timedelta(days=60),
    )
    create_request(make_uow(), clock, "prod", draft, created_by="t", new_id=lambda: "7KQ2M9XW4D")
    outcome, _dispose, hits = ingest(make_uow, ctx, sample("001"), clock)
    assert outcome == "sender"
    assert any(h.startswith("sender:not_an_approver") for h in hits)
    with make_uow() as uow:
        request = uow.requests.get("7KQ2M9XW4D")
        assert request is not None
        assert request.decisions == []


def test_reply_to_a_closed_request_tells_the_outcome(
    make_uow: UowFactory, clock: FixedClock, ctx: IngestContext
) -> None:
    make_request(make_uow, clock, "7KQ2M9XW4D")
    ingest(make_uow, ctx, sample("001"), clock)  # approves and closes (policy any)
    outcome, _, _ = ingest(make_uow, ctx, sample("002"), clock)
    assert outcome == "request_closed"
    assert [a["answer"] for a in answers(make_uow)] == ["confirm", "tell_outcome"]


def test_raw_mime_retention_keeps_the_ledger_row(
    make_uow: UowFactory, clock: FixedClock, ctx: IngestContext
) -> None:
    make_request(make_uow, clock, "7KQ2M9XW4D")
    ingest(make_uow, ctx, sample("001"), clock)
    with make_uow() as uow:
        assert uow.ledger.purge_raw_mime(clock.now() - timedelta(days=1)) == 0
        assert uow.ledger.purge_raw_mime(clock.now() + timedelta(seconds=1)) == 1
        uow.commit()
    with make_uow() as uow:
        rows = uow.ledger.list()
        assert len(rows) == 1
        assert rows[0].raw_mime is None
        assert rows[0].outcome == "decided"
