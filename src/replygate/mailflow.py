"""Wiring of the mail transports from what admins configured (part of the composition root).

``open_mailflow`` reads the Email Settings, the OAuth application and its token cache,
decrypts what it needs, and returns the transports the loops use. MSAL's token cache is
written back (encrypted) after use when it changed, so refreshed tokens survive restarts.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import datetime

from replygate.bootstrap import Container
from replygate.errors import AuthorizationNeeded, ConfigurationError
from replygate.graph.auth import CertificateCredential, OAuthAppConfig, TimeoutSession
from replygate.graph.clouds import CloudName, Mode
from replygate.graph.connection import GraphConnection, connect
from replygate.services.applications import CERTIFICATE_PURPOSE, SECRET_PURPOSE
from replygate.services.configuring import EmailSettings, current_settings
from replygate.services.mail_ports import MailSender, ReplyMailbox
from replygate.services.ports import OAuthApplication

TOKEN_CACHE_PURPOSE = "token cache"  # noqa: S105 - a label, not a password


@dataclass
class Mailflow:
    settings: EmailSettings
    application: OAuthApplication
    connection: GraphConnection
    container: Container

    @property
    def sender(self) -> MailSender:
        return self.connection.sender

    def reply_mailbox(self) -> ReplyMailbox:
        address = self.settings.reply_address
        if not address:
            raise ConfigurationError("no Approval Reply Address or SMTP From Address is set")
        return self.connection.mailbox(address)

    def save_tokens(self) -> None:
        """Write MSAL's cache back when a refresh changed it (encrypted at rest)."""
        tokens = self.connection.tokens
        if not tokens.cache_changed or self.application.id is None:
            return
        blob = tokens.serialized_cache()
        with self.container.uow() as uow:
            row = uow.token_caches.for_application(self.application.id)
            if row is not None and blob:
                row.cache_encrypted = self.container.secrets.encrypt(blob, TOKEN_CACHE_PURPOSE)
                row.last_refresh_at = row.updated_at = self.container.clock.now()
                uow.commit()

    def close(self) -> None:
        self.connection.close()


def app_config(
    container: Container,
    app: OAuthApplication,
    expected_username: str | None = None,
    expected_oid: str | None = None,
    expected_tid: str | None = None,
) -> OAuthAppConfig:
    """MSAL's view of a registered application, with its credential decrypted."""
    box = container.secrets
    credential: str | CertificateCredential
    if app.credential_kind == "secret" and app.secret_encrypted:
        credential = box.decrypt(app.secret_encrypted, SECRET_PURPOSE)
    elif app.certificate_encrypted and app.certificate_thumbprint:
        pem = box.decrypt(app.certificate_encrypted, CERTIFICATE_PURPOSE)
        credential = CertificateCredential(
            private_key_pem=pem, thumbprint=app.certificate_thumbprint
        )
    else:
        raise ConfigurationError(f"OAuth application {app.name!r} has no credential")
    return OAuthAppConfig(
        tenant=app.tenant,
        client_id=app.client_id,
        credential=credential,
        cloud=CloudName(app.cloud),
        mode=Mode(app.mode),
        authority_host=app.authority_host,
        graph_url=app.graph_url,
        expected_username=expected_username,
        expected_oid=expected_oid,
        expected_tid=expected_tid,
    )


def msal_http_client(container: Container) -> TimeoutSession:
    session = TimeoutSession()
    if container.settings.ca_bundle is not None:
        # requests lets REQUESTS_CA_BUNDLE override `verify`; an explicit bundle must win.
        session.trust_env = False
        session.verify = str(container.settings.ca_bundle)
    return session


def open_mailflow(container: Container) -> Mailflow:
    """The configured transports; or an error that says what is missing and how to fix it."""
    current = current_settings(container.uow())
    if current is None:
        raise ConfigurationError("Email Settings are not saved yet", fix="fill in Email Settings")
    _, settings = current
    if settings.smtp_auth_type != "oauth" or not settings.smtp_oauth_application:
        raise ConfigurationError("only OAuth (Microsoft Graph) mail is wired in this version")
    with container.uow() as uow:
        app = uow.applications.by_name(settings.smtp_oauth_application)
        if app is None or app.id is None:
            raise ConfigurationError(
                f"the OAuth application {settings.smtp_oauth_application!r} does not exist",
                fix="register it under OAuth Applications, or pick another in Email Settings",
            )
        cache_row = uow.token_caches.for_application(app.id)
        cache = (
            container.secrets.decrypt(cache_row.cache_encrypted, TOKEN_CACHE_PURPOSE)
            if cache_row is not None
            else None
        )
        oid = cache_row.object_id if cache_row else None
        tid = cache_row.tenant_id if cache_row else None
    if app.mode == Mode.DELEGATED.value and cache is None:
        raise AuthorizationNeeded(
            f"the OAuth application {app.name!r} has no authorised account",
            fix=f"press Authorize and sign in as {settings.smtp_user}",
        )
    config = app_config(container, app, settings.smtp_user, oid, tid)
    verify: object = True
    if container.settings.ca_bundle is not None:
        verify = ssl.create_default_context(cafile=str(container.settings.ca_bundle))
    connection = connect(config, cache, http_client=msal_http_client(container), verify=verify)
    return Mailflow(settings, app, connection, container)


def record_authorisation(
    container: Container,
    app_id: int,
    username: str,
    oid: str,
    tid: str,
    cache_blob: str,
    at: datetime,
) -> None:
    """Store the authorised account's token cache, encrypted, replacing any earlier one."""
    from replygate.db.tables import TokenCacheRow

    with container.uow() as uow:
        uow.token_caches.put(
            TokenCacheRow(
                application_id=app_id,
                username=username.lower(),
                object_id=oid,
                tenant_id=tid,
                cache_encrypted=container.secrets.encrypt(cache_blob, TOKEN_CACHE_PURPOSE),
                authorised_at=at,
                last_refresh_at=at,
                state="ok",
                updated_at=at,
            )
        )
        uow.audit.record("oauth", "oauth.authorised", str(app_id), {"account": username})
        uow.commit()
