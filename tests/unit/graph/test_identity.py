"""Clouds, MSAL error classification, and GraphAuth's one retry on 401."""

from __future__ import annotations

import httpx
import pytest

from replygate.errors import AuthorizationNeeded, ConfigurationError, TransportFailure
from replygate.graph.auth import GraphAuth, _check_redirect_uri
from replygate.graph.clouds import (
    CloudName,
    Mode,
    delegated_scopes,
    permissions_for,
    resolve_cloud,
)
from replygate.graph.identity_errors import classify


def test_clouds_and_custom_hosts() -> None:
    assert resolve_cloud("us-gov").graph_url == "https://graph.microsoft.us"
    assert resolve_cloud("china").authority_host == "https://login.chinacloudapi.cn"
    assert resolve_cloud("us-gov-dod").app_only_scope == "https://dod-graph.microsoft.us/.default"
    custom = resolve_cloud(
        "custom", authority_host="https://127.0.0.1:8443/", graph_url="https://127.0.0.1:8443/v1.0"
    )
    assert (custom.authority_host, custom.graph_url) == ("https://127.0.0.1:8443",) * 2
    assert not custom.is_microsoft
    assert resolve_cloud(CloudName.GLOBAL).is_microsoft
    assert custom.app_only_scope == "https://graph.microsoft.com/.default"


def test_http_and_incomplete_custom_clouds_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="https"):
        resolve_cloud("custom", authority_host="http://127.0.0.1", graph_url="https://x")
    with pytest.raises(ConfigurationError, match="both"):
        resolve_cloud("custom", authority_host="https://127.0.0.1")


def test_national_clouds_ask_for_qualified_scopes() -> None:
    assert delegated_scopes(resolve_cloud("global"))[0] == "Mail.Send"
    assert delegated_scopes(resolve_cloud("us-gov"))[0] == "https://graph.microsoft.us/Mail.Send"


def test_every_permission_has_a_reason() -> None:
    for mode in Mode:
        assert all(p.reason for p in permissions_for(mode))
    names = {p.name for p in permissions_for(Mode.DELEGATED)}
    assert {"Mail.Send.Shared", "Mail.ReadWrite.Shared", "offline_access"} <= names


def aad(code: int, error: str = "invalid_grant") -> dict[str, object]:
    return {
        "error": error,
        "error_description": f"AADSTS{code}: Something happened.\r\nTrace ID: 1\r\nTimestamp: x",
        "error_codes": [code],
    }


@pytest.mark.parametrize("code", [50173, 700082, 70008, 70043, 50076, 65001])
def test_reauthorisation_codes(code: int) -> None:
    error = classify(aad(code), account="svc@contoso.test")
    assert isinstance(error, AuthorizationNeeded)
    assert error.aadsts == code
    assert error.description == f"AADSTS{code}: Something happened."
    assert "svc@contoso.test" in error.fix


@pytest.mark.parametrize("code", [7000215, 7000222, 50011, 700016, 90002, 7000229])
def test_configuration_codes(code: int) -> None:
    error = classify(aad(code, "invalid_client"), redirect_uri="https://rg.example/oauth/callback")
    assert isinstance(error, ConfigurationError)
    assert error.aadsts == code
    assert error.fix


def test_expired_secret_and_redirect_uri_messages() -> None:
    expired = classify(aad(7000222, "invalid_client"))
    wanted = "the client secret expired; create a new one in Entra ID (Certificates & secrets)"
    assert wanted + " and paste it into replygate" in expired.message
    mismatch = classify(
        aad(50011, "invalid_request"), redirect_uri="https://rg.example/oauth/callback"
    )
    assert "https://rg.example/oauth/callback" in mismatch.fix


def test_invalid_grant_without_code_and_interaction_required_need_reauthorisation() -> None:
    assert isinstance(classify({"error": "invalid_grant"}), AuthorizationNeeded)
    assert isinstance(classify({"error": "interaction_required"}), AuthorizationNeeded)


def test_service_errors_are_transient() -> None:
    error = classify({"error": "temporarily_unavailable", "error_description": "busy"})
    assert isinstance(error, TransportFailure)
    assert not error.permanent


class FakeTokens:
    def __init__(self) -> None:
        self.calls: list[bool] = []

    def access_token(self, *, force_refresh: bool = False) -> str:
        self.calls.append(force_refresh)
        return f"token-{len(self.calls)}"


def test_graph_auth_retries_once_with_a_fresh_token_on_401() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(401 if len(seen) == 1 else 200)

    tokens = FakeTokens()
    with httpx.Client(transport=httpx.MockTransport(handler), auth=GraphAuth(tokens)) as http:  # type: ignore[arg-type]
        assert http.get("https://g.test/x").status_code == 200
    assert seen == ["Bearer token-1", "Bearer token-2"]
    assert tokens.calls == [False, True]


@pytest.mark.parametrize(
    ("uri", "allowed"),
    [
        ("https://rg.example/oauth/callback", True),
        ("http://localhost:8000/oauth/callback", True),
        ("http://rg.example/oauth/callback", False),
    ],
)
def test_authorisation_refuses_plain_http_redirects(uri: str, allowed: bool) -> None:
    if allowed:
        _check_redirect_uri(uri)
    else:
        with pytest.raises(ConfigurationError, match="https"):
            _check_redirect_uri(uri)
