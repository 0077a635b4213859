"""API tokens, Mail activity (raw MIME for admins only), and the credentials health check."""

from __future__ import annotations

import re
from datetime import timedelta

from replygate.bootstrap import Container
from replygate.services import accounts
from replygate.services.account_ports import Role
from replygate.services.ports import LedgerEntry
from replygate.web.credential_health import credential_check
from replygate.web.mail_health import mail_flow_check
from tests.integration.console.conftest import (
    TestClient,
    post_form,
    register_app,
    save_email_settings,
    signed_in,
    user,
)


def test_a_new_token_is_shown_once_and_can_be_revoked(
    client: TestClient, container: Container
) -> None:
    me = signed_in(client, container, "req", Role.REQUESTER)
    answer = post_form(
        client, "/tokens", "/tokens", {"name": "ci", "scope": "approvals:write", "expires": "30"}
    )
    assert answer.status_code == 303
    assert "rgt_" not in answer.headers.get("set-cookie", "")  # sealed, not readable
    page = client.get("/tokens")
    assert page.headers["cache-control"] == "no-store"
    secret = re.search(r'id="new-token" type="text" readonly value="(rgt_[^"]+)"', page.text)
    assert secret, "the new token is shown"
    assert "rgt_" not in client.get("/tokens").text  # only once
    verified, token = accounts.verify_api_token(container.uow(), container.clock, secret[1])
    assert verified.id == me.id
    revoke = post_form(client, "/tokens", f"/tokens/{token.id}/revoke", {})
    assert revoke.status_code == 303
    assert "The token was revoked" in client.get("/tokens").text


def test_token_form_errors_and_scopes_beyond_the_role(
    client: TestClient, container: Container
) -> None:
    signed_in(client, container, "viewer", Role.VIEWER)
    page = client.get("/tokens").text
    assert "settings:write" not in page
    empty = post_form(client, "/tokens", "/tokens", {"name": "", "scope": "approvals:read"})
    assert empty.status_code == 422
    assert "give the token a name" in empty.text
    beyond = post_form(client, "/tokens", "/tokens", {"name": "x", "scope": "settings:write"})
    assert beyond.status_code == 403


def test_admins_see_every_token_others_only_their_own(
    client: TestClient, container: Container
) -> None:
    other = user(container, "other", Role.REQUESTER)
    accounts.create_api_token(
        container.uow(),
        container.clock,
        user_id=other.id,
        name="others-token",
        scopes=frozenset(accounts.parse_scopes(["approvals:read"])),
        expires_in=timedelta(days=1),
    )
    signed_in(client, container, "req", Role.REQUESTER)
    assert "others-token" not in client.get("/tokens").text
    client.cookies.clear()
    signed_in(client, container, "root", Role.ADMIN)
    page = client.get("/tokens").text
    assert "others-token" in page
    assert "<td>other</td>" in page


def add_ledger(container: Container, outcome: str, raw: bytes | None) -> None:
    with container.uow() as uow:
        uow.ledger.add(
            LedgerEntry(
                mailbox="approvals@contoso.test",
                folder="Inbox",
                message_key=f"<{outcome}@example.test>",
                read_at=container.clock.now(),
                outcome=outcome,
                rules=["token:subject", "sender:not_an_approver"],
                sender="eve@example.test",
                subject=f"RE: {outcome} <script>",
                raw_mime=raw,
                disposal="none",
            )
        )
        uow.commit()


def test_mail_activity_filters_and_raw_mime_is_for_admins_as_text(
    client: TestClient, container: Container
) -> None:
    add_ledger(container, "sender", b"From: eve@example.test\r\n\r\n<b>hi</b>")
    add_ledger(container, "not_ours", None)
    signed_in(client, container, "viewer", Role.VIEWER)
    page = client.get("/activity").text
    assert "eve@example.test" in page
    assert "RE: sender &lt;script&gt;" in page
    assert "sender:not_an_approver" in page
    assert "/activity/raw" not in page
    filtered = client.get("/activity?outcome=not_ours").text
    assert "RE: not_ours" in filtered
    assert "RE: sender" not in filtered
    raw_url = "/activity/raw?mailbox=approvals%40contoso.test&key=%3Csender%40example.test%3E"
    assert client.get(raw_url).status_code == 403
    client.cookies.clear()
    signed_in(client, container, "root", Role.ADMIN)
    assert "/activity/raw?mailbox=" in client.get("/activity").text
    raw = client.get(raw_url)
    assert raw.status_code == 200
    assert raw.headers["content-type"] == "text/plain; charset=utf-8"
    assert raw.headers["content-disposition"].startswith("attachment;")
    assert raw.content == b"From: eve@example.test\r\n\r\n<b>hi</b>"
    missing = client.get(raw_url.replace("sender%40", "not_ours%40"))
    assert missing.status_code == 404


def test_the_credentials_check_warns_early_and_fails_when_mail_cannot_flow(
    container: Container,
) -> None:
    assert credential_check(container).status == "warning"  # no Email Settings yet
    now = container.clock.now()
    app_id = register_app(container, "contoso", expires=now + timedelta(days=40))
    save_email_settings(container)
    not_authorised = credential_check(container)
    assert not_authorised.status == "failing"
    assert "contoso is not authorised" in not_authorised.detail
    with container.uow() as uow:
        uow.applications.remove(app_id)
        uow.commit()
    register_app(container, "contoso", expires=now + timedelta(days=6))
    urgent = credential_check(container)
    assert "urgent: the client secret of contoso expires" in urgent.detail
    assert urgent.data["urgent"] is True
    container.clock.advance(days=7)  # type: ignore[attr-defined]
    expired = credential_check(container)
    assert expired.status == "failing"
    assert "expired on" in expired.detail
    assert "create a new one in Entra ID" in expired.detail


def test_the_dashboard_banner_shows_what_stops_mail(
    client: TestClient, container: Container
) -> None:
    register_app(container)
    save_email_settings(container)
    signed_in(client, container, "viewer", Role.VIEWER)
    page = client.get("/").text
    assert "Mail cannot flow" in page
    assert "Contoso is not authorised: press Authorize as svc-replygate@contoso.test" in page
    assert "/settings/oauth" not in page.split("<main", 1)[1]  # admin links for admins only


def test_the_mail_check_sees_failing_sends_and_an_unread_reply_folder(
    client: TestClient, container: Container
) -> None:
    assert mail_flow_check(container).status == "ok"  # nothing configured: credentials warn
    register_app(container)
    save_email_settings(container)
    assert mail_flow_check(container).status == "ok"
    with container.uow() as uow:
        retrying = uow.outbox.add("request_mail", {})
        gave_up = uow.outbox.add("request_mail", {})
        uow.outbox.reschedule(retrying, container.clock.now(), "The sign-in was revoked.\nmore")
        uow.outbox.mark_failed(gave_up, "ErrorSendAsDenied: no Send As")
        uow.commit()
    check = mail_flow_check(container)
    assert check.status == "failing"
    assert "1 mail(s) are waiting to be sent and failing: The sign-in was revoked." in check.detail
    assert "1 mail(s) could not be sent in the last day: ErrorSendAsDenied" in check.detail
    container.clock.advance(minutes=6)  # type: ignore[attr-defined]
    stale = mail_flow_check(container)
    assert "the reply folder approvals@contoso.test Inbox/Approvals has not been read at all" in (
        stale.detail
    )
    signed_in(client, container, "viewer", Role.VIEWER)
    page = client.get("/").text
    assert "Mail cannot flow" in page
    assert "The sign-in was revoked." in page
    health = client.get("/healthz").json()
    assert [c["name"] for c in health["checks"]] == ["database", "credentials", "mail"]
    assert health["status"] == "failing"
