"""MIME to InboundMessage: charsets, encodings, parts, limits and broken input."""

from __future__ import annotations

import base64

from replygate.mail import inbound
from replygate.mail.inbound import decode_bytes, parse_message


def test_headers_addresses_and_ids() -> None:
    raw = (
        b"From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <juergen@contoso.de>\r\n"
        b"Sender: Assistant <assistant@contoso.de>\r\nReply-To: r@contoso.de\r\n"
        b"To: A <a@contoso.com>, b@contoso.com\r\nCc: c@contoso.com\r\n"
        b"Subject: =?iso-8859-1?q?AW=3A_Genehmigung_f=FCr?=\r\n"
        b"Message-ID: <m1@x>\r\nIn-Reply-To: <orig@x>\r\nReferences: <a@x> <b@x>\r\n <orig@x>\r\n"
        b"Date: Tue, 4 Mar 2025 10:27:14 +0000\r\n\r\nGenehmigt\r\n"
    )
    message = parse_message(raw)
    assert message.from_[0].name == "Jürgen Müller"
    assert message.from_[0].address == "juergen@contoso.de"
    assert message.sender[0].address == "assistant@contoso.de"
    assert [box.address for box in message.to] == ["a@contoso.com", "b@contoso.com"]
    assert message.subject == "AW: Genehmigung für"
    assert (message.message_id, message.in_reply_to) == ("<m1@x>", "<orig@x>")
    assert message.references == ["<a@x>", "<b@x>", "<orig@x>"]
    assert message.date is not None
    assert message.date.year == 2025
    assert (message.text or "").strip() == "Genehmigt"


def test_charsets_and_transfer_encodings() -> None:
    cp1252 = (
        b"Content-Type: text/plain; charset=windows-1252\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\nApproved =96 we=92re clear\r\n"
    )
    assert parse_message(cp1252).text == "Approved – we’re clear\r\n"
    body = base64.b64encode("Aprobado. Ya está avisado 👍".encode()).decode()
    b64 = (
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{body}\r\n"
    )
    assert "está avisado 👍" in (parse_message(b64.encode()).text or "")
    eightbit = "Content-Type: text/plain; charset=utf-8\r\n\r\nAbgelehnt: Gruß\r\n".encode()
    assert "Gruß" in (parse_message(eightbit).text or "")


def test_unknown_charset_and_invalid_bytes_are_replaced() -> None:
    raw = b"Content-Type: text/plain; charset=x-klingon\r\n\r\nApproved \xff\xfe ok\r\n"
    text = parse_message(raw).text or ""
    assert text.startswith("Approved")
    assert "ok" in text
    assert decode_bytes(b"\xe9t\xe9", None) == "été"  # undeclared: Windows-1252 after UTF-8
    assert decode_bytes(b"\xe9t\xe9", "utf-8") == "\ufffdt\ufffd"
    assert decode_bytes(b"caf\xc3\xa9", None) == "café"


def test_alternative_related_and_attachments() -> None:
    raw = (
        b'Content-Type: multipart/mixed; boundary="m"\r\n\r\n--m\r\n'
        b'Content-Type: multipart/alternative; boundary="a"\r\n\r\n'
        b"--a\r\nContent-Type: text/plain\r\n\r\nApproved\r\n"
        b"--a\r\nContent-Type: text/html\r\n\r\n"
        b"<p>Approved</p><blockquote>old</blockquote>\r\n--a--\r\n"
        b'--m\r\nContent-Type: text/plain; name="plan.txt"\r\n'
        b'Content-Disposition: attachment; filename="plan.txt"\r\n\r\nNo changes.\r\n'
        b"--m\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"JVBERi0=\r\n--m--\r\n"
    )
    message = parse_message(raw)
    assert (message.text or "").strip() == "Approved"
    assert message.html_as_text == "Approved\n> old"
    assert [(a.filename, a.content_type) for a in message.attachments] == [
        ("plan.txt", "text/plain"),
        ("", "application/pdf"),
    ]


def test_too_large_keeps_headers_only_and_never_raises() -> None:
    raw = b"Subject: big\r\nFrom: a@b.com\r\n\r\n" + b"x" * 2000
    message = parse_message(raw, max_size=1000)
    assert message.too_large
    assert message.subject == "big"
    assert message.text is None
    assert message.size == len(raw)


def test_nesting_and_part_limits(monkeypatch: object) -> None:
    depth = 40
    head = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n' for i in range(depth)
    )
    tail = "".join(f"\r\n--b{i}--" for i in reversed(range(depth)))
    raw = (head + "Content-Type: text/plain\r\n\r\nApproved" + tail).encode()
    message = parse_message(raw)
    assert message.truncated
    assert message.text is None
    many = (
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        + "".join(
            f"--b\r\nContent-Type: application/octet-stream\r\n\r\n{i}\r\n" for i in range(500)
        )
        + "--b--"
    )
    parsed = parse_message(many.encode())
    assert parsed.truncated
    assert len(parsed.attachments) < inbound.MAX_PARTS


def test_malformed_headers_are_tolerated() -> None:
    raw = (
        b"From: <<<@@@>>>\r\nTo: ;;;,,\r\nDate: not a date\r\nSubject: =?utf-8?q?broken\r\n"
        b"Content-Type: text/plain; charset=\r\nMessage-ID: no-brackets\r\n"
        b"bad header line\r\n\r\nApproved"
    )
    message = parse_message(raw)
    assert message.date is None
    assert message.message_id == "no-brackets"
    assert "broken" in message.subject


def test_an_encoded_word_that_is_not_base64_is_kept_as_written() -> None:
    # Found by the fuzz test: a NUL inside a "b" encoded word made the decoder raise.
    raw = (
        b"From: =?utf-8?b?\x00HVjw61hIEZlcm7DoW5kZXo=?= <lucia@contoso.es>\r\n"
        b"Subject: Re\r\n\r\nApproved"
    )
    message = parse_message(raw)
    assert [m.address for m in message.from_] == ["lucia@contoso.es"]


def test_report_flags() -> None:
    raw = (
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\r\n\r\n'
        b"--r\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
        b"--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns;x\r\n\r\n"
        b"Final-Recipient: rfc822;a@b.com\r\nAction: failed\r\n"
        b"--r\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        b"Message-ID: <o@x>\r\nSubject: s\r\n--r--\r\n"
    )
    message = parse_message(raw)
    assert message.is_report
    assert message.has_delivery_status
    assert not message.has_disposition_notification
    assert "Final-Recipient: rfc822;a@b.com" in (message.delivery_status or "")
    assert "Message-ID: <o@x>" in (message.returned_headers or "")
    assert (message.text or "").strip() == "failed"


def test_format_flowed_is_unflowed_so_a_wrapped_hedge_stays_on_the_first_line() -> None:
    raw = (
        b"Content-Type: text/plain; charset=utf-8; format=flowed\r\n\r\n"
        b"Approve \r\nif the canary holds.\r\n\r\n-- \r\nJana\r\n> quoted \r\n> more\r\n"
    )
    assert parse_message(raw).text == "Approve if the canary holds.\n\n-- \nJana\n> quoted more\n"
    delsp = b"Content-Type: text/plain; format=flowed; delsp=yes\r\n\r\nAppro \r\nved\r\n"
    assert parse_message(delsp).text == "Approved\n"
    fixed = b"Content-Type: text/plain\r\n\r\nApprove \r\nif the canary holds.\r\n"
    assert parse_message(fixed).text == "Approve \r\nif the canary holds.\r\n"
