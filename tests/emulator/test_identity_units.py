"""Tenant files, redirect URI matching, TLS files, Graph token checks, token endpoint edges."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from m365emu.cli import _parser
from m365emu.identity.tokens import GraphAuthError, access_token_for_user, verify_access_token
from m365emu.state import EmulatorState, FaultRule
from m365emu.tenant import default_tenant, load_tenant, redirect_uri_matches
from m365emu.testing import RunningEmulator
from m365emu.tls import ensure_certificates

SVC = "svc-replygate@contoso.test"


# --- tenant ----------------------------------------------------------------------------


def test_default_tenant_contents() -> None:
    tenant = default_tenant()
    assert tenant.domains == ["contoso.test"]
    assert [u.upn for u in tenant.sign_in_users()] == [
        "admin@contoso.test",
        "alice@contoso.test",
        "bob@contoso.test",
        "carol@contoso.test",
        SVC,
    ]
    assert tenant.rights_of(SVC, "approvals@contoso.test") == {"FullAccess", "SendAs"}
    assert tenant.rights_of("alice@contoso.test", "approvals@contoso.test") == frozenset()
    assert tenant.rights_of("alice@contoso.test", "alice@contoso.test") >= {"FullAccess"}
    app = tenant.apps[0]
    assert app.display_name == "replygate"
    assert app.secrets[0].expires_at > datetime(2090, 1, 1, tzinfo=UTC)
    for segment in (tenant.id, "CONTOSO.TEST", "organizations", "common"):
        assert tenant.resolves(segment)
    assert not tenant.resolves("fabrikam.test")


def test_json_tenant_file(tmp_path: Path) -> None:
    doc = {
        "tenant": {"id": "t-1", "display_name": "Fabrikam", "domains": ["fabrikam.test"]},
        "users": [{"id": "u-1", "upn": "ann@fabrikam.test", "display_name": "Ann"}],
        "grants": [],
        "apps": [
            {
                "client_id": "c-1",
                "secrets": [{"id": "s", "value": "v", "expires_at": "2030-01-01T00:00:00"}],
                "application_mailbox_scope": ["ann@fabrikam.test"],
            }
        ],
    }
    path = tmp_path / "tenant.json"
    path.write_text(json.dumps(doc))
    tenant = load_tenant(path)
    assert tenant.user_by("ANN@fabrikam.test") is not None
    assert tenant.users[0].mail == "ann@fabrikam.test"
    app = tenant.app_by("c-1")
    assert app is not None
    assert app.secrets[0].expires_at.tzinfo is UTC
    assert app.application_mailbox_scope == ["ann@fabrikam.test"]


def test_unknown_rights_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(
        '[tenant]\nid = "t"\n[[grants]]\nmailbox = "a"\ngrantee = "b"\nrights = ["Owner"]\n'
    )
    with pytest.raises(ValueError, match="Owner"):
        load_tenant(path)


@pytest.mark.parametrize(
    ("registered", "requested", "ok"),
    [
        ("https://app.test/cb", "https://app.test/cb", True),
        ("https://app.test/cb", "https://app.test/CB", False),
        ("https://127.0.0.1:*/oauth/callback", "https://127.0.0.1:50123/oauth/callback", True),
        ("https://127.0.0.1:*/oauth/callback", "https://127.0.0.1/oauth/callback", False),
        ("https://127.0.0.1:*/oauth/callback", "https://127.0.0.2:5/oauth/callback", False),
        ("http://localhost/cb", "http://localhost:5000/cb", True),
        ("http://localhost:8000/cb", "http://localhost:5000/cb", True),
        ("http://localhost/cb", "http://localhost:5000/other", False),
        ("https://app.test:8443/cb", "https://app.test:9443/cb", False),
    ],
)
def test_redirect_uri_matching(registered: str, requested: str, ok: bool) -> None:
    assert redirect_uri_matches(registered, requested) is ok


# --- TLS -------------------------------------------------------------------------------


def test_certificates_are_reused_while_valid(tmp_path: Path) -> None:
    first = ensure_certificates(tmp_path)
    ca = first.ca_file.read_bytes()
    second = ensure_certificates(tmp_path)
    assert second.ca_file.read_bytes() == ca
    assert first.key_file.stat().st_mode & 0o077 == 0
    first.cert_file.write_text("garbage")
    third = ensure_certificates(tmp_path)
    assert third.ca_file.read_bytes() != ca


# --- Graph token verification ------------------------------------------------------------


@pytest.fixture(scope="module")
def state() -> EmulatorState:
    return EmulatorState()


def _user_token(state: EmulatorState) -> str:
    user = state.tenant.user_by(SVC)
    assert user is not None
    return access_token_for_user(state, state.tenant.apps[0], user, frozenset({"Mail.Send"}), "1")[
        0
    ]


def _forged(state: EmulatorState, key: Any = None, **changes: Any) -> str:
    claims = jwt.decode(_user_token(state), options={"verify_signature": False})
    claims.update(changes)
    return jwt.encode(claims, key or state.signing_key.private_key, algorithm="RS256")


def test_verify_accepts_a_delegated_token(state: EmulatorState) -> None:
    caller = verify_access_token(state, f"bearer {_user_token(state)}")
    assert caller.user is not None
    assert caller.user.upn == SVC
    assert caller.scopes == {"Mail.Send"}
    assert not caller.app_only


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Access token is empty."),
        ("", "Access token is empty."),
        ("Basic abc", "Access token is empty."),
        ("Bearer nodots", "IDX14100"),
        ("Bearer a.b.c", "Access token validation failure."),
    ],
)
def test_verify_refuses_malformed_headers(
    state: EmulatorState, header: str | None, message: str
) -> None:
    with pytest.raises(GraphAuthError, match=message) as caught:
        verify_access_token(state, header)
    assert caught.value.status == 401
    assert caught.value.code == "InvalidAuthenticationToken"


def test_verify_refuses_bad_signature_audience_and_expiry(state: EmulatorState) -> None:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = {
        "Access token validation failure.": _forged(state, other_key),
        "Invalid audience": _forged(state, aud="https://outlook.office.com"),
        "expired": _forged(state, exp=int(time.time()) - 600),
        "Invalid issuer": _forged(state, tid=str(uuid.uuid4())),
        "Unknown application": _forged(state, appid=str(uuid.uuid4())),
    }
    for message, token in cases.items():
        with pytest.raises(GraphAuthError, match=message):
            verify_access_token(state, f"Bearer {token}")
    graph_app_id = _forged(state, aud="00000003-0000-0000-c000-000000000000")
    assert verify_access_token(state, f"Bearer {graph_app_id}").user is not None


def test_verify_uses_the_emulator_clock() -> None:
    local = EmulatorState()
    token = _user_token(local)
    local.advance_clock(3600 + 301)  # past exp plus Graph's 5 minutes of skew
    with pytest.raises(GraphAuthError, match="expired"):
        verify_access_token(local, f"Bearer {token}")


# --- state helpers -------------------------------------------------------------------------


def test_fault_rules_are_consumed() -> None:
    local = EmulatorState()
    local.faults.add(FaultRule("POST /v1.0/users/*/sendMail", 503, "ServiceUnavailable", 2))
    assert local.faults.take("GET /v1.0/me") is None
    assert local.faults.take("POST /v1.0/users/a@b/sendMail") is not None
    assert local.faults.take("POST /v1.0/users/a@b/sendMail") is not None
    assert local.faults.take("POST /v1.0/users/a@b/sendMail") is None


def test_control_hooks_name_unknown_things() -> None:
    local = EmulatorState()
    with pytest.raises(KeyError):
        local.revoke_refresh_tokens("nobody@contoso.test")
    with pytest.raises(KeyError):
        local.expire_secret("nope")
    with pytest.raises(KeyError):
        local.expire_secret(local.tenant.apps[0].client_id, "no-such-secret")
    with pytest.raises(KeyError):
        local.set_consent("nope", delegated=True)


def test_cli_parser_defaults() -> None:
    args = _parser().parse_args(["serve"])
    assert (args.host, args.port, args.tenant) == ("127.0.0.1", 8700, None)


# --- token endpoint edges over HTTPS --------------------------------------------------------


def _post(emu: RunningEmulator, data: dict[str, str], **kwargs: Any) -> tuple[int, dict[str, Any]]:
    response = emu.requests_session().post(
        f"{emu.authority()}/oauth2/v2.0/token", data=data, **kwargs
    )
    body: dict[str, Any] = response.json()
    return response.status_code, body


def test_error_shape_echoes_client_request_id(emu: RunningEmulator) -> None:
    status, body = _post(
        emu,
        {"client_id": emu.client_id, "client_secret": "wrong", "grant_type": "client_credentials",
         "scope": "https://graph.microsoft.com/.default"},
        headers={"client-request-id": "abc-123"},
    )  # fmt: skip
    assert status == 401
    assert body["correlation_id"] == "abc-123"
    assert body["error_codes"] == [7000215]
    assert set(body) == {
        "error", "error_description", "error_codes", "timestamp", "trace_id",
        "correlation_id", "error_uri",
    }  # fmt: skip


def test_basic_auth_secret_is_accepted(emu: RunningEmulator) -> None:
    basic = base64.b64encode(f"{emu.client_id}:{emu.client_secret}".encode()).decode()
    status, body = _post(
        emu,
        {"grant_type": "client_credentials", "scope": "https://graph.microsoft.com/.default"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert status == 200, body
    assert body["token_type"] == "Bearer"


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"grant_type": "client_credentials", "scope": "Mail.Send"}, 1002012),
        ({"grant_type": "client_credentials"}, 900144),
        ({"grant_type": "password", "scope": "openid"}, 70003),
        ({"grant_type": "refresh_token", "refresh_token": "nope"}, 9002313),
        ({"grant_type": "authorization_code", "code": "nope", "redirect_uri": "x"}, 70000),
    ],
)
def test_token_endpoint_request_errors(
    emu: RunningEmulator, form: dict[str, str], code: int
) -> None:
    status, body = _post(emu, {"client_id": emu.client_id, "client_secret": emu.client_secret,
                               **form})  # fmt: skip
    assert status == 400
    assert body["error_codes"] == [code]


def test_missing_credential_is_7000218(emu: RunningEmulator) -> None:
    status, body = _post(emu, {"client_id": emu.client_id, "grant_type": "client_credentials"})
    assert (status, body["error_codes"]) == (401, [7000218])


def test_secret_expires_with_the_emulator_clock(emu: RunningEmulator) -> None:
    emu.app.secrets[0].expires_at = emu.state.now() + timedelta(days=1)
    form = {
        "client_id": emu.client_id,
        "client_secret": emu.client_secret,
        "grant_type": "client_credentials",
        "scope": "https://graph.microsoft.com/.default",
    }
    assert _post(emu, form)[0] == 200
    emu.state.advance_clock(timedelta(days=2).total_seconds())
    assert _post(emu, form)[1]["error_codes"] == [7000222]


def test_discovery_documents(emu: RunningEmulator) -> None:
    session = emu.requests_session()
    config = session.get(f"{emu.authority('contoso.test')}/v2.0/.well-known/openid-configuration")
    doc = config.json()
    assert doc["authorization_endpoint"] == f"{emu.base_url}/contoso.test/oauth2/v2.0/authorize"
    assert doc["issuer"] == f"{emu.base_url}/{emu.tenant_id}/v2.0"
    assert "S256" in doc["code_challenge_methods_supported"]
    keys = session.get(doc["jwks_uri"]).json()["keys"]
    assert keys[0]["kid"] == emu.state.signing_key.kid
    bad = session.get(f"{emu.authority('nope.test')}/v2.0/.well-known/openid-configuration")
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_tenant")
    instance = session.get(
        f"{emu.base_url}/common/discovery/instance",
        params={"authorization_endpoint": doc["authorization_endpoint"], "api-version": "1.1"},
    ).json()
    assert instance["tenant_discovery_endpoint"].endswith(
        "/contoso.test/v2.0/.well-known/openid-configuration"
    )


def _assertion_form(emu: RunningEmulator, **claims: Any) -> dict[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    from m365emu.tenant import AppCertificate

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    registered = AppCertificate.from_pem(cert.public_bytes(serialization.Encoding.PEM).decode())
    emu.app.certificates.append(registered)
    x5t = base64.urlsafe_b64encode(bytes.fromhex(registered.thumbprint_sha1_hex)).rstrip(b"=")
    payload = {
        "aud": f"{emu.authority()}/oauth2/v2.0/token",
        "iss": emu.client_id,
        "sub": emu.client_id,
        "exp": int(time.time()) + 600,
        "jti": str(uuid.uuid4()),
        **claims,
    }
    assertion = jwt.encode(payload, key, algorithm="RS256", headers={"x5t": x5t.decode()})
    return {
        "client_id": emu.client_id,
        "grant_type": "client_credentials",
        "scope": "https://graph.microsoft.com/.default",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({}, None),
        ({"aud": "https://127.0.0.1:1/contoso.test/oauth2/v2.0/token"}, 700023),
        ({"iss": "someone-else"}, 700023),
        ({"exp": int(time.time()) - 3600}, 700024),
    ],
)
def test_client_assertion_checks(
    emu: RunningEmulator, claims: dict[str, Any], code: int | None
) -> None:
    status, body = _post(emu, _assertion_form(emu, **claims))
    if code is None:
        assert status == 200, body
    else:
        assert (status, body["error_codes"]) == (401, [code])


def test_serve_command_answers_over_https(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    import requests

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-c", "from m365emu.cli import run; run()", "serve",
               "--port", str(port), "--state-dir", str(tmp_path)]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert server.stdout is not None
        banner = server.stdout.readline().decode() + server.stdout.readline().decode()
        assert f"https://127.0.0.1:{port}" in banner
        session = requests.Session()
        session.trust_env = False
        session.verify = str(tmp_path / "tls" / "ca.pem")
        url = f"https://127.0.0.1:{port}/contoso.test/v2.0/.well-known/openid-configuration"
        deadline = time.monotonic() + 15
        while True:
            try:
                response = session.get(url, timeout=2)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert response.json()["token_endpoint"].startswith(f"https://127.0.0.1:{port}/")
        session.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stdout is not None:
            server.stdout.close()
