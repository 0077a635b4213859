"""OAuth applications and Email Settings over the API: write-only credentials, roles, errors."""

from __future__ import annotations

from fastapi.testclient import TestClient

from replygate.bootstrap import Container
from tests.integration.api.conftest import Caller

APP = {
    "name": "prod",
    "tenant": "contoso.com",
    "client_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "client_secret": "never-shown-again",
    "secret_expires_at": "2099-06-30T00:00:00Z",
}


def test_register_list_update_remove_without_ever_showing_the_secret(
    client: TestClient, admin: Caller
) -> None:
    created = client.post("/api/v1/oauth-applications", json=APP, headers=admin.headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert "never-shown-again" not in created.text
    assert body["redirect_uri"].endswith("/oauth/callback")
    assert {p["name"] for p in body["permissions"]} >= {"Mail.Send", "Mail.ReadWrite.Shared"}
    assert body["authorised_account"] is None
    listed = client.get("/api/v1/oauth-applications", headers=admin.headers)
    assert [a["name"] for a in listed.json()] == ["prod"]
    assert "never-shown-again" not in listed.text
    duplicate = client.post("/api/v1/oauth-applications", json=APP, headers=admin.headers)
    assert duplicate.status_code == 409
    app_id = body["id"]
    renamed = client.put(
        f"/api/v1/oauth-applications/{app_id}",
        json={**APP, "name": "prod-eu"},
        headers=admin.headers,
    )
    assert renamed.json()["name"] == "prod-eu"
    assert (
        client.delete(f"/api/v1/oauth-applications/{app_id}", headers=admin.headers).status_code
        == 204
    )
    missing = client.delete(f"/api/v1/oauth-applications/{app_id}", headers=admin.headers)
    assert missing.status_code == 404


def test_update_without_a_credential_keeps_the_stored_secret(
    client: TestClient, admin: Caller, container: Container
) -> None:
    created = client.post("/api/v1/oauth-applications", json=APP, headers=admin.headers).json()
    url = f"/api/v1/oauth-applications/{created['id']}"
    settings_only = {
        k: v for k, v in APP.items() if k not in ("client_secret", "secret_expires_at")
    }
    renamed = client.put(url, json={**settings_only, "name": "prod-eu"}, headers=admin.headers)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["credential_kind"] == "secret"
    assert renamed.json()["credential_expires_at"] == "2099-06-30T00:00:00Z"
    corrected = client.put(
        url,
        json={**settings_only, "secret_expires_at": "2099-03-31T00:00:00Z"},
        headers=admin.headers,
    )
    assert corrected.json()["credential_expires_at"] == "2099-03-31T00:00:00Z"
    with container.uow() as uow:
        stored = uow.applications.get(created["id"])
    assert stored is not None
    assert stored.secret_encrypted is not None
    assert container.secrets.decrypt(stored.secret_encrypted, "client secret") == (
        "never-shown-again"
    )

    other_client = {**settings_only, "client_id": "11111111-2222-4333-8444-555555555555"}
    refused = client.put(url, json=other_client, headers=admin.headers)
    assert refused.status_code == 422
    assert refused.json()["detail"].startswith("credential: a new client id needs its own")
    moved = client.put(
        url,
        json={
            **other_client,
            "client_secret": "the-new-apps-secret",
            "secret_expires_at": "2099-01-01T00:00:00Z",
        },
        headers=admin.headers,
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["client_id"] == other_client["client_id"]


def test_openapi_marks_the_credential_optional_on_update(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    operation = spec["paths"]["/api/v1/oauth-applications/{app_id}"]["put"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(schema["required"]) == {"name", "tenant", "client_id"}
    assert "keep the stored credential" in schema["properties"]["client_secret"]["description"]


def test_invalid_application_names_the_field(client: TestClient, admin: Caller) -> None:
    answer = client.post(
        "/api/v1/oauth-applications", json={**APP, "tenant": "common"}, headers=admin.headers
    )
    assert answer.status_code == 422
    assert "tenant" in answer.json()["detail"]


def test_requesters_cannot_touch_set_up(client: TestClient, requester: Caller) -> None:
    assert client.get("/api/v1/oauth-applications", headers=requester.headers).status_code == 403
    assert client.get("/api/v1/settings/email", headers=requester.headers).status_code == 403


def test_email_settings_round_trip_with_warnings(client: TestClient, admin: Caller) -> None:
    assert client.get("/api/v1/settings/email", headers=admin.headers).status_code == 404
    settings = {
        "smtp_user": "svc@contoso.com",
        "smtp_oauth_application": "prod",
        "smtp_from_address": "approvals@contoso.com",
        "email_reply_folder": "Inbox",
    }
    saved = client.put("/api/v1/settings/email", json={"settings": settings}, headers=admin.headers)
    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] == 1
    assert "Inbox" in saved.json()["warnings"][0]
    read = client.get("/api/v1/settings/email", headers=admin.headers).json()
    assert read["settings"]["smtp_from_address"] == "approvals@contoso.com"
    bad = client.put(
        "/api/v1/settings/email",
        json={"settings": {**settings, "email_reply_folder": "a//b"}},
        headers=admin.headers,
    )
    assert bad.status_code == 422
    assert "email_reply_folder" in bad.json()["detail"]
