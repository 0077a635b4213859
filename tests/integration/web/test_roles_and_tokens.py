"""Roles for pages, scopes and API tokens for the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from replygate.bootstrap import Container
from replygate.db.tables import ApiTokenRow
from replygate.errors import NotFound
from replygate.services import accounts
from replygate.services.account_ports import Role, Scope
from tests.conftest import FixedClock
from tests.integration.web.conftest import TestClient, add_user, sign_in


def issue(
    container: Container,
    username: str,
    scopes: set[Scope],
    expires_in: timedelta | None = timedelta(days=1),
) -> accounts.IssuedToken:
    user = accounts.get_user(container.uow(), add_user(container, username, Role.REQUESTER).id)
    assert user is not None
    return accounts.create_api_token(
        container.uow(),
        container.clock,
        user_id=user.id,
        name=f"{username} token",
        scopes=frozenset(scopes),
        expires_in=expires_in,
    )


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_admin_page_needs_admin(client: TestClient, container: Container) -> None:
    assert client.get("/admin-only", follow_redirects=False).headers["location"] == (
        "/login?next=/admin-only"
    )
    add_user(container, "vic", Role.VIEWER)
    add_user(container, "ann", Role.ADMIN)
    sign_in(client, "vic")
    refused = client.get("/admin-only")
    assert refused.status_code == 403
    assert "this needs the admin role; vic is viewer" in refused.text
    client.cookies.clear()
    sign_in(client, "ann")
    assert client.get("/admin-only").json() == "hello ann"


def test_viewer_can_see_the_dashboard(client: TestClient, container: Container) -> None:
    add_user(container, "vic", Role.VIEWER)
    sign_in(client, "vic")
    assert client.get("/").status_code == 200


def test_api_without_credentials_is_401_problem(client: TestClient) -> None:
    answer = client.get("/api/v1/read")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert answer.json()["type"] == "urn:replygate:problem:sign-in-required"
    wrong_scheme = client.get("/api/v1/read", headers={"Authorization": "Basic abc"})
    assert wrong_scheme.status_code == 401
    assert "Bearer <API token>" in wrong_scheme.json()["detail"]


def test_token_scopes_are_enforced(client: TestClient, container: Container) -> None:
    issued = issue(container, "reader", {Scope.APPROVALS_READ})
    assert client.get("/api/v1/read", headers=bearer(issued.secret)).json() == "reader"
    refused = client.post("/api/v1/echo", json={"text": "x"}, headers=bearer(issued.secret))
    assert refused.status_code == 403
    assert "approvals:write" in refused.json()["detail"]


def test_token_is_stored_hashed_and_shown_once(container: Container) -> None:
    issued = issue(container, "ci", {Scope.APPROVALS_READ})
    assert issued.secret.startswith("rgt_")
    assert len(issued.secret) >= 40
    with container.uow() as uow:
        stored = uow.session.scalars(select(ApiTokenRow.token_hash)).one()
    assert stored == accounts.hash_token(issued.secret)
    assert issued.secret not in stored


def test_revoked_and_expired_tokens_are_refused(
    client: TestClient, container: Container, clock: FixedClock
) -> None:
    short = issue(container, "short", {Scope.APPROVALS_READ}, timedelta(hours=1))
    revoked = issue(container, "gone", {Scope.APPROVALS_READ}, None)
    owner = accounts.get_user(container.uow(), revoked.token.user_id)
    assert owner is not None
    accounts.revoke_api_token(container.uow(), clock, token_id=revoked.token.id, by=owner)
    answer = client.get("/api/v1/read", headers=bearer(revoked.secret))
    assert answer.status_code == 401
    assert "unknown, expired or revoked" in answer.json()["detail"]
    assert client.get("/api/v1/read", headers=bearer(short.secret)).status_code == 200
    clock.advance(hours=1)
    assert client.get("/api/v1/read", headers=bearer(short.secret)).status_code == 401


def test_token_of_a_disabled_user_stops_working(client: TestClient, container: Container) -> None:
    issued = issue(container, "ci", {Scope.APPROVALS_READ})
    accounts.set_disabled(container.uow(), username="ci", disabled=True, actor="test")
    assert client.get("/api/v1/read", headers=bearer(issued.secret)).status_code == 401


def test_last_used_is_recorded_without_a_write_per_call(
    client: TestClient, container: Container, clock: FixedClock
) -> None:
    issued = issue(container, "ci", {Scope.APPROVALS_READ})
    client.get("/api/v1/read", headers=bearer(issued.secret))
    first = clock.now()
    clock.advance(seconds=30)
    client.get("/api/v1/read", headers=bearer(issued.secret))
    tokens = accounts.list_api_tokens(container.uow(), user_id=issued.token.user_id)
    assert tokens[0].last_used_at == first
    clock.advance(seconds=31)
    client.get("/api/v1/read", headers=bearer(issued.secret))
    tokens = accounts.list_api_tokens(container.uow(), user_id=issued.token.user_id)
    assert tokens[0].last_used_at == clock.now()


def test_token_cannot_exceed_the_owners_role(container: Container) -> None:
    viewer = add_user(container, "vic", Role.VIEWER)
    with pytest.raises(accounts.PermissionDenied, match="viewer cannot hold approvals:write"):
        accounts.create_api_token(
            container.uow(),
            container.clock,
            user_id=viewer.id,
            name="too much",
            scopes=frozenset({Scope.APPROVALS_WRITE}),
            expires_in=None,
        )


def test_only_owner_or_admin_revokes(container: Container, clock: FixedClock) -> None:
    issued = issue(container, "ci", {Scope.APPROVALS_READ})
    other = add_user(container, "eve", Role.REQUESTER)
    admin = add_user(container, "ann", Role.ADMIN)
    with pytest.raises(NotFound):
        accounts.revoke_api_token(container.uow(), clock, token_id=issued.token.id, by=other)
    accounts.revoke_api_token(container.uow(), clock, token_id=issued.token.id, by=admin)
    [token] = accounts.list_api_tokens(container.uow(), user_id=issued.token.user_id)
    assert token.revoked_at == clock.now()
