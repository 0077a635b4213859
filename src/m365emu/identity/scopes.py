"""Scope parsing and the consent check for delegated permissions.

Scopes arrive as `Mail.Send` or `https://graph.microsoft.com/Mail.Send` (Graph is the default
resource); `openid profile email offline_access` are OpenID Connect scopes that need no
consent. See https://learn.microsoft.com/entra/identity-platform/scopes-oidc.
"""

from __future__ import annotations

from m365emu.identity import errors
from m365emu.tenant import AppRegistration

GRAPH_AUDIENCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_RESOURCES = (GRAPH_AUDIENCE, GRAPH_APP_ID)
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})


def split_scopes(raw: str | None) -> tuple[str, ...]:
    return tuple(s for s in (raw or "").split(" ") if s)


def graph_name(scope: str) -> str | None:
    """The Graph permission name of a scope, None for OIDC scopes.

    Raises AADSTS500011 for other resources: the emulator only hosts Microsoft Graph."""
    if scope in OIDC_SCOPES:
        return None
    lowered = scope.lower()
    for resource in GRAPH_RESOURCES:
        if lowered.startswith(resource.lower() + "/"):
            return scope[len(resource) + 1 :]
    if "://" in scope or scope.startswith("api:") or "/" in scope:
        resource = scope.rsplit("/", 1)[0]
        raise errors.AadError(
            500011,
            "invalid_resource",
            f"The resource principal named {resource} was not found in the tenant. This can "
            "happen if the application has not been installed by the administrator of the "
            "tenant or consented to by any user in the tenant.",
        )
    return scope


def delegated_grant(app: AppRegistration, requested: tuple[str, ...]) -> frozenset[str]:
    """Graph scopes (short names) granted to `app` for a user; AADSTS65001 when not consented."""
    wanted: set[str] = set()
    for scope in requested:
        name = graph_name(scope)
        if name == ".default":
            wanted |= app.delegated_permissions - OIDC_SCOPES
        elif name is not None:
            wanted.add(name)
    if wanted and (not app.delegated_consent or not wanted <= app.delegated_permissions):
        raise errors.consent_missing(app.client_id, app.display_name)
    return frozenset(wanted)


def response_scope(requested: tuple[str, ...]) -> str:
    """The `scope` of a token response: the requested names as spelled, plus OIDC scopes.

    MSAL keys its cache on these names, so they must be echoed in the requested form."""
    names = [s for s in requested if s not in OIDC_SCOPES]
    if "openid" in requested:
        names += ["openid", "profile", "email"]
    return " ".join(dict.fromkeys(names))
