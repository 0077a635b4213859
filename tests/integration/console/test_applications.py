"""OAuth Applications: register with field errors, edit, remove, Entra ID guidance, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
    assert "Leave empty to keep the stored secret (expires 2026-12-31)" in edit
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


def test_edit_without_the_secret_keeps_it_and_refuses_a_new_client_id(
    client: TestClient, container: Container
) -> None:
    app_id = register_app(container)
    with container.uow() as uow:
        before = uow.applications.get(app_id)
    assert before is not None
    signed_in(client, container, "root", Role.ADMIN)
    page = f"/settings/oauth/{app_id}"
    # The form as shown: the stored expiry filled in, the secret empty.
    shown = {**FORM, "client_secret": "", "secret_expires_at": f"{before.secret_expires_at:%F}"}
    shown.update(name="c2", tenant="fabrikam.com")
    renamed = post_form(client, page, page, shown)
    assert renamed.status_code == 303, renamed.text
    with container.uow() as uow:
        kept = uow.applications.get(app_id)
    assert kept is not None
    assert (kept.name, kept.tenant) == ("c2", "fabrikam.com")
    assert kept.secret_encrypted == before.secret_encrypted
    assert kept.secret_expires_at == before.secret_expires_at

    corrected = post_form(client, page, page, {**shown, "secret_expires_at": "2026-06-30"})
    assert corrected.status_code == 303, corrected.text
    with container.uow() as uow:
        after = uow.applications.get(app_id)
    assert after is not None
    assert after.secret_encrypted == before.secret_encrypted
    assert f"{after.secret_expires_at:%F}" == "2026-06-30"

    other = {**shown, "secret_expires_at": "2026-06-30"}
    other["client_id"] = "11111111-2222-4333-8444-555555555555"
    refused = post_form(client, page, page, other)
    assert refused.status_code == 422
    assert (
        '<p class="field-error" id="client_secret-error">a new client id needs its own client '
        "secret or certificate. Paste the credential of the new registration.</p>"
    ) in refused.text
    assert "Leave empty to keep the stored secret (expires 2026-06-30)" in refused.text
    with container.uow() as uow:
        unchanged = uow.applications.get(app_id)
    assert unchanged is not None
    assert unchanged.client_id == CLIENT_ID


def test_edit_of_a_certificate_application_says_it_is_kept(
    client: TestClient, container: Container
) -> None:
    from replygate.services.applications import ApplicationInput, register_application
    from tests.integration.services.test_configuring import certificate_pem

    pem = certificate_pem(datetime(2027, 6, 1, tzinfo=UTC))
    data = ApplicationInput(name="cert", tenant=TENANT, client_id=CLIENT_ID, certificate_pem=pem)
    app = register_application(container.uow(), container.clock, container.secrets, data, by="t")
    signed_in(client, container, "root", Role.ADMIN)
    page = f"/settings/oauth/{app.id}"
    edit = client.get(page).text
    assert (
        f"Leave empty to keep the stored certificate (thumbprint {app.certificate_thumbprint}, "
        "expires 2027-06-01)"
    ) in edit
    form = {**FORM, "name": "cert", "credential": "certificate", "client_secret": ""}
    form["secret_expires_at"] = ""
    assert post_form(client, page, page, form).status_code == 303
    wrong = {**form, "credential": "secret", "secret_expires_at": "2026-12-31"}
    refused = post_form(client, page, page, wrong)
    assert refused.status_code == 422
    assert "a certificate&#39;s expiry is read from the certificate" in refused.text


def test_edit_of_a_tenant_drops_the_authorisation(client: TestClient, container: Container) -> None:
    app_id = register_app(container)
    now = container.clock.now()
    with container.uow() as uow:
        uow.token_caches.put(
            TokenCacheRow(
                application_id=app_id,
                username="svc-replygate@contoso.test",
                object_id="oid",
                tenant_id="tid",
                cache_encrypted=container.secrets.encrypt("{}", "token cache"),
                authorised_at=now,
                updated_at=now,
            )
        )
        uow.commit()
    signed_in(client, container, "root", Role.ADMIN)
    page = f"/settings/oauth/{app_id}"
    edit = {**FORM, "client_secret": "", "secret_expires_at": "", "tenant": "fabrikam.com"}
    assert post_form(client, page, page, edit).status_code == 303
    listed = client.get("/settings/oauth").text
    assert "svc-replygate@contoso.test" not in listed
    with container.uow() as uow:
        assert uow.token_caches.for_application(app_id) is None
        details = uow.audit.recent(1)[0].details
    assert details == {
        "changed": ["tenant"],
        "credential": "kept",
        "authorisation_dropped": True,
    }


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
