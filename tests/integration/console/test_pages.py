"""Every console page renders for the roles that may see it and refuses the others."""

from __future__ import annotations

import re

import pytest

from replygate.bootstrap import Container
from replygate.services.account_ports import Role
from tests.integration.console.conftest import (
    TestClient,
    new_request,
    post_form,
    register_app,
    save_email_settings,
    signed_in,
)

PAGES = {
    "/": Role.VIEWER,
    "/requests": Role.VIEWER,
    "/activity": Role.VIEWER,
    "/tokens": Role.VIEWER,
    "/settings/email": Role.ADMIN,
    "/settings/oauth": Role.ADMIN,
    "/settings/oauth/new": Role.ADMIN,
    "/audit": Role.ADMIN,
}


@pytest.mark.parametrize("role", list(Role))
def test_each_page_renders_for_its_roles_and_refuses_the_others(
    client: TestClient, container: Container, role: Role
) -> None:
    register_app(container)
    save_email_settings(container)
    created = new_request(container)
    signed_in(client, container, "someone", role)
    pages = {**PAGES, f"/requests/{created.request.id}": Role.VIEWER}
    for path, needed in pages.items():
        answer = client.get(path)
        if role.includes(needed):
            assert answer.status_code == 200, (path, answer.text[:500])
            assert '<main id="main"' in answer.text
            assert re.search(r"<h1[^>]*>", answer.text), path
        else:
            assert answer.status_code == 403, path
            assert "this needs the admin role" in answer.text


def test_anonymous_visitors_are_sent_to_sign_in(client: TestClient) -> None:
    for path in [*PAGES, "/requests/ABC", "/oauth/authorize/1", "/oauth/result"]:
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login?next=")


def test_navigation_shows_admin_pages_only_to_admins(
    client: TestClient, container: Container
) -> None:
    signed_in(client, container, "viewer", Role.VIEWER)
    page = client.get("/").text
    assert 'href="/tokens"' in page
    assert 'href="/settings/email"' not in page
    assert 'href="/audit"' not in page
    assert 'aria-current="page">Dashboard' in page


def test_unsafe_requests_without_the_csrf_token_are_refused(
    client: TestClient, container: Container
) -> None:
    created = new_request(container)
    signed_in(client, container, "root", Role.ADMIN)
    for action in (
        f"/requests/{created.request.id}/cancel",
        "/settings/email",
        "/settings/oauth",
        "/tokens",
    ):
        answer = client.post(action, data={"name": "x"}, follow_redirects=False)
        assert answer.status_code == 403, action
        assert "did not come from replygate" in answer.text
    wrong = client.post(f"/requests/{created.request.id}/cancel", data={"csrf_token": "forged"})
    assert wrong.status_code == 403
    still = post_form(client, "/", f"/requests/{created.request.id}/cancel", {})
    assert still.status_code == 303  # the real token works


def test_the_page_shell_is_accessible(client: TestClient, container: Container) -> None:
    signed_in(client, container, "root", Role.ADMIN)
    page = client.get("/settings/email").text
    assert '<html lang="en">' in page
    assert 'class="skip-link" href="#main"' in page
    assert '<nav aria-label="Main">' in page
    assert "console.css" in page
    # every visible input has a label
    ids = re.findall(r'<(?:input|select|textarea)[^>]*\sid="([^"]+)"', page)
    for field in ids:
        assert f'for="{field}"' in page, field
