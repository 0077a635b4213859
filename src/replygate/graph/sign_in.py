"""Sign in with Microsoft: an OpenID Connect sign-in through the real MSAL, nothing more.

The same auth-code flow with PKCE, ``prompt=select_account`` and ``form_post`` as Authorize
(`TokenProvider.start_authorization`), but with no Graph scope at all: MSAL adds ``openid
profile offline_access`` itself, which is what carries the account's claims. The tokens
live only in this object's in-memory cache and are never serialised: signing in to the
console must never touch the mailbox's token cache.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from replygate.graph.auth import OAuthAppConfig, TokenProvider, msal_failures
from replygate.graph.errors import CredentialRefused, GraphAuthorizationNeeded, GraphFailure
from replygate.graph.identity_errors import aadsts_code, classify

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
AGAIN = "Press Sign in with Microsoft again, or sign in with your replygate username and password."
CONSENT_MISSING = 65001
CONSENT_FIX = (
    "An Entra ID admin grants consent to the application (Enterprise applications > the app "
    "> Permissions > Grant admin consent); then sign in again."
)


def is_tenant_id(value: str) -> bool:
    return bool(_GUID.fullmatch(value))


@dataclass(frozen=True)
class SignedInAccount:
    """Who Microsoft signed in, from the id token the token endpoint returned to us."""

    username: str  # preferred_username
    email: str
    oid: str
    tid: str
    name: str


class MicrosoftSignIn(TokenProvider):
    """One sign-in: start it, or finish it with the flow kept from the start."""

    def __init__(self, config: OAuthAppConfig, *, http_client: requests.Session) -> None:
        super().__init__(config, None, http_client=http_client)  # a throwaway cache

    @property
    def scopes(self) -> list[str]:
        return []  # only OpenID Connect: no Graph permission is asked for

    def finish(
        self, flow: Mapping[str, Any], callback_params: Mapping[str, str]
    ) -> SignedInAccount:
        """Redeem the code (MSAL checks state, PKCE and nonce); the id token's claims."""
        redirect_uri = str(flow.get("redirect_uri") or "")
        with self._lock, msal_failures():
            try:
                result = self._msal().acquire_token_by_auth_code_flow(
                    dict(flow), dict(callback_params)
                )
            except (ValueError, RuntimeError) as error:  # state or nonce mismatch
                raise GraphAuthorizationNeeded(
                    "The answer from Microsoft does not belong to this sign-in.", fix=AGAIN
                ) from error
        if "error" in result:
            raise sign_in_error(result, redirect_uri)
        claims = result.get("id_token_claims") or {}
        # The token came straight from the token endpoint over TLS; still, an id token for
        # another application must never sign anyone in here.
        if str(claims.get("aud") or "") != self.config.client_id:
            raise GraphAuthorizationNeeded(
                "Microsoft's answer was issued for another application.", fix=AGAIN
            )
        return SignedInAccount(
            username=str(claims.get("preferred_username") or ""),
            email=str(claims.get("email") or ""),
            oid=str(claims.get("oid") or ""),
            tid=str(claims.get("tid") or ""),
            name=str(claims.get("name") or ""),
        )

    def tenant_id(self) -> str:
        """The tenant id (a GUID) MSAL found for the authority, "" when it names none.

        A domain authority resolves to its tenant id in the token endpoint Entra's discovery
        document gives (MSAL's ``authority.tenant``); the discovered ``issuer``
        (``{host}/{tid}/v2.0``) says the same where endpoints keep the domain.
        """
        with self._lock, msal_failures():
            authority = self._msal().authority
        if is_tenant_id(str(authority.tenant)):
            return str(authority.tenant)
        issuer = str(getattr(authority, "_issuer", "") or "")
        segment = urlsplit(issuer).path.strip("/").split("/")[0]
        return segment if is_tenant_id(segment) else ""


def sign_in_error(result: Mapping[str, Any], redirect_uri: str) -> GraphFailure:
    """An error answer from Microsoft in words for the person signing in (and the admin)."""
    if result.get("error") == "access_denied":
        return GraphAuthorizationNeeded(
            "The sign-in was cancelled at Microsoft.",
            fix=AGAIN,
            code="access_denied",
            aadsts=aadsts_code(result),
            description=str(result.get("error_description") or ""),
        )
    failure = classify(result, redirect_uri=redirect_uri, account="your account")
    # The application's own problems (redirect URI, secret, tenant) keep their admin fix;
    # the rest speak of Authorize and the SMTP User, while here a person signs in.
    if not isinstance(failure, CredentialRefused):
        failure.fix = CONSENT_FIX if failure.aadsts == CONSENT_MISSING else AGAIN
    return failure
