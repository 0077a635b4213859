"""Sign-in, sessions and sign-out through the real app, on SQLite and PostgreSQL."""

from __future__ import annotations

from replygate.bootstrap import Container
from replygate.services import accounts
from replygate.services.account_ports import Role
from replygate.web.auth import SESSION_COOKIE
from tests.conftest import FixedClock
from tests.integration.web.conftest import PASSWORD, TestClient, add_user, csrf_from, sign_in


def test_anonymous_dashboard_sends_to_sign_in(client: TestClient) -> None:
    answer = client.get("/", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/"


def test_sign_in_sets_a_secure_session_cookie_and_shows_the_dashboard(
    client: TestClient, container: Container
) -> None:
    add_user(container, "alice")
    answer = sign_in(client, "Alice", next_url="/admin-only")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin-only"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"secure", "httponly", "samesite=lax", "path=/"} <= flags
    assert not any(flag.startswith("domain") for flag in flags)
    page = client.get("/")
    assert page.status_code == 200
    assert "<h1>Dashboard</h1>" in page.text
    assert "alice" in page.text
    with container.uow() as uow:  # who signed in, how and from where is in the audit log
        signed_in = [
            (e.actor, dict(e.details)) for e in uow.audit.recent() if e.action == "auth.sign_in"
        ]
    assert [(actor, details["method"]) for actor, details in signed_in] == [("alice", "password")]
    assert signed_in[0][1]["address"]


def test_wrong_password_and_unknown_user_get_the_same_answer(
    client: TestClient, container: Container
) -> None:
    add_user(container, "alice")
    wrong = sign_in(client, "alice", "not the password at all")
    unknown = sign_in(client, "mallory", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert "The username or password is not right." in wrong.text
    assert wrong.text.replace("alice", "X") == unknown.text.replace("mallory", "X")
    assert client.get("/", follow_redirects=False).status_code == 303
    with container.uow() as uow:
        assert [e for e in uow.audit.recent() if e.action == "auth.sign_in"] == []


def test_disabled_user_cannot_sign_in_and_loses_open_sessions(
    client: TestClient, container: Container
) -> None:
    add_user(container, "alice")
    assert sign_in(client, "alice").status_code == 303
    assert client.get("/").status_code == 200
    accounts.set_disabled(container.uow(), username="alice", disabled=True, actor="test")
    assert client.get("/", follow_redirects=False).status_code == 303
    assert sign_in(client, "alice").status_code == 401


def test_password_change_ends_sessions(client: TestClient, container: Container) -> None:
    user = add_user(container, "alice")
    assert sign_in(client, "alice").status_code == 303
    accounts.change_password(
        container.uow(),
        user_id=user.id,
        current_password=PASSWORD,
        new_password="another long password",
    )
    assert client.get("/", follow_redirects=False).status_code == 303
    assert sign_in(client, "alice", "another long password").status_code == 303


def test_session_ends_after_its_lifetime(
    client: TestClient, container: Container, clock: FixedClock
) -> None:
    add_user(container, "alice")
    sign_in(client, "alice")
    clock.advance(hours=11)
    assert client.get("/").status_code == 200
    clock.advance(hours=2)
    assert client.get("/", follow_redirects=False).status_code == 303


def test_sign_out_needs_the_form_token_and_ends_the_session(
    client: TestClient, container: Container
) -> None:
    add_user(container, "alice")
    sign_in(client, "alice")
    dashboard = client.get("/")
    assert client.post("/logout", follow_redirects=False).status_code == 403
    answer = client.post(
        "/logout", data={"csrf_token": csrf_from(dashboard)}, follow_redirects=False
    )
    assert answer.status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303


def test_tampered_cookie_is_anonymous(client: TestClient, container: Container) -> None:
    add_user(container, "alice")
    sign_in(client, "alice")
    value = client.cookies[SESSION_COOKIE]
    client.cookies.set(SESSION_COOKIE, value[:-3] + ("AAA" if value[-3:] != "AAA" else "BBB"))
    assert client.get("/", follow_redirects=False).status_code == 303


def test_next_never_leaves_the_site(client: TestClient, container: Container) -> None:
    add_user(container, "alice")
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        client.cookies.clear()
        answer = sign_in(client, "alice", next_url=target)
        assert answer.headers["location"] == "/"


def test_signed_in_user_visiting_login_goes_on(client: TestClient, container: Container) -> None:
    add_user(container, "viewer1", Role.VIEWER)
    sign_in(client, "viewer1")
    answer = client.get("/login?next=/somewhere", follow_redirects=False)
    assert answer.headers["location"] == "/somewhere"


def test_pages_are_accessible_and_self_contained(client: TestClient) -> None:
    page = client.get("/login").text
    assert '<html lang="en">' in page
    assert 'href="#main"' in page
    assert 'id="main"' in page
    assert '<label for="username">' in page
    assert '<label for="password">' in page
    assert 'name="viewport"' in page
    assert "http://" not in page
    assert "cdn" not in page.lower()
    css = client.get("/static/replygate.css")
    assert css.status_code == 200
    assert ":focus-visible" in css.text
    headers = client.get("/login").headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
