"""understand(): token order, part choice, bounces, html_text details."""

from __future__ import annotations

from pathlib import Path

from replygate.domain.model import Verdict
from replygate.mail.bounces import read_bounce
from replygate.mail.html_text import html_to_text
from replygate.mail.inbound import parse_message
from replygate.mail.understanding import understand

SAMPLES = Path(__file__).parents[2] / "data" / "replies"


def alternative(text: str, html: str, subject: str = "RE: [RG-prod-7KQ2M9XW4D] x") -> bytes:
    return (
        f'Subject: {subject}\r\nContent-Type: multipart/alternative; boundary="a"\r\n\r\n'
        f"--a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
        f"--a\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--a--\r\n"
    ).encode()


def test_parts_that_disagree_give_no_decision() -> None:
    result = understand(alternative("Approved", "<p>Rejected</p>"))
    assert result.decision is None
    assert "part:conflict" in result.reasons


def test_parts_that_agree_use_the_text_part() -> None:
    result = understand(alternative("*Approve* fine", "<p><b>Approve</b> fine</p>"))
    assert (result.decision, result.comment) == (Verdict.APPROVE, "fine")
    assert "part:text" in result.reasons


def test_stub_text_part_falls_back_to_html() -> None:
    for stub in ("", "This message requires HTML to be displayed."):
        result = understand(alternative(stub, "<div>Reject</div><div>Too early.</div>"))
        assert (result.decision, result.comment) == (Verdict.REJECT, "Too early.")
        assert "part:html" in result.reasons


def test_token_comes_from_the_subject_first() -> None:
    raw = (
        b"Subject: Re: [RG-prod-7KQ2M9XW4D] x\r\n\r\n"
        b"Approved\r\n> Reference: RG-prod-4NW8CT3ZRB\r\n"
    )
    result = understand(raw)
    assert (result.token, result.token_source) == ("RG-prod-7KQ2M9XW4D", "subject")


def test_token_from_the_quoted_reference_block() -> None:
    raw = b"Subject: Re: deploy\r\n\r\nApproved\r\n\r\n> Reference: rg-PROD-4nw8ct3zrb\r\n"
    result = understand(raw)
    assert (result.token, result.token_source) == ("RG-prod-4NW8CT3ZRB", "reference_block")


def test_token_in_the_approvers_own_text_does_not_count() -> None:
    raw = b"Subject: Re: deploy\r\n\r\nApproved RG-prod-4NW8CT3ZRB, see RG-prod-7KQ2M9XW4D\r\n"
    result = understand(raw)
    assert result.token is None
    assert "token:none" in result.reasons


def test_lookalike_tokens_never_match() -> None:
    result = understand(b"Subject: Re: [RG-prod-7KQ2M9XW4O] x\r\n\r\nApproved\r\n")
    assert result.token is None  # 'O' is not in the alphabet; no substitution to '0'


def test_instance_marks_foreign_tokens() -> None:
    raw = b"Subject: Re: [RG-dev-9TJX3BQ7MA] x\r\n\r\nApproved\r\n"
    assert "token:foreign" in understand(raw, instance="prod").reasons
    assert "token:foreign" not in understand(raw, instance="dev").reasons


def test_automatic_mail_never_decides() -> None:
    raw = b"Subject: Automatic reply: [RG-prod-7KQ2M9XW4D] x\r\n\r\nApproved\r\n"
    result = understand(raw)
    assert (result.automatic, result.decision, result.comment) == (True, None, "")


def test_bounce_report_from_delivery_status() -> None:
    result = understand((SAMPLES / "050-exchange-ndr.eml").read_bytes())
    assert result.bounce is not None
    assert [r.address for r in result.bounce.recipients] == ["lena.vogt@contoso.com"]
    assert result.bounce.recipients[0].status == "5.1.10"
    assert "RecipientNotFound" in (result.bounce.recipients[0].diagnostic or "")
    assert result.bounce.original_message_id is not None
    assert result.bounce.original_message_id.startswith("<DB9PR04MB8431E4F2")
    assert result.bounce.token == "RG-prod-7KQ2M9XW4D"


def test_bounce_report_from_exchange_text_only() -> None:
    raw = (
        b"Return-Path: <>\r\nSubject: Undeliverable: [RG-prod-7KQ2M9XW4D] x\r\n\r\n"
        b"Your message to nobody@contoso.com couldn't be delivered.\r\n\r\n"
        b"Remote Server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound; not found'\r\n"
    )
    report = read_bounce(parse_message(raw))
    assert [(r.address, r.status) for r in report.recipients] == [("nobody@contoso.com", "5.1.1")]
    assert report.token == "RG-prod-7KQ2M9XW4D"


def test_bounce_with_returned_headers_part() -> None:
    raw = (
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\r\n'
        b"Subject: Delivery Status Notification (Failure)\r\n\r\n"
        b"--r\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
        b"--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns;mx\r\n\r\n"
        b"Final-Recipient: rfc822; a@fabrikam.com\r\nAction: failed\r\nStatus: 5.2.2\r\n"
        b"Diagnostic-Code: smtp; 552 5.2.2 mailbox full\r\n\r\n"
        b"Final-Recipient: rfc822; ok@fabrikam.com\r\nAction: delivered\r\nStatus: 2.0.0\r\n"
        b"--r\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <req@x>\r\n"
        b"Subject: [RG-prod-H2P6YF9VKE] Release\r\n--r--\r\n"
    )
    result = understand(raw)
    assert result.automatic
    assert result.token == "RG-prod-H2P6YF9VKE"
    assert result.bounce is not None
    assert [(r.address, r.status, r.diagnostic) for r in result.bounce.recipients] == [
        ("a@fabrikam.com", "5.2.2", "552 5.2.2 mailbox full")
    ]
    assert result.bounce.original_message_id == "<req@x>"


def test_html_text_blocks_lists_hidden_and_pre() -> None:
    html = (
        "<html><head><style>p{}</style><title>t</title></head><body>"
        "<p>Approved</p><ul><li>one</li><li>two</li></ul>"
        "<div style='display:none'>preview text</div><pre>a\n b</pre>"
        "<table><tr><td>From:</td><td>x</td></tr></table>line<br>break &amp; more</body></html>"
    )
    assert html_to_text(html) == "Approved\n- one\n- two\na\nb\nFrom:\tx\nline\nbreak & more"
    outlook_lines = "<p>A</p><p>&nbsp;</p><p>B</p><div><br></div><div>C</div>"
    assert html_to_text(outlook_lines) == "A\n\nB\n\nC"


def test_html_text_survives_broken_markup() -> None:
    for html in ("<div><p>Approved", "</div></p>Approved", "<<>>Approved<!--", "<blockquote>x"):
        assert "Approved" in html_to_text(html) or html_to_text(html) == "> x"
