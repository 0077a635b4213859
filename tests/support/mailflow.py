"""A replygate site against the emulator for worker subprocesses: shared data dir, mail
settings (app-only, fast polling), replies delivered straight into the reply folder."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import httpx

from m365emu.graph.core import graph_of
from m365emu.tenant import Tenant, User, default_tenant
from m365emu.testing import RunningEmulator
from replygate.bootstrap import Container, build
from replygate.config import load_settings
from replygate.db import migrate
from replygate.services.applications import register_application
from replygate.services.configuring import parse_settings, save_settings
from replygate.services.requesting import Created
from tests.support.emulator_app import emulator_application
from tests.support.workers import clean_environment

SHARED = "approvals@contoso.test"
INSTANCE = "e2e"
APPROVERS = tuple(f"{n}@contoso.test" for n in ("alice", "bob", "carol", "dave", "erin"))


def tenant_with_five_approvers() -> Tenant:
    """The default tenant plus dave@ and erin@, so a request can have five approvers."""
    tenant = default_tenant()
    for name in ("dave", "erin"):
        upn = f"{name}@contoso.test"
        tenant.users.append(User(str(uuid.uuid4()), upn, name.title(), upn))
    return tenant


@dataclass
class Site:
    emu: RunningEmulator
    container: Container
    data_dir: Path
    database_url: str | None
    folder: str

    def worker_env(self, **extra: str) -> dict[str, str]:
        env = {
            "REPLYGATE_DATA_DIR": str(self.data_dir),
            "REPLYGATE_INSTANCE": INSTANCE,
            "REPLYGATE_CA_BUNDLE": str(self.emu.ca_file),
            "REPLYGATE_PUBLIC_URL": "https://127.0.0.1:8443",
            "REPLYGATE_LOG_LEVEL": "INFO",
        }
        if self.database_url:
            env["REPLYGATE_DATABASE_URL"] = self.database_url
        return clean_environment(**env, **extra)


def make_site(
    emu: RunningEmulator, data_dir: Path, folder: str, database_url: str | None = None
) -> Site:
    """Migrated database, application registered (app-only), Email Settings saved, and
    the folder known as configured now, so mail delivered after this is processed."""
    extra: dict[str, Any] = {"database_url": database_url} if database_url else {}
    settings = load_settings(
        data_dir=data_dir,
        instance=INSTANCE,
        ca_bundle=emu.ca_file,
        public_url="https://127.0.0.1:8443",
        **extra,
    )
    container = build(settings)
    migrate.upgrade(container.engine)
    container.verify_secret_key()
    app = emulator_application(emu, mode="app-only")
    register_application(container.uow(), container.clock, container.secrets, app, by="test")
    mail = parse_settings(
        {
            "smtp_user": "svc-replygate@contoso.test",
            "smtp_oauth_application": "emulator",
            "smtp_from_address": SHARED,
            "email_reply_folder": folder,
            "polling_interval_seconds": 5,
        }
    )
    save_settings(container.uow(), container.clock, container.secrets, mail, by="test")
    with container.uow() as uow:
        uow.folders.ensure(SHARED, folder, container.clock.now())
        uow.commit()
    return Site(emu, container, data_dir, database_url, folder)


def reply_mail(sender: str, created: Created, text: str) -> tuple[str, bytes]:
    """An approver's reply from inside the tenant (a Received line, not stamped external)."""
    message_id = make_msgid(domain="contoso.test")
    now = format_datetime(datetime.now(UTC))
    raw = (
        f"Received: from laptop.contoso.test (10.1.2.3) by mail.contoso.test with MAPI; {now}\r\n"
        f"From: {sender}\r\nTo: {SHARED}\r\n"
        f"Subject: RE: [{created.token}] {created.request.title}\r\n"
        f"Message-ID: {message_id}\r\nDate: {now}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{text}\r\n\r\n-----Original Message-----\r\n> Reply APPROVE or REJECT.\r\n"
    )
    return message_id, raw.encode()


def unrelated_mail(index: int) -> bytes:
    return (
        f"From: newsletter@example.org\r\nTo: {SHARED}\r\nSubject: Weekly news {index}\r\n"
        f"Message-ID: <news-{index}@example.org>\r\n\r\nNothing to approve here.\r\n"
    ).encode()


def foreign_mail() -> bytes:
    """Another instance's token: never ours to touch (safety rule 2)."""
    return (
        f"Received: from laptop.contoso.test by mail.contoso.test with MAPI\r\n"
        f"From: alice@contoso.test\r\nTo: {SHARED}\r\n"
        "Subject: RE: [RG-prod-7KQ2M9XW4D] Deploy billing\r\n"
        "Message-ID: <foreign-1@contoso.test>\r\n\r\nApproved\r\n"
    ).encode()


def deliver(emu: RunningEmulator, folder: str, raws: Iterable[bytes]) -> None:
    """Straight into the shared mailbox's folder, as Exchange would after transport."""
    graph = graph_of(emu.state)
    mailbox = graph.mail.store.mailbox_for(SHARED)
    assert mailbox is not None
    with emu.state.lock:
        for raw in raws:
            graph.mail.deliver_raw(mailbox, raw, folder, apply_rules=False)


def listing(control: httpx.Client, mailbox: str, folder: str) -> list[dict[str, Any]]:
    answer = control.get(f"/_emu/mailboxes/{mailbox}/folders/{folder}/messages")
    answer.raise_for_status()
    return list(answer.json()["value"])
