"""replygate's Graph adapter against the emulator: HTTPS, real MSAL, real HTTP."""

from __future__ import annotations

import email.policy
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from m365emu.state import Throttling
from m365emu.tenant import AppCertificate
from m365emu.testing import RunningEmulator, run_msal_browser_login
from replygate.errors import AuthorizationNeeded, ConfigurationError
from replygate.graph.auth import CertificateCredential, GraphAuth, TokenProvider
from replygate.graph.client import Budget, GraphClient
from replygate.graph.clouds import Mode
from replygate.graph.errors import FolderNotFound, WrongAccount
from replygate.graph.mailbox import GraphReplyMailbox
from replygate.graph.sender import GraphMailSender, PermanentSendError
from replygate.services.mail_ports import Disposal, DisposalKind, OutboundMail, SendOutcome

from .conftest import SVC, Kit, set_rights

REDIRECT = "https://127.0.0.1:8443/oauth/callback"


def mail(frm: str, subject: str, to: tuple[str, ...] = ("alice@contoso.test",)) -> OutboundMail:
    return OutboundMail(
        from_address=frm,
        to=to,
        subject=subject,
        text="Reply APPROVE or REJECT",
        html="<p>Reply APPROVE or REJECT</p>",
        headers=(
            ("X-Auto-Response-Suppress", "OOF, AutoReply"),
            ("Auto-Submitted", "auto-generated"),
        ),
    )


def inbox_subjects(client: GraphClient, box: str) -> list[str]:
    body = client.get_json(
        f"users/{box}/mailFolders/inbox/messages",
        mailbox=box,
        params={"$select": "subject", "$top": "50"},
    )
    return [m["subject"] for m in body["value"]]


def authorise(emu: RunningEmulator, tokens: TokenProvider, account: str = SVC) -> None:
    flow = tokens.start_authorization(REDIRECT)
    answer = run_msal_browser_login(flow["auth_uri"], emu.ca_file, account=account)
    tokens.finish_authorization(flow, answer)


def test_app_only_draft_send_is_delivered_once_and_resume_finds_it(
    emu: RunningEmulator, kit: Kit
) -> None:
    connection = kit.connection(Mode.APP_ONLY)
    client, sender = connection.client, connection.sender
    progress = sender.create_draft(mail("approvals@contoso.test", "[RG-test-AAAAAAAAAA] Deploy"))
    assert progress.internet_message_id.startswith("<")
    assert sender.send_draft(progress).outcome is SendOutcome.SENT
    assert sender.resume(progress).outcome is SendOutcome.ALREADY_SENT  # crash after send
    assert inbox_subjects(client, "alice@contoso.test").count("[RG-test-AAAAAAAAAA] Deploy") == 1
    counts = client.counters.snapshot()["approvals@contoso.test"]
    assert (counts.requests, counts.throttled) == (3, 0)  # draft, send, resume's GET


def test_the_sent_mail_keeps_both_parts_and_every_header(emu: RunningEmulator, kit: Kit) -> None:
    connection = kit.connection(Mode.APP_ONLY)
    client, sender = connection.client, connection.sender
    composed = replace(
        mail("approvals@contoso.test", "[RG-test-BBBBBBBBBB] Caf\u00e9 release"),
        in_reply_to="<first@contoso.test>",
        references=("<first@contoso.test>",),
        message_id="<RG-test-BBBBBBBBBB.request.1a2b@contoso.test>",
    )
    progress = sender.create_draft(composed)
    assert sender.send_draft(progress).outcome is SendOutcome.SENT
    found = client.get_json(
        "users/alice@contoso.test/mailFolders/inbox/messages",
        mailbox="alice@contoso.test",
        params={"$filter": f"internetMessageId eq '{progress.internet_message_id}'"},
    )["value"]
    assert len(found) == 1
    raw = client.request(
        "GET",
        f"users/alice@contoso.test/messages/{found[0]['id']}/$value",
        mailbox="alice@contoso.test",
    ).content
    received = message_from_bytes(raw, policy=email.policy.default)
    assert received.get_content_type() == "multipart/alternative"
    parts = {p.get_content_type(): p.get_content() for p in received.iter_parts()}
    assert "Reply APPROVE or REJECT" in parts["text/plain"]
    assert "<p>Reply APPROVE or REJECT</p>" in parts["text/html"]
    assert received["Auto-Submitted"] == "auto-generated"
    assert received["X-Auto-Response-Suppress"] == "OOF, AutoReply"
    assert received["In-Reply-To"] == "<first@contoso.test>"
    assert received["References"] == "<first@contoso.test>"
    assert received["Subject"] == "[RG-test-BBBBBBBBBB] Caf\u00e9 release"
    assert received["Message-ID"] == progress.internet_message_id


def test_delegated_authorisation_then_graph_calls_and_cache_round_trip(
    emu: RunningEmulator, kit: Kit
) -> None:
    tokens = kit.provider(Mode.DELEGATED, expected_username=SVC)
    flow = tokens.start_authorization(REDIRECT)
    assert "prompt=select_account" in flow["auth_uri"]
    answer = run_msal_browser_login(flow["auth_uri"], emu.ca_file, account=SVC)
    account = tokens.finish_authorization(flow, answer)
    assert (account.username, account.tid) == (SVC, emu.tenant_id)
    assert tokens.cache_changed
    blob = tokens.serialized_cache()
    assert blob is not None

    again = kit.provider(
        Mode.DELEGATED,
        blob,
        expected_username=SVC,
        expected_oid=account.oid,
        expected_tid=account.tid,
    )
    client = kit.graph(again, SVC)
    assert client.get_json("me", mailbox=SVC)["userPrincipalName"] == SVC
    sender = GraphMailSender(client)
    result = sender.send(mail("approvals@contoso.test", "from the shared mailbox"))
    assert result.outcome is SendOutcome.SENT


def test_wrong_account_is_refused_and_nothing_is_kept(emu: RunningEmulator, kit: Kit) -> None:
    tokens = kit.provider(Mode.DELEGATED, expected_username=SVC)
    with pytest.raises(WrongAccount) as caught:
        authorise(emu, tokens, account="alice@contoso.test")
    assert "Bad User is Authenticated But Not Connected" in caught.value.message
    assert "alice@contoso.test" in caught.value.message
    assert tokens.serialized_cache() is None
    with pytest.raises(AuthorizationNeeded):
        tokens.access_token()


def test_stored_account_must_match_expected_ids(emu: RunningEmulator, kit: Kit) -> None:
    tokens = kit.provider(Mode.DELEGATED, expected_username=SVC)
    authorise(emu, tokens)
    nobody = "00000000-0000-0000-0000-000000000000"
    other = kit.provider(
        Mode.DELEGATED,
        tokens.serialized_cache(),
        expected_username=SVC,
        expected_oid=nobody,
        expected_tid=emu.tenant_id,
    )
    with pytest.raises(WrongAccount):
        other.access_token()


def test_send_as_denied_maps_to_the_plain_message(emu: RunningEmulator, kit: Kit) -> None:
    set_rights(emu, "approvals@contoso.test", SVC, "FullAccess")  # Send As taken away
    tokens = kit.provider(Mode.DELEGATED, expected_username=SVC)
    authorise(emu, tokens)
    sender = GraphMailSender(kit.graph(tokens, SVC))
    with pytest.raises(PermanentSendError) as caught:
        sender.send(mail("approvals@contoso.test", "denied"))
    assert f"Grant Send As on approvals@contoso.test to {SVC}" in caught.value.fix


def test_missing_full_access_maps_to_the_plain_message(emu: RunningEmulator, kit: Kit) -> None:
    set_rights(emu, "approvals@contoso.test", SVC)
    tokens = kit.provider(Mode.DELEGATED, expected_username=SVC)
    authorise(emu, tokens)
    mailbox = GraphReplyMailbox(kit.graph(tokens, SVC), "approvals@contoso.test")
    with pytest.raises(ConfigurationError) as caught:
        mailbox.resolve_folder("Inbox")
    assert "Add-MailboxPermission" in caught.value.fix


def test_expired_secret_says_how_to_fix_it(emu: RunningEmulator, kit: Kit) -> None:
    emu.state.expire_secret(emu.client_id)
    with pytest.raises(ConfigurationError) as caught:
        kit.provider(Mode.APP_ONLY).access_token()
    assert "the client secret expired; create a new one in Entra ID" in caught.value.message
    assert caught.value.aadsts == 7000222  # type: ignore[attr-defined]


def test_revoked_sign_in_needs_reauthorisation(emu: RunningEmulator, kit: Kit) -> None:
    tokens = kit.provider(Mode.DELEGATED, expected_username=SVC)
    authorise(emu, tokens)
    emu.state.revoke_refresh_tokens(SVC)
    with pytest.raises(AuthorizationNeeded) as caught:
        tokens.access_token(force_refresh=True)
    assert SVC in caught.value.fix


def test_folder_paths_delta_paging_and_batch_disposal(emu: RunningEmulator, kit: Kit) -> None:
    client = kit.graph(kit.provider(Mode.APP_ONLY))
    box = "approvals@contoso.test"
    inbox = client.get_json(f"users/{box}/mailFolders/inbox", mailbox=box)["id"]
    for name in ("Approvals", "Done"):
        client.post_json(
            f"users/{box}/mailFolders/{inbox}/childFolders", mailbox=box, json={"displayName": name}
        )
    mailbox = GraphReplyMailbox(client, box, page_size=2)
    folder = mailbox.resolve_folder("INBOX/approvals")
    done = mailbox.resolve_folder("Inbox/Done")
    with pytest.raises(FolderNotFound) as caught:
        mailbox.resolve_folder("Inbox/Aprovals")
    assert set(caught.value.existing) == {"Approvals", "Done"}

    sender = GraphMailSender(client)
    for i in range(5):
        sent = sender.send(mail("alice@contoso.test", f"reply {i}", to=(box,)))
        assert sent.outcome is SendOutcome.SENT
    found = client.get_json(
        f"users/{box}/mailFolders/inbox/messages",
        mailbox=box,
        params={"$select": "id", "$top": "50"},
    )["value"]
    moved = mailbox.dispose([Disposal(m["id"], DisposalKind.MOVE, folder) for m in found])
    assert all(r.done for r in moved)

    pages, cursor, seen = 0, None, []
    while True:
        page = mailbox.changes(folder, cursor)
        pages, cursor = pages + 1, page.next_cursor
        seen += page.messages
        if not page.more:
            break
    assert pages == 3
    assert sorted(m.subject for m in seen) == [f"reply {i}" for i in range(5)]
    assert all(m.headers is not None and m.from_[0].address == "alice@contoso.test" for m in seen)
    assert b"Subject: reply" in mailbox.fetch_mime(seen[0].id)

    results = mailbox.dispose(
        [Disposal(m.id, DisposalKind.MOVE, done) for m in seen[:3]]
        + [Disposal(seen[3].id, DisposalKind.DELETE)]
    )
    assert all(r.done for r in results)
    again = mailbox.dispose([Disposal(seen[0].id, DisposalKind.MOVE, done)])
    assert again[0].done  # already moved: counts as done

    later = mailbox.changes(folder, cursor)
    # changeType=created: the replies moved away do not come back as @removed pages.
    assert later.removed_ids == []
    assert not later.messages


def test_budget_matched_to_scaled_limits_causes_no_429(emu: RunningEmulator, kit: Kit) -> None:
    emu.state.throttling = Throttling(requests_per_window=8, window_seconds=1, max_concurrent=4)
    tokens = kit.provider(Mode.APP_ONLY)
    client = GraphClient(
        emu.base_url,
        GraphAuth(tokens),
        verify=emu.ssl_context(),
        budget=Budget(requests=8, window=1.0, max_attempts=1),  # a 429 would fail the test
    )
    box = "approvals@contoso.test"
    errors: list[BaseException] = []

    def read() -> None:
        try:
            client.get_json(f"users/{box}/mailFolders/inbox", mailbox=box)
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=read) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    assert errors == []
    assert client.counters.snapshot()[box].requests == 20
    assert not any(row["throttled"] for row in emu.state.counters.snapshot())


def test_retry_after_from_the_emulator_is_obeyed(emu: RunningEmulator, kit: Kit) -> None:
    emu.state.throttling = Throttling(requests_per_window=2, window_seconds=1, max_concurrent=4)
    tokens = kit.provider(Mode.APP_ONLY)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    # No client-side window: the emulator's 429 + Retry-After must do the pacing.
    client = GraphClient(
        emu.base_url, GraphAuth(tokens), verify=emu.ssl_context(), sleeper=sleep,
        budget=Budget(requests=1000, window=1.0),
    )  # fmt: skip
    box = "approvals@contoso.test"
    for _ in range(3):
        client.get_json(f"users/{box}/mailFolders/inbox", mailbox=box)
    client.close()
    counts = client.counters.snapshot()[box]
    assert counts.throttled == 1
    assert slept == [1.0]  # the emulator's Retry-After, not a backoff guess


def self_signed() -> tuple[str, str, str]:
    """(private key PEM, certificate PEM, SHA-1 thumbprint hex) of a fresh certificate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "replygate test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return key_pem, cert_pem, cert.fingerprint(hashes.SHA1()).hex()  # noqa: S303 - Entra's thumbprint


def test_certificate_credential_gets_an_app_only_token(emu: RunningEmulator, kit: Kit) -> None:
    key_pem, cert_pem, thumbprint = self_signed()
    emu.app.certificates.append(AppCertificate.from_pem(cert_pem))
    config = replace(
        kit.config(Mode.APP_ONLY), credential=CertificateCredential(key_pem, thumbprint)
    )
    session = emu.requests_session()
    try:
        tokens = TokenProvider(config, http_client=session)
        client = GraphClient(emu.base_url, GraphAuth(tokens), verify=emu.ssl_context())
        box = "approvals@contoso.test"
        assert client.get_json(f"users/{box}/mailFolders/inbox", mailbox=box)["id"]
        client.close()
    finally:
        session.close()
    assert "private_key_pem" not in repr(config)  # the key never shows in logs or tracebacks


def test_app_only_outside_its_mailbox_scope_names_the_policy(
    emu: RunningEmulator, kit: Kit
) -> None:
    emu.app.application_mailbox_scope = ["approvals@contoso.test"]
    client = kit.graph(kit.provider(Mode.APP_ONLY))
    mailbox = GraphReplyMailbox(client, "bob@contoso.test")
    with pytest.raises(ConfigurationError) as caught:
        mailbox.resolve_folder("Inbox")
    assert "application access policy" in caught.value.fix
    assert GraphReplyMailbox(client, "approvals@contoso.test").resolve_folder("Inbox")
