"""The emulated tenant: users, shared mailboxes, mailbox grants and app registrations.

A tenant is plain data, loaded from TOML or JSON (`load_tenant`) or from the bundled
`default_tenant.toml` (`default_tenant`). The emulator mutates it at run time through the
control hooks (consent, secret expiry), so the classes are ordinary mutable dataclasses.

Redirect URI matching (`AppRegistration.redirect_uri_allowed`) follows
https://learn.microsoft.com/entra/identity-platform/reply-url: exact, case-sensitive match,
except that the port is ignored for `http://localhost` URIs. The emulator adds one
documented extension so that tests and the demo can use random ports: a registered URI
whose port is `*` (e.g. `https://127.0.0.1:*/oauth/callback`) matches any port on that
scheme, host and path.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes

RIGHTS = frozenset({"FullAccess", "SendAs", "SendOnBehalf"})
# Segments that resolve to any single tenant (multi-tenant endpoints).
GENERIC_TENANT_SEGMENTS = frozenset({"organizations", "common"})


@dataclass(slots=True)
class User:
    id: str  # object id (oid), a GUID; equals Graph user.id
    upn: str
    display_name: str
    mail: str
    kind: Literal["user", "shared"] = "user"
    enabled: bool = True

    @property
    def can_sign_in(self) -> bool:
        # Shared mailboxes have a disabled account in Entra ID: they never sign in.
        return self.kind == "user" and self.enabled


@dataclass(frozen=True, slots=True)
class MailboxGrant:
    mailbox: str  # upn of the mailbox
    grantee: str  # upn of the user who holds the rights
    rights: frozenset[str]  # subset of RIGHTS


@dataclass(slots=True)
class AppSecret:
    id: str
    value: str
    expires_at: datetime


@dataclass(slots=True)
class AppCertificate:
    thumbprint_sha1_hex: str
    public_pem: str

    @classmethod
    def from_pem(cls, public_pem: str) -> AppCertificate:
        """Build from a PEM certificate, computing its SHA-1 thumbprint."""
        cert = x509.load_pem_x509_certificate(public_pem.encode())
        return cls(cert.fingerprint(hashes.SHA1()).hex(), public_pem)  # noqa: S303

    @property
    def thumbprint_sha256_hex(self) -> str:
        cert = x509.load_pem_x509_certificate(self.public_pem.encode())
        return cert.fingerprint(hashes.SHA256()).hex()


@dataclass(slots=True)
class AppRegistration:
    client_id: str
    display_name: str
    secrets: list[AppSecret] = field(default_factory=list)
    certificates: list[AppCertificate] = field(default_factory=list)
    redirect_uris: list[str] = field(default_factory=list)
    delegated_permissions: set[str] = field(default_factory=set)
    application_permissions: set[str] = field(default_factory=set)
    delegated_consent: bool = True
    application_consent: bool = True
    # None: app-only access to every mailbox; else only these upns (RBAC for Applications).
    application_mailbox_scope: list[str] | None = None

    def redirect_uri_allowed(self, uri: str) -> bool:
        return any(redirect_uri_matches(registered, uri) for registered in self.redirect_uris)


def redirect_uri_matches(registered: str, requested: str) -> bool:
    """Whether `requested` matches the `registered` redirect URI (see the module docstring)."""
    if registered == requested:
        return True
    if ":*" in registered:
        # Port wildcard (emulator extension): compare with the requested port substituted.
        req = urlsplit(requested)
        return req.port is not None and registered.replace(":*", f":{req.port}", 1) == requested
    reg, req = urlsplit(registered), urlsplit(requested)
    if reg.scheme == req.scheme == "http" and reg.hostname == req.hostname == "localhost":
        # Microsoft ignores the port of http://localhost redirect URIs.
        return (reg.path or "/") == (req.path or "/") and reg.query == req.query
    return False


@dataclass(slots=True)
class Tenant:
    id: str  # tenant id (tid), a GUID
    display_name: str
    domains: list[str]
    users: list[User] = field(default_factory=list)
    grants: list[MailboxGrant] = field(default_factory=list)
    apps: list[AppRegistration] = field(default_factory=list)

    def user_by(self, id_or_upn: str) -> User | None:
        key = id_or_upn.lower()
        for user in self.users:
            if user.id.lower() == key or user.upn.lower() == key:
                return user
        return None

    def app_by(self, client_id: str) -> AppRegistration | None:
        key = client_id.lower()
        return next((a for a in self.apps if a.client_id.lower() == key), None)

    def rights_of(self, grantee: str, mailbox: str) -> frozenset[str]:
        """Rights `grantee` holds on `mailbox` (both id or upn); a user owns their mailbox."""
        who, box = self.user_by(grantee), self.user_by(mailbox)
        if who is None or box is None:
            return frozenset()
        if who.id == box.id:
            return RIGHTS
        rights: set[str] = set()
        for grant in self.grants:
            if (
                grant.grantee.lower() == who.upn.lower()
                and grant.mailbox.lower() == box.upn.lower()
            ):
                rights |= grant.rights
        return frozenset(rights)

    def resolves(self, tenant_segment: str) -> bool:
        """Whether an authority path segment names this tenant."""
        seg = tenant_segment.lower()
        return (
            seg in GENERIC_TENANT_SEGMENTS
            or seg == self.id.lower()
            or seg in (d.lower() for d in self.domains)
        )

    def sign_in_users(self) -> list[User]:
        return [u for u in self.users if u.can_sign_in]


# --- loading -------------------------------------------------------------------------


def _dt(value: Any) -> datetime:
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _user(u: dict[str, Any]) -> User:
    return User(
        id=u["id"],
        upn=u["upn"],
        display_name=u.get("display_name", u["upn"]),
        mail=u.get("mail", u["upn"]),
        kind=u.get("kind", "user"),
        enabled=bool(u.get("enabled", True)),
    )


def _grant(g: dict[str, Any]) -> MailboxGrant:
    rights = frozenset(g["rights"])
    if not rights <= RIGHTS:
        raise ValueError(f"unknown mailbox rights {sorted(rights - RIGHTS)}")
    return MailboxGrant(g["mailbox"], g["grantee"], rights)


def _certificate(c: dict[str, Any]) -> AppCertificate:
    if "thumbprint_sha1_hex" in c:
        return AppCertificate(c["thumbprint_sha1_hex"].lower(), c["public_pem"])
    return AppCertificate.from_pem(c["public_pem"])


def _app(a: dict[str, Any]) -> AppRegistration:
    scope = a.get("application_mailbox_scope")
    return AppRegistration(
        client_id=a["client_id"],
        display_name=a.get("display_name", a["client_id"]),
        secrets=[
            AppSecret(s["id"], s["value"], _dt(s["expires_at"])) for s in a.get("secrets", [])
        ],
        certificates=[_certificate(c) for c in a.get("certificates", [])],
        redirect_uris=list(a.get("redirect_uris", [])),
        delegated_permissions=set(a.get("delegated_permissions", [])),
        application_permissions=set(a.get("application_permissions", [])),
        delegated_consent=bool(a.get("delegated_consent", True)),
        application_consent=bool(a.get("application_consent", True)),
        application_mailbox_scope=None if scope is None else list(scope),
    )


def tenant_from_dict(data: dict[str, Any]) -> Tenant:
    """Build a Tenant from the TOML/JSON document shape (see default_tenant.toml)."""
    head = data.get("tenant", data)
    return Tenant(
        id=head["id"],
        display_name=head.get("display_name", head["id"]),
        domains=list(head.get("domains", [])),
        users=[_user(u) for u in data.get("users", [])],
        grants=[_grant(g) for g in data.get("grants", [])],
        apps=[_app(a) for a in data.get("apps", [])],
    )


def load_tenant(path: str | Path) -> Tenant:
    """Load a tenant file: `.json` is JSON, anything else TOML."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        return tenant_from_dict(json.loads(p.read_text(encoding="utf-8")))
    return tenant_from_dict(tomllib.loads(p.read_text(encoding="utf-8")))


def default_tenant() -> Tenant:
    """A fresh copy of the bundled demo/test tenant (contoso.test)."""
    text = resources.files("m365emu").joinpath("default_tenant.toml").read_text(encoding="utf-8")
    return tenant_from_dict(tomllib.loads(text))
