"""MicrosoftSignIn.finish: only an id token issued to this application signs anyone in."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from replygate.graph.auth import OAuthAppConfig
from replygate.graph.errors import GraphAuthorizationNeeded
from replygate.graph.sign_in import MicrosoftSignIn

CLIENT_ID = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"
TENANT = "4c2a5e1b-9d3f-4e7a-8b6c-1f0e2d3c4b5a"


class RedeemedBy:
    """Stands in for MSAL's application: the code was redeemed for these claims."""

    def __init__(self, claims: dict[str, Any]) -> None:
        self.claims = claims

    def acquire_token_by_auth_code_flow(
        self, flow: dict[str, Any], params: dict[str, Any]
    ) -> dict[str, Any]:
        return {"access_token": "x", "id_token_claims": self.claims}


def sign_in(claims: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> MicrosoftSignIn:
    config = OAuthAppConfig(tenant=TENANT, client_id=CLIENT_ID, credential="secret")
    client = MicrosoftSignIn(config, http_client=requests.Session())
    monkeypatch.setattr(client, "_msal", lambda: RedeemedBy(claims))
    return client


def test_claims_of_a_token_for_this_application_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    claims = {"aud": CLIENT_ID, "tid": TENANT, "oid": "o1", "preferred_username": "a@b.c"}
    account = sign_in(claims, monkeypatch).finish({"redirect_uri": "https://x/cb"}, {})
    assert (account.username, account.tid, account.oid) == ("a@b.c", TENANT, "o1")


def test_a_token_issued_to_another_application_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    claims = {"aud": "another-app", "tid": TENANT, "preferred_username": "a@b.c"}
    with pytest.raises(GraphAuthorizationNeeded, match="another application"):
        sign_in(claims, monkeypatch).finish({"redirect_uri": "https://x/cb"}, {})
