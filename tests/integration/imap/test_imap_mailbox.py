"""ImapReplyMailbox against a real Dovecot: folders, UID pages, fetch, dispose."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from replygate.errors import ReplygateError, UserError
from replygate.imap import FolderNotFound, ImapConfigurationError, ImapReplyMailbox
from replygate.imap.errors import ImapFailure, MessageGone
from replygate.imap.protocol import parse_message_id
from replygate.services.mail_ports import Disposal, DisposalKind
from replygate.smtp.credentials import Basic, XOAuth2
from tests.integration.imap.conftest import MakeMailbox, settings_for
from tests.integration.imap.dovecot import OAUTH_TOKEN, Dovecot, free_port

APPROVALS = "INBOX.Approvals"  # Dovecot's Maildir++ default delimiter is "."


def mail(n: int, **headers: str) -> bytes:
    lines = {
        "From": f"=?utf-8?q?J=C3=BCrgen_{n}?= <juergen{n}@contoso.test>",
        "Sender": f"assistant{n}@contoso.test",
        "To": "Release Gate <gate@contoso.test>, ops@contoso.test",
        "Cc": "cc@contoso.test",
        "Reply-To": "back@contoso.test",
        "Subject": f"=?utf-8?q?RE:_[RG-prod-7KQ2M9XW4D]_D=C3=A9ploiement_{n}?=",
        "Message-ID": f"<msg-{n}@contoso.test>",
        "Date": "Tue, 6 Jan 2026 10:00:00 +0000",
        "Received": "from mx by gate; Tue, 6 Jan 2026 10:00:00 +0000",
        **headers,
    }
    head = "".join(f"{k}: {v}\r\n" for k, v in lines.items())
    return f"{head}\r\nAPPROVE\r\n\r\nmessage {n}\r\n".encode()


def fill(dovecot: Dovecot, user: str, count: int, folder: str = APPROVALS) -> list[int]:
    return [dovecot.append(user, folder, mail(n)) for n in range(count)]


# --- login --------------------------------------------------------------------------------


def test_starttls_and_implicit_tls_log_in(
    dovecot: Dovecot, user: str, make_mailbox: MakeMailbox
) -> None:
    assert make_mailbox().resolve_folder("Inbox") == "INBOX"
    starttls = make_mailbox(port=dovecot.imap_port, security="starttls")
    assert starttls.resolve_folder("inbox") == "INBOX"


def test_xoauth2_logs_in_against_dovecot(dovecot: Dovecot, user: str) -> None:
    settings = settings_for(dovecot, user, credentials=XOAuth2(user, lambda: OAUTH_TOKEN))
    with ImapReplyMailbox(settings) as box:
        assert box.resolve_folder("INBOX") == "INBOX"
        assert box.mailbox == user


def test_a_rejected_token_ends_cleanly_with_the_oauth_fix(dovecot: Dovecot, user: str) -> None:
    settings = settings_for(dovecot, user, credentials=XOAuth2(user, lambda: "expired-token"))
    with ImapReplyMailbox(settings) as box, pytest.raises(ImapConfigurationError) as caught:
        box.resolve_folder("INBOX")
    assert "IMAP.AccessAsUser.All" in caught.value.fix
    assert "expired-token" not in str(caught.value)


def test_a_wrong_password_is_a_plain_configuration_error(dovecot: Dovecot, user: str) -> None:
    settings = settings_for(dovecot, user, credentials=Basic(user, "nope-nope"))
    with ImapReplyMailbox(settings) as box, pytest.raises(ImapConfigurationError) as caught:
        box.resolve_folder("INBOX")
    assert isinstance(caught.value, UserError)
    assert "refused the login" in caught.value.message
    assert "nope-nope" not in str(caught.value)


def test_an_untrusted_certificate_fails_clearly(dovecot: Dovecot, user: str) -> None:
    settings = settings_for(dovecot, user, ssl_context=None)  # the system's trust store
    with ImapReplyMailbox(settings) as box, pytest.raises(ImapConfigurationError) as caught:
        box.resolve_folder("INBOX")
    assert "not trusted" in caught.value.message


def test_an_unreachable_server_is_transient(dovecot: Dovecot, user: str) -> None:
    settings = settings_for(dovecot, user, port=free_port())
    with ImapReplyMailbox(settings) as box, pytest.raises(ImapFailure, match="Could not talk"):
        box.resolve_folder("INBOX")


# --- folders ------------------------------------------------------------------------------


def test_folder_paths_follow_the_server_delimiter(
    dovecot: Dovecot, user: str, make_mailbox: MakeMailbox
) -> None:
    dovecot.create(user, APPROVALS, "INBOX.Approvals.Done", "Genehmigungen &AOQ-")
    box = make_mailbox()
    assert box.resolve_folder("Inbox/Approvals") == APPROVALS
    assert box.resolve_folder("inbox/approvals/DONE") == "INBOX.Approvals.Done"
    assert box.resolve_folder("Genehmigungen ä") == "Genehmigungen &AOQ-"
    # Outlook's names map to SPECIAL-USE folders: the default processed folder works.
    assert box.resolve_folder("Deleted Items") == "Trash"
    assert box.resolve_folder("Sent Items") == "Sent"


def test_a_missing_folder_lists_what_exists(
    dovecot: Dovecot, user: str, make_mailbox: MakeMailbox
) -> None:
    dovecot.create(user, APPROVALS)
    with pytest.raises(FolderNotFound) as caught:
        make_mailbox().resolve_folder("Inbox/Aprovals")
    assert caught.value.existing == ("INBOX", "INBOX/Approvals", "Sent", "Trash")
    assert "INBOX/Approvals" in caught.value.fix
    assert "'INBOX/Aprovals'" in caught.value.message


# --- changes ------------------------------------------------------------------------------


def test_changes_page_through_new_uids_with_parsed_headers(
    dovecot: Dovecot, user: str, make_mailbox: MakeMailbox
) -> None:
    dovecot.create(user, APPROVALS)
    uids = fill(dovecot, user, 5)
    box = make_mailbox(page_size=2)

    seen: list[str] = []
    cursor: str | None = None
    pages = []
    while True:
        page = box.changes(APPROVALS, cursor)
        pages.append((len(page.messages), page.more))
        seen += [m.internet_message_id or "" for m in page.messages]
        cursor = page.next_cursor
        if not page.more:
            break
    assert pages == [(2, True), (2, True), (1, False)]
    assert seen == [f"<msg-{n}@contoso.test>" for n in range(5)]
    assert cursor is not None
    assert cursor.endswith(f":{uids[-1]}")

    assert box.changes(APPROVALS, cursor).messages == []  # nothing new
    dovecot.append(user, APPROVALS, mail(9), flags="(\\Draft)")
    [new] = box.changes(APPROVALS, cursor).messages
    assert new.internet_message_id == "<msg-9@contoso.test>"
    assert new.is_draft
    assert new.subject == "RE: [RG-prod-7KQ2M9XW4D] Déploiement 9"
    assert [(a.address, a.name) for a in new.from_] == [("juergen9@contoso.test", "Jürgen 9")]
    assert new.sender is not None
    assert new.sender.address == "assistant9@contoso.test"
    assert [a.address for a in new.to] == ["gate@contoso.test", "ops@contoso.test"]
    assert [a.address for a in new.cc] == ["cc@contoso.test"]
    assert [a.address for a in new.reply_to] == ["back@contoso.test"]
    assert new.headers is not None
    assert ("Message-ID", "<msg-9@contoso.test>") in new.headers
    assert new.received_at is not None
    assert abs((new.received_at - datetime.now(UTC)).total_seconds()) < 120
    assert parse_message_id(new.id)[2] == APPROVALS


def test_received_at_is_the_internaldate_and_since_filters_on_it(
    dovecot: Dovecot, user: str, make_mailbox: MakeMailbox
) -> None:
    dovecot.create(user, APPROVALS)
    with dovecot.client(user) as imap:
        for n, when in ((0, "01-Jan-2026 08:00:00 +0000"), (1, "10-Jan-2026 09:30:00 +0100")):
            imap.append(APPROVALS, None, f'"{when}"', mail(n))
    box = make_mailbox()
    first, second = box.changes(APPROVALS, None).messages
    assert first.received_at == datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    assert second.received_at == datetime(2026, 1, 10, 8, 30, tzinfo=UTC)
    [late] = box.changes(APPROVALS, None, since=datetime(2026, 1, 5, tzinfo=UTC)).messages
    assert late.internet_message_id == "<msg-1@contoso.test>"


def test_sparse_uids_are_found_in_growing_windows(
    dovecot: Dovecot, user: str, make_mailbox: MakeMailbox
) -> None:
    dovecot.create(user, APPROVALS)
    uids = fill(dovecot, user, 30)
    keep = {uids[0], uids[-1]}
    with dovecot.client(user) as imap:  # leave a gap of 28 UIDs
        imap.select(APPROVALS)
        gone = ",".join(str(u) for u in uids if u not in keep)
        imap.uid("STORE", gone, "+FLAGS.SILENT", "(\\Deleted)")
        imap.expunge()
    page = make_mailbox(page_size=1).changes(APPROVALS, None)
    assert [parse_message_id(m.id)[1] for m in page.messages] == [uids[0]]
    assert page.more
    page = make_mailbox(page_size=1).changes(APPROVALS, page.next_cursor)
    assert [parse_message_id(m.id)[1] for m in page.messages] == [uids[-1]]
    assert not page.more


def test_a_new_uidvalidity_expires_the_cursor(
    dovecot: Dovecot, user: str, make_mailbox: MakeMailbox
) -> None:
    dovecot.create(user, APPROVALS)
    fill(dovecot, user, 2)
    box = make_mailbox()
    cursor = box.changes(APPROVALS, None).next_cursor
    with dovecot.client(user) as imap:  # the folder is recreated: a new UIDVALIDITY
        imap.delete(APPROVALS)
        imap.create(APPROVALS)
    fill(dovecot, user, 1)
    with pytest.raises(ReplygateError) as caught:
        box.changes(APPROVALS, cursor)
    assert type(caught.value).__name__ == "CursorExpired"  # what the reader resyncs on
    assert len(box.changes(APPROVALS, None).messages) == 1


# --- fetch --------------------------------------------------------------------------------


def test_fetch_mime_returns_the_bytes_and_leaves_the_message_unread(
    dovecot: Dovecot, user: str, make_mailbox: MakeMailbox
) -> None:
    dovecot.create(user, APPROVALS)
    uid = dovecot.append(user, APPROVALS, mail(1))
    box = make_mailbox()
    [message] = box.changes(APPROVALS, None).messages
    assert box.fetch_mime(message.id) == mail(1)  # came with the page
    assert box.fetch_mime(message.id) == mail(1)  # asked for again: from the server
    assert "\\Seen" not in dovecot.flags(user, APPROVALS, uid)
    with pytest.raises(MessageGone):
        box.fetch_mime(message.id.replace(f":{uid}:", f":{uid + 100}:"))


# --- dispose ------------------------------------------------------------------------------


@pytest.mark.parametrize("use_move", [True, False], ids=["MOVE", "COPY+EXPUNGE"])
def test_dispose_moves_only_our_messages(
    dovecot: Dovecot, user: str, make_mailbox: MakeMailbox, use_move: bool
) -> None:
    dovecot.create(user, APPROVALS, "Processed")
    _ours, other, flagged = fill(dovecot, user, 3)
    with dovecot.client(user) as imap:  # someone else's deleted-but-not-expunged mail
        imap.select(APPROVALS)
        imap.uid("STORE", str(flagged), "+FLAGS.SILENT", "(\\Deleted)")
    box = make_mailbox(use_move=use_move)
    messages = box.changes(APPROVALS, None).messages
    target = box.resolve_folder("Processed")

    [result] = box.dispose([Disposal(messages[0].id, DisposalKind.MOVE, target)])

    assert result.done
    assert result.new_id is not None
    assert parse_message_id(result.new_id)[2] == "Processed"
    assert dovecot.uids(user, APPROVALS) == [other, flagged]  # only our UID expunged
    assert "\\Deleted" in dovecot.flags(user, APPROVALS, flagged)
    assert "\\Deleted" not in dovecot.flags(user, APPROVALS, other)
    [moved] = dovecot.uids(user, "Processed")
    assert box.fetch_mime(result.new_id) == mail(0)
    assert moved == parse_message_id(result.new_id)[1]
    # Again (a retry after a crash): already gone counts as done, nothing else moves.
    [again] = box.dispose([Disposal(messages[0].id, DisposalKind.MOVE, target)])
    assert again.done
    assert again.message == "already gone"
    assert dovecot.uids(user, APPROVALS) == [other, flagged]


def test_delete_goes_to_trash_and_purge_removes(
    dovecot: Dovecot, user: str, make_mailbox: MakeMailbox
) -> None:
    dovecot.create(user, APPROVALS)
    _a, _b, c = fill(dovecot, user, 3)
    box = make_mailbox()
    first, second, _ = box.changes(APPROVALS, None).messages
    results = box.dispose(
        [Disposal(first.id, DisposalKind.DELETE), Disposal(second.id, DisposalKind.PURGE)]
    )
    assert [r.done for r in results] == [True, True]
    assert dovecot.uids(user, APPROVALS) == [c]
    assert len(dovecot.uids(user, "Trash")) == 1


def test_a_stale_uidvalidity_is_never_acted_on(
    dovecot: Dovecot, user: str, make_mailbox: MakeMailbox
) -> None:
    dovecot.create(user, APPROVALS)
    fill(dovecot, user, 1)
    box = make_mailbox()
    [message] = box.changes(APPROVALS, None).messages
    validity, uid, folder = parse_message_id(message.id)
    stale = f"{validity + 1}:{uid}:{folder}"
    [result] = box.dispose([Disposal(stale, DisposalKind.PURGE)])
    assert not result.done
    assert result.error_code == "UIDVALIDITY"
    assert len(dovecot.uids(user, APPROVALS)) == 1


def test_the_connection_is_reopened_after_it_breaks(
    dovecot: Dovecot, user: str, make_mailbox: MakeMailbox
) -> None:
    box = make_mailbox()
    assert box.resolve_folder("INBOX") == "INBOX"
    assert box._session is not None
    box._session.imap.shutdown()  # the server or the network dropped us
    with pytest.raises(ImapFailure):
        box.resolve_folder("INBOX")
    assert box.resolve_folder("INBOX") == "INBOX"


def test_after_a_pause_a_dead_connection_is_replaced_silently(
    dovecot: Dovecot, user: str, make_mailbox: MakeMailbox
) -> None:
    box = make_mailbox()
    assert box.resolve_folder("INBOX") == "INBOX"
    assert box._session is not None
    box._session.imap.shutdown()  # logged out by the server while we waited
    box._used_at -= 3600  # an hour of polling pause
    assert box.resolve_folder("INBOX") == "INBOX"


def test_large_messages_are_fetched_one_by_one_small_ones_with_the_page(
    dovecot: Dovecot, user: str, make_mailbox: MakeMailbox
) -> None:
    dovecot.create(user, APPROVALS)
    big = mail(1) + b"x" * 300_000 + b"\r\n"
    dovecot.append(user, APPROVALS, mail(0))
    big_uid = dovecot.append(user, APPROVALS, big)
    box = make_mailbox()
    small_message, big_message = box.changes(APPROVALS, None).messages
    assert list(box._prefetched) == [small_message.id]
    assert box.fetch_mime(big_message.id) == big
    assert box.fetch_mime(small_message.id) == mail(0)
    assert "\\Seen" not in dovecot.flags(user, APPROVALS, big_uid)
