"""Email Settings: every field with its help text, versioned saves, Test Email Configuration.

The form is built from ``EmailSettings`` itself (names, choices, defaults, descriptions), so
a field added there appears here. Passwords are write-only: the page never shows them, and
an empty password field keeps the stored one.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic.fields import FieldInfo
from starlette.concurrency import run_in_threadpool

from replygate import configtest
from replygate.errors import InvalidInput
from replygate.services.applications import list_applications
from replygate.services.configuring import (
    EmailSettings,
    current_settings,
    parse_settings,
    save_settings,
    settings_history,
    stored_passwords,
)
from replygate.web.console.common import Admin, container_of, field_errors, notify, take_notice
from replygate.web.templating import render

router = APIRouter(include_in_schema=False)

LABELS = {
    "smtp_auth_type": "SMTP Auth Type",
    "imap_auth_type": "IMAP Auth Type",
    "smtp_user": "SMTP User",
    "smtp_oauth_application": "SMTP OAuth Application",
    "smtp_from_address": "SMTP From Address",
    "smtp_host": "SMTP Host",
    "smtp_port": "SMTP Port",
    "smtp_security": "SMTP Security",
    "smtp_username": "SMTP Username",
    "imap_host": "IMAP Host",
    "imap_port": "IMAP Port",
    "imap_security": "IMAP Security",
    "imap_username": "IMAP Username",
    "email_reply_folder": "Email Reply Folder",
    "approval_reply_address": "Approval Reply Address",
    "processed_replies": "Processed Replies",
    "processed_folder": "Processed Folder",
    "polling_interval_seconds": "Polling Interval (seconds)",
}
SECTIONS = (
    ("Sending", ("smtp_auth_type", "smtp_user", "smtp_oauth_application", "smtp_from_address")),
    (
        "Replies",
        (
            "imap_auth_type",
            "approval_reply_address",
            "email_reply_folder",
            "processed_replies",
            "processed_folder",
            "polling_interval_seconds",
        ),
    ),
    ("SMTP server (basic auth only)", ("smtp_host", "smtp_port", "smtp_security", "smtp_username")),
    ("IMAP server (basic auth only)", ("imap_host", "imap_port", "imap_security", "imap_username")),
)
PASSWORDS = {"smtp": "smtp_password", "imap": "imap_password"}
OAUTH_NOTE = "With oauth, Microsoft Graph is used, not SMTP or IMAP: the server fields stay empty."


@dataclass(frozen=True)
class FieldView:
    name: str
    label: str
    help: str
    kind: str  # select | number | email | text
    choices: tuple[str, ...]
    value: str


def _kind(name: str, info: FieldInfo) -> tuple[str, tuple[str, ...]]:
    annotation = info.annotation
    if typing.get_origin(annotation) is typing.Literal:
        return "select", tuple(str(a) for a in typing.get_args(annotation))
    if annotation is int:
        return "number", ()
    if name.endswith(("_address", "_user")):
        return "email", ()
    return "text", ()


def form_fields(values: dict[str, Any], app_names: list[str]) -> dict[str, FieldView]:
    views = {}
    for name, info in EmailSettings.model_fields.items():
        kind, choices = _kind(name, info)
        if name == "smtp_oauth_application":
            kind, choices = "select", ("", *app_names)
        help_text = info.description or ""
        if name.endswith("_auth_type"):
            help_text = f"{help_text} {OAUTH_NOTE}"
        value = values.get(name, info.default)
        views[name] = FieldView(
            name,
            LABELS.get(name, name),
            help_text,
            kind,
            choices,
            "" if value is None else str(value),
        )
    return views


def _page(
    request: Request,
    values: dict[str, Any],
    *,
    errors: dict[str, str] | None = None,
    general: list[str] | None = None,
    report: configtest.ConfigReport | None = None,
    send_to: str = "",
    status_code: int = 200,
) -> Response:
    container = container_of(request)
    apps = [app.name for app in list_applications(container.uow())]
    current = current_settings(container.uow())
    passwords = stored_passwords(container.uow(), container.secrets) if current else {}
    who = request.state.principal
    context = {
        "title": "Email Settings",
        "fields": form_fields(values, apps),
        "sections": SECTIONS,
        "errors": errors or {},
        "general": general or [],
        "settings_version": current[0] if current else None,
        "history": settings_history(container.uow())[:5],
        "stored_passwords": {kind: kind in passwords for kind in PASSWORDS},
        "report": report,
        "send_to": send_to or (who.user.email if who and who.user.email else ""),
        "notice": take_notice(request),
    }
    return render(request, "console/settings.html", context, status_code=status_code)


@router.get("/settings/email")
def settings_page(request: Request, who: Admin) -> Response:
    current = current_settings(container_of(request).uow())
    return _page(request, current[1].model_dump() if current else {})


def _from_form(form: dict[str, str]) -> dict[str, object]:
    values: dict[str, object] = {}
    for name, info in EmailSettings.model_fields.items():
        if name not in form:
            continue  # not submitted: the model's default
        raw = form[name].strip()
        if raw:
            values[name] = raw
        elif info.default is None:
            values[name] = None
        elif info.annotation is str:
            values[name] = raw  # an empty folder is an error to show, not a silent default
    return values


def _errors(message: str) -> tuple[dict[str, str], list[str]]:
    """Field errors; the model's cross-field rules ("smtp_user is needed...") go to the first
    field they name."""
    known = set(EmailSettings.model_fields)
    by_field, general = field_errors(message, known)
    rest = []
    for text in general:
        words = text.removeprefix("settings: ").split()
        if words and words[0] in known:
            by_field.setdefault(words[0], text.removeprefix("settings: "))
        else:
            rest.append(text)
    return by_field, rest


@router.post("/settings/email")
async def save(request: Request, who: Admin) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    values = _from_form(form)
    container = container_of(request)
    try:
        settings = parse_settings(values)
    except InvalidInput as error:
        by_field, general = _errors(error.message)
        return _page(request, values, errors=by_field, general=general, status_code=422)
    given = {kind: form.get(field, "") for kind, field in PASSWORDS.items() if form.get(field)}
    passwords = None
    if given:  # replace only what was typed; keep the other stored password
        passwords = {**stored_passwords(container.uow(), container.secrets), **given}
    version, warnings = save_settings(
        container.uow(),
        container.clock,
        container.secrets,
        settings,
        by=who.name,
        passwords=passwords,
    )
    notify(
        request,
        f"Email Settings saved as version {version}.",
        "warning" if warnings else "ok",
        warnings,
    )
    return RedirectResponse("/settings/email", status_code=303)


@router.post("/settings/email/test")
async def test_configuration(request: Request, who: Admin) -> Response:
    """Run Test Email Configuration (up to a minute for the loop-back) and show each step."""
    form = await request.form()
    send_to = str(form.get("send_to") or "").strip()
    container = container_of(request)
    report = await run_in_threadpool(
        configtest.run_config_test, container, send_to=send_to or None, loopback=True
    )
    with container.uow() as uow:
        outcome = "passed" if report.passed else "failed"
        uow.audit.record(who.name, "settings.test", "email", {"outcome": outcome, "to": send_to})
        uow.commit()
    current = current_settings(container.uow())
    return _page(
        request, current[1].model_dump() if current else {}, report=report, send_to=send_to
    )
