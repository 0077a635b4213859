"""Sign in with Microsoft: the console against the emulator, through the real MSAL.

The app runs in-process (https://testserver); the emulator's sign-in pages are driven over
HTTP by its scripted browser, which stops at the form_post Microsoft would make to
``/login/microsoft/callback``; the test client then plays the browser's POST and follows
the redirect to ``/login/microsoft/finish``, as Chromium does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from m365emu.testing import RunningEmulator, start_emulator
from replygate import signing_in
from replygate.bootstrap import Container, build
from replygate.config import load_settings
from replygate.db import migrate
from replygate.db.tables import AuditEventRow, OAuthFlowRow, TokenCacheRow, UserRow
from replygate.services import accounts
from replygate.services.account_ports import Role
from replygate.services.applications import (
    ApplicationInput,
    register_application,
    update_application,
)
from replygate.web.app import create_app
from tests.conftest import FixedClock
from tests.integration.console.conftest import user
from tests.integration.web.conftest import BASE_URL, TestClient, csrf_from, sign_in
from tests.support.emulator_app import emulator_application

CALLBACK = f"{BASE_URL}/login/microsoft/callback"
OTHER_TENANT = "9d8e7f60-5a4b-4c3d-8e2f-1a0b9c8d7e6f"


@pytest.fixture
def emu() -> Iterator[RunningEmulator]:
    with start_emulator() as running:
        # What the admin registers in Entra ID for this feature (docs/microsoft-365.md).
        running.app.redirect_uris.append(CALLBACK)
        yield running


def _container(database_url: str, path: Path, clock: FixedClock, **settings: object) -> Container:
    made = build(load_settings(data_dir=path, database_url=database_url, **settings), clock=clock)
    migrate.upgrade(made.engine)
    return made


@pytest.fixture
def container(
    database_url: str, tmp_path: Path, clock: FixedClock, emu: RunningEmulator
) -> Iterator[Container]:
    made = _container(
        database_url,
        tmp_path,
        clock,
        public_url=BASE_URL,
        ca_bundle=emu.ca_file,
        sign_in_application="emulator",
    )
    data = emulator_application(emu)
    register_application(made.uow(), made.clock, made.secrets, data, by="test")
    yield made
    made.engine.dispose()


@pytest.fixture
def app(container: Container) -> FastAPI:
    return create_app(container, workers=False)


def start(client: TestClient, next_url: str | None = None) -> str:
    """GET /login/microsoft; Microsoft's sign-in URL it redirects to."""
    params = {"next": next_url} if next_url else None
    answer = client.get("/login/microsoft", params=params, follow_redirects=False)
    assert answer.status_code == 302, answer.text
    location: str = answer.headers["location"]
    return location


def at_microsoft(emu: RunningEmulator, url: str, account: str) -> dict[str, str]:
    """The emulator's pages: the account picker must show; the form_post Microsoft makes."""
    with emu.browser() as browser:
        outcome = browser.authorize(url, account=account)
    assert outcome.picker_shown
    assert outcome.url == CALLBACK
    return outcome.params


def answer(client: TestClient, params: dict[str, str]) -> httpx.Response:
    """Microsoft's form_post to the callback, then the redirect the browser follows."""
    posted = client.post("/login/microsoft/callback", data=params, follow_redirects=False)
    assert posted.status_code == 303, posted.text
    assert "set-cookie" not in posted.headers  # no session is made or changed here
    location = posted.headers["location"]
    assert location.startswith("/login/microsoft/finish?r=")
    finished: httpx.Response = client.get(location, follow_redirects=False)
    return finished


def microsoft_sign_in(
    client: TestClient, emu: RunningEmulator, account: str, next_url: str | None = None
) -> httpx.Response:
    return answer(client, at_microsoft(emu, start(client, next_url), account))


def count(container: Container, table: type[object]) -> int:
    with container.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(table)) or 0)


def sign_ins(container: Container) -> list[tuple[str, dict[str, object]]]:
    with container.uow() as uow:
        rows = uow.session.scalars(
            select(AuditEventRow).where(AuditEventRow.action == "auth.sign_in")
        )
        return [(row.actor, dict(row.details)) for row in rows]


def test_the_login_page_offers_the_button_with_the_next_target(client: TestClient) -> None:
    page = client.get("/login", params={"next": "/requests?state=pending"}).text
    assert 'href="/login/microsoft?next=/requests%3Fstate%3Dpending"' in page
    assert ">Sign in with Microsoft</a>" in page
    assert 'name="password"' in page  # local sign-in stays
    unsafe = client.get("/login", params={"next": "https://evil.example/"}).text
    assert 'href="/login/microsoft"' in unsafe


def test_a_microsoft_account_signs_in_as_the_local_user_with_its_role(
    client: TestClient, container: Container, emu: RunningEmulator
) -> None:
    user(container, "alice", Role.REQUESTER, email="Alice@Contoso.test")
    url = start(client, "/requests")
    query = parse_qs(urlsplit(url).query)
    assert query["prompt"] == ["select_account"]
    assert set(query["scope"][0].split()) == {"openid", "profile", "offline_access"}
    assert query["redirect_uri"] == [CALLBACK]
    assert query["response_mode"] == ["form_post"]
    assert "code_challenge" in query

    finished = answer(client, at_microsoft(emu, url, "alice@contoso.test"))
    assert finished.status_code == 303, finished.text
    assert finished.headers["location"] == "/requests"
    dashboard = client.get("/")
    assert dashboard.status_code == 200
    assert 'alice <span class="role">(requester)</span>' in dashboard.text
    assert client.get("/settings/email").status_code == 403  # the role, not more

    assert sign_ins(container) == [
        (
            "alice",
            {
                "method": "microsoft",
                "account": "alice@contoso.test",
                "oid": emu.state.tenant.user_by("alice@contoso.test").id,  # type: ignore[union-attr]
                "tid": emu.tenant_id,
            },
        )
    ]
    assert count(container, TokenCacheRow) == 0  # no token of this flow is kept anywhere
    assert count(container, OAuthFlowRow) == 0


def test_an_unknown_account_is_refused_with_the_command_to_create_it(
    client: TestClient, container: Container, emu: RunningEmulator
) -> None:
    user(container, "alice", Role.ADMIN, email="alice@contoso.test")
    users_before = count(container, UserRow)
    audit_before = count(container, AuditEventRow)

    refused = microsoft_sign_in(client, emu, "carol@contoso.test")
    assert refused.status_code == 403
    assert "No replygate account for carol@contoso.test." in refused.text
    assert "replygate users create carol --email carol@contoso.test --role viewer" in refused.text
    assert 'href="/login/microsoft">Sign in with Microsoft again' in refused.text
    assert client.get("/", follow_redirects=False).headers["location"] == "/login?next=/"
    assert count(container, UserRow) == users_before
    assert count(container, AuditEventRow) == audit_before
    assert count(container, TokenCacheRow) == 0
    assert count(container, OAuthFlowRow) == 0


def test_a_disabled_user_is_refused(
    client: TestClient, container: Container, emu: RunningEmulator
) -> None:
    user(container, "bob", Role.VIEWER, email="bob@contoso.test")
    accounts.set_disabled(container.uow(), username="bob", disabled=True, actor="test")
    refused = microsoft_sign_in(client, emu, "bob@contoso.test")
    assert refused.status_code == 403
    assert "The replygate account bob (bob@contoso.test) is disabled." in refused.text
    assert client.get("/", follow_redirects=False).status_code == 303
    assert sign_ins(container) == []


def test_an_answer_is_used_once_and_only_by_the_browser_that_started_it(
    client: TestClient, app: FastAPI, container: Container, emu: RunningEmulator
) -> None:
    user(container, "alice", Role.VIEWER, email="alice@contoso.test")
    params = at_microsoft(emu, start(client), "alice@contoso.test")

    # Someone else's browser receives this answer (login CSRF): nobody is signed in there,
    # and the sign-in of the browser that started it is not spent.
    with TestClient(app, base_url=BASE_URL, raise_server_exceptions=False) as other:
        planted = answer(other, params)
        assert planted.status_code == 400
        assert "does not match a sign-in in progress in this browser" in planted.text
        assert other.get("/", follow_redirects=False).status_code == 303
    assert count(container, OAuthFlowRow) == 1

    posted = client.post("/login/microsoft/callback", data=params, follow_redirects=False)
    finish_url = posted.headers["location"]
    assert client.get(finish_url, follow_redirects=False).status_code == 303  # signed in
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/"))})

    replayed = client.get(finish_url, follow_redirects=False)
    assert replayed.status_code == 400
    assert "press Sign in with Microsoft again" in replayed.text
    assert answer(client, params).status_code == 400
    assert client.get("/", follow_redirects=False).status_code == 303
    assert len(sign_ins(container)) == 1

    # The flow itself is single-use too, whatever the browser holds.
    second = start(client)
    again = at_microsoft(emu, second, "alice@contoso.test")
    state = again["state"]
    signing_in.finish(container, again, expected_state=state)
    with pytest.raises(signing_in.SignInExpired):
        signing_in.finish(container, again, expected_state=state)


def test_a_sign_in_left_open_too_long_is_refused(
    client: TestClient, container: Container, emu: RunningEmulator
) -> None:
    user(container, "alice", Role.VIEWER, email="alice@contoso.test")
    params = at_microsoft(emu, start(client), "alice@contoso.test")
    container.clock.advance(minutes=16)  # type: ignore[attr-defined]
    late = answer(client, params)
    assert late.status_code == 400
    assert "it expired after 15 minutes, was used already" in late.text
    assert sign_ins(container) == []


def test_an_account_of_another_tenant_is_refused(
    client: TestClient, container: Container, emu: RunningEmulator
) -> None:
    user(container, "alice", Role.ADMIN, email="alice@contoso.test")
    url = start(client)
    # The emulator has one tenant: give it another id, keeping the registered one as an
    # alias, so Microsoft's answer names a tenant that is not the application's.
    tenant = emu.state.tenant
    tenant.domains.append(tenant.id)
    tenant.id = OTHER_TENANT
    refused = answer(client, at_microsoft(emu, url, "alice@contoso.test"))
    assert refused.status_code == 403
    assert f"alice@contoso.test is an account of another tenant ({OTHER_TENANT})" in refused.text
    assert "choose an account of" in refused.text
    assert client.get("/", follow_redirects=False).status_code == 303
    assert sign_ins(container) == []


def test_a_tenant_named_by_domain_is_resolved_to_its_id(
    client: TestClient, container: Container, emu: RunningEmulator
) -> None:
    with container.uow() as uow:
        app = uow.applications.by_name("emulator")
        assert app is not None
        assert app.id is not None
    data = ApplicationInput(
        name="emulator",
        tenant="contoso.test",  # a verified domain: its tenant id comes from discovery
        client_id=app.client_id,
        cloud="custom",
        authority_host=emu.base_url,
        graph_url=emu.base_url,
    )
    update_application(container.uow(), container.clock, container.secrets, app.id, data, by="t")
    user(container, "alice", Role.VIEWER, email="alice@contoso.test")
    assert microsoft_sign_in(client, emu, "alice@contoso.test").status_code == 303


def test_microsoft_errors_are_shown_with_their_fix(
    client: TestClient, container: Container, emu: RunningEmulator
) -> None:
    state = parse_qs(urlsplit(start(client)).query)["state"][0]
    cancelled = answer(
        client,
        {
            "error": "access_denied",
            "error_description": "AADSTS65004: User declined to consent to access the app.",
            "state": state,
        },
    )
    assert "The sign-in was cancelled at Microsoft." in cancelled.text
    assert "Press Sign in with Microsoft again, or sign in with your replygate" in cancelled.text
    assert "<code>access_denied</code> AADSTS65004" in cancelled.text

    state = parse_qs(urlsplit(start(client)).query)["state"][0]
    unregistered = answer(
        client,
        {
            "error": "invalid_request",
            "error_description": "AADSTS50011: The redirect URI specified in the request "
            "does not match the redirect URIs configured for the application.",
            "state": state,
        },
    )
    assert unregistered.status_code == 400
    assert f"The redirect URI {CALLBACK} is not registered for this application." in (
        unregistered.text
    )
    assert f"add {CALLBACK} as a Web redirect URI" in unregistered.text


def test_an_address_locked_out_cannot_start_but_a_locked_username_can(
    client: TestClient, container: Container, emu: RunningEmulator
) -> None:
    user(container, "alice", Role.VIEWER, email="alice@contoso.test")
    for _ in range(5):  # someone guesses alice's password: her username is locked
        assert sign_in(client, "alice", "wrong password").status_code == 401
    assert sign_in(client, "alice").status_code == 429
    # Microsoft authenticated her: the guesser cannot lock her out of this way in.
    assert microsoft_sign_in(client, emu, "alice@contoso.test").status_code == 303
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/"))})

    for attempt in range(15):  # the address is at 20 failures now
        assert sign_in(client, f"nobody{attempt}", "wrong password").status_code == 401
    locked = client.get("/login/microsoft", follow_redirects=False)
    assert locked.status_code == 429
    assert "too many failed sign-ins from your network address" in locked.text
    assert locked.headers["retry-after"]


def test_refused_sign_ins_count_against_the_address(
    client: TestClient, container: Container, emu: RunningEmulator
) -> None:
    for attempt in range(19):
        assert sign_in(client, f"nobody{attempt}", "wrong password").status_code == 401
    assert microsoft_sign_in(client, emu, "carol@contoso.test").status_code == 403
    assert client.get("/login/microsoft", follow_redirects=False).status_code == 429


def test_without_the_setting_there_is_no_button_and_no_route(
    database_url: str, tmp_path: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPLYGATE_SIGN_IN_APPLICATION", " ")  # blank counts as unset
    plain = _container(database_url, tmp_path / "plain", clock)
    assert plain.settings.sign_in_application is None
    try:
        with TestClient(
            create_app(plain, workers=False), base_url=BASE_URL, raise_server_exceptions=False
        ) as off:
            page = off.get("/login").text
            assert "Sign in with Microsoft" not in page
            assert "/login/microsoft" not in page
            for path in ("/login/microsoft", "/login/microsoft/finish?r=x"):
                assert off.get(path, follow_redirects=False).status_code == 404
            assert off.post("/login/microsoft/callback", data={"state": "s"}).status_code == 404
    finally:
        plain.engine.dispose()
