"""Sign in with Microsoft in a real browser: the button, the emulator's account picker,
and the Dashboard as the local user whose email the Microsoft account has."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from m365emu.testing import RunningEmulator
from replygate.services.account_ports import Role
from replygate.services.accounts import create_user
from replygate.services.applications import register_application
from tests.browser.conftest import Server, shot
from tests.support.emulator_app import emulator_application

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("server", [{"sign_in_application": "emulator"}], indirect=True)
def test_sign_in_with_microsoft(page: Page, server: Server, emu: RunningEmulator) -> None:
    container = server.container
    emu.app.redirect_uris.append(f"{server.url}/login/microsoft/callback")
    app = emulator_application(emu)
    register_application(container.uow(), container.clock, container.secrets, app, by="test")
    create_user(
        container.uow(),
        username="alice",
        password=server.password,
        role=Role.REQUESTER,
        email="alice@contoso.test",
        actor="test",
    )

    page.goto(f"{server.url}/login")
    button = page.get_by_role("link", name="Sign in with Microsoft")
    expect(button).to_be_visible()
    expect(page.get_by_label("Password")).to_be_visible()  # local sign-in stays
    shot(page, "login-microsoft")

    button.click()
    expect(page.locator('body[data-page="account-picker"]')).to_be_visible()
    page.locator('form.account[data-upn="alice@contoso.test"] button').click()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    expect(page.locator(".who")).to_contain_text("alice (requester)")
