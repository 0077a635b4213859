"""Authorize (delegated): sign the SMTP User in through Microsoft and keep its tokens.

``start`` asks MSAL for an auth-code flow with PKCE and ``prompt=select_account`` (single
sign-on must never pick an account silently) and keeps the flow server-side, encrypted,
keyed by its ``state``. ``finish`` redeems the code: the account that signed in must be
the SMTP User, or its tokens are thrown away (safety rule 7) and the admin sees who signed
in and who was expected. Flows are single-use and expire after ``FLOW_LIFETIME``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta

from replygate.bootstrap import Container
from replygate.db.oauth_flows import keep_flow, take_flow
from replygate.errors import ConfigurationError, InvalidInput, NotFound, ReplygateError
from replygate.graph.auth import AuthorizedAccount, TokenProvider
from replygate.mailflow import app_config, msal_http_client, record_authorisation
from replygate.services.configuring import current_settings

FLOW_LIFETIME = timedelta(minutes=15)
FLOW_PURPOSE = "authorization flow"


def redirect_uri(container: Container) -> str:
    """What to register in Entra ID: ``{PUBLIC_URL}/oauth/callback``."""
    return f"{container.settings.public_url}/oauth/callback"


def _smtp_user(container: Container) -> str:
    current = current_settings(container.uow())
    if current is None or not current[1].smtp_user:
        raise ConfigurationError(
            "the SMTP User is not set, so there is no account to authorise",
            fix="save Email Settings with the SMTP User first",
        )
    return current[1].smtp_user


def start(container: Container, app_id: int, *, by: str) -> str:
    """Begin Authorize for an application; return the Microsoft sign-in URL to send the admin to."""
    expected = _smtp_user(container)
    with container.uow() as uow:
        app = uow.applications.get(app_id)
        if app is None:
            raise NotFound(f"no OAuth application {app_id}")
        if app.mode != "delegated":
            raise InvalidInput("Authorize is for delegated applications; app-only needs none")
    tokens = TokenProvider(
        app_config(container, app, expected), http_client=msal_http_client(container)
    )
    # No login_hint: Microsoft documents that it does not combine with prompt=select_account,
    # and the picker must show every account so the admin chooses the SMTP User knowingly.
    flow = tokens.start_authorization(redirect_uri(container))
    now = container.clock.now()
    with container.uow() as uow:
        keep_flow(
            uow.session,
            state=str(flow["state"]),
            application_id=app_id,
            flow_encrypted=container.secrets.encrypt(json.dumps(flow), FLOW_PURPOSE),
            started_by=by,
            now=now,
            lifetime=FLOW_LIFETIME,
        )
        uow.audit.record(by, "oauth.authorize_started", str(app_id), {"expected": expected})
        uow.commit()
    return str(flow["auth_uri"])


def finish(container: Container, params: Mapping[str, str]) -> AuthorizedAccount:
    """Redeem the callback; store the tokens only if the SMTP User signed in."""
    state = params.get("state", "")
    now = container.clock.now()
    with container.uow() as uow:
        row = take_flow(uow.session, state, now=now, lifetime=FLOW_LIFETIME)
        uow.commit()
    if row is None:
        raise InvalidInput(
            "this sign-in answer does not match an Authorize in progress (expired or used)",
            fix="press Authorize again",
        )
    flow = json.loads(container.secrets.decrypt(row.flow_encrypted, FLOW_PURPOSE))
    expected = _smtp_user(container)
    with container.uow() as uow:
        app = uow.applications.get(row.application_id)
    if app is None or app.id is None:
        raise NotFound("the OAuth application was removed while signing in")
    tokens = TokenProvider(
        app_config(container, app, expected), http_client=msal_http_client(container)
    )
    try:
        account = tokens.finish_authorization(flow, dict(params))
    except ReplygateError:
        with container.uow() as uow:
            uow.audit.record(
                row.started_by, "oauth.authorize_refused", str(app.id), {"expected": expected}
            )
            uow.commit()
        raise
    blob = tokens.serialized_cache()
    if blob is None:  # MSAL returned no tokens it could keep
        raise ConfigurationError(
            "Microsoft returned no tokens to keep", fix="press Authorize again"
        )
    record_authorisation(container, app.id, account.username, account.oid, account.tid, blob, now)
    return account
