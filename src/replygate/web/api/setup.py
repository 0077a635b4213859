"""``/api/v1/oauth-applications`` and ``/api/v1/settings/email``: set-up over the API.

Credentials are write-only: a secret or certificate goes in, and only its expiry, kind and
thumbprint ever come out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, Field

from replygate.errors import NotFound
from replygate.services import applications, configuring
from replygate.services.account_ports import Scope
from replygate.services.ports import OAuthApplication
from replygate.web.api.common import container_of, problems
from replygate.web.auth import Principal, require_scope

router = APIRouter(prefix="/api/v1", tags=["configuration"])
Reader = Annotated[Principal, Depends(require_scope(Scope.SETTINGS_READ))]
Writer = Annotated[Principal, Depends(require_scope(Scope.SETTINGS_WRITE))]
AppId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class ApplicationWrite(BaseModel):
    name: str = Field(description="A name for this application in replygate.")
    tenant: str = Field(description="Directory (tenant) ID or a verified domain.")
    client_id: str = Field(description="Application (client) ID from Entra ID.")
    mode: Literal["delegated", "app-only"] = "delegated"
    cloud: Literal["global", "us-gov", "us-gov-dod", "china", "custom"] = "global"
    client_secret: str | None = Field(
        None, description="Write-only. Give this or certificate_pem, not both."
    )
    secret_expires_at: datetime | None = Field(
        None, description="As Entra ID shows it; required with client_secret."
    )
    certificate_pem: str | None = Field(
        None, description="Certificate and private key; write-only. Its expiry is read from it."
    )
    authority_host: str | None = Field(None, description="Custom cloud only.")
    graph_url: str | None = Field(None, description="Custom cloud only.")


class ApplicationUpdate(ApplicationWrite):
    """The same fields; the credential may be left out to keep the stored one."""

    client_secret: str | None = Field(
        None,
        description="Write-only. Omit (with certificate_pem) to keep the stored credential; "
        "a new client_id, cloud or authority_host needs a new one.",
    )
    secret_expires_at: datetime | None = Field(
        None,
        description="As Entra ID shows it. Without a new client_secret it corrects the "
        "stored secret's expiry; omit to keep it. Refused for a certificate.",
    )
    certificate_pem: str | None = Field(
        None,
        description="Certificate and private key; write-only. Omit to keep the stored credential.",
    )


class PermissionRead(BaseModel):
    name: str
    kind: str
    reason: str
    optional: bool


class ApplicationRead(BaseModel):
    id: int
    name: str
    tenant: str
    client_id: str
    mode: str
    cloud: str
    credential_kind: str
    credential_expires_at: datetime | None
    certificate_thumbprint: str | None
    redirect_uri: str = Field(description="Register this in Entra ID (Web platform).")
    permissions: list[PermissionRead] = Field(description="What the mode needs, and why.")
    authorised_account: str | None
    token_state: str | None


def _read(request: Request, app: OAuthApplication) -> dict[str, Any]:
    from replygate.authorising import redirect_uri
    from replygate.graph.clouds import permissions_for

    container = container_of(request)
    assert app.id is not None  # stored applications have ids
    with container.uow() as uow:
        cache = uow.token_caches.for_application(app.id)
    return {
        "id": app.id,
        "name": app.name,
        "tenant": app.tenant,
        "client_id": app.client_id,
        "mode": app.mode,
        "cloud": app.cloud,
        "credential_kind": app.credential_kind,
        "credential_expires_at": app.credential_expires_at,
        "certificate_thumbprint": app.certificate_thumbprint,
        "redirect_uri": redirect_uri(container),
        "permissions": [vars(p) for p in permissions_for(app.mode)],
        "authorised_account": cache.username if cache else None,
        "token_state": cache.state if cache else None,
    }


def _input(body: ApplicationWrite) -> applications.ApplicationInput:
    return applications.ApplicationInput(**body.model_dump())


@router.get(
    "/oauth-applications", response_model=list[ApplicationRead], responses=problems(401, 403, 422)
)
def list_applications(request: Request, _: Reader) -> list[dict[str, Any]]:
    """Registered applications, with the account each one is authorised as."""
    return [
        _read(request, app) for app in applications.list_applications(container_of(request).uow())
    ]


@router.post(
    "/oauth-applications",
    status_code=201,
    response_model=ApplicationRead,
    responses=problems(400, 401, 403, 409, 422),
)
def register(body: ApplicationWrite, request: Request, who: Writer) -> dict[str, Any]:
    """Register an application (a client secret with its expiry, or a certificate)."""
    container = container_of(request)
    app = applications.register_application(
        container.uow(), container.clock, container.secrets, _input(body), by=who.name
    )
    return _read(request, app)


@router.put(
    "/oauth-applications/{app_id}",
    response_model=ApplicationRead,
    responses=problems(400, 401, 403, 404, 409, 422),
)
def update(app_id: AppId, body: ApplicationUpdate, request: Request, who: Writer) -> dict[str, Any]:
    """Replace an application's settings; without a credential the stored one is kept.

    A new client id, cloud or authority host needs a new credential. A new tenant, client
    id, mode, cloud, authority host or Graph URL drops the authorised account: Authorize
    again.
    """
    container = container_of(request)
    app = applications.update_application(
        container.uow(), container.clock, container.secrets, app_id, _input(body), by=who.name
    )
    return _read(request, app)


@router.delete(
    "/oauth-applications/{app_id}", status_code=204, responses=problems(401, 403, 404, 422)
)
def remove(app_id: AppId, request: Request, who: Writer) -> Response:
    applications.remove_application(container_of(request).uow(), app_id, by=who.name)
    return Response(status_code=204)


class EmailSettingsRead(BaseModel):
    version: int
    settings: dict[str, Any]
    warnings: list[str]


class EmailSettingsWrite(BaseModel):
    settings: dict[str, Any] = Field(description="The Email Settings fields (see the docs).")
    passwords: dict[str, str] | None = Field(
        None, description='Write-only {"smtp": ..., "imap": ...}; omitted keeps the stored ones.'
    )


@router.get("/settings/email", response_model=EmailSettingsRead, responses=problems(401, 403, 404))
def get_email_settings(request: Request, _: Reader) -> dict[str, Any]:
    """The Email Settings in force (passwords are never returned)."""
    current = configuring.current_settings(container_of(request).uow())
    if current is None:
        raise NotFound("no Email Settings saved yet")
    version, settings = current
    return {"version": version, "settings": settings.model_dump(), "warnings": settings.warnings()}


@router.put(
    "/settings/email", response_model=EmailSettingsRead, responses=problems(400, 401, 403, 422)
)
def put_email_settings(body: EmailSettingsWrite, request: Request, who: Writer) -> dict[str, Any]:
    """Validate and save a new version of the Email Settings (recorded in the audit log)."""
    container = container_of(request)
    settings = configuring.parse_settings(body.settings)
    version, warnings = configuring.save_settings(
        container.uow(),
        container.clock,
        container.secrets,
        settings,
        by=who.name,
        passwords=body.passwords,
    )
    return {"version": version, "settings": settings.model_dump(), "warnings": warnings}
