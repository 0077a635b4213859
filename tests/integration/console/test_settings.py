"""Email Settings: help text, field errors, warnings on save, write-only passwords, the test."""

from __future__ import annotations

from replygate.bootstrap import Container
from replygate.services.account_ports import Role
from replygate.services.configuring import EmailSettings, current_settings, stored_passwords
from tests.integration.console.conftest import (
    TestClient,
    post_form,
    register_app,
    save_email_settings,
    signed_in,
)

VALID = {
    "smtp_auth_type": "oauth",
    "imap_auth_type": "oauth",
    "smtp_user": "svc-replygate@contoso.test",
    "smtp_oauth_application": "contoso",
    "smtp_from_address": "approvals@contoso.test",
    "email_reply_folder": "Inbox",
    "processed_replies": "move",
    "processed_folder": "Deleted Items",
    "polling_interval_seconds": "15",
}


def test_every_field_is_shown_with_its_description(
    client: TestClient, container: Container
) -> None:
    signed_in(client, container, "root", Role.ADMIN)
    page = client.get("/settings/email").text
    for name, info in EmailSettings.model_fields.items():
        assert f'id="{name}"' in page, name
        assert info.description
        assert info.description.replace("'", "&#39;") in page, name
    assert "With oauth, Microsoft Graph is used, not SMTP or IMAP" in page
    assert "Not saved yet" in page


def test_errors_are_shown_next_to_their_fields(client: TestClient, container: Container) -> None:
    register_app(container)
    signed_in(client, container, "root", Role.ADMIN)
    bad = {**VALID, "smtp_user": "", "smtp_from_address": "not-an-address", "smtp_port": "99999"}
    answer = post_form(client, "/settings/email", "/settings/email", bad)
    assert answer.status_code == 422
    page = answer.text
    assert 'id="smtp_port-error"' in page
    assert 'id="smtp_port" name="smtp_port"' in page
    assert 'aria-invalid="true"' in page
    assert "These settings were not saved" in page
    assert 'value="not-an-address"' in page  # what was typed is kept
    assert current_settings(container.uow()) is None

    missing = post_form(client, "/settings/email", "/settings/email", {**VALID, "smtp_user": ""})
    assert missing.status_code == 422
    assert '<p class="field-error" id="smtp_user-error">smtp_user is needed with OAuth' in (
        missing.text
    )
    folder = post_form(
        client, "/settings/email", "/settings/email", {**VALID, "email_reply_folder": "Inbox//x"}
    )
    assert 'id="email_reply_folder-error"' in folder.text


def test_saving_shows_warnings_and_records_a_version(
    client: TestClient, container: Container
) -> None:
    register_app(container)
    signed_in(client, container, "root", Role.ADMIN)
    answer = post_form(client, "/settings/email", "/settings/email", VALID)
    assert answer.status_code == 303
    page = client.get("/settings/email").text
    assert "Email Settings saved as version 1." in page
    assert "The reply folder is Inbox" in page
    assert "Version 1 is in force" in page
    current = current_settings(container.uow())
    assert current is not None
    assert current[1].smtp_user == "svc-replygate@contoso.test"
    audit = client.get("/audit").text
    assert "settings.update" in audit


def test_passwords_are_write_only_and_kept_when_left_empty(
    client: TestClient, container: Container
) -> None:
    register_app(container)
    signed_in(client, container, "root", Role.ADMIN)
    post_form(
        client,
        "/settings/email",
        "/settings/email",
        {**VALID, "smtp_password": "smtp-pass-1", "imap_password": "imap-pass-1"},
    )
    page = client.get("/settings/email").text
    assert "smtp-pass-1" not in page
    assert "imap-pass-1" not in page
    assert "a password is stored; leave empty to keep it" in page
    post_form(client, "/settings/email", "/settings/email", {**VALID, "smtp_password": "new"})
    assert stored_passwords(container.uow(), container.secrets) == {
        "smtp": "new",
        "imap": "imap-pass-1",
    }
    post_form(client, "/settings/email", "/settings/email", VALID)
    assert stored_passwords(container.uow(), container.secrets)["smtp"] == "new"


def test_the_configuration_test_shows_each_step_with_its_fix(
    client: TestClient, container: Container
) -> None:
    register_app(container)
    save_email_settings(container)
    signed_in(client, container, "root", Role.ADMIN, email="root@contoso.test")
    page = client.get("/settings/email").text
    assert 'value="root@contoso.test"' in page  # the test mail goes to the admin by default
    answer = post_form(
        client, "/settings/email", "/settings/email/test", {"send_to": "root@contoso.test"}
    )
    assert answer.status_code == 200
    report = answer.text
    assert "Some steps did not pass" in report
    assert '<span class="badge step-failed">failed</span> <strong>token</strong>' in report
    assert "has no authorised account" in report
    assert "How to fix:</strong> press Authorize and sign in as svc-replygate@contoso.test" in (
        report
    )
    assert report.count("step-skipped") >= 3
    assert "settings.test" in client.get("/audit").text
