"""Tokens from the real MSAL: delegated auth-code flow with PKCE, or client credentials.

The token cache is a blob the caller stores encrypted (`serialized_cache`, `cache_changed`);
nothing here persists or logs a token. MSAL's error dicts become replygate errors through
`identity_errors.classify`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import msal
import requests

from replygate.graph.clouds import Cloud, CloudName, Mode, delegated_scopes, resolve_cloud
from replygate.graph.errors import (
    GraphAuthorizationNeeded,
    GraphConfigurationError,
    GraphTransient,
    WrongAccount,
)
from replygate.graph.identity_errors import classify

DEFAULT_TIMEOUT = (5.0, 30.0)  # connect, read: MSAL's own default is to wait forever


@dataclass(frozen=True)
class CertificateCredential:
    private_key_pem: str = field(repr=False)
    thumbprint: str  # SHA-1 hex, as Entra ID shows it


@dataclass(frozen=True)
class OAuthAppConfig:
    tenant: str  # id or verified domain; never "common": the account must be in this tenant
    client_id: str
    credential: str | CertificateCredential = field(repr=False)
    cloud: CloudName = CloudName.GLOBAL
    mode: Mode = Mode.DELEGATED
    authority_host: str | None = None
    graph_url: str | None = None
    # Delegated: the SMTP User, and once authorised, the account's ids (checked on every use).
    expected_username: str | None = None
    expected_oid: str | None = None
    expected_tid: str | None = None

    def resolved_cloud(self) -> Cloud:
        return resolve_cloud(
            self.cloud, authority_host=self.authority_host, graph_url=self.graph_url
        )


@dataclass(frozen=True)
class AuthorizedAccount:
    username: str
    oid: str
    tid: str
    name: str


class TimeoutSession(requests.Session):
    """A requests.Session with a default timeout (MSAL passes none with a custom client)."""

    def __init__(self, timeout: float | tuple[float, float] = DEFAULT_TIMEOUT) -> None:
        super().__init__()
        self.default_timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self.default_timeout)
        return super().request(method, url, *args, **kwargs)


class TokenProvider:
    """One OAuth application (and, delegated, one account) with its token cache."""

    def __init__(
        self,
        config: OAuthAppConfig,
        cache_blob: str | None = None,
        *,
        http_client: requests.Session | None = None,
    ) -> None:
        self.config = config
        self.cloud = config.resolved_cloud()
        self._cache = msal.SerializableTokenCache()
        if cache_blob:
            self._cache.deserialize(cache_blob)
        self._http = http_client if http_client is not None else TimeoutSession()
        self._app: Any = None  # built on first use: MSAL fetches discovery in its constructor
        self._lock = threading.RLock()
        self._redirect_uri: str | None = None

    # --- cache --------------------------------------------------------------------------

    @property
    def cache_changed(self) -> bool:
        return bool(self._cache.has_state_changed)

    def serialized_cache(self) -> str | None:
        with self._lock:
            blob = str(self._cache.serialize())
            return blob if any(json.loads(blob).values()) else None

    # --- MSAL ---------------------------------------------------------------------------

    @property
    def scopes(self) -> list[str]:
        if self.config.mode is Mode.APP_ONLY:
            return [self.cloud.app_only_scope]
        return delegated_scopes(self.cloud)

    def _msal(self) -> Any:
        if self._app is None:
            credential: str | dict[str, str] = (
                self.config.credential
                if isinstance(self.config.credential, str)
                else {
                    "private_key": self.config.credential.private_key_pem,
                    "thumbprint": self.config.credential.thumbprint,
                }
            )
            with msal_failures():
                self._app = self._build(credential)
        return self._app

    def _build(self, credential: str | dict[str, str]) -> Any:
        try:
            return msal.ConfidentialClientApplication(
                self.config.client_id,
                client_credential=credential,
                authority=f"{self.cloud.authority_host}/{self.config.tenant}",
                token_cache=self._cache,
                http_client=self._http,
                # Microsoft's hosts are known to MSAL; anything else (the emulator) must
                # not be sent to login.microsoftonline.com for instance discovery.
                instance_discovery=self.cloud.is_microsoft,
                # False, not None: None lets the MSAL_FORCE_REGION variable turn it on.
                azure_region=False,
            )
        except ValueError as error:  # discovery answered 4xx: the tenant does not exist
            raise GraphConfigurationError(
                f"The tenant {self.config.tenant!r} was not found at {self.cloud.authority_host}.",
                fix="Check the tenant id (Entra ID > Overview > Tenant ID) and the cloud.",
                aadsts=90002,
                description=str(error),
            ) from error

    # --- delegated ----------------------------------------------------------------------

    def start_authorization(
        self, redirect_uri: str, login_hint: str | None = None
    ) -> dict[str, Any]:
        """The flow dict to keep server-side (keyed by its `state`); send the user to
        `flow["auth_uri"]`. `prompt=select_account` always: SSO must not pick an account."""
        self._require(Mode.DELEGATED)
        _check_redirect_uri(redirect_uri)
        with self._lock, msal_failures():
            flow: dict[str, Any] = self._msal().initiate_auth_code_flow(
                self.scopes,
                redirect_uri=redirect_uri,
                prompt="select_account",
                login_hint=login_hint,  # Microsoft advises no hint with select_account
                # form_post: the code never sits in a URL (RFC 9700); MSAL warns otherwise.
                response_mode="form_post",
            )
        return flow

    def finish_authorization(
        self, flow: Mapping[str, Any], callback_params: Mapping[str, str]
    ) -> AuthorizedAccount:
        """Redeem the code. A different account than expected is refused and nothing of it
        is kept in the cache (safety rule 7)."""
        self._require(Mode.DELEGATED)
        redirect_uri = str(flow.get("redirect_uri") or "")
        with self._lock:
            before = self._cache.serialize()
            with msal_failures():
                try:
                    result = self._msal().acquire_token_by_auth_code_flow(
                        dict(flow), dict(callback_params)
                    )
                except (ValueError, RuntimeError) as error:  # state or nonce mismatch
                    raise GraphAuthorizationNeeded(
                        "The sign-in answer does not belong to a sign-in replygate started "
                        "(it may have expired or been used already).",
                        fix="Press Authorize again and finish the sign-in in one go.",
                    ) from error
            if "error" in result:
                raise classify(result, redirect_uri=redirect_uri, account=self._expected())
            claims = result.get("id_token_claims") or {}
            account = AuthorizedAccount(
                username=str(claims.get("preferred_username") or claims.get("upn") or ""),
                oid=str(claims.get("oid") or ""),
                tid=str(claims.get("tid") or ""),
                name=str(claims.get("name") or ""),
            )
            problem = self._mismatch(account)
            if problem:
                self._restore(before)
                raise WrongAccount(
                    f"Bad User is Authenticated But Not Connected: {problem}",
                    fix="Choose another account and sign in as "
                    f"{self.config.expected_username or 'the configured SMTP User'}; "
                    "if the browser picks one by itself, sign out of Microsoft first.",
                )
            return account

    def _expected(self) -> str:
        return self.config.expected_username or "the SMTP User"

    def _mismatch(self, account: AuthorizedAccount) -> str:
        c = self.config
        who = f"{account.username or '(unknown)'} signed in, {self._expected()} was expected."
        if c.expected_username and account.username.casefold() != c.expected_username.casefold():
            return who
        if c.expected_oid and account.oid != c.expected_oid:
            return who + " (a different account with that name)"
        if c.expected_tid and account.tid != c.expected_tid:
            return who + " (an account of another tenant)"
        return ""

    def _restore(self, blob: str) -> None:
        self._cache.deserialize(blob)  # replaces the whole state: the new tokens are gone

    def _account(self) -> dict[str, Any]:
        accounts: list[dict[str, Any]] = self._msal().get_accounts()
        if not accounts:
            raise GraphAuthorizationNeeded(
                "replygate has not been authorised for this OAuth application yet.",
                fix=f"Press Authorize and sign in as {self._expected()}.",
            )
        c = self.config
        for account in accounts:
            home = str(account.get("home_account_id") or "")
            if c.expected_oid and c.expected_tid and home != f"{c.expected_oid}.{c.expected_tid}":
                continue
            username = str(account.get("username") or "")
            if c.expected_username and username.casefold() != c.expected_username.casefold():
                continue
            return account
        raise WrongAccount(
            "The stored authorisation is for another account than the SMTP User.",
            fix=f"Press Authorize and sign in as {self._expected()}.",
        )

    # --- tokens -------------------------------------------------------------------------

    def access_token(self, *, force_refresh: bool = False) -> str:
        with self._lock, msal_failures():
            app = self._msal()
            if self.config.mode is Mode.APP_ONLY:
                if force_refresh:
                    app.remove_tokens_for_client()
                result = app.acquire_token_for_client(self.scopes)
            else:
                result = app.acquire_token_silent_with_error(
                    self.scopes, account=self._account(), force_refresh=force_refresh
                )
                if result is None:
                    raise GraphAuthorizationNeeded(
                        "No usable token is stored for the SMTP User.",
                        fix=f"Press Authorize and sign in as {self._expected()}.",
                    )
            if "error" in result:
                raise classify(result, account=self._expected())
            claims = result.get("id_token_claims") or {}
            if claims and self._mismatch(
                AuthorizedAccount(
                    str(claims.get("preferred_username") or ""),
                    str(claims.get("oid") or ""),
                    str(claims.get("tid") or ""),
                    "",
                )
            ):
                raise WrongAccount(
                    "A token refresh returned another account than the SMTP User.",
                    fix=f"Press Authorize and sign in as {self._expected()}.",
                )
            return str(result["access_token"])

    def _require(self, mode: Mode) -> None:
        if self.config.mode is not mode:
            raise GraphAuthorizationNeeded(
                f"This OAuth application is configured for {self.config.mode} mode.",
                fix="Use Authorize only with delegated applications.",
            )


def _check_redirect_uri(uri: str) -> None:
    """OAuth only over https; http://localhost is the one exception Microsoft allows."""
    parts = urlsplit(uri)
    local = parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.scheme != "https" and not local:
        raise GraphConfigurationError(
            f"The redirect URI {uri} is not https, so Microsoft would send the sign-in code "
            "in clear text.",
            fix="Set PUBLIC_URL to the https address of replygate (http works only for localhost).",
        )


@contextmanager
def msal_failures() -> Iterator[None]:
    """Network failures and MSAL's own service errors inside MSAL calls -> GraphTransient."""
    try:
        yield
    except (requests.RequestException, httpx.TransportError) as error:
        raise GraphTransient(
            "The Microsoft identity platform could not be reached.",
            fix="Check the network and proxy settings; replygate will retry.",
            description=type(error).__name__,
        ) from error
    except Exception as error:
        if type(error).__name__ != "MsalServiceError":
            raise
        raise GraphTransient(
            "The Microsoft identity platform answered with an error.",
            fix="replygate will retry; if it persists, check the tenant and authority.",
            description=str(error),
        ) from error


class GraphAuth(httpx.Auth):
    """Bearer tokens for httpx; one retry with a fresh token when Graph answers 401."""

    def __init__(self, tokens: TokenProvider) -> None:
        self.tokens = tokens

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.tokens.access_token()}"
        response = yield request
        if response.status_code == 401:
            token = self.tokens.access_token(force_refresh=True)
            request.headers["Authorization"] = f"Bearer {token}"
            yield request
