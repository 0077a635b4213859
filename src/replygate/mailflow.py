"""Wiring of the mail transports from what admins configured (part of the composition root).

``open_mailflow`` reads the Email Settings, the OAuth application and its token cache,
decrypts what it needs, and returns the transports the loops use. MSAL's token cache is
written back (encrypted) after use when it changed, so refreshed tokens survive restarts.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from replygate.bootstrap import Container
from replygate.errors import AuthorizationNeeded, ConfigurationError
from replygate.graph.auth import CertificateCredential, OAuthAppConfig, TimeoutSession
from replygate.graph.clouds import CloudName, Mode
from replygate.graph.connection import GraphConnection, connect
from replygate.imap import ImapReplyMailbox, ImapSettings
from replygate.services.applications import CERTIFICATE_PURPOSE, SECRET_PURPOSE
from replygate.services.configuring import EmailSettings, current_settings, stored_passwords
from replygate.services.mail_ports import MailSender, ReplyMailbox, SendPace
from replygate.services.ports import OAuthApplication
from replygate.smtp import Basic, NoAuth, SmtpMailSender, SmtpSettings

TOKEN_CACHE_PURPOSE = "token cache"  # noqa: S105 - a label, not a password
SIGN_IN_NEEDED = "needs-sign-in"  # the token cache state once its refresh is refused


@dataclass
class Mailflow:
    """The transports in force: Graph (OAuth), or SMTP for sending and IMAP for reading."""

    settings: EmailSettings
    application: OAuthApplication | None
    connection: GraphConnection | None  # None when neither side uses OAuth
    container: Container
    smtp: MailSender | None = None  # basic/none SMTP auth: sends instead of Graph
    imap: ImapReplyMailbox | None = None  # basic IMAP auth: reads instead of Graph
    # The sign-in state this connection last wrote: read rounds repeat it, the database
    # need not hear it again (a new authorisation opens a new connection).
    _sign_in_state: tuple[str, str] | None = None

    @property
    def graph(self) -> GraphConnection:
        if self.connection is None:
            raise ConfigurationError("this step needs OAuth (Microsoft Graph) in Email Settings")
        return self.connection

    @property
    def sender(self) -> MailSender:
        return self.smtp if self.smtp is not None else self.graph.sender

    @property
    def pacing(self) -> SendPace | None:
        """The sender's pace per mailbox, which the outbox keeps across replicas."""
        if self.smtp is not None:
            return self.smtp.settings.pacing if isinstance(self.smtp, SmtpMailSender) else None
        return self.graph.sender.pacing

    def reply_mailbox(self) -> ReplyMailbox:
        if self.imap is not None:
            return self.imap
        address = self.settings.reply_address
        if not address:
            raise ConfigurationError("no Approval Reply Address or SMTP From Address is set")
        return self.graph.mailbox(address)

    def save_tokens(self) -> None:
        """Write MSAL's cache back when a refresh changed it (encrypted at rest)."""
        if self.connection is None or self.application is None or self.application.id is None:
            return
        tokens = self.connection.tokens
        if not tokens.cache_changed:
            return
        blob = tokens.serialized_cache()
        with self.container.uow() as uow:
            row = uow.token_caches.for_application(self.application.id)
            if row is not None and blob:
                row.cache_encrypted = self.container.secrets.encrypt(blob, TOKEN_CACHE_PURPOSE)
                row.last_refresh_at = row.updated_at = self.container.clock.now()
                uow.commit()

    def record_sign_in_state(self, problem: str | None) -> None:
        """Keep the stored sign-in's state true to the last round: what health, metrics and
        the console show. ``problem`` is why it must be renewed; None when it worked."""
        if self.application is None or self.application.id is None:
            return
        wanted = ("ok" if problem is None else SIGN_IN_NEEDED, problem or "")
        if wanted == self._sign_in_state:
            return
        with self.container.uow() as uow:
            row = uow.token_caches.for_application(self.application.id)
            if row is not None and (row.state, row.last_error) != wanted:
                row.state, row.last_error = wanted
                row.updated_at = self.container.clock.now()
                uow.commit()
        self._sign_in_state = wanted

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
        if self.imap is not None:
            self.imap.close()


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


class _BundleSession(TimeoutSession):
    """Trusts an extra CA bundle on every request while keeping proxies from the environment.

    requests lets REQUESTS_CA_BUNDLE override a session's ``verify``, but not a request's;
    turning ``trust_env`` off instead would also drop HTTPS_PROXY, which a TLS-inspecting
    proxy (the reason for a bundle) needs.
    """

    def __init__(self, bundle: str) -> None:
        super().__init__()
        self.bundle = bundle

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("verify", self.bundle)
        return super().request(method, url, *args, **kwargs)


def msal_http_client(container: Container) -> TimeoutSession:
    if container.settings.ca_bundle is not None:
        return _BundleSession(str(container.settings.ca_bundle))
    return TimeoutSession()


def open_mailflow(container: Container) -> Mailflow:
    """The configured transports; or an error that says what is missing and how to fix it."""
    current = current_settings(container.uow())
    if current is None:
        raise ConfigurationError("Email Settings are not saved yet", fix="fill in Email Settings")
    _, settings = current
    uses_graph = "oauth" in (settings.smtp_auth_type, settings.imap_auth_type)
    app, connection = _graph(container, settings) if uses_graph else (None, None)
    smtp = _smtp(container, settings) if settings.smtp_auth_type != "oauth" else None
    imap = _imap(container, settings) if settings.imap_auth_type != "oauth" else None
    return Mailflow(settings, app, connection, container, smtp, imap)


def _graph(
    container: Container, settings: EmailSettings
) -> tuple[OAuthApplication, GraphConnection]:
    if not settings.smtp_oauth_application:
        raise ConfigurationError("no SMTP OAuth Application is chosen in Email Settings")
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
    return app, connect(config, cache, http_client=msal_http_client(container), verify=verify)


def _tls(container: Container) -> ssl.SSLContext | None:
    bundle = container.settings.ca_bundle
    return ssl.create_default_context(cafile=str(bundle)) if bundle else None


def _smtp(container: Container, settings: EmailSettings) -> MailSender:
    passwords = stored_passwords(container.uow(), container.secrets)
    credentials: Basic | NoAuth = NoAuth()
    if settings.smtp_auth_type == "basic":
        credentials = Basic(settings.smtp_username or "", passwords.get("smtp", ""))
    return SmtpMailSender(
        SmtpSettings(
            settings.smtp_host or "",
            settings.smtp_port,
            settings.smtp_security,
            credentials,
            ssl_context=_tls(container),
        ),
        clock=container.clock.now,
    )


def _imap(container: Container, settings: EmailSettings) -> ImapReplyMailbox:
    passwords = stored_passwords(container.uow(), container.secrets)
    return ImapReplyMailbox(
        ImapSettings(
            settings.imap_host or settings.smtp_host or "",
            settings.imap_port,
            settings.imap_security,
            Basic(
                settings.imap_username or settings.smtp_username or "",
                passwords.get("imap") or passwords.get("smtp", ""),
            ),
            ssl_context=_tls(container),
        ),
        mailbox=settings.reply_address,
    )


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
        # Mail that waited for this authorisation goes out now, not at its next backoff.
        uow.outbox.retry_waiting_now(at)
        uow.audit.record("oauth", "oauth.authorised", str(app_id), {"account": username})
        uow.commit()
