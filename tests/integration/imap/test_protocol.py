"""The pure parts of the IMAP adapter (kept beside its integration tests)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from replygate.imap import utf7
from replygate.imap.protocol import (
    Fetched,
    expand_set,
    internaldate,
    parse_cursor,
    parse_fetch,
    parse_list,
    parse_message_id,
    remote_message,
    search_date,
    uid_set,
)
from replygate.imap.session import _once
from replygate.smtp.credentials import xoauth2_response


def test_modified_utf7_matches_the_rfc_examples() -> None:
    assert utf7.encode("~peter/mail/台北/日本語") == "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
    assert utf7.encode("Tom & Jerry") == "Tom &- Jerry"
    assert utf7.decode("Entw&APw-rfe") == "Entwürfe"
    assert utf7.decode("broken &AOQ") == "broken &AOQ"  # malformed: kept as the id it is


@given(st.text())
def test_modified_utf7_round_trips(name: str) -> None:
    encoded = utf7.encode(name)
    assert encoded.isascii()
    assert utf7.decode(encoded) == name


def test_list_lines_quoted_literal_and_nil_delimiter() -> None:
    folders = parse_list(
        [
            b'(\\HasNoChildren \\Trash) "." Trash',
            b'(\\HasChildren) "/" "INBOX/With \\"quotes\\""',
            (b'(\\HasNoChildren) "/" {11}', b"Odd {name}"),
            b"(\\Noselect) NIL Public",
            None,
        ]
    )
    assert [(f.name, f.delimiter) for f in folders] == [
        ("Trash", "."),
        ('INBOX/With "quotes"', "/"),
        ("Odd {name}", "/"),
        ("Public", None),
    ]
    assert "\\trash" in folders[0].flags
    assert not folders[3].selectable


def test_uid_sets() -> None:
    assert uid_set([7, 1, 2, 3, 9, 10]) == "1:3,7,9:10"
    assert expand_set("1:3,7,10:9") == [1, 2, 3, 7, 9, 10]


def test_internaldate_and_search_dates() -> None:
    assert internaldate(" 6-Jan-2026 10:30:00 +0100") == datetime(2026, 1, 6, 9, 30, tzinfo=UTC)
    assert internaldate("garbage") is None
    assert search_date(datetime(2026, 3, 1, 0, 5, tzinfo=UTC)) == "28-Feb-2026"


def test_fetch_answers_with_items_after_the_literal() -> None:
    data: list[bytes | tuple[bytes, bytes] | None] = [
        (b"1 (UID 5 FLAGS (\\Seen) BODY[HEADER] {20}", b"Subject: a\r\n\r\n"),
        b' INTERNALDATE "06-Jan-2026 10:00:00 +0000")',
        b"2 (FLAGS (\\Deleted) UID 6)",  # unsolicited, no literal: not a fetched message
        (b"3 (UID 7 BODY[HEADER] {4}", b"\r\n\r\n"),
        b")",
    ]
    first, second = parse_fetch(data)
    assert (first.uid, second.uid) == (5, 7)
    assert first.item("INTERNALDATE") == "06-Jan-2026 10:00:00 +0000"
    assert first.item("FLAGS") == "\\Seen"


def test_headers_are_parsed_without_a_second_request() -> None:
    raw = (
        b"From: =?iso-8859-1?q?J=FCrgen?= <j@contoso.test>\r\n"
        b"To: a@contoso.test,\r\n b@contoso.test\r\nSubject: =?utf-8?b?w6k=?=\r\n"
        b"Message-ID: <x@y>\r\n\r\n"
    )
    meta = '1 (UID 3 FLAGS (\\Draft) INTERNALDATE "06-Jan-2026 10:00:00 +0000"'
    message = remote_message("9:3:INBOX", Fetched(3, meta, raw))
    assert message.from_[0].name == "Jürgen"
    assert [a.address for a in message.to] == ["a@contoso.test", "b@contoso.test"]
    assert message.subject == "é"
    assert message.is_draft
    assert message.internet_message_id == "<x@y>"
    assert ("To", "a@contoso.test, b@contoso.test") in (message.headers or ())


def test_ids_and_cursors() -> None:
    assert parse_message_id("42:7:INBOX.a:b") == (42, 7, "INBOX.a:b")
    assert parse_cursor("42:7") == (42, 7)


def test_xoauth2_answers_once_then_ends_the_exchange() -> None:
    authobject = _once(xoauth2_response("u@contoso.test", "tok"))
    assert authobject(b"") == b"user=u@contoso.test\x01auth=Bearer tok\x01\x01"
    assert authobject(b'{"status":"401"}') == b""  # the server's error challenge
