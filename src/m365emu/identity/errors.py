"""AADSTS errors in Microsoft's shapes.

Token endpoint errors are JSON (`error`, `error_description` starting with `AADSTS<n>:`,
`error_codes`, `timestamp`, `trace_id`, `correlation_id`, `error_uri`); see
https://learn.microsoft.com/entra/identity-platform/reference-error-codes and
https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow#error-response-1.
At /authorize, errors go back to the redirect URI as `error`/`error_description`/`state`, except
the ones that make the redirect URI untrustworthy (bad tenant, client or redirect URI): those
are shown as an error page, as Microsoft does.
"""

from __future__ import annotations

import html
import uuid
from datetime import datetime

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse


class AadError(Exception):
    """An identity-platform error: `code` is the AADSTS number, `error` the OAuth error."""

    def __init__(self, code: int, error: str, message: str, *, status: int = 400) -> None:
        super().__init__(f"AADSTS{code}: {message}")
        self.code = code
        self.error = error
        self.message = message
        self.status = status

    def description(self, trace_id: str, correlation_id: str, now: datetime) -> str:
        stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
        return (
            f"AADSTS{self.code}: {self.message} Trace ID: {trace_id} "
            f"Correlation ID: {correlation_id} Timestamp: {stamp}"
        )

    def body(self, request: Request | None, now: datetime) -> dict[str, object]:
        trace_id = str(uuid.uuid4())
        correlation_id = _correlation_id(request)
        return {
            "error": self.error,
            "error_description": self.description(trace_id, correlation_id, now),
            "error_codes": [self.code],
            "timestamp": now.strftime("%Y-%m-%d %H:%M:%SZ"),
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }

    def json_response(self, request: Request | None, now: datetime) -> JSONResponse:
        return JSONResponse(
            self.body(request, now), status_code=self.status, headers={"Cache-Control": "no-store"}
        )

    def html_response(self, request: Request | None, now: datetime) -> HTMLResponse:
        """The error page shown in the browser (no redirect back to the app)."""
        body = self.body(request, now)
        page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>Sign in to your account</title></head>
<body data-aadsts="{self.code}" data-error="{html.escape(self.error)}">
<h1>Sorry, but we're having trouble signing you in.</h1>
<p id="error-description">{html.escape(str(body["error_description"]))}</p>
<p>Trace ID: {body["trace_id"]}<br>Correlation ID: {body["correlation_id"]}</p>
</body></html>"""
        return HTMLResponse(page, status_code=self.status)


def _correlation_id(request: Request | None) -> str:
    # Microsoft echoes the client's client-request-id as the correlation id.
    if request is not None:
        given = request.headers.get("client-request-id")
        if given:
            return given
    return str(uuid.uuid4())


# --- the catalogue (messages paraphrase reference-error-codes) ------------------------


def invalid_tenant(segment: str) -> AadError:
    return AadError(
        90002,
        "invalid_request",
        f"Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and "
        "are signing into the correct cloud.",
    )


def unknown_client(client_id: str, tenant_id: str) -> AadError:
    return AadError(
        700016,
        "unauthorized_client",
        f"Application with identifier '{client_id}' was not found in the directory "
        f"'{tenant_id}'. This can happen if the application has not been installed by the "
        "administrator of the tenant or consented to by any user in the tenant.",
    )


def bad_redirect_uri(redirect_uri: str, client_id: str) -> AadError:
    return AadError(
        50011,
        "invalid_request",
        f"The redirect URI '{redirect_uri}' specified in the request does not match the "
        f"redirect URIs configured for the application '{client_id}'.",
    )


def invalid_secret(client_id: str) -> AadError:
    return AadError(
        7000215,
        "invalid_client",
        "Invalid client secret provided. Ensure the secret being sent in the request is the "
        f"client secret value, not the client secret ID, for a secret added to app '{client_id}'.",
        status=401,
    )


def expired_secret(client_id: str) -> AadError:
    return AadError(
        7000222,
        "invalid_client",
        f"The provided client secret keys for app '{client_id}' are expired. Visit the Azure "
        "portal to create new keys for your app or consider using certificate credentials.",
        status=401,
    )


def missing_credential() -> AadError:
    return AadError(
        7000218,
        "invalid_client",
        "The request body must contain the following parameter: 'client_assertion' or "
        "'client_secret'.",
        status=401,
    )


def bad_assertion(detail: str) -> AadError:
    return AadError(
        700027,
        "invalid_client",
        f"Client assertion failed signature validation. {detail}",
        status=401,
    )


def assertion_claims(detail: str) -> AadError:
    return AadError(
        700023, "invalid_client", f"Client assertion is not valid. {detail}", status=401
    )


def consent_missing(client_id: str, app_name: str, error: str = "invalid_grant") -> AadError:
    return AadError(
        65001,
        error,
        f"The user or administrator has not consented to use the application with ID "
        f"'{client_id}' named '{app_name}'. Send an interactive authorization request for this "
        "user and resource.",
    )


def refresh_revoked(issued: datetime) -> AadError:
    return AadError(
        50173,
        "invalid_grant",
        "The provided grant has expired due to it being revoked, a fresh auth token is needed. "
        "The user might have changed or reset their password. The grant was issued on "
        f"'{issued.isoformat()}' and the TokensValidFrom date (before which tokens are not "
        "valid) for this user is later.",
    )


def refresh_inactive(issued: datetime, inactive_for: str) -> AadError:
    return AadError(
        700082,
        "invalid_grant",
        f"The refresh token has expired due to inactivity. The token was issued on "
        f"{issued.isoformat()} and was inactive for {inactive_for}.",
    )


def grant_expired() -> AadError:
    return AadError(
        70008,
        "invalid_grant",
        "The provided authorization code or refresh token has expired due to inactivity. "
        "Send a new interactive authorization request for this user and resource.",
    )


def pkce_mismatch() -> AadError:
    return AadError(
        501481,
        "invalid_grant",
        "The Code_Verifier does not match the code_challenge "
        "supplied in the authorization request.",
    )


def code_redeemed() -> AadError:
    return AadError(
        54005,
        "invalid_grant",
        "OAuth2 Authorization code was already redeemed, please retry "
        "with a new valid code or use an existing refresh token.",
    )


def invalid_grant(code: int, message: str) -> AadError:
    return AadError(code, "invalid_grant", message)


def invalid_request(code: int, message: str) -> AadError:
    return AadError(code, "invalid_request", message)


def missing_parameter(name: str) -> AadError:
    return AadError(
        900144,
        "invalid_request",
        f"The request body must contain the following parameter: '{name}'.",
    )


def login_required() -> AadError:
    return AadError(
        50058,
        "login_required",
        "A silent sign-in request was sent but no user is signed in. The cookies used to "
        "represent the user's session were not sent in the request to Azure AD.",
    )
