"""Requests already sent, and realistic replies to them built from the sample replies.

A reply is a sample from ``tests/data/replies`` with the sample's request token, Message-ID
and ``In-Reply-To``/``References`` replaced by those of a request created here; its
sender (the sample's From) is the request's approver. Requests are marked as sent with a
known Message-ID, as the sender loop would have left them, so the benchmarks measure
reading only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from email.utils import getaddresses

from sqlalchemy import update

from bench.harness import SAMPLES
from replygate.bootstrap import Container
from replygate.db.tables import ApprovalRequestRow, OutboxRow
from replygate.services.requesting import RequestDraft, create_request

_TOKEN = re.compile(rb"RG-[a-z0-9]+-[A-Z0-9]{10}")
_HEADER = re.compile(
    rb"^(Message-ID|In-Reply-To|References):[^\r\n]*(\r\n[ \t][^\r\n]*)*\r\n", re.I | re.M
)


@dataclass(frozen=True)
class Sample:
    name: str
    raw: bytes
    sender: str


@dataclass(frozen=True)
class SentRequest:
    request_id: str
    token: str
    message_id: str
    approver: str


def samples() -> list[Sample]:
    found = []
    for path in sorted(SAMPLES.glob("*.eml")):
        raw = path.read_bytes()
        head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        sender = re.search(r"^From:(.*(?:\r\n[ \t].*)*)", head, re.M | re.I)
        pairs = getaddresses([sender.group(1)]) if sender else []
        address = pairs[0][1].lower() if pairs and "@" in pairs[0][1] else "someone@example.org"
        found.append(Sample(path.name, raw, address))
    return found


def create_sent_requests(container: Container, approvers: list[str]) -> list[SentRequest]:
    """One request per approver, marked as sent with a Message-ID replies can name."""
    made = []
    for index, approver in enumerate(approvers):
        draft = RequestDraft(
            title=f"Deploy service-{index} to production",
            approvers=[approver],
            requester="ci@contoso.test",
            expires_in=timedelta(days=2),
        )
        created = create_request(
            container.uow(), container.clock, container.settings.instance, draft, created_by="bench"
        )
        made.append(
            SentRequest(
                created.request.id,
                str(created.token),
                f"<bench-{index}-{created.request.id}@contoso.test>",
                approver,
            )
        )
    with container.engine.begin() as connection:
        for sent in made:
            connection.execute(
                update(ApprovalRequestRow)
                .where(ApprovalRequestRow.id == sent.request_id)
                .values(message_id=sent.message_id)
            )
        connection.execute(update(OutboxRow).values(state="sent", sent_at=container.clock.now()))
    return made


def reply_to(sample: Sample, sent: SentRequest, serial: int) -> bytes:
    """The sample as a reply to `sent`: its token, its Message-ID in the thread headers."""
    raw = _TOKEN.sub(sent.token.encode(), sample.raw)
    head, _, body = raw.partition(b"\r\n\r\n")
    threaded = b"In-Reply-To:" in sample.raw.split(b"\r\n\r\n", 1)[0]
    head = _HEADER.sub(b"", head + b"\r\n")
    own = f"Message-ID: <reply-{serial}-{sent.request_id}@mail.example>\r\n".encode()
    if threaded:
        own += f"In-Reply-To: {sent.message_id}\r\nReferences: {sent.message_id}\r\n".encode()
    return own + head + b"\r\n" + body


def unrelated(serial: int) -> bytes:
    """Mail that is not ours: it must be left where it is."""
    return (
        f"From: newsletter@example.org\r\nTo: approvals@contoso.test\r\n"
        f"Subject: Weekly digest #{serial}\r\nMessage-ID: <digest-{serial}@example.org>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Nothing to approve here. Approve your calendar invites in Outlook.\r\n"
    ).encode()
