"""CSRF: every unsafe request riding on a session carries the session's token."""

from __future__ import annotations

from datetime import timedelta

from replygate.bootstrap import Container
from replygate.services import accounts
from replygate.services.account_ports import Scope
from tests.integration.web.conftest import TestClient, add_user, csrf_from, sign_in


def test_sign_in_post_without_token_is_refused(client: TestClient, container: Container) -> None:
    add_user(container, "alice")
    client.get("/login")
    form = {"username": "alice", "password": "correct horse battery staple"}
    answer = client.post("/login", data=form, follow_redirects=False)
    assert answer.status_code == 403
    assert "this form is out of date or did not come from replygate" in answer.text
    assert "reload the page" in answer.text
    forged = client.post("/login", data={**form, "csrf_token": "guess"}, follow_redirects=False)
    assert forged.status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 303


def test_token_from_another_session_is_refused(client: TestClient, container: Container) -> None:
    add_user(container, "alice")
    other_token = csrf_from(client.get("/login"))
    client.cookies.clear()
    client.get("/login")  # a new session with its own token
    form = {"username": "alice", "password": "x" * 12, "csrf_token": other_token}
    assert client.post("/login", data=form).status_code == 403


def test_sign_in_rotates_the_token(client: TestClient, container: Container) -> None:
    add_user(container, "alice")
    before = csrf_from(client.get("/login"))
    sign_in(client, "alice")
    assert csrf_from(client.get("/")) != before


def test_api_posts_with_a_session_need_the_header(client: TestClient, container: Container) -> None:
    add_user(container, "alice")
    sign_in(client, "alice")
    token = csrf_from(client.get("/"))
    refused = client.post("/api/v1/echo", json={"text": "hi"})
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "urn:replygate:problem:csrf-rejected"
    accepted = client.post("/api/v1/echo", json={"text": "hi"}, headers={"X-CSRF-Token": token})
    assert accepted.status_code == 200
    assert accepted.json() == {"text": "hi", "by": "alice"}


def test_api_token_requests_are_not_csrf_checked(client: TestClient, container: Container) -> None:
    user = add_user(container, "ci")
    issued = accounts.create_api_token(
        container.uow(),
        container.clock,
        user_id=user.id,
        name="pipeline",
        scopes=frozenset({Scope.APPROVALS_WRITE}),
        expires_in=timedelta(days=30),
    )
    answer = client.post(
        "/api/v1/echo",
        json={"text": "deploy"},
        headers={"Authorization": f"Bearer {issued.secret}"},
    )
    assert answer.status_code == 200
    assert answer.json()["by"] == "ci"


def test_exempt_route_accepts_cross_site_posts(client: TestClient) -> None:
    assert client.post("/hook", data={"state": "abc"}).status_code == 200


def test_safe_methods_are_not_checked(client: TestClient) -> None:
    assert client.get("/login").status_code == 200
    assert client.head("/healthz").status_code == 200
