"""REPLY-GRAMMAR.md section 1: strong signals make mail automatic, weak ones never alone."""

from __future__ import annotations

import pytest

from replygate.mail.automatic import classify_automatic
from replygate.mail.inbound import parse_message

SUBJECT = "RE: [RG-prod-7KQ2M9XW4D] Deploy"


def message(
    *headers: str, subject: str = SUBJECT, body: str = "No.", content_type: str = ""
) -> bytes:
    head = "\r\n".join(["From: Priya <priya@contoso.com>", f"Subject: {subject}", *headers])
    kind = content_type or "Content-Type: text/plain; charset=utf-8"
    return f"{head}\r\n{kind}\r\n\r\n{body}\r\n".encode()


def classify(raw: bytes) -> tuple[bool, str | None, list[str], list[str]]:
    verdict = classify_automatic(parse_message(raw))
    return verdict.automatic, verdict.kind, verdict.reasons, verdict.weak_signals


def test_a_plain_reply_is_not_automatic() -> None:
    assert classify(message()) == (False, None, [], [])


@pytest.mark.parametrize("value", ["auto-generated", "auto-replied", "auto-notified", "whatever"])
def test_auto_submitted_other_than_no(value: str) -> None:
    assert classify(message(f"Auto-Submitted: {value}"))[:3] == (
        True,
        "auto_reply",
        ["auto_submitted"],
    )


def test_auto_submitted_no_is_only_weak() -> None:
    assert classify(message("Auto-Submitted: no")) == (False, None, [], ["auto_submitted_no"])


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("X-Autoreply: yes", "x_autoreply"),
        ("X-Autorespond: on", "x_autorespond"),
        ("Precedence: auto_reply", "precedence_auto_reply"),
        ("Precedence: bulk", "precedence_bulk"),
        ("Precedence: junk", "precedence_junk"),
    ],
)
def test_auto_reply_headers(header: str, reason: str) -> None:
    assert classify(message(header))[:3] == (True, "auto_reply", [reason])


@pytest.mark.parametrize(
    "subject",
    ["Automatic reply: x", "Auto: x", "Out of Office: x", "Autosvar: x", "Abwesenheitsnotiz: x",
     "Automatische Antwort: x", "Réponse automatique : x", "Respuesta automática: x",
     "Automatisch antwoord: x", "RE: Automatic reply: x", "out of office: x"],
)  # fmt: skip
def test_auto_reply_subject_alone_is_enough(subject: str) -> None:
    assert classify(message(subject=subject))[:3] == (True, "auto_reply", ["auto_reply_subject"])


@pytest.mark.parametrize(
    "subject", ["Re: Out of office next week? approve", "Auto-approve job", "Automatically done"]
)
def test_subjects_that_only_look_alike(subject: str) -> None:
    assert classify(message(subject=subject))[0] is False


@pytest.mark.parametrize(
    ("header", "weak"),
    [
        ("X-Auto-Response-Suppress: All", "x_auto_response_suppress"),
        ("Precedence: list", "precedence_list"),
        ("List-Id: <releases.contoso.com>", "list_id"),
    ],
)
def test_weak_signals_are_recorded_but_never_enough(header: str, weak: str) -> None:
    assert classify(message(header)) == (False, None, [], [weak])


def test_report_with_delivery_status_is_a_bounce() -> None:
    body = (
        "--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--b\r\n"
        "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns;x\r\n\r\n"
        "Final-Recipient: rfc822;a@b.com\r\nAction: failed\r\nStatus: 5.1.1\r\n--b--"
    )
    raw = message(
        body=body,
        content_type='Content-Type: multipart/report; report-type=delivery-status; boundary="b"',
    )
    automatic, kind, reasons, _ = classify(raw)
    assert (automatic, kind) == (True, "bounce")
    assert reasons == ["multipart_report", "delivery_status"]


def test_delivery_status_part_anywhere_is_a_bounce() -> None:
    body = "--b\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n--b--"
    raw = message(body=body, content_type='Content-Type: multipart/mixed; boundary="b"')
    assert classify(raw)[:3] == (True, "bounce", ["delivery_status"])


@pytest.mark.parametrize(
    "subject",
    ["Undeliverable: x", "Undelivered Mail Returned to Sender",
     "Delivery Status Notification (Failure)",
     "Mail delivery failed: returning message", "failure notice", "Returned mail: see transcript",
     "Unzustellbar: x", "Non remis : x", "No se puede entregar: x",
     "Delivery has failed to these recipients"],
)  # fmt: skip
def test_null_sender_with_bounce_subject(subject: str) -> None:
    assert classify(message("Return-Path: <>", subject=subject))[:2] == (True, "bounce")
    daemon = message(subject=subject).replace(b"priya@contoso.com", b"MAILER-DAEMON@mx.contoso.com")
    assert classify(daemon)[:2] == (True, "bounce")
    postmaster = message(subject=subject).replace(b"priya@contoso.com", b"postmaster@contoso.com")
    assert classify(postmaster)[:2] == (True, "bounce")


def test_bounce_subject_or_null_sender_alone_is_not_enough() -> None:
    assert classify(message(subject="Undeliverable: x"))[0] is False
    assert classify(message("Return-Path: <>"))[0] is False


def test_disposition_notification_is_a_receipt() -> None:
    body = (
        "--b\r\nContent-Type: text/plain\r\n\r\nread\r\n--b\r\n"
        "Content-Type: message/disposition-notification\r\n\r\n"
        "Disposition: manual-action/MDN-sent-manually; displayed\r\n--b--"
    )
    raw = message(
        body=body,
        content_type="Content-Type: multipart/report; "
        'report-type=disposition-notification; boundary="b"',
    )
    assert classify(raw)[:3] == (True, "receipt", ["disposition_notification"])
