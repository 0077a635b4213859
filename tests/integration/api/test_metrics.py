"""``/api/v1/metrics``: Prometheus text behind a settings:read token."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.integration.api.conftest import Caller

APP = {
    "name": "prod",
    "tenant": "contoso.com",
    "client_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "client_secret": "s",
    "secret_expires_at": "2099-06-30T00:00:00Z",
}


def test_metrics_need_a_token(client: TestClient, requester: Caller) -> None:
    assert client.get("/api/v1/metrics").status_code == 401
    assert client.get("/api/v1/metrics", headers=requester.headers).status_code == 403


def test_metrics_show_health_expiry_and_requests(client: TestClient, admin: Caller) -> None:
    assert (
        client.post("/api/v1/oauth-applications", json=APP, headers=admin.headers).status_code
        == 201
    )
    body = {"title": "Deploy", "approvers": ["ann@contoso.test"]}
    assert client.post("/api/v1/approvals", json=body, headers=admin.headers).status_code == 201
    answer = client.get("/api/v1/metrics", headers=admin.headers)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = answer.text.splitlines()
    assert 'replygate_health{check="database"} 0' in lines
    assert any(
        line.startswith('replygate_credential_expiry_days{application="prod"} ') for line in lines
    )
    assert 'replygate_requests{state="pending"} 1' in lines
    assert 'replygate_outbox_rows{state="pending"} 1' in lines
