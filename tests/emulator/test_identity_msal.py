"""The real MSAL (ConfidentialClientApplication) against the emulator over HTTPS."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import msal
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from m365emu.identity.tokens import verify_access_token
from m365emu.tenant import AppCertificate
from m365emu.testing import Browser, RunningEmulator

REDIRECT_URI = "https://127.0.0.1:8443/oauth/callback"
SCOPES = ["Mail.Send", "User.Read"]
SVC = "svc-replygate@contoso.test"
ALICE = "alice@contoso.test"

GRAPH_DEFAULT = ["https://graph.microsoft.com/.default"]


def sign_in(
    emu: RunningEmulator, browser: Browser, account: str, *, app: Any = None, **flow: Any
) -> tuple[Any, dict[str, Any], list[str]]:
    app, result, outcome = emu.msal_sign_in(
        browser, account, SCOPES, redirect_uri=REDIRECT_URI, app=app, **flow
    )
    return app, result, outcome.pages


@pytest.fixture
def browser(emu: RunningEmulator) -> Iterator[Browser]:
    with emu.browser() as b:
        yield b


def test_auth_code_flow_returns_tokens_and_id_token_claims(
    emu: RunningEmulator, browser: Browser
) -> None:
    app, result, pages = sign_in(emu, browser, SVC, prompt="select_account")

    assert pages == ["account-picker"], result
    assert result["token_type"] == "Bearer"
    assert result["scope"].split()[:2] == SCOPES  # echoed as requested (MSAL's cache key)
    claims = result["id_token_claims"]
    svc = emu.state.tenant.user_by(SVC)
    assert svc is not None
    assert claims["oid"] == svc.id
    assert claims["tid"] == emu.tenant_id
    assert claims["preferred_username"] == SVC
    assert claims["aud"] == emu.client_id
    assert claims["iss"] == f"{emu.base_url}/{emu.tenant_id}/v2.0"
    assert claims["ver"] == "2.0"
    assert claims["name"] == "replygate service account"
    (account,) = app.get_accounts()
    assert account["home_account_id"] == f"{svc.id}.{emu.tenant_id}"
    assert account["username"] == SVC
    caller = verify_access_token(emu.state, f"Bearer {result['access_token']}")
    assert caller.user == svc
    assert caller.scopes == {"Mail.Send", "User.Read"}
    assert caller.claims["aud"] == "https://graph.microsoft.com"


def test_id_token_signature_verifies_with_published_jwks(
    emu: RunningEmulator, browser: Browser
) -> None:
    _, result, _ = sign_in(emu, browser, ALICE, prompt="select_account")
    session = emu.requests_session()
    config = session.get(f"{emu.authority()}/v2.0/.well-known/openid-configuration").json()
    keys = session.get(config["jwks_uri"]).json()["keys"]
    key = jwt.PyJWK(keys[0]).key
    claims = jwt.decode(result["id_token"], key, algorithms=["RS256"], audience=emu.client_id)
    assert claims["preferred_username"] == ALICE
    assert config["issuer"] == claims["iss"]


def test_silent_refresh_rotates_the_refresh_token(emu: RunningEmulator, browser: Browser) -> None:
    app, first, _ = sign_in(emu, browser, SVC, prompt="select_account")
    (account,) = app.get_accounts()

    cached = app.acquire_token_silent_with_error(SCOPES, account=account)
    refreshed = app.acquire_token_silent_with_error(SCOPES, account=account, force_refresh=True)

    assert cached["token_source"] == "cache"
    assert refreshed["token_source"] == "identity_provider"
    assert refreshed["access_token"] != first["access_token"]
    assert refreshed["refresh_token"] != first["refresh_token"]
    # Microsoft leaves the previous refresh token valid; the emulator does the same.
    again = app.client.obtain_token_by_refresh_token(first["refresh_token"], scope=SCOPES)
    assert "access_token" in again, again


def test_refresh_after_revocation_fails_with_50173(emu: RunningEmulator, browser: Browser) -> None:
    app, _, _ = sign_in(emu, browser, SVC, prompt="select_account")
    (account,) = app.get_accounts()

    assert emu.state.revoke_refresh_tokens(SVC) == 1
    result = app.acquire_token_silent_with_error(SCOPES, account=account, force_refresh=True)

    assert result["error"] == "invalid_grant"
    assert result["error_codes"] == [50173]
    assert result["error_description"].startswith("AADSTS50173:")
    assert {"timestamp", "trace_id", "correlation_id"} <= result.keys()


def test_refresh_unused_too_long_fails_with_700082(emu: RunningEmulator, browser: Browser) -> None:
    app, _, _ = sign_in(emu, browser, SVC, prompt="select_account")
    (account,) = app.get_accounts()

    emu.state.advance_clock(timedelta(days=91).total_seconds())
    result = app.acquire_token_silent_with_error(SCOPES, account=account, force_refresh=True)

    assert result["error"] == "invalid_grant"
    assert result["error_codes"] == [700082]


def test_refresh_past_max_age_fails_with_70008(emu: RunningEmulator, browser: Browser) -> None:
    emu.state.identity.settings.refresh_token_max_age = timedelta(hours=8)
    app, _, _ = sign_in(emu, browser, SVC, prompt="select_account")
    (account,) = app.get_accounts()

    emu.state.advance_clock(timedelta(hours=9).total_seconds())
    result = app.acquire_token_silent_with_error(SCOPES, account=account, force_refresh=True)

    assert result["error_codes"] == [70008]


def test_refresh_after_consent_withdrawn_fails_with_65001(
    emu: RunningEmulator, browser: Browser
) -> None:
    app, _, _ = sign_in(emu, browser, SVC, prompt="select_account")
    (account,) = app.get_accounts()

    emu.state.set_consent(emu.client_id, delegated=False)
    result = app.acquire_token_silent_with_error(SCOPES, account=account, force_refresh=True)

    assert result["error"] == "invalid_grant"
    assert result["error_codes"] == [65001]


def test_client_credentials_with_secret_gets_application_roles(emu: RunningEmulator) -> None:
    result = emu.msal_app().acquire_token_for_client(GRAPH_DEFAULT)

    caller = verify_access_token(emu.state, f"Bearer {result['access_token']}")
    assert caller.app_only
    assert caller.roles == {"Mail.Send", "Mail.ReadWrite"}
    assert caller.claims["appidacr"] == "1"
    assert "refresh_token" not in result


def test_client_credentials_without_admin_consent_has_no_roles(emu: RunningEmulator) -> None:
    emu.state.set_consent(emu.client_id, application=False)

    result = emu.msal_app().acquire_token_for_client(GRAPH_DEFAULT)

    caller = verify_access_token(emu.state, f"Bearer {result['access_token']}")
    assert caller.roles == frozenset()
    assert "roles" not in caller.claims


def _certificate() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "replygate test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.mark.parametrize("style", ["thumbprint-rs256", "public-certificate-ps256"])
def test_client_credentials_with_certificate(emu: RunningEmulator, style: str) -> None:
    key_pem, cert_pem = _certificate()
    registered = AppCertificate.from_pem(cert_pem)
    emu.app.certificates.append(registered)
    credential = (
        {"private_key": key_pem, "thumbprint": registered.thumbprint_sha1_hex}
        if style == "thumbprint-rs256"
        else {"private_key": key_pem, "public_certificate": cert_pem}
    )

    result = emu.msal_app(client_credential=credential).acquire_token_for_client(GRAPH_DEFAULT)

    caller = verify_access_token(emu.state, f"Bearer {result['access_token']}")
    assert caller.claims["appidacr"] == "2"
    assert caller.roles == {"Mail.Send", "Mail.ReadWrite"}


def test_certificate_not_registered_fails_with_700027(emu: RunningEmulator) -> None:
    key_pem, cert_pem = _certificate()
    credential = {"private_key": key_pem, "public_certificate": cert_pem}

    result = emu.msal_app(client_credential=credential).acquire_token_for_client(GRAPH_DEFAULT)

    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [700027]


def test_wrong_secret_fails_with_7000215(emu: RunningEmulator) -> None:
    result = emu.msal_app(client_credential="not-the-secret").acquire_token_for_client(
        GRAPH_DEFAULT
    )
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]


def test_expired_secret_fails_with_7000222(emu: RunningEmulator) -> None:
    emu.state.expire_secret(emu.client_id)

    result = emu.msal_app().acquire_token_for_client(GRAPH_DEFAULT)

    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000222]


def test_unknown_client_fails_with_700016(emu: RunningEmulator) -> None:
    app = emu.msal_app("11111111-2222-3333-4444-555555555555", "whatever")
    result = app.acquire_token_for_client(GRAPH_DEFAULT)
    assert result["error"] == "unauthorized_client"
    assert result["error_codes"] == [700016]


def test_unknown_tenant_fails_discovery_with_90002(emu: RunningEmulator) -> None:
    with pytest.raises(ValueError, match="Unable to get authority configuration"):
        emu.msal_app(tenant_segment="fabrikam.test")
    url = f"{emu.authority('fabrikam.test')}/v2.0/.well-known/openid-configuration"
    body = emu.requests_session().get(url).json()
    assert body["error_codes"] == [90002]
    assert body["error_description"].startswith("AADSTS90002: Tenant 'fabrikam.test' not found.")


def test_tenant_domain_segment_works_for_client_credentials(emu: RunningEmulator) -> None:
    result = emu.msal_app(tenant_segment="contoso.test").acquire_token_for_client(GRAPH_DEFAULT)
    assert "access_token" in result, result


@pytest.mark.parametrize("segment", ["organizations", "common"])
def test_generic_segments_work_for_sign_in(
    emu: RunningEmulator, browser: Browser, segment: str
) -> None:
    app = emu.msal_app(tenant_segment=segment)
    _, result, _ = sign_in(emu, browser, ALICE, app=app, prompt="select_account")
    assert result["id_token_claims"]["tid"] == emu.tenant_id


def test_pkce_mismatch_fails_with_501481(emu: RunningEmulator, browser: Browser) -> None:
    app = emu.msal_app()
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI, response_mode="form_post")
    params = browser.authorize(flow["auth_uri"], account=SVC).params
    flow["code_verifier"] = "x" * 50  # the flow state got mixed up with another one

    result = app.acquire_token_by_auth_code_flow(flow, params)

    assert result["error"] == "invalid_grant"
    assert result["error_codes"] == [501481]


def test_msal_rejects_a_state_mismatch_before_any_request(
    emu: RunningEmulator, browser: Browser
) -> None:
    app = emu.msal_app()
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI, response_mode="form_post")
    params = browser.authorize(flow["auth_uri"], account=SVC).params
    with pytest.raises(ValueError, match="state"):
        app.acquire_token_by_auth_code_flow(flow, {**params, "state": "forged"})


def test_token_cache_round_trip_serves_silently(emu: RunningEmulator, browser: Browser) -> None:
    cache = msal.SerializableTokenCache()
    sign_in(emu, browser, SVC, app=emu.msal_app(token_cache=cache), prompt="select_account")
    restored = msal.SerializableTokenCache()
    restored.deserialize(cache.serialize())
    app = emu.msal_app(token_cache=restored)

    (account,) = app.get_accounts(username=SVC)
    result = app.acquire_token_silent_with_error(SCOPES, account=account)

    assert result["token_source"] == "cache"


def test_resource_qualified_scopes_are_echoed_as_requested(
    emu: RunningEmulator, browser: Browser
) -> None:
    scopes = ["https://graph.microsoft.com/Mail.Send", "https://graph.microsoft.com/User.Read"]
    app, result, _ = emu.msal_sign_in(
        browser, SVC, scopes, redirect_uri=REDIRECT_URI, prompt="select_account"
    )
    assert result["scope"].split()[:2] == scopes
    caller = verify_access_token(emu.state, f"Bearer {result['access_token']}")
    assert caller.scopes == {"Mail.Send", "User.Read"}
    (account,) = app.get_accounts()
    assert app.acquire_token_silent_with_error(scopes, account=account)["token_source"] == "cache"


def test_delegated_default_scope_grants_every_registered_permission(
    emu: RunningEmulator, browser: Browser
) -> None:
    _, result, _ = emu.msal_sign_in(
        browser, SVC, ["https://graph.microsoft.com/.default"], redirect_uri=REDIRECT_URI,
        prompt="select_account",
    )  # fmt: skip
    caller = verify_access_token(emu.state, f"Bearer {result['access_token']}")
    assert caller.scopes == emu.app.delegated_permissions - {"offline_access"}
