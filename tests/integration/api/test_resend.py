"""POST /api/v1/approvals/{id}/resend: a request's failed mail queued again, on both databases."""

from __future__ import annotations

from replygate.bootstrap import Container
from tests.integration.api.conftest import Caller, new_request
from tests.integration.web.conftest import TestClient

PROBLEM = "application/problem+json"


def fail_its_mail(container: Container, request_id: str) -> int:
    with container.uow() as uow:
        (row,) = [r for r in uow.outbox.list() if r.request_id == request_id]
        uow.outbox.mark_failed(row.id, "Send As missing")
        uow.commit()
        return row.id


def test_admins_resend_failed_mail(
    client: TestClient, container: Container, admin: Caller, requester: Caller, viewer: Caller
) -> None:
    created = client.post("/api/v1/approvals", json=new_request(), headers=requester.headers)
    request_id = created.json()["id"]
    row_id = fail_its_mail(container, request_id)
    url = f"/api/v1/approvals/{request_id}/resend"
    for caller in (requester, viewer):
        refused = client.post(url, headers=caller.headers)
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"].startswith(PROBLEM)
        assert "settings:write" in refused.json()["detail"]
    assert client.post(url).status_code == 401

    answer = client.post(f"/api/v1/approvals/RG-test-{request_id}/resend", headers=admin.headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"resent": 1}
    with container.uow() as uow:
        row = uow.outbox.get(row_id)
        assert row is not None
        assert (row.state, row.last_error) == ("pending", "")

    again = client.post(url, headers=admin.headers)
    assert again.status_code == 409
    assert again.headers["content-type"].startswith(PROBLEM)
    assert "no mail that could not be sent" in again.json()["detail"]
    missing = client.post("/api/v1/approvals/NOPE/resend", headers=admin.headers)
    assert missing.status_code == 404


def test_a_closed_request_is_not_resent(
    client: TestClient, container: Container, admin: Caller
) -> None:
    created = client.post("/api/v1/approvals", json=new_request(), headers=admin.headers)
    request_id = created.json()["id"]
    fail_its_mail(container, request_id)
    cancelled = client.post(f"/api/v1/approvals/{request_id}/cancel", headers=admin.headers)
    assert cancelled.status_code == 200
    refused = client.post(f"/api/v1/approvals/{request_id}/resend", headers=admin.headers)
    assert refused.status_code == 409
    assert "already cancelled" in refused.json()["detail"]
