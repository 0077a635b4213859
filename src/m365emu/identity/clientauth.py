"""Confidential-client authentication at the token endpoint: secrets and certificates.

https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow#redeem-a-code-for-an-access-token
https://learn.microsoft.com/entra/identity-platform/certificate-credentials
A secret comes in the body (`client_secret`, what MSAL sends) or as HTTP Basic. A certificate
credential is a `client_assertion` JWT signed with the certificate's private key: RS256 with an
`x5t` (SHA-1 thumbprint) header, or PS256 with `x5t#S256` (what MSAL sends when it knows the
public certificate); `aud` = the token endpoint, `iss` = `sub` = client id, `exp`, `jti`.
Times are checked against the emulator clock. Returns the `appidacr` value ("1" secret,
"2" certificate).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any
from urllib.parse import unquote, urlsplit

import jwt
from cryptography import x509

from m365emu.identity import errors
from m365emu.state import EmulatorState
from m365emu.tenant import AppCertificate, AppRegistration

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(client_id, secret) from an HTTP Basic header (RFC 6749 2.3.1: form-urlencoded)."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (unquote(client_id), unquote(secret)) if sep else None


def authenticate(
    state: EmulatorState,
    app: AppRegistration,
    params: dict[str, str],
    basic: tuple[str, str] | None,
    token_endpoint: str,
) -> str:
    """Check the client's credential; raise AadError (invalid_client) if it is not valid."""
    assertion = params.get("client_assertion")
    if assertion:
        if params.get("client_assertion_type") != JWT_BEARER:
            raise errors.AadError(
                50027, "invalid_client", "client_assertion_type must be " + JWT_BEARER, status=401
            )
        _check_assertion(state, app, assertion, token_endpoint)
        return "2"
    secret = params.get("client_secret")
    if secret is None and basic is not None:
        secret = basic[1]
    if secret is None:
        raise errors.missing_credential()
    matching = [s for s in app.secrets if hmac.compare_digest(s.value.encode(), secret.encode())]
    if not matching:
        raise errors.invalid_secret(app.client_id)
    if all(s.expires_at <= state.now() for s in matching):
        raise errors.expired_secret(app.client_id)
    return "1"


def _b64url_hex(value: str) -> str:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).hex()


def _find_certificate(app: AppRegistration, header: dict[str, Any]) -> AppCertificate:
    try:
        if "x5t#S256" in header:
            wanted = _b64url_hex(str(header["x5t#S256"]))
            found = [c for c in app.certificates if c.thumbprint_sha256_hex == wanted]
        elif "x5t" in header:
            wanted = _b64url_hex(str(header["x5t"]))
            found = [c for c in app.certificates if c.thumbprint_sha1_hex.lower() == wanted]
        else:
            raise errors.bad_assertion("The assertion has no x5t or x5t#S256 header.")
    except (binascii.Error, ValueError):
        raise errors.bad_assertion("The thumbprint in the header is not valid.") from None
    if not found:
        raise errors.bad_assertion(
            f"[Reason - The key was not found., Thumbprint of key used by client: "
            f"'{wanted.upper()}'. Please visit the Azure Portal, Graph Explorer or directly use "
            f"MS Graph to see configured keys for app Id '{app.client_id}'.]"
        )
    return found[0]


def _audience_ok(state: EmulatorState, aud: object, token_endpoint: str) -> bool:
    """The token endpoint of this tenant, under any tenant segment that names it."""
    if not isinstance(aud, str):
        return False
    if aud == token_endpoint:
        return True
    want, got = urlsplit(token_endpoint), urlsplit(aud)
    parts = got.path.strip("/").split("/")
    return (
        got.scheme == want.scheme
        and got.netloc == want.netloc
        and len(parts) >= 2
        and state.tenant.resolves(parts[0])
        and "/".join(parts[1:]) in ("oauth2/v2.0/token", "oauth2/token")
    )


def _verified_claims(app: AppRegistration, assertion: str) -> dict[str, Any]:
    """The assertion's claims once its signature checks out against a registered cert."""
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.InvalidTokenError:
        raise errors.AadError(
            50027, "invalid_client", "JWT token is invalid or malformed.", status=401
        ) from None
    alg = str(header.get("alg", ""))
    if alg not in ("RS256", "PS256"):
        raise errors.bad_assertion(f"The algorithm '{alg}' is not supported.")
    cert = _find_certificate(app, header)
    public_key = x509.load_pem_x509_certificate(cert.public_pem.encode()).public_key()
    try:
        claims: dict[str, Any] = jwt.decode(
            assertion,
            public_key,  # type: ignore[arg-type]  # an RSA key; PyJWT's union is wider
            algorithms=[alg],
            options={
                "verify_aud": False,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.InvalidTokenError:
        raise errors.bad_assertion("[Reason - The signature is not valid.]") from None
    return claims


def _check_assertion(
    state: EmulatorState, app: AppRegistration, assertion: str, token_endpoint: str
) -> None:
    claims = _verified_claims(app, assertion)
    if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
        raise errors.assertion_claims("The iss and sub claims must be the client id.")
    if not _audience_ok(state, claims.get("aud"), token_endpoint):
        raise errors.assertion_claims(
            f"The audience '{claims.get('aud')}' is not the token endpoint '{token_endpoint}'."
        )
    now = state.now().timestamp()
    skew = state.identity.settings.clock_skew.total_seconds()
    expired = "exp" not in claims or float(claims["exp"]) + skew <= now
    if expired or float(claims.get("nbf", 0)) - skew > now:
        raise errors.AadError(
            700024,
            "invalid_client",
            "Client assertion is not within its valid time range.",
            status=401,
        )
