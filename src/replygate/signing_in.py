"""Sign in with Microsoft: console sign-in through the OAuth application the settings name.

``start`` asks MSAL for an auth-code flow with PKCE, ``prompt=select_account`` and only
OpenID scopes, and keeps it server-side, encrypted, keyed by its ``state``, in the table
Authorize uses (``oauth_flows``, told apart by ``started_by``). ``finish`` takes the flow
out (single use, ``FLOW_LIFETIME``), but only for the browser that started it; lets MSAL
redeem the code; checks the id token's tenant; and hands the account to
``services.microsoft_accounts`` to find the local user. No token from this flow is kept.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta

from replygate.bootstrap import Container
from replygate.db.oauth_flows import keep_flow, take_flow
from replygate.db.tables import OAuthFlowRow
from replygate.errors import ConfigurationError, NotFound, UserError
from replygate.graph.clouds import Mode
from replygate.graph.sign_in import AGAIN, MicrosoftSignIn, is_tenant_id
from replygate.mailflow import app_config, msal_http_client
from replygate.services import microsoft_accounts
from replygate.services.account_ports import User
from replygate.services.microsoft_accounts import MicrosoftIdentity, SignInRefused
from replygate.services.ports import OAuthApplication

FLOW_LIFETIME = timedelta(minutes=15)
FLOW_PURPOSE = "microsoft sign-in flow"
# started_by of our rows: not a valid username, so never an admin's Authorize row.
STARTED_BY = "(sign in with microsoft)"


class SignInExpired(UserError):
    """The answer does not belong to a sign-in this browser has in progress."""


@dataclass(frozen=True)
class Started:
    url: str  # Microsoft's sign-in page
    state: str  # kept in the browser's session: the answer must come back to this browser


@dataclass(frozen=True)
class SignedIn:
    user: User
    next_url: str


def enabled(container: Container) -> bool:
    return container.settings.sign_in_application is not None


def redirect_uri(container: Container) -> str:
    """What to register in Entra ID: ``{PUBLIC_URL}/login/microsoft/callback``."""
    return f"{container.settings.public_url}/login/microsoft/callback"


def configured_application(container: Container) -> OAuthApplication:
    name = container.settings.sign_in_application
    if name is None:
        raise NotFound("Sign in with Microsoft is not turned on")
    with container.uow() as uow:
        app = uow.applications.by_name(name)
    if app is None or app.id is None:
        raise ConfigurationError(
            f"REPLYGATE_SIGN_IN_APPLICATION names {name!r}, which is not a registered OAuth "
            "application, so Sign in with Microsoft cannot start",
            fix="an admin registers it (OAuth Applications, or `replygate apps add`) or "
            "corrects the setting; meanwhile sign in with your username and password",
        )
    return app


@contextmanager
def _client(container: Container, app: OAuthApplication) -> Iterator[MicrosoftSignIn]:
    # Sign-in calls no Graph API, so the application's mailbox mode does not matter.
    config = replace(app_config(container, app), mode=Mode.DELEGATED)
    with msal_http_client(container) as http:
        yield MicrosoftSignIn(config, http_client=http)


def start(container: Container, *, next_url: str) -> Started:
    """Begin a sign-in; the caller keeps ``state`` in the browser's session."""
    app = configured_application(container)
    with _client(container, app) as client:
        flow = client.start_authorization(redirect_uri(container))
    payload = json.dumps({"flow": flow, "next": next_url})
    now = container.clock.now()
    assert app.id is not None  # configured_application returns stored applications
    with container.uow() as uow:
        keep_flow(
            uow.session,
            state=str(flow["state"]),
            application_id=app.id,
            flow_encrypted=container.secrets.encrypt(payload, FLOW_PURPOSE),
            started_by=STARTED_BY,
            now=now,
            lifetime=FLOW_LIFETIME,
        )
        uow.commit()
    return Started(str(flow["auth_uri"]), str(flow["state"]))


def _take_flow(container: Container, state: str, expected_state: str | None) -> OAuthFlowRow:
    stale = SignInExpired(
        "this answer from Microsoft does not match a sign-in in progress in this browser "
        "(it expired after 15 minutes, was used already, or was started elsewhere)",
        fix="press Sign in with Microsoft again and finish the sign-in in one go",
    )
    # Before anything is consumed: an answer from another browser (login CSRF) is ignored.
    if not state or not expected_state or not hmac.compare_digest(state, expected_state):
        raise stale
    now = container.clock.now()
    with container.uow() as uow:
        row = take_flow(uow.session, state, now=now, lifetime=FLOW_LIFETIME, started_by=STARTED_BY)
        uow.commit()
    if row is None:
        raise stale
    return row


def _check_tenant(client: MicrosoftSignIn, app: OAuthApplication, tid: str, who: str) -> None:
    # Registered applications always name one tenant (services.applications refuses
    # common/organizations/consumers), so there is always a tenant to check against.
    expected = app.tenant if is_tenant_id(app.tenant) else client.tenant_id()
    if not expected:
        raise ConfigurationError(
            f"the tenant id of {app.tenant} could not be found, so the account's tenant "
            "cannot be checked",
            fix="an admin registers the application with its Directory (tenant) ID",
        )
    if tid.lower() != expected.lower():
        raise SignInRefused(
            f"{who} is an account of another tenant ({tid or 'unknown'}); this replygate "
            f"accepts only accounts of the tenant {app.tenant}.",
            fix="Press Sign in with Microsoft again and choose an account of "
            f"{app.tenant} (sign out of Microsoft first if it picks one by itself).",
        )


def finish(
    container: Container, params: Mapping[str, str], *, expected_state: str | None
) -> SignedIn:
    """Redeem Microsoft's answer; the local user it signs in, or an error saying why not."""
    row = _take_flow(container, params.get("state", ""), expected_state)
    stored = json.loads(container.secrets.decrypt(row.flow_encrypted, FLOW_PURPOSE))
    app = configured_application(container)
    if app.id != row.application_id:
        raise SignInExpired("the sign-in application was changed while signing in", fix=AGAIN)
    with _client(container, app) as client:
        account = client.finish(stored["flow"], params)
        who = account.username or account.email or "(unknown)"
        _check_tenant(client, app, account.tid, who)
    identity = MicrosoftIdentity(account.username, account.email, account.oid, account.tid)
    user = microsoft_accounts.account_for(container.uow(), identity)
    return SignedIn(user, str(stored.get("next") or "/"))
