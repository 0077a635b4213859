"""Test Email Configuration against the emulator: each step, and each failure with its fix."""

from __future__ import annotations

import httpx
import pytest

from m365emu.graph.core import graph_of
from m365emu.tenant import MailboxGrant
from m365emu.testing import RunningEmulator, run_msal_browser_login
from replygate import authorising
from replygate.bootstrap import Container
from replygate.configtest import ConfigReport, create_reply_rule, run_config_test
from replygate.errors import ConfigurationError
from replygate.services.configuring import parse_settings, save_settings
from tests.e2e.conftest import SHARED, configure

SVC = "svc-replygate@contoso.test"


def authorise(container: Container, emu: RunningEmulator) -> None:
    with container.uow() as uow:
        app = uow.applications.by_name("emulator")
        assert app is not None
        assert app.id is not None
    answer = run_msal_browser_login(
        authorising.start(container, app.id, by="admin"), emu.ca_file, account=SVC
    )
    authorising.finish(container, answer)


def statuses(report: ConfigReport) -> dict[str, str]:
    return {step.name: step.status.value for step in report.steps}


def step(report: ConfigReport, name: str) -> tuple[str, str]:
    found = next(s for s in report.steps if s.name == name)
    return found.detail, found.fix


def set_rights(emu: RunningEmulator, *rights: str) -> None:
    tenant = emu.state.tenant
    tenant.grants = [g for g in tenant.grants if g.mailbox != SHARED]
    if rights:
        tenant.grants.append(MailboxGrant(mailbox=SHARED, grantee=SVC, rights=frozenset(rights)))


@pytest.fixture
def delegated(emu: RunningEmulator, control: httpx.Client, container: Container) -> Container:
    control.post(f"/_emu/mailboxes/{SHARED}/folders", json={"path": "Inbox/Approvals"})
    configure(container, emu, mode="delegated", folder="Inbox/Approvals")
    authorise(container, emu)
    return container


def fast(container: Container, **options: object) -> ConfigReport:
    return run_config_test(
        container, send_to="admin@contoso.test", wait_seconds=3, sleep=lambda _: None, **options
    )  # type: ignore[arg-type]


def add_rule_as_exchange_admin(emu: RunningEmulator, words: str, folder: str) -> None:
    """What New-InboxRule does, done in the emulator's store directly."""
    store = graph_of(emu.state).mail.store
    box = store.mailbox_for(SHARED)
    assert box is not None
    target = store.ensure_path(box, folder)  # exists already; this finds it by path
    box.rules.append(
        {
            "id": "rule-1",
            "displayName": "replygate",
            "sequence": 1,
            "isEnabled": True,
            "conditions": {"subjectContains": [words]},
            "actions": {"moveToFolder": target.id, "stopProcessingRules": True},
        }
    )


def test_every_step_passes_once_the_rule_moves_replies(
    delegated: Container, emu: RunningEmulator
) -> None:
    first = fast(delegated)
    assert statuses(first) == {
        "token": "passed",
        "test mail": "passed",
        "reply folder": "passed",
        "loop-back": "failed",
    }
    detail, fix = step(first, "loop-back")
    assert "not in Inbox/Approvals" in detail
    assert '-SubjectContainsWords "[RG-e2e-"' in fix
    # Delegated tokens may not change a shared mailbox's rules: the answer is PowerShell.
    with pytest.raises(ConfigurationError, match="may not create inbox rules") as refused:
        create_reply_rule(delegated)
    assert "New-InboxRule -Mailbox approvals@contoso.test" in refused.value.fix
    add_rule_as_exchange_admin(emu, "[RG-e2e-", "Inbox/Approvals")
    second = fast(delegated)
    assert statuses(second) == dict.fromkeys(
        ["token", "test mail", "reply folder", "loop-back"], "passed"
    )
    assert "understood as approve" in step(second, "loop-back")[0]
    assert first.passed is False
    assert second.passed is True


def test_steps_not_asked_for_are_skipped_and_do_not_fail_the_test(delegated: Container) -> None:
    report = run_config_test(delegated, send_to=None, loopback=False)
    assert statuses(report) == {
        "token": "passed",
        "test mail": "skipped",
        "reply folder": "passed",
        "loop-back": "skipped",
    }
    assert report.passed is True
    assert report.skipped is True


def test_missing_send_as_names_the_grant(delegated: Container, emu: RunningEmulator) -> None:
    set_rights(emu, "FullAccess")
    report = fast(delegated, loopback=False)
    assert statuses(report)["test mail"] == "failed"
    _detail, fix = step(report, "test mail")
    assert f"Send As on {SHARED} to {SVC}" in fix


def test_missing_full_access_names_the_grant(delegated: Container, emu: RunningEmulator) -> None:
    set_rights(emu, "SendAs")
    report = fast(delegated, loopback=False)
    assert statuses(report)["reply folder"] == "failed"
    assert "Add-MailboxPermission" in step(report, "reply folder")[1]


def test_wrong_folder_lists_what_exists(delegated: Container) -> None:
    settings = parse_settings(
        {
            "smtp_user": SVC,
            "smtp_oauth_application": "emulator",
            "smtp_from_address": SHARED,
            "email_reply_folder": "Inbox/Aprovals",
        }
    )
    save_settings(delegated.uow(), delegated.clock, delegated.secrets, settings, by="test")
    report = fast(delegated)
    assert statuses(report)["reply folder"] == "failed"
    detail, fix = step(report, "reply folder")
    assert "Approvals" in detail + fix
    assert statuses(report)["loop-back"] == "skipped"


def test_missing_consent_and_expired_secret(
    delegated: Container, emu: RunningEmulator, control: httpx.Client
) -> None:
    control.put(f"/_emu/apps/{emu.client_id}/consent", json={"delegated": False})
    emu.state.revoke_refresh_tokens(SVC)
    report = fast(delegated)
    assert statuses(report)["token"] == "failed"
    assert statuses(report)["loop-back"] == "skipped"
    control.put(f"/_emu/apps/{emu.client_id}/consent", json={"delegated": True})
    control.post(f"/_emu/apps/{emu.client_id}/secrets/expire", json={})
    report = fast(delegated)
    detail, fix = step(report, "token")
    assert statuses(report)["token"] == "failed"
    assert "7000222" in detail + fix or "expired" in (detail + fix).lower()


def test_app_only_scoping_is_proved_or_the_fix_given(
    emu: RunningEmulator, control: httpx.Client, container: Container
) -> None:
    control.post(f"/_emu/mailboxes/{SHARED}/folders", json={"path": "Inbox/Approvals"})
    configure(container, emu, mode="app-only", folder="Inbox/Approvals")
    unscoped = fast(container, loopback=False, out_of_reach="alice@contoso.test")
    assert statuses(unscoped)["scope"] == "failed"
    detail, fix = step(unscoped, "scope")
    assert "can read alice@contoso.test" in detail
    assert "New-ManagementRoleAssignment -App" in fix
    app = emu.state.tenant.app_by(emu.client_id)
    assert app is not None
    app.application_mailbox_scope = [SHARED, "admin@contoso.test"]  # RBAC for Applications
    scoped = fast(container, loopback=False, out_of_reach="alice@contoso.test")
    assert statuses(scoped)["scope"] == "passed"
    assert statuses(scoped)["reply folder"] == "passed"
