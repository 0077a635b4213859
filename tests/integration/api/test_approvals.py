"""Create, list, get and cancel through /api/v1/approvals, on both databases."""

from __future__ import annotations

from sqlalchemy import select

from replygate.bootstrap import Container
from replygate.db.tables import OutboxRow
from replygate.domain.model import Channel, Decision, Verdict
from replygate.services.account_ports import Role, Scope
from tests.conftest import FixedClock
from tests.integration.api.conftest import Caller, make_caller, new_request
from tests.integration.web.conftest import TestClient

PROBLEM = "application/problem+json"


def decide(container: Container, request_id: str, approver: str, verdict: Verdict) -> None:
    with container.uow() as uow:
        request = uow.requests.get(request_id)
        assert request is not None
        request.decide(
            Decision(
                approver, verdict, "looks fine", Channel.WEB, container.clock.now(), {"x": "y"}
            )
        )
        uow.requests.save(request)
        uow.commit()


def test_create_returns_the_request_and_queues_its_mail(
    client: TestClient, container: Container, requester: Caller
) -> None:
    answer = client.post("/api/v1/approvals", json=new_request(), headers=requester.headers)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert answer.headers["location"] == f"/api/v1/approvals/{body['id']}"
    assert body["state"] == "pending"
    assert body["token"] == f"RG-test-{body['id']}"
    assert body["requester"] == "pipeline@contoso.test"
    assert body["created_by"] == "pipeline"
    assert body["policy"] == "any"
    assert [a["address"] for a in body["approvers"]] == ["ann@contoso.test", "bob@contoso.test"]
    assert all(a["delivery_state"] == "pending" for a in body["approvers"])
    assert "callback_secret" not in body or body["callback_secret"] is None
    with container.uow() as uow:
        kinds = uow.session.scalars(select(OutboxRow.kind)).all()
    assert kinds == ["request_mail"]


def test_auth_is_required_and_scopes_are_enforced(
    client: TestClient, container: Container, viewer: Caller
) -> None:
    anonymous = client.post("/api/v1/approvals", json=new_request())
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == PROBLEM
    assert client.get("/api/v1/approvals").status_code == 401
    refused = client.post("/api/v1/approvals", json=new_request(), headers=viewer.headers)
    assert refused.status_code == 403
    assert "approvals:write" in refused.json()["detail"]
    assert client.get("/api/v1/approvals", headers=viewer.headers).status_code == 200
    narrow = make_caller(container, "writer", Role.REQUESTER, {Scope.APPROVALS_WRITE})
    assert client.get("/api/v1/approvals", headers=narrow.headers).status_code == 403
    bad = {"Authorization": "Bearer rgt_nope"}
    assert client.get("/api/v1/approvals", headers=bad).json()["status"] == 401


def test_invalid_input_is_a_clear_problem(client: TestClient, requester: Caller) -> None:
    answer = client.post(
        "/api/v1/approvals",
        json=new_request(approvers=["not an address"]),
        headers=requester.headers,
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM
    assert "not an email address" in answer.json()["detail"]
    quorum = client.post(
        "/api/v1/approvals", json=new_request(policy="quorum:3"), headers=requester.headers
    )
    assert quorum.status_code == 422
    assert "needs 3 approvals" in quorum.json()["detail"]
    missing = client.post("/api/v1/approvals", json={"title": "x"}, headers=requester.headers)
    assert missing.status_code == 422
    assert "approvers" in missing.json()["detail"]


def test_requester_needed_when_the_user_has_no_email(
    client: TestClient, container: Container
) -> None:
    from replygate.services import accounts

    user = accounts.create_user(
        container.uow(), username="noemail", password="x" * 12, role=Role.REQUESTER, actor="t"
    )
    issued = accounts.create_api_token(
        container.uow(),
        container.clock,
        user_id=user.id,
        name="t",
        scopes=frozenset({Scope.APPROVALS_WRITE}),
        expires_in=None,
    )
    headers = {"Authorization": f"Bearer {issued.secret}"}
    refused = client.post("/api/v1/approvals", json=new_request(), headers=headers)
    assert refused.status_code == 422
    assert "requester" in refused.json()["detail"]
    given = client.post(
        "/api/v1/approvals", json=new_request(requester="ops@contoso.test"), headers=headers
    )
    assert given.status_code == 201


def test_idempotency_key_returns_the_same_request(
    client: TestClient, container: Container, requester: Caller, admin: Caller
) -> None:
    headers = {**requester.headers, "Idempotency-Key": "build-881-step-4"}
    first = client.post("/api/v1/approvals", json=new_request(), headers=headers)
    again = client.post("/api/v1/approvals", json=new_request(), headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    other = client.post(
        "/api/v1/approvals", json=new_request(title="Something else"), headers=headers
    )
    assert other.status_code == 409
    assert "Idempotency-Key" in other.json()["detail"]
    # Another user's identical key is another request: keys never leak across users.
    theirs = client.post(
        "/api/v1/approvals",
        json=new_request(),
        headers={**admin.headers, "Idempotency-Key": "build-881-step-4"},
    )
    assert theirs.status_code == 201
    assert theirs.json()["id"] != first.json()["id"]
    with container.uow() as uow:
        assert len(uow.session.scalars(select(OutboxRow)).all()) == 2


def test_list_filters_and_pages(
    client: TestClient, container: Container, clock: FixedClock, requester: Caller, admin: Caller
) -> None:
    ids = []
    for n in range(5):
        clock.advance(minutes=1)
        env = "production" if n % 2 == 0 else "staging"
        body = new_request(title=f"Deploy {n}", metadata={"environment": env, "n": str(n)})
        caller = requester if n < 4 else admin
        ids.append(client.post("/api/v1/approvals", json=body, headers=caller.headers).json()["id"])
    decide(container, ids[0], "ann@contoso.test", Verdict.APPROVE)

    everything = client.get("/api/v1/approvals", headers=requester.headers).json()
    assert everything["total"] == 5
    assert [i["id"] for i in everything["items"]] == ids[::-1]  # newest first

    page = client.get("/api/v1/approvals?limit=2&offset=2", headers=requester.headers).json()
    assert [i["id"] for i in page["items"]] == [ids[2], ids[1]]
    assert page["next_offset"] == 4
    last = client.get("/api/v1/approvals?limit=2&offset=4", headers=requester.headers).json()
    assert last["next_offset"] is None

    prod = client.get(
        "/api/v1/approvals", params={"metadata": "environment=production"}, headers=admin.headers
    ).json()
    assert {i["id"] for i in prod["items"]} == {ids[0], ids[2], ids[4]}
    both = client.get(
        "/api/v1/approvals",
        params=[("metadata", "environment=production"), ("metadata", "n=2")],
        headers=admin.headers,
    ).json()
    assert [i["id"] for i in both["items"]] == [ids[2]]
    approved = client.get("/api/v1/approvals?state=approved", headers=admin.headers).json()
    assert [i["id"] for i in approved["items"]] == [ids[0]]
    by_root = client.get(
        "/api/v1/approvals", params={"requester": "ROOT@contoso.test"}, headers=admin.headers
    ).json()
    assert [i["id"] for i in by_root["items"]] == [ids[4]]
    wrong = client.get("/api/v1/approvals?metadata=novalue", headers=admin.headers)
    assert wrong.status_code == 422
    assert "key=value" in wrong.json()["detail"]
    assert client.get("/api/v1/approvals?state=lost", headers=admin.headers).status_code == 422


def test_get_shows_approvers_decisions_and_timeline(
    client: TestClient, container: Container, clock: FixedClock, requester: Caller
) -> None:
    body = new_request(policy="all")
    created = client.post("/api/v1/approvals", json=body, headers=requester.headers).json()
    clock.advance(minutes=5)
    decide(container, created["id"], "ann@contoso.test", Verdict.APPROVE)
    with container.uow() as uow:
        uow.requests.mark_delivery_failed(created["id"], "bob@contoso.test", "550 5.1.1 unknown")
        uow.commit()
    # The id is accepted bare or as the whole reply token, in any case.
    for name in (created["id"], created["token"].lower()):
        answer = client.get(f"/api/v1/approvals/{name}", headers=requester.headers)
        assert answer.status_code == 200, answer.text
    detail = answer.json()
    ann, bob = detail["approvers"]
    assert ann["decision"]["verdict"] == "approve"
    assert ann["decision"]["evidence"] == {"x": "y"}
    assert bob["decision"] is None
    assert (bob["delivery_state"], bob["delivery_error"]) == ("failed", "550 5.1.1 unknown")
    kinds = [e["kind"] for e in detail["timeline"]]
    assert kinds == ["request.create", "mail_queued", "decision"]
    assert detail["timeline"][-1]["details"]["channel"] == "web"
    missing = client.get("/api/v1/approvals/ZZZZZZZZZZ", headers=requester.headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM
    assert "ZZZZZZZZZZ" in missing.json()["detail"]


def test_cancel_and_its_conflicts(
    client: TestClient, container: Container, requester: Caller, admin: Caller
) -> None:
    created = client.post("/api/v1/approvals", json=new_request(), headers=requester.headers).json()
    other = make_caller(container, "someone", Role.REQUESTER)
    url = f"/api/v1/approvals/{created['id']}/cancel"
    assert client.post(url, headers=other.headers).status_code == 404  # not theirs
    cancelled = client.post(url, json={"reason": "pipeline aborted"}, headers=requester.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    again = client.post(url, headers=admin.headers)
    assert again.status_code == 409
    assert "already cancelled" in again.json()["detail"]
    second = client.post("/api/v1/approvals", json=new_request(), headers=requester.headers).json()
    by_admin = client.post(f"/api/v1/approvals/{second['id']}/cancel", headers=admin.headers)
    assert by_admin.json()["state"] == "cancelled"
    timeline = client.get(f"/api/v1/approvals/{second['id']}", headers=admin.headers).json()
    assert [e["kind"] for e in timeline["timeline"]][-1] == "cancelled"
    assert client.post("/api/v1/approvals/NOPE/cancel", headers=admin.headers).status_code == 404


def test_health_needs_no_token(client: TestClient) -> None:
    answer = client.get("/api/v1/health")
    assert answer.status_code == 200
    body = answer.json()
    assert body["database"]["status"] == "ok"
    # The same checks as /healthz (mail set-up checks may warn on an empty instance).
    assert [c["name"] for c in body["checks"]] == [
        c["name"] for c in client.get("/healthz").json()["checks"]
    ]
