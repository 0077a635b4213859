"""The OAuth routes: Authorize start, the form_post callback, and the pages it leads to."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from replygate import authorising
from replygate.bootstrap import Container
from replygate.graph.auth import AuthorizedAccount
from replygate.graph.errors import WrongAccount
from replygate.services.account_ports import Role
from replygate.web import oauth
from tests.integration.console.conftest import (
    TENANT,
    TestClient,
    register_app,
    save_email_settings,
    signed_in,
)

BAD_USER = (
    "Bad User is Authenticated But Not Connected: alice@contoso.test signed in, "
    "svc-replygate@contoso.test was expected."
)


def follow_callback(client: TestClient, data: dict[str, str]) -> tuple[str, str]:
    """POST the callback as Microsoft's form_post does; return (redirect, result page)."""
    answer = client.post("/oauth/callback", data=data, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    assert "set-cookie" not in answer.headers  # the admin's session is never replaced here
    location = answer.headers["location"]
    assert location.startswith("/oauth/result?r=")
    return location, client.get(location).text


def test_a_callback_with_an_unknown_state_shows_the_plain_error(
    client: TestClient, container: Container
) -> None:
    save_email_settings(container)
    signed_in(client, container, "root", Role.ADMIN)
    _, page = follow_callback(client, {"code": "abc", "state": "made-up"})
    assert "Authorize did not finish" in page
    assert "does not match an Authorize in progress (expired or used)" in page
    assert "What to do:</strong> press Authorize again" in page
    assert "Traceback" not in page


def test_an_error_from_microsoft_is_shown_with_its_description(
    client: TestClient, container: Container
) -> None:
    save_email_settings(container)
    signed_in(client, container, "root", Role.ADMIN)
    _, page = follow_callback(
        client,
        {
            "error": "access_denied",
            "error_description": "AADSTS65004: User declined to consent.\r\nTrace ID: 1",
            "state": "s",
        },
    )
    assert "<code>access_denied</code>" in page
    assert "AADSTS65004: User declined to consent." in page
    assert "Trace ID" not in page


def test_the_wrong_account_page_says_who_signed_in_who_was_expected_and_how_to_retry(
    client: TestClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    app_id = register_app(container)
    save_email_settings(container)
    signed_in(client, container, "root", Role.ADMIN)
    started: list[int] = []

    def start(_: Container, app: int, *, by: str) -> str:
        started.append(app)
        return "https://login.example.test/authorize?prompt=select_account"

    def finish(_: Container, params: dict[str, str]) -> AuthorizedAccount:
        raise WrongAccount(BAD_USER, fix="Choose another account.")

    monkeypatch.setattr(authorising, "start", start)
    monkeypatch.setattr(authorising, "finish", finish)
    begin = client.get(f"/oauth/authorize/{app_id}", follow_redirects=False)
    assert begin.status_code == 302
    assert "prompt=select_account" in begin.headers["location"]

    location, page = follow_callback(client, {"code": "c", "state": "s"})
    assert client.get(location).status_code == 409
    assert '<h1 id="result-heading">Bad User is Authenticated But Not Connected</h1>' in page
    assert "<dt>Signed in</dt><dd><strong>alice@contoso.test</strong>" in page
    assert "<dt>Expected (SMTP User)</dt><dd><strong>svc-replygate@contoso.test</strong>" in page
    assert "stored nothing" in page
    assert f'action="/oauth/authorize/{app_id}"' in page
    assert "Try again with another account</button>" in page
    assert f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/logout" in page

    # The button POSTs (with the CSRF token) and starts a new sign-in.
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    again = client.post(
        f"/oauth/authorize/{app_id}", data={"csrf_token": token}, follow_redirects=False
    )
    assert again.status_code == 303
    assert again.headers["location"].startswith("https://login.example.test/")
    assert started == [app_id, app_id]


def test_success_names_the_account(
    client: TestClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_app(container)
    save_email_settings(container)
    signed_in(client, container, "root", Role.ADMIN)
    account = AuthorizedAccount("svc-replygate@contoso.test", "oid", "tid", "Service")
    monkeypatch.setattr(authorising, "finish", lambda _c, _p: account)
    _, page = follow_callback(client, {"code": "c", "state": "s"})
    assert "connected as <strong>svc-replygate@contoso.test</strong>" in page


def test_a_forged_or_old_result_is_refused(
    client: TestClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_email_settings(container)
    signed_in(client, container, "root", Role.ADMIN)
    forged = client.get("/oauth/result", params={"r": "v1:abc:AAAA"})
    assert forged.status_code == 400
    assert "unknown or too old" in forged.text
    location, _ = follow_callback(client, {"code": "c", "state": "s"})
    container.clock.advance(minutes=11)  # type: ignore[attr-defined]
    old = client.get(location)
    assert old.status_code == 400
    sealed = parse_qs(urlsplit(location).query)["r"][0]
    assert "does not match" not in sealed  # the outcome travels encrypted


def test_authorize_needs_an_admin_and_a_configured_smtp_user(
    client: TestClient, container: Container
) -> None:
    app_id = register_app(container)
    signed_in(client, container, "viewer", Role.VIEWER)
    assert client.get(f"/oauth/authorize/{app_id}").status_code == 403
    client.post("/logout", data={"csrf_token": "x"})
    client.cookies.clear()
    signed_in(client, container, "root", Role.ADMIN)
    answer = client.get(f"/oauth/authorize/{app_id}")
    assert answer.status_code == 400
    assert "the SMTP User is not set" in answer.text
    assert "save Email Settings with the SMTP User first" in answer.text


def test_the_sign_out_link_follows_the_cloud(container: Container) -> None:
    register_app(container)
    with container.uow() as uow:
        app = uow.applications.by_name("contoso")
    assert app is not None
    assert oauth.sign_out_url(app) == (
        f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/logout"
    )


def test_a_query_callback_is_handled_like_form_post(
    client: TestClient, container: Container
) -> None:
    save_email_settings(container)
    signed_in(client, container, "root", Role.ADMIN)
    answer = client.get("/oauth/callback?code=abc&state=unknown", follow_redirects=False)
    assert answer.status_code == 303
    assert "does not match an Authorize in progress" in client.get(answer.headers["location"]).text
