"""OAuth Applications: register with field errors, edit, remove, Entra ID guidance, expiry."""

from __future__ import annotations

from datetime import timedelta

from replygate.bootstrap import Container
from replygate.db.tables import TokenCacheRow
from replygate.services.account_ports import Role
from tests.integration.console.conftest import (
    CLIENT_ID,
    TENANT,
    TestClient,
    post_form,
    register_app,
    save_email_settings,
    signed_in,
)

NEW = "/settings/oauth/new"
FORM = {
    "name": "contoso",
    "tenant": TENANT,
    "client_id": CLIENT_ID,
    "mode": "delegated",
    "cloud": "global",
    "credential": "secret",
    "client_secret": "a-secret-value",
    "secret_expires_at": "2026-12-31",
}


def test_register_shows_field_errors_and_never_echoes_the_secret(
    client: TestClient, container: Container
) -> None:
    signed_in(client, container, "root", Role.ADMIN)
    bad = {**FORM, "tenant": "common", "client_secret": "typed-secret"}
    answer = post_form(client, NEW, "/settings/oauth", bad)
    assert answer.status_code == 422
    assert '<p class="field-error" id="tenant-error">' in answer.text
    assert "typed-secret" not in answer.text
    assert 'value="contoso"' in answer.text
    no_expiry = post_form(client, NEW, "/settings/oauth", {**FORM, "secret_expires_at": ""})
    assert 'id="secret_expires_at-error"' in no_expiry.text
    bad_pem = {**FORM, "credential": "certificate", "certificate_pem": "junk"}
    certificate = post_form(client, NEW, "/settings/oauth", bad_pem)
    assert 'id="certificate_pem-error">no PEM certificate found' in certificate.text


def test_register_list_edit_and_remove(client: TestClient, container: Container) -> None:
    signed_in(client, container, "root", Role.ADMIN)
    answer = post_form(client, NEW, "/settings/oauth", FORM)
    assert answer.status_code == 303
    page = client.get("/settings/oauth").text
    assert "OAuth application contoso registered. Press Authorize" in page
    assert f"{container.settings.public_url}/oauth/callback</code>" in page
    for permission in ("Mail.Send.Shared", "Mail.ReadWrite.Shared", "offline_access"):
        assert permission in page
    assert "scoped to the From and reply mailboxes" in page
    with container.uow() as uow:
        app = uow.applications.by_name("contoso")
    assert app is not None
    assert f'action="/oauth/authorize/{app.id}"' in page
    assert "a-secret-value" not in page

    edit = client.get(f"/settings/oauth/{app.id}").text
    assert 'value="contoso"' in edit
    assert "enter the secret or certificate again" in edit
    renamed = post_form(
        client, f"/settings/oauth/{app.id}", f"/settings/oauth/{app.id}", {**FORM, "name": "c2"}
    )
    assert renamed.status_code == 303
    assert "OAuth application c2 saved." in client.get("/settings/oauth").text

    twice = post_form(client, NEW, "/settings/oauth", {**FORM, "name": "c2"})
    assert twice.status_code == 422
    assert "exists already" in twice.text

    removed = post_form(client, "/settings/oauth", f"/settings/oauth/{app.id}/remove", {})
    assert removed.status_code == 303
    assert "No OAuth application is registered yet" in client.get("/settings/oauth").text


def test_expiry_warnings_at_30_and_7_days_and_token_state(
    client: TestClient, container: Container
) -> None:
    now = container.clock.now()
    register_app(container, "soon", expires=now + timedelta(days=25))
    register_app(container, "urgent", expires=now + timedelta(days=5))
    app_id = register_app(container, "contoso")
    save_email_settings(container)
    signed_in(client, container, "root", Role.ADMIN)
    page = client.get("/settings/oauth").text
    assert "The client secret of soon expires on" in page
    assert "(in 25 days): plan its replacement" in page
    assert "Urgent: the client secret of urgent expires on" in page
    assert "Contoso is not authorised: press Authorize as svc-replygate@contoso.test" in page
    with container.uow() as uow:
        uow.token_caches.put(
            TokenCacheRow(
                application_id=app_id,
                username="svc-replygate@contoso.test",
                object_id="oid",
                tenant_id="tid",
                cache_encrypted=container.secrets.encrypt("{}", "token cache"),
                authorised_at=now,
                last_refresh_at=now,
                state="needs_reauthorisation",
                last_error="AADSTS70008: the refresh token has expired",
                updated_at=now,
            )
        )
        uow.commit()
    page = client.get("/settings/oauth").text
    assert "svc-replygate@contoso.test" in page
    assert "token-needs_reauthorisation" in page
    assert "Contoso needs a new sign-in (AADSTS70008" in page
    assert "Authorize again" in page
