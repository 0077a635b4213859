"""OAuth applications: register, edit, list and remove the Entra ID apps replygate uses.

Credentials are validated and encrypted here, before they reach storage: a client secret
with its expiry date, or a certificate (PEM with its private key) whose SHA-1 thumbprint
and expiry are computed. Plain credentials never leave this module except to MSAL.
An edit without a credential keeps the stored one (admins seldom still have the secret).
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


# A stored credential belongs to one app registration (client id) in one cloud, and is
# only sent to that cloud's authority: changing these needs the new registration's
# credential, and a stored secret is never sent to a host an admin just typed in. Not
# among them: the tenant (a registration's secret works in every tenant it is consented
# in, and the host stays Microsoft's) and the mode (one secret serves both flows).
CREDENTIAL_BOUND = ("client_id", "cloud", "authority_host")
# The authorised account's tokens were issued for exactly these; any change drops them.
AUTHORISATION_BOUND = ("tenant", "client_id", "cloud", "authority_host", "graph_url", "mode")

# Sentences, not "; ": forms split messages on "; " into one error per field.
_KEPT_CREDENTIAL_REFUSED = {
    "client_id": "credential: a new client id needs its own client secret or certificate. "
    "Paste the credential of the new registration.",
    "cloud": "credential: another cloud needs its own client secret or certificate. "
    "Paste the credential of the registration in that cloud.",
    "authority_host": "credential: a new authority host needs the client secret or "
    "certificate again (a stored one is never sent to a new host). Paste it.",
}
_CERTIFICATE_EXPIRY = (
    "secret_expires_at: a certificate's expiry is read from the certificate, leave it empty"
)


def _given(value: str | None) -> bool:
    return bool(value and value.strip())


def _validate(data: ApplicationInput, now: datetime, *, credential_required: bool) -> None:
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
    secret, certificate = _given(data.client_secret), _given(data.certificate_pem)
    if secret and certificate:
        raise InvalidInput("credential: give either a client secret or a certificate, not both")
    if credential_required and not (secret or certificate):
        raise InvalidInput("credential: give either a client secret or a certificate")
    if certificate and data.secret_expires_at is not None:
        raise InvalidInput(_CERTIFICATE_EXPIRY)
    if secret:
        if data.secret_expires_at is None:
            raise InvalidInput(
                "secret_expires_at: enter the expiry shown in Entra ID (Certificates & secrets), "
                "so replygate can warn before it expires"
            )
        _check_future(data.secret_expires_at, now)


def _check_future(expires_at: datetime, now: datetime) -> None:
    if expires_at <= now:
        raise InvalidInput("secret_expires_at: this secret has already expired")


def _stored_fields(data: ApplicationInput) -> dict[str, str | None]:
    """The non-secret fields as they are stored (trimmed, lower-case ids)."""
    custom = data.cloud == "custom"
    return {
        "name": data.name.strip(),
        "tenant": data.tenant.strip().lower(),
        "client_id": data.client_id.strip().lower(),
        "mode": data.mode,
        "cloud": data.cloud,
        "authority_host": data.authority_host if custom else None,
        "graph_url": data.graph_url if custom else None,
    }


def _changed(row: OAuthApplication, data: ApplicationInput) -> list[str]:
    """Names of the non-secret fields an edit changes (what the audit log shows)."""
    changed = [name for name, value in _stored_fields(data).items() if getattr(row, name) != value]
    if data.secret_expires_at is not None and data.secret_expires_at != row.secret_expires_at:
        changed.append("secret_expires_at")
    return changed


def _check_kept_credential(
    row: OAuthApplication, data: ApplicationInput, changed: list[str], now: datetime
) -> None:
    """An edit without a credential keeps the stored one, where it still applies."""
    for name in CREDENTIAL_BOUND:
        if name in changed:
            raise InvalidInput(_KEPT_CREDENTIAL_REFUSED[name])
    if "secret_expires_at" in changed:
        if row.credential_kind != "secret":
            raise InvalidInput(_CERTIFICATE_EXPIRY)
        assert data.secret_expires_at is not None  # in changed only when given
        _check_future(data.secret_expires_at, now)


def _fill(row: OAuthApplication, data: ApplicationInput, sealer: Sealer, now: datetime) -> None:
    for name, value in _stored_fields(data).items():
        setattr(row, name, value)
    row.updated_at = now
    if _given(data.client_secret):
        assert data.client_secret is not None  # _given checked it
        row.credential_kind = "secret"
        row.secret_encrypted = sealer.encrypt(data.client_secret, SECRET_PURPOSE)
        row.secret_expires_at = data.secret_expires_at
        row.certificate_encrypted = row.certificate_thumbprint = row.certificate_expires_at = None
    elif _given(data.certificate_pem):
        assert data.certificate_pem is not None  # _given checked it
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
    elif data.secret_expires_at is not None:
        row.secret_expires_at = data.secret_expires_at  # checked: the stored one is a secret


def _credential_change(data: ApplicationInput) -> str:
    if _given(data.client_secret):
        return "new secret"
    return "new certificate" if _given(data.certificate_pem) else "kept"


def register_application(
    uow: UnitOfWork, clock: Clock, sealer: Sealer, data: ApplicationInput, *, by: str
) -> OAuthApplication:
    now = clock.now()
    _validate(data, now, credential_required=True)
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
    """Replace an application's settings, keeping the stored credential unless a new one is
    given (refused when the client id, cloud or authority host changes). A change of tenant,
    client id, mode, cloud or hosts drops the authorised account: its tokens no longer fit.
    """
    now = clock.now()
    _validate(data, now, credential_required=False)
    with uow:
        row = _get(uow, app_id)
        other = uow.applications.by_name(data.name)
        if other is not None and other.id != app_id:
            raise Conflict(f"an OAuth application named {data.name!r} exists already")
        changed = _changed(row, data)
        credential = _credential_change(data)
        if credential == "kept":
            _check_kept_credential(row, data, changed, now)
        _fill(row, data, sealer, now)
        uow.applications.save(row)
        dropped = False
        if any(name in changed for name in AUTHORISATION_BOUND):
            # Tokens of another app, tenant, cloud or mode are never reused.
            dropped = uow.token_caches.remove(app_id)
        if credential != "kept":
            # Mail that waited for a working credential goes out now, not at its next try.
            uow.outbox.retry_waiting_now(now)
        uow.audit.record(
            by,
            "oauth_app.update",
            row.name,
            {"changed": changed, "credential": credential, "authorisation_dropped": dropped},
        )
        uow.commit()
    return row


def get_application(uow: UnitOfWork, app_id: int) -> OAuthApplication:
    with uow:
        return _get(uow, app_id)


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
