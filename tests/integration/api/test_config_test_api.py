"""``POST /api/v1/config/test``: admins only; a plain step report even when nothing is set up."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.integration.api.conftest import Caller


def test_needs_settings_write(client: TestClient, requester: Caller) -> None:
    answer = client.post("/api/v1/config/test", json={}, headers=requester.headers)
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_reports_each_step_with_its_fix(client: TestClient, admin: Caller) -> None:
    answer = client.post(
        "/api/v1/config/test", json={"to": "admin@contoso.test"}, headers=admin.headers
    )
    assert answer.status_code == 200
    report = answer.json()
    assert report["passed"] is False
    assert [(s["name"], s["status"]) for s in report["steps"]] == [
        ("token", "failed"),
        ("test mail", "skipped"),
        ("reply folder", "skipped"),
        ("loop-back", "skipped"),
    ]
    assert report["steps"][0]["detail"] == "Email Settings are not saved yet"
    assert report["steps"][0]["fix"] == "fill in Email Settings"


def test_bad_address_is_a_clear_422(client: TestClient, admin: Caller) -> None:
    answer = client.post("/api/v1/config/test", json={"to": "nope"}, headers=admin.headers)
    assert answer.status_code == 422
