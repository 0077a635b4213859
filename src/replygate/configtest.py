"""Test Email Configuration: each step passed, failed or skipped, with what to do about it.

1. a token for the SMTP User (or the app) can be obtained, for the right account;
2. a test mail goes from the From Address to the given address;
3. the Email Reply Folder of the Approval Reply Address can be read and written;
4. loop-back: an approval-format mail sent to the reply address arrives in the reply
   folder (or we say where it landed instead), is understood as a dry run, and removed.

Errors carry the plain fix the Graph adapter attached (Send As missing, Full Access
missing, consent missing, folder not found with the folders that exist, expired secret).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from replygate.bootstrap import Container
from replygate.errors import ConfigurationError, ReplygateError
from replygate.graph.client import segment
from replygate.mail.understanding import understand
from replygate.mailflow import Mailflow, open_mailflow
from replygate.services.mail_ports import Disposal, DisposalKind, OutboundMail, ReplyMailbox

LOOPBACK_WAIT_SECONDS = 60.0


class StepStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass
class StepResult:
    name: str
    status: StepStatus
    detail: str = ""
    fix: str = ""


@dataclass
class ConfigReport:
    steps: list[StepResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """No step failed. A step skipped because it was not asked for (no --to, no
        loop-back) does not count; one skipped after a failure comes with that failure."""
        return bool(self.steps) and not any(s.status is StepStatus.FAILED for s in self.steps)

    @property
    def skipped(self) -> bool:
        return any(step.status is StepStatus.SKIPPED for step in self.steps)


def run_config_test(
    container: Container,
    *,
    send_to: str | None,
    loopback: bool = True,
    wait_seconds: float = LOOPBACK_WAIT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    out_of_reach: str | None = None,
) -> ConfigReport:
    """``out_of_reach``: a mailbox an app-only application must NOT reach (proves scoping)."""
    report = ConfigReport()
    names = ["token", "test mail", "reply folder", "loop-back"]
    try:
        flow = open_mailflow(container)
    except ReplygateError as error:
        report.steps.append(StepResult(names[0], StepStatus.FAILED, error.message, error.fix))
        _skip(report, names[1:], "needs a token")
        return report
    try:
        token_ok = _step(report, names[0], lambda: _token(flow))
        if not token_ok:
            _skip(report, names[1:], "needs a token")
            return report
        if send_to:
            _step(report, names[1], lambda: _test_mail(flow, send_to))
        else:
            _skip(report, names[1:2], "no address given (--to)")
        if not _step(report, names[2], lambda: _folder(flow)):
            _skip(report, names[3:], "the reply folder cannot be used")
        elif loopback:
            _step(report, names[3], lambda: _loopback(flow, wait_seconds, sleep))
        else:
            _skip(report, names[3:], "not asked for")
        if out_of_reach:
            _step(report, "scope", lambda: _out_of_reach(flow, out_of_reach))
    finally:
        flow.save_tokens()
        flow.close()
    return report


def _out_of_reach(flow: Mailflow, mailbox: str) -> str:
    """An app-only token reaches every mailbox unless Exchange scopes it: prove it does not."""
    app = flow.application
    if app is None or app.mode != "app-only":
        return "delegated: the SMTP User's own rights limit what replygate reaches"
    try:
        flow.graph.client.get_json(
            f"users/{segment(mailbox)}/mailFolders/inbox",
            mailbox=mailbox,
            params={"$select": "id"},
        )
    except ReplygateError as error:
        if getattr(error, "status", None) == 403:
            return f"{mailbox} is out of reach for {app.name}, as it should be"
        raise
    raise ScopeTooWide(
        f"the application {app.name} can read {mailbox}: it is not restricted to the reply "
        "and From mailboxes",
        fix="restrict it with RBAC for Applications in Exchange Online (docs/microsoft-365.md, "
        "section 9): New-ServicePrincipal for the app, New-ManagementScope for the reply and "
        'From mailboxes, New-ManagementRoleAssignment -App <app> -Role "Application '
        'Mail.ReadWrite" and "Application Mail.Send" with -CustomResourceScope; then remove '
        f"the unscoped Mail.* application permissions of {app.client_id} in Entra ID",
    )


class ScopeTooWide(ReplygateError):
    """An app-only application reaches a mailbox it should not."""


def _skip(report: ConfigReport, names: list[str], why: str) -> None:
    report.steps += [StepResult(name, StepStatus.SKIPPED, why) for name in names]


def _step(report: ConfigReport, name: str, action: Callable[[], str]) -> bool:
    try:
        detail = action()
    except ReplygateError as error:
        report.steps.append(StepResult(name, StepStatus.FAILED, error.message, error.fix))
        return False
    report.steps.append(StepResult(name, StepStatus.PASSED, detail))
    return True


def _token(flow: Mailflow) -> str:
    if flow.connection is None:
        return "no OAuth in use: SMTP and IMAP log in with the stored passwords"
    # Refresh for real: a cached access token would hide a revoked grant or expired secret.
    flow.graph.tokens.access_token(force_refresh=True)
    if flow.application is not None and flow.application.mode == "delegated":
        return f"a token for {flow.settings.smtp_user} was obtained (delegated)"
    name = flow.application.name if flow.application else "the application"
    return f"an app-only token for {name} was obtained"


def _test_mail(flow: Mailflow, to: str | None) -> str:
    assert to is not None
    assert flow.settings.smtp_from_address is not None
    mail = OutboundMail(
        from_address=flow.settings.smtp_from_address,
        to=(to,),
        subject="replygate: test email",
        text="This is a test email from replygate's Test Email Configuration. Nothing to do.",
        headers=(("X-Auto-Response-Suppress", "All"),),
    )
    flow.sender.send(mail)
    return f"sent from {flow.settings.smtp_from_address} to {to}"


def _folder(flow: Mailflow) -> str:
    mailbox = flow.reply_mailbox()
    folder_id = mailbox.resolve_folder(flow.settings.email_reply_folder)
    client = flow.graph.client
    address = flow.settings.reply_address or ""
    listing = client.get_json(
        f"users/{segment(address)}/mailFolders/{segment(folder_id)}",
        mailbox=address,
        params={"$select": "displayName,totalItemCount"},
    )
    newest = client.get_json(
        f"users/{segment(address)}/mailFolders/{segment(folder_id)}/messages",
        mailbox=address,
        params={"$select": "subject", "$top": "3", "$orderby": "receivedDateTime desc"},
    )
    subjects = [str(m.get("subject") or "(no subject)") for m in newest.get("value", [])]
    # Writing (what disposal needs): create a draft in the folder, then remove it.
    probe = client.post_json(
        f"users/{segment(address)}/mailFolders/{segment(folder_id)}/messages",
        mailbox=address,
        json={"subject": "replygate write check", "body": {"contentType": "text", "content": "-"}},
    )
    mailbox.dispose([Disposal(str(probe["id"]), DisposalKind.PURGE)])
    count = listing.get("totalItemCount", "?")
    shown = "; ".join(subjects) if subjects else "none"
    folder = flow.settings.email_reply_folder
    return f"{address} {folder}: {count} message(s), newest: {shown}; writable"


def _loopback(flow: Mailflow, wait_seconds: float, sleep: Callable[[float], None]) -> str:
    assert flow.settings.smtp_from_address is not None
    address = flow.settings.reply_address or flow.settings.smtp_from_address
    # The tag looks like our tokens (so an inbox rule for "[RG-<instance>-" moves it too)
    # but holds O and L, which no real token can: it never matches a request.
    marker = f"[{rule_prefix(flow)}LOOPBACK0] replygate loop-back {secrets.token_hex(4)}"
    mail = OutboundMail(
        from_address=flow.settings.smtp_from_address,
        to=(address,),
        subject=f"RE: {marker}",
        text="Approved\n\nThis is replygate's loop-back test; it is removed automatically.",
    )
    flow.sender.send(mail)
    client = flow.graph.client
    mailbox = flow.reply_mailbox()
    target = mailbox.resolve_folder(flow.settings.email_reply_folder)
    # When From and reply address are one mailbox, the sent copy has the same subject.
    sent_items = mailbox.resolve_folder("sentitems")
    deadline = time.monotonic() + wait_seconds
    while True:
        copies = client.get_json(
            f"users/{segment(address)}/messages",
            mailbox=address,
            params={"$filter": f"subject eq 'RE: {marker}'", "$select": "id,parentFolderId"},
        ).get("value", [])
        received = [m for m in copies if m.get("parentFolderId") != sent_items]
        if received or time.monotonic() >= deadline:
            break
        sleep(2.0)
    if not received:
        _remove(mailbox, copies)
        raise LoopbackFailed(
            f"the loop-back mail to {address} did not arrive within {wait_seconds:.0f} s",
            fix="check that the reply address receives mail and is not blocked by a transport rule",
        )
    message = received[0]
    understood = understand(mailbox.fetch_mime(str(message["id"])))
    _remove(mailbox, copies)
    if message.get("parentFolderId") != target:
        raise LoopbackFailed(
            f"the loop-back mail arrived, but not in {flow.settings.email_reply_folder}",
            fix=f"add an inbox rule in {address} that moves mail whose subject contains "
            f"'[{rule_prefix(flow)}' to {flow.settings.email_reply_folder}: in Outlook (Settings "
            f"> Mail > Rules), with `replygate config create-rule`, or in PowerShell: "
            f"{rule_command(flow)}",
        )
    verdict = understood.decision.value if understood.decision else "no decision"
    return f"arrived in {flow.settings.email_reply_folder}; understood as {verdict}; removed"


def _remove(mailbox: ReplyMailbox, copies: list[dict[str, object]]) -> None:
    """Purge every copy of the loop-back mail (received and sent) so nothing is left behind."""
    if copies:
        mailbox.dispose([Disposal(str(m["id"]), DisposalKind.PURGE) for m in copies])


class LoopbackFailed(ReplygateError):
    """The loop-back mail did not arrive where replygate reads."""


def rule_prefix(flow: Mailflow) -> str:
    return f"RG-{flow.container.settings.instance}-"


def rule_command(flow: Mailflow) -> str:
    """The Exchange Online PowerShell that makes the inbox rule (for shared mailboxes)."""
    address = flow.settings.reply_address or ""
    folder = flow.settings.email_reply_folder.replace("/", "\\")
    return (
        f'New-InboxRule -Mailbox {address} -Name "replygate approval replies" '
        f'-SubjectContainsWords "[{rule_prefix(flow)}" -MoveToFolder "{address}:\\{folder}" '
        "-StopProcessingRules $true"
    )


def create_reply_rule(container: Container) -> str:
    """An inbox rule in the reply mailbox moving our replies to the Email Reply Folder.

    Graph lets a delegated token change rules only in the signed-in user's own mailbox
    (and an app-only token with MailboxSettings.ReadWrite in any): for a shared mailbox in
    delegated mode the answer is the PowerShell command an Exchange admin runs.
    """
    flow = open_mailflow(container)
    try:
        address = flow.settings.reply_address or ""
        folder_id = flow.reply_mailbox().resolve_folder(flow.settings.email_reply_folder)
        rule = {
            "displayName": f"replygate ({container.settings.instance}): approval replies",
            "sequence": 1,
            "isEnabled": True,
            "conditions": {"subjectContains": [f"[{rule_prefix(flow)}"]},
            "actions": {"moveToFolder": folder_id, "stopProcessingRules": True},
        }
        try:
            flow.graph.client.post_json(
                f"users/{segment(address)}/mailFolders/inbox/messageRules",
                mailbox=address,
                json=rule,
            )
        except ReplygateError as error:
            raise ConfigurationError(
                f"replygate may not create inbox rules in {address}: {error.message}",
                fix=f"an Exchange admin can run: {rule_command(flow)}",
            ) from None
        folder = flow.settings.email_reply_folder
        return f"rule created in {address}: subjects with [{rule_prefix(flow)} go to {folder}"
    finally:
        flow.close()
