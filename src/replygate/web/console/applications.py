"""OAuth Applications: register, edit and remove Entra ID apps; Authorize; token state.

The page also says what to set up in Entra ID: the redirect URI to register and the API
permissions each mode needs (with why), and warns 30 and 7 days before a secret or
certificate expires.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from replygate import authorising
from replygate.errors import Conflict, InvalidInput, NotFound
from replygate.graph.clouds import permissions_for
from replygate.services.applications import (
    CLOUDS,
    MODES,
    ApplicationInput,
    register_application,
    remove_application,
    update_application,
)
from replygate.services.configuring import current_settings
from replygate.services.ports import OAuthApplication
from replygate.web.console.common import (
    Admin,
    container_of,
    field_errors,
    notify,
    snapshot,
    take_notice,
)
from replygate.web.credential_health import Finding, expiry_finding, token_finding
from replygate.web.templating import render

router = APIRouter(include_in_schema=False)
FIELDS = {
    "name",
    "tenant",
    "client_id",
    "mode",
    "cloud",
    "authority_host",
    "graph_url",
    "client_secret",
    "secret_expires_at",
    "certificate_pem",
}
ALIASES = {"certificate": "certificate_pem", "credential": "client_secret"}


@dataclass(frozen=True)
class AppRow:
    app: OAuthApplication
    cache: dict[str, Any] | None  # the token cache row's columns (never its content)
    findings: list[Finding]
    in_use: bool


@router.get("/settings/oauth")
def applications_page(request: Request, who: Admin) -> Response:
    container = container_of(request)
    current = current_settings(container.uow())
    settings = current[1] if current else None
    rows = []
    with container.uow() as uow:
        for app in uow.applications.list():
            row = uow.token_caches.for_application(app.id) if app.id else None
            cache = snapshot(row) if row is not None else None
            found = [
                f
                for f in (
                    expiry_finding(app, container.clock.now()),
                    token_finding(app, row, settings),
                )
                if f is not None
            ]
            in_use = settings is not None and settings.smtp_oauth_application == app.name
            if cache is not None:
                cache.pop("cache_encrypted")
            rows.append(AppRow(app, cache, found, in_use))
    context = {
        "title": "OAuth Applications",
        "rows": rows,
        "redirect_uri": authorising.redirect_uri(container),
        "permissions": {mode: permissions_for(mode) for mode in MODES},
        "smtp_user": settings.smtp_user if settings else None,
        "now": container.clock.now(),
        "notice": take_notice(request),
    }
    return render(request, "console/applications.html", context)


def _form_page(
    request: Request,
    values: dict[str, Any],
    *,
    app_id: int | None = None,
    errors: dict[str, str] | None = None,
    general: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    stored = _stored(request, app_id) if app_id else None
    context = {
        "title": "Edit OAuth application" if app_id else "Register an OAuth application",
        "values": values,
        "app_id": app_id,
        "errors": errors or {},
        "general": general or [],
        "clouds": CLOUDS,
        "modes": MODES,
        "redirect_uri": authorising.redirect_uri(container_of(request)),
        "kept": _kept_credential_help(stored) if stored else {},
    }
    return render(request, "console/application_form.html", context, status_code=status_code)


def _stored(request: Request, app_id: int) -> OAuthApplication:
    with container_of(request).uow() as uow:
        app = uow.applications.get(app_id)
    if app is None:
        raise NotFound(f"no OAuth application {app_id}")
    return app


def _kept_credential_help(app: OAuthApplication) -> dict[str, str]:
    """Help texts of the edit form: empty credential fields keep the stored credential."""
    expires = app.credential_expires_at
    until = f"expires {expires:%Y-%m-%d}" if expires else "no expiry recorded"
    if app.credential_kind == "secret":
        return {
            "kind": "secret",
            "client_secret": f"Leave empty to keep the stored secret ({until}). "
            "A new secret's Value (not its ID) replaces it. Write-only.",
            "secret_expires_at": "The expiry shown next to the secret in Entra ID. Change it "
            "alone to correct the stored secret's date; replygate warns 30 and 7 days before.",
            "certificate_pem": "A certificate with its private key replaces the stored secret.",
        }
    return {
        "kind": "certificate",
        "client_secret": "A client secret (with its expiry) replaces the stored certificate.",
        "secret_expires_at": "Only with a new client secret: a certificate's expiry is read "
        "from the certificate.",
        "certificate_pem": "Leave empty to keep the stored certificate "
        f"(thumbprint {app.certificate_thumbprint}, {until}). A new PEM replaces it.",
    }


@router.get("/settings/oauth/new")
def new_application(request: Request, who: Admin) -> Response:
    return _form_page(request, {"mode": "delegated", "cloud": "global", "credential": "secret"})


@router.get("/settings/oauth/{app_id}")
def edit_application(request: Request, app_id: int, who: Admin) -> Response:
    app = _stored(request, app_id)
    values = {
        "name": app.name,
        "tenant": app.tenant,
        "client_id": app.client_id,
        "mode": app.mode,
        "cloud": app.cloud,
        "authority_host": app.authority_host or "",
        "graph_url": app.graph_url or "",
        "credential": app.credential_kind,
        "secret_expires_at": _day(app.secret_expires_at),
    }
    return _form_page(request, values, app_id=app_id)


def _day(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d}" if moment else ""


def _input(form: dict[str, str], stored: OAuthApplication | None) -> ApplicationInput:
    secret = form.get("credential", "secret") == "secret"
    expiry = form.get("secret_expires_at", "").strip()
    expires_at = None
    new_secret = secret and bool(form.get("client_secret"))
    # The edit form shows the stored expiry: sent back unchanged without a new secret, it
    # keeps the stored moment (which the API may have set to a time of day).
    unchanged = stored is not None and expiry == _day(stored.secret_expires_at)
    if secret and expiry and (new_secret or not unchanged):
        try:
            # Entra ID shows a date; the secret stops working during that day (UTC).
            expires_at = datetime.combine(datetime.fromisoformat(expiry).date(), time(), UTC)
        except ValueError:
            raise InvalidInput("secret_expires_at: a date such as 2027-06-30") from None
    mode = form.get("mode", "delegated")
    return ApplicationInput(
        name=form.get("name", "").strip(),
        tenant=form.get("tenant", "").strip(),
        client_id=form.get("client_id", "").strip(),
        mode="app-only" if mode == "app-only" else "delegated",
        cloud=form.get("cloud", "global"),
        client_secret=(form.get("client_secret") or None) if secret else None,
        secret_expires_at=expires_at,
        certificate_pem=None if secret else (form.get("certificate_pem", "").strip() or None),
        authority_host=form.get("authority_host", "").strip() or None,
        graph_url=form.get("graph_url", "").strip() or None,
    )


async def _save(request: Request, who: Admin, app_id: int | None) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    container = container_of(request)
    shown = {k: v for k, v in form.items() if k not in ("client_secret", "certificate_pem")}
    stored = _stored(request, app_id) if app_id is not None else None
    try:
        data = _input(form, stored)
        if app_id is None:
            saved = register_application(
                container.uow(), container.clock, container.secrets, data, by=who.name
            )
        else:
            saved = update_application(
                container.uow(), container.clock, container.secrets, app_id, data, by=who.name
            )
    except (InvalidInput, Conflict) as error:
        by_field, general = field_errors(error.message, FIELDS | set(ALIASES))
        # A credential error belongs next to the credential the admin chose.
        chosen = "certificate_pem" if form.get("credential") == "certificate" else "client_secret"
        for alias, name in {**ALIASES, "credential": chosen}.items():
            if alias in by_field:
                by_field.setdefault(name, by_field.pop(alias))
        if isinstance(error, Conflict):
            by_field["name"] = error.message
        return _form_page(
            request, shown, app_id=app_id, errors=by_field, general=general, status_code=422
        )
    verb = "registered" if app_id is None else "saved"
    hint = " Press Authorize to sign in as the SMTP User." if saved.mode == "delegated" else ""
    notify(request, f"OAuth application {saved.name} {verb}.{hint}")
    return RedirectResponse("/settings/oauth", status_code=303)


@router.post("/settings/oauth")
async def register(request: Request, who: Admin) -> Response:
    return await _save(request, who, None)


@router.post("/settings/oauth/{app_id}")
async def update(request: Request, app_id: int, who: Admin) -> Response:
    return await _save(request, who, app_id)


@router.post("/settings/oauth/{app_id}/remove")
def remove(request: Request, app_id: int, who: Admin) -> Response:
    remove_application(container_of(request).uow(), app_id, by=who.name)
    notify(request, "The OAuth application and its stored tokens were removed.")
    return RedirectResponse("/settings/oauth", status_code=303)
