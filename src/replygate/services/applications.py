"""OAuth applications: register, edit, list and remove the Entra ID apps replygate uses.

Credentials are validated and encrypted here, before they reach storage: a client secret
with its expiry date, or a certificate (PEM with its private key) whose SHA-1 thumbprint
and expiry are computed. Plain credentials never leave this module except to MSAL.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from replygate.errors import Conflict, InvalidInput, NotFound
from replygate.services.ports import Clock, OAuthApplication, UnitOfWork

# The same names as replygate.graph.clouds.CloudName (a test keeps them equal).
CLOUDS = ("global", "us-gov", "us-gov-dod", "china", "custom")
MODES = ("delegated", "app-only")
SECRET_PURPOSE = "client secret"  # noqa: S105 - a label, not a password
CERTIFICATE_PURPOSE = "certificate private key"

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-zA-Z0-9-]{1,63}\.)+[a-zA-Z]{2,63}$")


class Sealer(Protocol):
    def encrypt(self, plaintext: str, purpose: str) -> str: ...

    def decrypt(self, stored: str, purpose: str) -> str: ...


@dataclass(frozen=True)
class ApplicationInput:
    """What an admin enters for an OAuth application."""

    name: str
    tenant: str
    client_id: str
    mode: Literal["delegated", "app-only"] = "delegated"
    cloud: str = "global"
    client_secret: str | None = None
    secret_expires_at: datetime | None = None
    certificate_pem: str | None = None
    authority_host: str | None = None
    graph_url: str | None = None


@dataclass(frozen=True)
class Certificate:
    private_key_pem: str
    certificate_pem: str
    thumbprint: str
    expires_at: datetime


def parse_certificate(pem: str) -> Certificate:
    """A PEM holding one certificate and its unencrypted private key."""
    data = pem.encode()
    try:
        certificate = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise InvalidInput("certificate: no PEM certificate found (BEGIN CERTIFICATE)") from None
    key_block = re.search(
        rb"-----BEGIN (?:RSA |EC )?PRIVATE KEY-----.+?-----END (?:RSA |EC )?PRIVATE KEY-----",
        data,
        re.DOTALL,
    )
    if key_block is None:
        raise InvalidInput(
            "certificate: the PEM must also hold the private key (BEGIN PRIVATE KEY)"
        )
    try:
        key = serialization.load_pem_private_key(key_block.group(0), password=None)
    except (ValueError, TypeError):
        raise InvalidInput("certificate: the private key could not be read (encrypted?)") from None
    public_of_key = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public_of_cert = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if public_of_key != public_of_cert:
        raise InvalidInput("certificate: the private key does not belong to the certificate")
    return Certificate(
        private_key_pem=key_block.group(0).decode(),
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
        thumbprint=certificate.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S303 - Entra's thumbprint is SHA-1
        expires_at=certificate.not_valid_after_utc,
    )


def _validate(data: ApplicationInput, now: datetime) -> None:
    if not data.name.strip() or len(data.name) > 200:
        raise InvalidInput("name: 1 to 200 characters")
    if not (_GUID.fullmatch(data.tenant) or _DOMAIN.fullmatch(data.tenant)):
        raise InvalidInput(
            "tenant: the Directory (tenant) ID (a GUID) or a verified domain such as contoso.com"
        )
    if data.tenant.lower() in ("common", "organizations", "consumers"):
        raise InvalidInput("tenant: name your own tenant; 'common' would let any tenant sign in")
    if not _GUID.fullmatch(data.client_id):
        raise InvalidInput("client_id: the Application (client) ID from Entra ID, a GUID")
    if data.mode not in MODES:
        raise InvalidInput(f"mode: one of {', '.join(MODES)}")
    if data.cloud not in CLOUDS:
        raise InvalidInput(f"cloud: one of {', '.join(CLOUDS)}")
    if data.cloud == "custom":
        for value, field_name in (
            (data.authority_host, "authority_host"),
            (data.graph_url, "graph_url"),
        ):
            if not value or not value.startswith("https://"):
                raise InvalidInput(f"{field_name}: a custom cloud needs an https URL")
    if bool(data.client_secret) == bool(data.certificate_pem):
        raise InvalidInput("credential: give either a client secret or a certificate, not both")
    if data.client_secret is not None:
        if data.secret_expires_at is None:
            raise InvalidInput(
                "secret_expires_at: enter the expiry shown in Entra ID (Certificates & secrets), "
                "so replygate can warn before it expires"
            )
        if data.secret_expires_at <= now:
            raise InvalidInput("secret_expires_at: this secret has already expired")


def _fill(row: OAuthApplication, data: ApplicationInput, sealer: Sealer, now: datetime) -> None:
    row.name = data.name.strip()
    row.tenant = data.tenant.strip().lower()
    row.client_id = data.client_id.strip().lower()
    row.mode = data.mode
    row.cloud = data.cloud
    row.authority_host = data.authority_host if data.cloud == "custom" else None
    row.graph_url = data.graph_url if data.cloud == "custom" else None
    row.updated_at = now
    if data.client_secret:
        row.credential_kind = "secret"
        row.secret_encrypted = sealer.encrypt(data.client_secret, SECRET_PURPOSE)
        row.secret_expires_at = data.secret_expires_at
        row.certificate_encrypted = row.certificate_thumbprint = row.certificate_expires_at = None
    else:
        assert data.certificate_pem is not None  # _validate checked one is given
        certificate = parse_certificate(data.certificate_pem)
        if certificate.expires_at <= now:
            raise InvalidInput(f"certificate: it expired on {certificate.expires_at:%Y-%m-%d}")
        row.credential_kind = "certificate"
        row.certificate_encrypted = sealer.encrypt(
            certificate.private_key_pem + certificate.certificate_pem, CERTIFICATE_PURPOSE
        )
        row.certificate_thumbprint = certificate.thumbprint
        row.certificate_expires_at = certificate.expires_at
        row.secret_encrypted = row.secret_expires_at = None


def register_application(
    uow: UnitOfWork, clock: Clock, sealer: Sealer, data: ApplicationInput, *, by: str
) -> OAuthApplication:
    now = clock.now()
    _validate(data, now)
    with uow:
        if uow.applications.by_name(data.name) is not None:
            raise Conflict(f"an OAuth application named {data.name!r} exists already")
        row = OAuthApplication(created_at=now)
        _fill(row, data, sealer, now)
        uow.applications.add(row)
        uow.audit.record(by, "oauth_app.register", row.name, {"client_id": row.client_id})
        uow.commit()
    return row


def update_application(
    uow: UnitOfWork,
    clock: Clock,
    sealer: Sealer,
    app_id: int,
    data: ApplicationInput,
    *,
    by: str,
) -> OAuthApplication:
    """Replace an application's settings. A new tenant or client id drops its authorisation."""
    now = clock.now()
    _validate(data, now)
    with uow:
        row = _get(uow, app_id)
        other = uow.applications.by_name(data.name)
        if other is not None and other.id != app_id:
            raise Conflict(f"an OAuth application named {data.name!r} exists already")
        identity_changed = (row.tenant, row.client_id, row.cloud) != (
            data.tenant.strip().lower(),
            data.client_id.strip().lower(),
            data.cloud,
        )
        _fill(row, data, sealer, now)
        uow.applications.save(row)
        if identity_changed:
            uow.token_caches.remove(app_id)  # tokens of another app or tenant are never reused
        uow.audit.record(by, "oauth_app.update", row.name, {"reauthorise": identity_changed})
        uow.commit()
    return row


def remove_application(uow: UnitOfWork, app_id: int, *, by: str) -> None:
    with uow:
        row = _get(uow, app_id)
        uow.applications.remove(app_id)
        uow.audit.record(by, "oauth_app.remove", row.name)
        uow.commit()


def list_applications(uow: UnitOfWork) -> Sequence[OAuthApplication]:
    with uow:
        return uow.applications.list()


def _get(uow: UnitOfWork, app_id: int) -> OAuthApplication:
    row = uow.applications.get(app_id)
    if row is None:
        raise NotFound(f"no OAuth application {app_id}")
    return row
