"""Email Settings: the settings admins know from release tools, validated and versioned.

The names and meanings follow the classic "Email Settings" page: SMTP auth type, SMTP User,
SMTP OAuth Application, SMTP From Address, Email Reply Folder, Approval Reply Address...
With OAuth, Graph is used for both sending and reading; SMTP and IMAP hosts are only
needed for ``basic`` auth. Every save is a new version, recorded in the audit log with who
made it and which fields changed (never the passwords' values).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from replygate.errors import InvalidInput
from replygate.services.applications import Sealer
from replygate.services.ports import Clock, SettingsVersion, UnitOfWork
from replygate.services.requesting import valid_address

PASSWORD_PURPOSE = "mail password"  # noqa: S105 - a label, not a password
AuthType = Literal["none", "basic", "oauth"]
Security = Literal["none", "starttls", "tls"]


class EmailSettings(BaseModel):
    """One version of Email Settings. Field descriptions are the help text in the console."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    smtp_auth_type: AuthType = Field(
        "oauth", description="How replygate sends: oauth (Microsoft Graph), basic (SMTP), none."
    )
    imap_auth_type: AuthType = Field(
        "oauth", description="How replygate reads replies: oauth (Microsoft Graph), basic (IMAP)."
    )
    smtp_user: str | None = Field(
        None,
        description="The Microsoft 365 account that authorises replygate (delegated mode) "
        "and through which Graph is called. With OAuth, Graph is used, not SMTP.",
    )
    smtp_oauth_application: str | None = Field(
        None, description="The OAuth application (by name) used for Graph."
    )
    smtp_from_address: str | None = Field(
        None,
        description="The mailbox requests are sent from. A shared mailbox needs Send As "
        "for the SMTP User.",
    )
    smtp_host: str | None = Field(None, description="SMTP server (basic auth only).")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port (basic auth only).")
    smtp_security: Security = Field("starttls", description="SMTP transport security.")
    smtp_username: str | None = Field(None, description="SMTP login (basic auth only).")
    imap_host: str | None = Field(
        None,
        description="IMAP server (basic auth only). Leave the IMAP section mostly blank "
        "when the same user sends and receives.",
    )
    imap_port: int = Field(993, ge=1, le=65535, description="IMAP port (basic auth only).")
    imap_security: Security = Field("tls", description="IMAP transport security.")
    imap_username: str | None = Field(None, description="IMAP login (basic auth only).")
    email_reply_folder: str = Field(
        "Inbox",
        description="Folder of the reply mailbox that replygate reads, e.g. Inbox/Approvals. "
        "Mail that is not a reply to replygate is never touched.",
    )
    approval_reply_address: str | None = Field(
        None, description="Where approvers' replies go; defaults to the SMTP From Address."
    )
    processed_replies: Literal["move", "delete", "keep"] = Field(
        "move", description="What happens to a processed reply."
    )
    processed_folder: str = Field(
        "Deleted Items", description="Where processed replies are moved (with 'move')."
    )
    polling_interval_seconds: int = Field(
        15, ge=5, le=3600, description="How often the reply folder is read."
    )

    @field_validator("email_reply_folder", "processed_folder")
    @classmethod
    def _folder_path(cls, value: str) -> str:
        parts = [part.strip() for part in value.strip().strip("/").split("/")]
        if not value.strip() or any(not part for part in parts):
            raise ValueError("a folder path such as Inbox/Approvals (names separated by /)")
        return "/".join(parts)

    @model_validator(mode="after")
    def _complete_for_auth_type(self) -> EmailSettings:
        if "oauth" in (self.smtp_auth_type, self.imap_auth_type):
            for name in ("smtp_user", "smtp_oauth_application", "smtp_from_address"):
                if not getattr(self, name):
                    raise ValueError(f"{name} is needed with OAuth")
        if self.smtp_auth_type == "basic" and not (self.smtp_host and self.smtp_username):
            raise ValueError("smtp_host and smtp_username are needed with basic SMTP auth")
        if self.smtp_auth_type == "basic" and not self.smtp_from_address:
            raise ValueError("smtp_from_address is needed to send")
        if self.imap_auth_type == "basic" and not (self.imap_host or self.smtp_host):
            raise ValueError("imap_host is needed with basic IMAP auth")
        return self

    @property
    def reply_address(self) -> str | None:
        return self.approval_reply_address or self.smtp_from_address

    def warnings(self) -> list[str]:
        notes = []
        if self.email_reply_folder.lower() == "inbox":
            notes.append(
                "The reply folder is Inbox: replygate reads every message there but only "
                "ever touches replies to its own requests. A dedicated folder (for example "
                "Inbox/Approvals) with an inbox rule keeps things tidier."
            )
        if self.processed_replies == "delete":
            notes.append("Processed replies are deleted; their raw MIME stays in replygate's log.")
        return notes


def _normalise_addresses(settings: EmailSettings) -> EmailSettings:
    changes = {}
    for name in ("smtp_user", "smtp_from_address", "approval_reply_address"):
        value = getattr(settings, name)
        if value:
            changes[name] = valid_address(value, name)
    return settings.model_copy(update=changes)


def parse_settings(values: dict[str, object]) -> EmailSettings:
    """Validate raw values (from a form, the API or a file) into settings, or raise."""
    try:
        return _normalise_addresses(EmailSettings.model_validate(values))
    except ValidationError as error:
        problems = []
        for item in error.errors():
            where = ".".join(str(part) for part in item["loc"]) or "settings"
            problems.append(f"{where}: {item['msg'].removeprefix('Value error, ')}")
        raise InvalidInput("; ".join(problems)) from None


def current_settings(uow: UnitOfWork) -> tuple[int, EmailSettings] | None:
    with uow:
        record = uow.email_settings.current()
        if record is None:
            return None
        return record.version, EmailSettings.model_validate(record.data)


def save_settings(
    uow: UnitOfWork,
    clock: Clock,
    sealer: Sealer,
    settings: EmailSettings,
    *,
    by: str,
    passwords: dict[str, str] | None = None,
) -> tuple[int, list[str]]:
    """Store a new version; return it with the warnings to show the admin.

    ``passwords`` ({"smtp": ..., "imap": ...}) replace the stored ones when given; when
    omitted, the previous version's passwords are kept.
    """
    now = clock.now()
    with uow:
        previous = uow.email_settings.current()
        old_data = dict(previous.data) if previous else {}
        sealed = previous.password_encrypted if previous else None
        if passwords:
            sealed = sealer.encrypt(json.dumps(passwords), PASSWORD_PURPOSE)
        data = settings.model_dump()
        record = uow.email_settings.add_version(data, sealed, now, by)
        changed = sorted(k for k in data if old_data.get(k) != data[k])
        if passwords:
            changed.append("passwords")
        if settings.reply_address:
            # The first time a folder is named, remember when: older mail in it is never processed.
            uow.folders.ensure(settings.reply_address, settings.email_reply_folder, now)
        # Mail held back by the old settings (an SMTP login refused, say) is tried at once.
        uow.outbox.retry_waiting_now(now)
        uow.audit.record(
            by, "settings.update", "email", {"version": record.version, "changed": changed}
        )
        uow.commit()
    return record.version, settings.warnings()


def stored_passwords(uow: UnitOfWork, sealer: Sealer) -> dict[str, str]:
    with uow:
        record = uow.email_settings.current()
        if record is None or record.password_encrypted is None:
            return {}
        loaded: dict[str, str] = json.loads(
            sealer.decrypt(record.password_encrypted, PASSWORD_PURPOSE)
        )
        return loaded


def settings_history(uow: UnitOfWork) -> Sequence[SettingsVersion]:
    with uow:
        return uow.email_settings.history()
