"""MSAL error dicts -> replygate errors: re-authorise, fix the configuration, or retry.

Codes from https://learn.microsoft.com/entra/identity-platform/reference-error-codes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from replygate.graph.errors import (
    CredentialRefused,
    GraphAuthorizationNeeded,
    GraphFailure,
    GraphTransient,
)

AUTHORIZE_AGAIN = "Press Authorize in replygate and sign in as {account}."

# Needs re-authorisation: code -> what happened.
REAUTHORIZE: dict[int, str] = {
    50173: "The sign-in was revoked (password changed or sessions revoked by an admin).",
    700082: "The refresh token expired because replygate did not use it for 90 days.",
    70008: "The refresh token expired or was revoked.",
    70043: "The refresh token expired under a Conditional Access sign-in frequency policy.",
    50076: "Multi-factor authentication is now required for this account.",
    50078: "The multi-factor authentication of this account expired.",
    65001: "The application's permissions are not consented (any more) for this account.",
}

CONSENT_FIX = (
    "In Entra ID > App registrations > API permissions, grant admin consent for the "
    "permissions replygate lists, then press Authorize and sign in as {account}."
)

NEW_CREDENTIAL_FIX = (
    "In Entra ID > App registrations > Certificates & secrets, create a new client secret, "
    "copy its Value (not its Secret ID) and paste it into replygate."
)

# Configuration errors: code -> (message, fix). `{redirect_uri}` and `{account}` are filled.
CONFIGURATION: dict[int, tuple[str, str]] = {
    7000215: ("The client secret was refused: it is not the app's secret.", NEW_CREDENTIAL_FIX),
    7000222: (
        "Microsoft refused the sign-in: the client secret expired; create a new one in "
        "Entra ID (Certificates & secrets) and paste it into replygate.",
        NEW_CREDENTIAL_FIX,
    ),
    50011: (
        "The redirect URI {redirect_uri} is not registered for this application.",
        "In Entra ID > App registrations > Authentication, add {redirect_uri} as a Web "
        "redirect URI (exactly, including the path).",
    ),
    700016: (
        "The application (client id) was not found in this tenant.",
        "Check the client id and the tenant; an app of another tenant must first be "
        "consented to by an admin of this one.",
    ),
    90002: (
        "The tenant was not found.",
        "Check the tenant id or domain (Entra ID > Overview) and the cloud.",
    ),
    7000229: (
        "The application has no service principal in this tenant.",
        "An admin must consent to the app (Enterprise applications > Grant admin consent).",
    ),
    500011: (
        "The resource (Microsoft Graph) is not available to this application in the tenant.",
        "Check the cloud setting: the Graph host must belong to the same cloud as the tenant.",
    ),
    700027: (
        "The client certificate was refused (unknown thumbprint or bad signature).",
        "Upload the certificate's public part to the app registration (Certificates & secrets) "
        "and check the thumbprint.",
    ),
}

TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "server_error"})


def aadsts_code(result: Mapping[str, Any]) -> int | None:
    codes = result.get("error_codes")
    if isinstance(codes, list) and codes and isinstance(codes[0], int):
        return codes[0]
    found = re.search(r"AADSTS(\d+)", str(result.get("error_description") or ""))
    return int(found.group(1)) if found else None


def classify(
    result: Mapping[str, Any], *, redirect_uri: str = "", account: str = "the SMTP User"
) -> GraphFailure:
    """The replygate error for an MSAL error dict (`error`, `error_description`, ...)."""
    error = str(result.get("error") or "")
    code = aadsts_code(result)
    info: dict[str, Any] = {
        "code": error,
        "aadsts": code,
        "description": str(result.get("error_description") or ""),
        "request_id": str(result.get("correlation_id") or ""),
    }
    values = {"redirect_uri": redirect_uri or "(the callback URL)", "account": account}
    if code in CONFIGURATION:
        message, fix = CONFIGURATION[code]
        return CredentialRefused(message.format(**values), fix=fix.format(**values), **info)
    if code in REAUTHORIZE:
        fix = CONSENT_FIX if code == 65001 else AUTHORIZE_AGAIN
        return GraphAuthorizationNeeded(REAUTHORIZE[code], fix=fix.format(**values), **info)
    if error in TRANSIENT_ERRORS or (code is not None and 500 <= code < 600 and code < 1000):
        return GraphTransient(
            "The Microsoft identity platform is temporarily unavailable.",
            fix="replygate will retry.",
            **info,
        )
    if error in ("invalid_grant", "interaction_required", "consent_required", "login_required"):
        return GraphAuthorizationNeeded(
            "The stored sign-in can no longer be used.",
            fix=AUTHORIZE_AGAIN.format(**values),
            **info,
        )
    if error == "access_denied":
        return GraphAuthorizationNeeded(
            "The sign-in was cancelled or consent was declined.",
            fix=AUTHORIZE_AGAIN.format(**values),
            **info,
        )
    if error in ("invalid_client", "unauthorized_client"):
        return CredentialRefused(
            "The application's credential (secret or certificate) was refused.",
            fix=NEW_CREDENTIAL_FIX,
            **info,
        )
    return CredentialRefused(
        f"Microsoft refused the sign-in ({error or 'unknown error'}).",
        fix="Check the OAuth application settings against Entra ID; the AADSTS code "
        "in the details names the problem.",
        **info,
    )
