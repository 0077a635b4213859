"""The approval request mail: headers, subject, links, body, and its MIME form."""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

import pytest

from replygate.domain.model import ApprovalRequest, Policy, PolicyKind
from replygate.domain.tokens import ReplyToken
from replygate.mail.compose import (
    INSTRUCTIONS,
    MAX_DETAILS,
    REFERENCE_LINE,
    MailContext,
    compose_reminder,
    compose_request,
    format_time,
    policy_text,
    subject_for,
)
from replygate.mail.mime import MailKind, OutboundEmail, to_mime

T0 = datetime(2025, 3, 4, 10, 12, tzinfo=UTC)
TOKEN = ReplyToken("prod", "7KQ2M9XW4D")
APPROVERS = ("priya.nair@contoso.com", "Marc.Weber@contoso.com", "mei.chen.ops@gmail.com")
CTX = MailContext(
    from_address="release-gate@contoso.com",
    from_name="Contoso Release Gate",
    public_url="https://replygate.contoso.com/",
    requester_name="Jonas Berg",
)


def make_request(**changes: object) -> ApprovalRequest:
    fields: dict[str, object] = {
        "id": TOKEN.request_id,
        "title": "Deploy payments-api 2.3.1 to production",
        "requester": "jonas.berg@contoso.com",
        "approvers": APPROVERS,
        "policy": Policy(),
        "created_at": T0,
        "expires_at": T0 + timedelta(days=1),
        "details": "Fixes the **refund** rounding bug.",
        "metadata": {
            "Pipeline": "GitHub Actions, contoso/payments-api, run 13650012345",
            "Pipeline URL": "https://github.com/contoso/payments-api/actions/runs/13650012345",
            "Environment": "production",
            "Version": "2.3.1",
        },
    }
    fields.update(changes)
    return ApprovalRequest(**fields)  # type: ignore[arg-type]


def links(mail: OutboundEmail) -> dict[str, str]:
    found = {}
    for line in mail.text.splitlines():
        for label in ("Approve", "Reject"):
            if line.startswith(f"{label}:"):
                found[label] = line.split(":", 1)[1].strip()
    return found


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


# -- the neutral message ---------------------------------------------------------------


def test_subject_is_the_token_tag_and_title() -> None:
    mail = compose_request(make_request(), TOKEN, CTX)
    assert mail.subject == "[RG-prod-7KQ2M9XW4D] Deploy payments-api 2.3.1 to production"
    assert mail.kind is MailKind.REQUEST
    assert mail.request_id == "7KQ2M9XW4D"


def test_subject_is_one_bounded_line() -> None:
    subject = subject_for(TOKEN, "Deploy\r\nBcc: evil@example.com\t" + "x" * 500)
    assert "\r" not in subject
    assert "\n" not in subject
    assert len(subject) == 200
    assert subject.startswith("[RG-prod-7KQ2M9XW4D] Deploy Bcc: evil@example.com x")
    assert subject.endswith("…")


def test_every_approver_is_in_to_once() -> None:
    request = make_request(approvers=(*APPROVERS, "PRIYA.NAIR@contoso.com"))
    mail = compose_request(request, TOKEN, CTX)
    assert mail.to == ("priya.nair@contoso.com", "marc.weber@contoso.com", "mei.chen.ops@gmail.com")
    assert mail.cc == ()


def test_five_hundred_approvers_fit_one_message() -> None:
    approvers = tuple(f"approver{i}@contoso.com" for i in range(500))
    mail = compose_request(make_request(approvers=approvers), TOKEN, CTX)
    assert len(mail.to) == 500
    assert "and 480 more" in mail.text
    assert len(parse(to_mime(mail, T0))["To"].addresses) == 500


def test_more_than_five_hundred_approvers_are_refused() -> None:
    approvers = tuple(f"approver{i}@contoso.com" for i in range(501))
    with pytest.raises(ValueError, match="500"):
        compose_request(make_request(approvers=approvers), TOKEN, CTX)


def test_reply_to_only_when_the_reply_address_differs() -> None:
    assert compose_request(make_request(), TOKEN, CTX).reply_to == ()
    same = MailContext(from_address="gate@contoso.com", reply_address="Gate@Contoso.com")
    assert compose_request(make_request(), TOKEN, same).reply_to == ()
    other = MailContext(from_address="gate@contoso.com", reply_address="replies@contoso.com")
    mail = compose_request(make_request(), TOKEN, other)
    assert mail.reply_to == ("replies@contoso.com",)
    assert mail.from_address == "gate@contoso.com"
    assert all(url.startswith("mailto:replies@contoso.com?") for url in links(mail).values())


def test_headers_keep_auto_responders_quiet() -> None:
    mail = compose_request(make_request(), TOKEN, CTX)
    assert mail.headers == {
        "Auto-Submitted": "auto-generated",
        "X-Auto-Response-Suppress": "OOF, AutoReply",
        "X-Replygate-Token": "RG-prod-7KQ2M9XW4D",
    }
    assert mail.in_reply_to is None
    assert mail.references == ()


def test_message_ids_are_unique_and_in_the_from_domain() -> None:
    ids = {compose_request(make_request(), TOKEN, CTX).message_id for _ in range(50)}
    assert len(ids) == 50
    for message_id in ids:
        assert message_id.startswith("<RG-prod-7KQ2M9XW4D.request.")
        assert message_id.endswith("@contoso.com>")


# -- links -----------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["APPROVE", "REJECT"])
def test_mailto_links_decode_to_address_subject_and_reference(word: str) -> None:
    mail = compose_request(make_request(), TOKEN, CTX)
    url = links(mail)[word.capitalize()]
    parts = urlsplit(url)
    assert parts.scheme == "mailto"
    assert unquote(parts.path) == "release-gate@contoso.com"
    query = parse_qs(parts.query, strict_parsing=True)
    assert query["subject"] == [f"{word} [RG-prod-7KQ2M9XW4D] {make_request().title}"]
    assert query["body"] == [f"\r\n\r\n{REFERENCE_LINE}\r\nReference: RG-prod-7KQ2M9XW4D"]
    # the same links, HTML-escaped, are the buttons
    assert f'href="{url.replace("&", "&amp;")}"' in mail.html


def test_mailto_links_encode_every_reserved_character() -> None:
    title = "Ship 50% & more? #1 = a+b, ünïcode, 🚀"
    mail = compose_request(make_request(title=title), TOKEN, CTX)
    url = links(mail)["Approve"]
    assert all(c not in url.split("?", 1)[1] for c in " #+,?[]")
    assert parse_qs(urlsplit(url).query)["subject"] == [f"APPROVE [RG-prod-7KQ2M9XW4D] {title}"]


def test_the_only_web_links_are_read_only_pages() -> None:
    mail = compose_request(make_request(details="[run](https://ci.example/1)"), TOKEN, CTX)
    assert "View in replygate: https://replygate.contoso.com/requests/7KQ2M9XW4D" in mail.text
    hrefs = [part.split('"', 1)[0] for part in mail.html.split('href="')[1:]]
    assert sorted(h.split(":", 1)[0] for h in hrefs) == ["https"] * 3 + ["mailto"] * 2
    assert all("approve" not in h.lower() for h in hrefs if h.startswith("https"))


def test_console_link_template_and_no_console() -> None:
    ctx = MailContext(from_address="g@contoso.com", public_url="https://rg.example/r/{request_id}")
    assert "View in replygate: https://rg.example/r/7KQ2M9XW4D" in (
        compose_request(make_request(), TOKEN, ctx).text
    )
    bare = compose_request(make_request(), TOKEN, MailContext(from_address="g@contoso.com"))
    assert "View in replygate" not in bare.text
    assert "View in replygate" not in bare.html


# -- the body --------------------------------------------------------------------------

EXPECTED_TEXT_HEAD = """\
Deploy payments-api 2.3.1 to production

Jonas Berg asks for your approval.

Fixes the **refund** rounding bug.

Pipeline:    GitHub Actions, contoso/payments-api, run 13650012345
             https://github.com/contoso/payments-api/actions/runs/13650012345
Environment: production
Version:     2.3.1
Approvers:   priya.nair@contoso.com, marc.weber@contoso.com, mei.chen.ops@gmail.com
Policy:      any one approver; a single rejection rejects
Expires:     Wed, 5 Mar 2025 10:12 UTC

Reply with APPROVE or REJECT on the first line; anything after it is your comment.

Approve: mailto:"""

EXPECTED_TEXT_TAIL = """
View in replygate: https://replygate.contoso.com/requests/7KQ2M9XW4D

--- Please keep this line and everything below it in your reply ---
Reference: RG-prod-7KQ2M9XW4D
"""


def test_text_part_reads_like_the_request_approvers_quote() -> None:
    text = compose_request(make_request(), TOKEN, CTX).text
    assert text.startswith(EXPECTED_TEXT_HEAD)
    assert text.endswith(EXPECTED_TEXT_TAIL)
    assert "\nReject:  mailto:release-gate@contoso.com?subject=REJECT%20%5BRG-prod-" in text


def test_html_part_has_the_same_content() -> None:
    html = compose_request(make_request(), TOKEN, CTX).html
    for fragment in (
        "Deploy payments-api 2.3.1 to production</p>",
        "Jonas Berg asks for your approval.",
        "<strong>refund</strong>",
        '<a href="https://github.com/contoso/payments-api/actions/runs/13650012345">'
        "GitHub Actions, contoso/payments-api, run 13650012345</a>",
        "any one approver; a single rejection rejects",
        "Wed, 5 Mar 2025 10:12 UTC",
        f'<p style="margin:0 0 12px;">{INSTRUCTIONS}</p>',
        ">Approve</a>",
        ">Reject</a>",
        f"{REFERENCE_LINE}<br>\nReference: RG-prod-7KQ2M9XW4D</p>",
        '<meta name="color-scheme" content="light dark">',
    ):
        assert fragment in html
    assert "<table" not in html
    assert "<style" not in html  # inline CSS only: Outlook and Gmail drop style blocks


def test_reference_block_ends_both_parts() -> None:
    mail = compose_request(make_request(), TOKEN, CTX)
    block = f"{REFERENCE_LINE}\nReference: RG-prod-7KQ2M9XW4D\n"
    assert mail.text.endswith(block)
    assert mail.text.count(REFERENCE_LINE) == 1
    tail = mail.html.rsplit("</p>", 1)[0]
    assert tail.endswith(f"{REFERENCE_LINE}<br>\nReference: RG-prod-7KQ2M9XW4D")


def test_requester_address_when_no_name_is_known() -> None:
    ctx = MailContext(from_address="release-gate@contoso.com")
    assert "jonas.berg@contoso.com asks for your approval." in (
        compose_request(make_request(), TOKEN, ctx).text
    )


def test_metadata_keys_are_humanised_and_url_values_linked() -> None:
    metadata = {"build_url": "https://ci.example/b/7", "commit": "abc123", "pipeline_url": "x"}
    mail = compose_request(make_request(metadata=metadata), TOKEN, CTX)
    assert "\nBuild URL:    https://ci.example/b/7\n" in mail.text
    assert '<a href="https://ci.example/b/7">https://ci.example/b/7</a>' in mail.html
    assert "\nCommit:       abc123\n" in mail.text
    assert "\nPipeline URL: x\n" in mail.text  # not a URL: shown as text, never linked
    assert 'href="x"' not in mail.html


def test_long_details_are_shortened_with_a_note() -> None:
    mail = compose_request(make_request(details="a" * (MAX_DETAILS + 500)), TOKEN, CTX)
    assert "[details shortened: 500 more characters]" in mail.text
    assert "[details shortened: 500 more characters]" in mail.html
    assert len(mail.text) < MAX_DETAILS + 5_000


@pytest.mark.parametrize(
    ("policy", "count", "words"),
    [
        (Policy(), 3, "any one approver; a single rejection rejects"),
        (Policy(reject_vetoes=False), 3, "any one approver"),
        (Policy(PolicyKind.ALL), 3, "all 3 approvers; a single rejection rejects"),
        (Policy(PolicyKind.QUORUM, 2, reject_vetoes=False), 4, "2 of 4 approvers"),
        (Policy(PolicyKind.QUORUM, 2), 4, "2 of 4 approvers; a single rejection rejects"),
        (Policy(PolicyKind.ALL), 1, "any one approver"),
    ],
)
def test_policy_in_words(policy: Policy, count: int, words: str) -> None:
    assert policy_text(policy, count) == words


def test_policy_line_in_the_mail() -> None:
    approvers = (*APPROVERS, "tom.becker@contoso.com")
    request = make_request(approvers=approvers, policy=Policy(PolicyKind.QUORUM, 2))
    assert "Policy:      2 of 4 approvers; a single rejection rejects" in (
        compose_request(request, TOKEN, CTX).text
    )


def test_expiry_in_the_display_time_zone() -> None:
    moment = datetime(2025, 3, 5, 10, 12, tzinfo=UTC)
    assert format_time(moment, UTC) == "Wed, 5 Mar 2025 10:12 UTC"
    assert format_time(moment, ZoneInfo("Europe/Berlin")) == "Wed, 5 Mar 2025 11:12 CET"
    assert format_time(moment, timezone(timedelta(hours=-5))) == "Wed, 5 Mar 2025 05:12 UTC-05:00"
    ctx = MailContext(from_address="g@contoso.com", timezone=ZoneInfo("Europe/Berlin"))
    assert (
        "Expires:     Wed, 5 Mar 2025 11:12 CET" in compose_request(make_request(), TOKEN, ctx).text
    )


def test_reminder_is_the_same_request_marked_as_reminder() -> None:
    request = make_request()
    reminder = compose_reminder(request, TOKEN, CTX)
    assert reminder.kind is MailKind.REMINDER
    assert reminder.subject == compose_request(request, TOKEN, CTX).subject
    assert reminder.text.startswith("Reminder: Deploy payments-api 2.3.1 to production\n")
    assert "It is still waiting for your answer." in reminder.text
    assert "Reminder: Deploy payments-api" in reminder.html
    marked = compose_reminder(
        request, TOKEN, CTX, to=("priya.nair@contoso.com",), mark_subject=True
    )
    assert (
        marked.subject == "Reminder: [RG-prod-7KQ2M9XW4D] Deploy payments-api 2.3.1 to production"
    )
    assert marked.to == ("priya.nair@contoso.com",)
    assert INSTRUCTIONS in marked.text
    assert marked.text.endswith("Reference: RG-prod-7KQ2M9XW4D\n")


# -- MIME ------------------------------------------------------------------------------


def test_mime_round_trip_keeps_headers_and_both_parts() -> None:
    ctx = MailContext(
        from_address="release-gate@contoso.com",
        from_name="Contoso Release Gate",
        reply_address="approvals@contoso.com",
    )
    mail = compose_request(make_request(), TOKEN, ctx)
    message = parse(to_mime(mail, T0))
    assert message["From"].addresses[0].display_name == "Contoso Release Gate"
    assert message["From"].addresses[0].addr_spec == "release-gate@contoso.com"
    assert [a.addr_spec for a in message["To"].addresses] == list(mail.to)
    assert [a.addr_spec for a in message["Reply-To"].addresses] == ["approvals@contoso.com"]
    assert message["Subject"] == mail.subject
    assert message["Message-ID"] == mail.message_id
    assert message["Date"].datetime == T0
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Auto-Response-Suppress"] == "OOF, AutoReply"
    assert message["X-Replygate-Token"] == "RG-prod-7KQ2M9XW4D"
    assert message["Sender"] is None
    assert message.get_content_type() == "multipart/alternative"
    plain, html = message.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    assert plain.get_content_charset() == "utf-8"
    assert plain.get_content().replace("\r\n", "\n") == mail.text
    assert html.get_content().replace("\r\n", "\n") == mail.html


def test_mime_is_seven_bit_with_short_lines_and_encoded_non_ascii() -> None:
    title = "Déployer l’API « paiements » — ünïcödé " + "très long " * 30
    ctx = MailContext(from_address="gate@contoso.com", from_name="Jürgen’s Gate 🚦")
    raw = to_mime(compose_request(make_request(title=title), TOKEN, ctx), T0)
    raw.decode("ascii")  # headers RFC 2047-encoded, bodies quoted-printable
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    message = parse(raw)
    assert message["Subject"] == subject_for(TOKEN, title)
    assert message["From"].addresses[0].display_name == "Jürgen’s Gate 🚦"


def test_mime_threading_sender_and_cc() -> None:
    mail = OutboundEmail(
        kind=MailKind.CONFIRMATION,
        request_id="7KQ2M9XW4D",
        from_address="gate@contoso.com",
        from_name="Gate",
        sender="ops@contoso.com",
        to=("a@contoso.com",),
        cc=("b@contoso.com",),
        subject="RE: x",
        text="t\n",
        html="<p>t</p>\n",
        message_id="<m1@contoso.com>",
        in_reply_to="<r2@example.com>",
        references=("<m0@contoso.com>", "<r2@example.com>"),
    )
    message = parse(to_mime(mail, T0))
    assert message["Sender"].addresses[0].addr_spec == "ops@contoso.com"
    assert message["Cc"].addresses[0].addr_spec == "b@contoso.com"
    assert message["In-Reply-To"] == "<r2@example.com>"
    assert message["References"].split() == ["<m0@contoso.com>", "<r2@example.com>"]


@pytest.mark.parametrize(
    "headers",
    [{"Bcc": "x@example.com"}, {"X-Bad\nName": "v"}, {"Subject": "again"}, {"X A": "v"}],
)
def test_mime_refuses_extra_headers_that_would_change_the_message(
    headers: dict[str, str],
) -> None:
    mail = compose_request(make_request(), TOKEN, CTX)
    changed = replace(mail, headers=headers)
    with pytest.raises(ValueError, match="header"):
        to_mime(changed, T0)


def test_mime_extra_header_values_stay_on_one_line() -> None:
    mail = compose_request(make_request(), TOKEN, CTX)
    changed = replace(mail, headers={"X-Note": "a\r\nBcc: x@example.com"})
    message = parse(to_mime(changed, T0))
    assert message["X-Note"] == "a Bcc: x@example.com"
    assert message["Bcc"] is None


def test_mime_needs_an_aware_date_and_a_recipient() -> None:
    mail = compose_request(make_request(), TOKEN, CTX)
    with pytest.raises(ValueError, match="time zone"):
        to_mime(mail, datetime(2025, 3, 4, 10, 12))  # noqa: DTZ001 (the point of the test)
    with pytest.raises(ValueError, match="recipient"):
        to_mime(replace(mail, to=()), T0)


def test_mime_encodes_international_domains_and_refuses_unicode_mailbox_names() -> None:
    mail = compose_request(make_request(approvers=("jürgen@müller.example",)), TOKEN, CTX)
    with pytest.raises(ValueError, match="non-ASCII"):
        to_mime(mail, T0)
    mail = compose_request(make_request(approvers=("juergen@müller.example",)), TOKEN, CTX)
    assert parse(to_mime(mail, T0))["To"].addresses[0].addr_spec == "juergen@xn--mller-kva.example"
