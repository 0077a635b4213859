"""The admin's whole journey in a real browser, against the emulator and a real server.

Sign in; register the emulator's OAuth application (a mistake first, to see field errors);
save Email Settings; Authorize as the wrong account (the Bad User page), then as the SMTP
User; run Test Email Configuration; create a request with an API token made on the API
tokens page; reply as an approver in the emulator's web view; see the decision arrive.
"""

from __future__ import annotations

import re
import ssl
from datetime import timedelta

import httpx
import pytest
from playwright.sync_api import Page, expect

from m365emu.testing import RunningEmulator
from replygate.services.account_ports import Role
from replygate.services.accounts import create_user
from replygate.services.requesting import RequestDraft
from replygate.services.requesting import create_request as create
from tests.browser.conftest import ADMIN, Server, shot, wait_until

pytestmark = pytest.mark.browser

SVC = "svc-replygate@contoso.test"
SHARED = "approvals@contoso.test"


def sign_in(page: Page, server: Server) -> None:
    page.goto(f"{server.url}/login")
    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill(server.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()


def register_application(page: Page, server: Server, emu: RunningEmulator) -> None:
    page.goto(f"{server.url}/settings/oauth/new")
    page.get_by_label("Display name").fill("emulator")
    page.get_by_label("Tenant").fill("not a tenant")
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#tenant-error")).to_contain_text("Directory (tenant) ID")
    expect(page.get_by_label("Tenant")).to_have_attribute("aria-invalid", "true")
    shot(page, "oauth-application-form")

    page.get_by_label("Tenant").fill(emu.tenant_id)
    page.get_by_label("Client ID").fill(emu.client_id)
    page.get_by_label("Mode").select_option("delegated")
    page.get_by_label("Cloud", exact=True).select_option("custom")
    page.get_by_label("Authority host (custom cloud)").fill(emu.base_url)
    page.get_by_label("Graph URL (custom cloud)").fill(emu.base_url)
    page.get_by_label("Use a client secret").check()
    page.get_by_label("Client secret", exact=True).fill(emu.client_secret)
    # 20 days left: the page and the dashboard warn about the expiry.
    expires = server.container.clock.now() + timedelta(days=20)
    page.get_by_label("Secret expires").fill(f"{expires:%Y-%m-%d}")
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("heading", name="OAuth Applications", level=1)).to_be_visible()
    expect(page.get_by_role("status").first).to_contain_text(
        "OAuth application emulator registered"
    )


def save_settings(page: Page, server: Server) -> None:
    page.goto(f"{server.url}/settings/email")
    page.get_by_role("button", name="Save Email Settings").click()
    expect(page.locator("#smtp_user-error")).to_contain_text("smtp_user is needed with OAuth")
    page.get_by_label("SMTP User", exact=True).fill(SVC)
    page.get_by_label("SMTP OAuth Application").select_option("emulator")
    page.get_by_label("SMTP From Address").fill(SHARED)
    page.get_by_label("Email Reply Folder").fill("Inbox")
    page.get_by_label("Polling Interval (seconds)").fill("5")
    page.get_by_role("button", name="Save Email Settings").click()
    notice = page.get_by_role("status").first
    expect(notice).to_contain_text("Email Settings saved as version 1.")
    expect(notice).to_contain_text("The reply folder is Inbox")


def choose_account(page: Page, upn: str) -> None:
    """Microsoft's (the emulator's) account picker: always shown (prompt=select_account)."""
    page.locator(f'form.account[data-upn="{upn}"] button').click()
    if page.locator('body[data-page="consent"]').count():
        page.get_by_role("button", name="Accept").click()


def authorize(page: Page, server: Server) -> None:
    page.goto(f"{server.url}/settings/oauth")
    page.get_by_role("button", name="Authorize", exact=True).click()
    expect(page.locator('body[data-page="account-picker"]')).to_be_visible()
    choose_account(page, "alice@contoso.test")
    page.wait_for_url(re.compile(r"/oauth/result\?r="))
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text("Bad User is Authenticated But Not Connected")
    expect(page.locator("dl.facts")).to_contain_text("alice@contoso.test")
    expect(page.locator("dl.facts")).to_contain_text(SVC)
    expect(page.get_by_role("link", name="Sign out of Microsoft")).to_have_attribute(
        "href", re.compile(r"/oauth2/v2\.0/logout$")
    )
    shot(page, "bad-user")

    page.get_by_role("button", name="Try again with another account").click()
    expect(page.locator('body[data-page="account-picker"]')).to_be_visible()
    choose_account(page, SVC)
    page.wait_for_url(re.compile(r"/oauth/result\?r="))
    expect(page.get_by_role("heading", level=1)).to_have_text("Authorized")
    expect(page.get_by_role("status").first).to_contain_text(f"connected as {SVC}")
    shot(page, "authorized")

    page.goto(f"{server.url}/settings/oauth")
    expect(page.locator("dl.facts")).to_contain_text(SVC)
    expect(page.locator(".warn").first).to_contain_text("expires on")
    shot(page, "oauth-applications")


def run_config_test(page: Page, server: Server) -> None:
    page.goto(f"{server.url}/settings/email")
    page.get_by_label("Send the test mail to").fill("admin@contoso.test")
    page.get_by_role("button", name="Test Email Configuration").click()
    report = page.locator("ol.steps")
    expect(report).to_be_visible(timeout=90_000)
    expect(page.locator("#report-heading")).to_have_text("Every step passed")
    for step in ("token", "test mail", "reply folder", "loop-back"):
        expect(report).to_contain_text(step)
    page.locator("#test").scroll_into_view_if_needed()
    shot(page, "email-settings")


def create_token(page: Page, server: Server) -> str:
    page.goto(f"{server.url}/tokens")
    page.get_by_label("Name").fill("GitHub Actions: payments-api")
    page.get_by_role("button", name="Create token").click()
    value = page.locator("#new-token").input_value()
    assert value.startswith("rgt_")
    shot(page, "api-tokens")
    page.reload()  # shown once: a new view no longer holds it
    assert page.locator("#new-token").count() == 0
    return value


def create_request(server: Server, token: str, **fields: object) -> str:
    """POST /api/v1/approvals as a pipeline does, with the token from the API tokens page."""
    body = {
        "title": "Deploy payments-api 2.3.1 to production",
        "approvers": ["alice@contoso.test", "bob@contoso.test"],
        "details": "Release notes: **faster refunds**, fixed rounding in invoices.",
        "metadata": {
            "environment": "production",
            "pipeline": "https://ci.contoso.test/payments-api/runs/4711",
        },
        "expires_in_seconds": 4 * 3600,
        **fields,
    }
    context = ssl.create_default_context(cafile=str(server.cert_file))
    with httpx.Client(base_url=server.url, verify=context) as api:
        answer = api.post(
            "/api/v1/approvals", headers={"Authorization": f"Bearer {token}"}, json=body
        )
    assert answer.status_code == 201, answer.text
    request_id: str = answer.json()["id"]
    return request_id


def reply_in_the_emulator(page: Page, emu: RunningEmulator, request_id: str) -> None:
    inbox = f"{emu.base_url}/_emu/ui/alice@contoso.test/inbox"
    page.goto(inbox)

    def arrived() -> bool:
        page.reload()
        return page.get_by_role("link", name=re.compile(request_id)).count() > 0

    wait_until(arrived, 30, "the request mail did not reach alice")
    page.get_by_role("link", name=re.compile(request_id)).first.click()
    page.locator("textarea[name=text]").fill("Approved, ship it")
    page.get_by_role("button", name="Send reply").click()


def test_admin_journey(page: Page, server: Server, emu: RunningEmulator) -> None:
    page.goto(f"{server.url}/login")
    shot(page, "login")
    sign_in(page, server)
    expect(page.locator(".banner")).to_contain_text("Email Settings are not saved yet")

    register_application(page, server, emu)
    save_settings(page, server)
    authorize(page, server)
    run_config_test(page, server)

    token = create_token(page, server)
    request_id = create_request(server, token)
    reply_in_the_emulator(page, emu, request_id)

    page.goto(f"{server.url}/requests/{request_id}")

    def decided() -> bool:
        page.reload()
        return page.locator(".badge.state-approved").count() > 0

    wait_until(decided, 60, "the decision did not arrive")
    decision = page.locator("article.decision")
    expect(decision).to_contain_text("alice@contoso.test")
    expect(decision).to_contain_text("ship it")
    expect(decision).to_contain_text("email")
    expect(page.locator("ol.timeline")).to_contain_text("reply from alice@contoso.test")
    shot(page, "approval-request")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "approval-request-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    create_request(
        server,
        token,
        title="Rotate the payments database credentials",
        approvers=["bob@contoso.test", "carol@contoso.test"],
        policy="all",
        metadata={"environment": "production", "change": "CHG-2291"},
    )
    page.goto(f"{server.url}/")
    expect(page.locator("#pending-heading")).to_contain_text("1")
    expect(page.locator(".banner")).to_contain_text("expires on")  # the secret's 20 days
    expect(page.locator("#decisions-heading + ul")).to_contain_text("alice@contoso.test")
    shot(page, "dashboard")

    page.goto(f"{server.url}/requests")
    expect(page.locator("table")).to_contain_text("Rotate the payments database credentials")
    shot(page, "approval-requests")

    page.goto(f"{server.url}/activity")
    expect(page.locator("table.activity")).to_contain_text("decided")
    shot(page, "mail-activity")

    page.goto(f"{server.url}/audit")
    expect(page.locator("table")).to_contain_text("oauth.authorize_refused")
    shot(page, "audit-log")


def test_an_approver_decides_on_the_web_with_the_keyboard(page: Page, server: Server) -> None:
    """An approver who prefers the web: sign in, open the request, approve (a POST)."""
    create_user(
        server.container.uow(),
        username="bob",
        password=server.password,
        role=Role.VIEWER,
        email="bob@contoso.test",
        actor="test",
    )
    draft = RequestDraft(
        title="Open the firewall for the payments batch",
        approvers=["bob@contoso.test", "carol@contoso.test"],
        requester="ci@contoso.test",
        details="Port 8443 from `batch-01` to `payments-db`, for 2 hours.",
        metadata={"environment": "production", "ticket": "NET-1042"},
    )
    created = create(
        server.container.uow(), server.container.clock, "browser", draft, created_by="ci"
    )
    request_id = created.request.id

    page.goto(f"{server.url}/login?next=/requests/{request_id}")
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Password").fill(server.password)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server.url}/requests/{request_id}")
    page.reload()  # a fresh load: focus at the start of the page
    page.keyboard.press("Tab")  # the skip link comes first, and shows when focused
    expect(page.locator(".skip-link")).to_be_focused()
    expect(page.locator(".skip-link")).to_be_in_viewport()
    expect(page.get_by_role("heading", name="Your decision")).to_be_visible()
    page.get_by_label("Comment").fill("Two hours, then close it again.")
    page.get_by_label("Comment").focus()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Approve")).to_be_focused()
    shot(page, "approve-on-the-web")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").first).to_contain_text(
        "You approved this request. The request is now approved."
    )
    decision = page.locator("article.decision")
    expect(decision).to_contain_text("web")
    expect(decision).to_contain_text("bob")  # the signed-in user, as evidence
    expect(page.get_by_role("heading", name="Your decision")).to_have_count(0)
