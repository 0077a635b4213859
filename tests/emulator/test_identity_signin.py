"""Browser sign-in behaviour: SSO session, prompts, hints, consent, error pages, raw protocol."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from m365emu.testing import Browser, BrowserLoginError, RunningEmulator

REDIRECT_URI = "https://127.0.0.1:8443/oauth/callback"
SCOPES = ["Mail.Send", "User.Read"]
SVC = "svc-replygate@contoso.test"
ALICE = "alice@contoso.test"


@pytest.fixture
def browser(emu: RunningEmulator) -> Iterator[Browser]:
    with emu.browser() as b:
        yield b


def sign_in(
    emu: RunningEmulator, browser: Browser, account: str | None, **flow: Any
) -> tuple[dict[str, Any], list[str]]:
    _, result, outcome = emu.msal_sign_in(
        browser, account, SCOPES, redirect_uri=REDIRECT_URI, **flow
    )
    return result, outcome.pages


def authorize_url(emu: RunningEmulator, **params: str) -> str:
    query = {
        "client_id": emu.client_id,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "Mail.Send offline_access openid profile",
        "state": "s1",
        **params,
    }
    return f"{emu.authority()}/oauth2/v2.0/authorize?{urlencode(query)}"


def redeem(emu: RunningEmulator, code: str, **extra: str) -> dict[str, Any]:
    form = {
        "client_id": emu.client_id,
        "client_secret": emu.client_secret,
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "scope": "Mail.Send offline_access openid profile",
        **extra,
    }
    response = emu.requests_session().post(f"{emu.authority()}/oauth2/v2.0/token", data=form)
    body: dict[str, Any] = response.json()
    return body


# --- the wrong-account scenario ------------------------------------------------------


def test_plain_authorize_silently_signs_the_previous_user_in_again(
    emu: RunningEmulator, browser: Browser
) -> None:
    first, pages = sign_in(emu, browser, ALICE, prompt="select_account")
    assert pages == ["account-picker"]
    assert first["id_token_claims"]["preferred_username"] == ALICE

    # No prompt: the emulator does not ask, Alice's session signs in again.
    again, pages = sign_in(emu, browser, account=None)
    assert pages == []
    assert again["id_token_claims"]["preferred_username"] == ALICE

    # prompt=select_account interrupts SSO: the picker appears and the right account is chosen.
    chosen, pages = sign_in(emu, browser, SVC, prompt="select_account")
    assert pages == ["account-picker"]
    assert chosen["id_token_claims"]["preferred_username"] == SVC


def test_login_hint_for_another_account_shows_the_picker(
    emu: RunningEmulator, browser: Browser
) -> None:
    sign_in(emu, browser, ALICE, prompt="select_account")

    same, pages = sign_in(emu, browser, None, login_hint=ALICE)
    assert pages == []
    assert same["id_token_claims"]["preferred_username"] == ALICE

    page = browser.client.get(authorize_url(emu, login_hint=SVC))
    assert 'class="account hinted"' in page.text
    assert f'data-upn="{SVC}"' in page.text.split('class="account hinted"')[1][:200]
    other, pages = sign_in(emu, browser, SVC, login_hint=SVC)
    assert pages == ["account-picker"]
    assert other["id_token_claims"]["preferred_username"] == SVC


def test_prompt_login_ignores_the_session(emu: RunningEmulator, browser: Browser) -> None:
    sign_in(emu, browser, ALICE, prompt="select_account")
    result, pages = sign_in(emu, browser, ALICE, prompt="login")
    assert pages == ["account-picker"]
    assert result["id_token_claims"]["preferred_username"] == ALICE


def test_prompt_none_without_session_is_login_required_50058(
    emu: RunningEmulator, browser: Browser
) -> None:
    result, pages = sign_in(emu, browser, None, prompt="none")
    assert pages == []
    assert result["error"] == "login_required"
    assert result["error_description"].startswith("AADSTS50058:")


def test_prompt_none_with_session_signs_in(emu: RunningEmulator, browser: Browser) -> None:
    sign_in(emu, browser, SVC, prompt="select_account")
    result, _ = sign_in(emu, browser, None, prompt="none")
    assert result["id_token_claims"]["preferred_username"] == SVC


def test_logout_ends_the_session(emu: RunningEmulator, browser: Browser) -> None:
    sign_in(emu, browser, ALICE, prompt="select_account")
    target = "https://127.0.0.1:8443/oauth/callback"
    response = browser.sign_out(
        f"{emu.logout_url()}?{urlencode({'post_logout_redirect_uri': target, 'state': 'x'})}"
    )
    assert response.status_code == 302
    assert response.headers["location"] == f"{target}?state=x"

    with pytest.raises(BrowserLoginError, match="no account was given"):
        browser.authorize(authorize_url(emu))


# --- consent ---------------------------------------------------------------------------


def test_missing_consent_shows_the_consent_page(emu: RunningEmulator, browser: Browser) -> None:
    emu.state.set_consent(emu.client_id, delegated=False)
    result, pages = sign_in(emu, browser, SVC, prompt="select_account")
    assert pages == ["account-picker", "consent"]
    assert "access_token" in result
    assert emu.app.delegated_consent


def test_declined_consent_is_access_denied_65004(emu: RunningEmulator, browser: Browser) -> None:
    emu.state.set_consent(emu.client_id, delegated=False)
    outcome = browser.authorize(authorize_url(emu), account=SVC, consent=False)
    assert outcome.params["error"] == "access_denied"
    assert outcome.params["error_description"].startswith("AADSTS65004:")
    assert outcome.params["state"] == "s1"


def test_prompt_none_without_consent_is_consent_required_65001(
    emu: RunningEmulator, browser: Browser
) -> None:
    sign_in(emu, browser, SVC, prompt="select_account")
    emu.state.set_consent(emu.client_id, delegated=False)
    outcome = browser.authorize(authorize_url(emu, prompt="none"))
    assert outcome.params["error"] == "consent_required"
    assert outcome.params["error_description"].startswith("AADSTS65001:")


def test_unregistered_permission_is_consent_required_65001(
    emu: RunningEmulator, browser: Browser
) -> None:
    outcome = browser.authorize(authorize_url(emu, scope="Calendars.Read openid"), account=SVC)
    assert outcome.params["error"] == "consent_required"
    assert "AADSTS65001" in outcome.params["error_description"]


def test_prompt_consent_always_asks(emu: RunningEmulator, browser: Browser) -> None:
    outcome = browser.authorize(authorize_url(emu, prompt="consent"), account=SVC)
    assert outcome.pages == ["account-picker", "consent"]
    assert "code" in outcome.params


# --- error pages (no redirect back to the app) -----------------------------------------


def test_unregistered_redirect_uri_shows_50011(emu: RunningEmulator, browser: Browser) -> None:
    url = authorize_url(emu, redirect_uri="https://evil.test/oauth/callback")
    with pytest.raises(BrowserLoginError) as caught:
        browser.authorize(url, account=SVC)
    assert caught.value.aadsts == 50011
    assert "does not match the redirect URIs" in str(caught.value)


def test_unknown_client_at_authorize_shows_700016(emu: RunningEmulator, browser: Browser) -> None:
    url = authorize_url(emu, client_id="11111111-2222-3333-4444-555555555555")
    with pytest.raises(BrowserLoginError) as caught:
        browser.authorize(url, account=SVC)
    assert caught.value.aadsts == 700016


@pytest.mark.parametrize(
    ("account", "code"),
    [("approvals@contoso.test", 50057), ("nobody@contoso.test", 50034)],
)
def test_accounts_that_cannot_sign_in(
    emu: RunningEmulator, browser: Browser, account: str, code: int
) -> None:
    with pytest.raises(BrowserLoginError) as caught:
        browser.authorize(authorize_url(emu), account=account)
    assert caught.value.aadsts == code


def test_scope_of_another_resource_is_invalid_resource(
    emu: RunningEmulator, browser: Browser
) -> None:
    url = authorize_url(emu, scope="https://outlook.office.com/IMAP.AccessAsUser.All openid")
    outcome = browser.authorize(url, account=SVC)
    assert outcome.params["error"] == "invalid_resource"


# --- the raw protocol (query mode, code rules, plain PKCE) -----------------------------


def test_query_mode_code_is_single_use_and_bound_to_redirect_uri(
    emu: RunningEmulator, browser: Browser
) -> None:
    outcome = browser.authorize(authorize_url(emu), account=SVC)
    assert outcome.url.startswith(REDIRECT_URI + "?")
    assert outcome.params["state"] == "s1"
    code = outcome.params["code"]

    wrong = redeem(emu, code, redirect_uri="https://127.0.0.1:9999/oauth/callback")
    assert wrong["error_codes"] == [500112]
    first = redeem(emu, code)
    assert "refresh_token" in first
    second = redeem(emu, code)
    assert second["error"] == "invalid_grant"
    assert second["error_codes"] == [54005]


def test_expired_code_is_70008(emu: RunningEmulator, browser: Browser) -> None:
    code = browser.authorize(authorize_url(emu), account=SVC).params["code"]
    emu.state.advance_clock(11 * 60)
    assert redeem(emu, code)["error_codes"] == [70008]


@pytest.mark.parametrize("method", ["plain", "S256"])
def test_pkce_methods(emu: RunningEmulator, browser: Browser, method: str) -> None:
    verifier = "v" * 43 + "-._~" + "x" * 10
    challenge = (
        verifier
        if method == "plain"
        else base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        .rstrip(b"=")
        .decode()
    )
    url = authorize_url(emu, code_challenge=challenge, code_challenge_method=method)
    code = browser.authorize(url, account=SVC).params["code"]
    assert redeem(emu, code, code_verifier="y" * 50)["error_codes"] == [501481]
    assert "access_token" in redeem(emu, code, code_verifier=verifier)


def test_authorize_error_uses_the_aadsts_shape(emu: RunningEmulator, browser: Browser) -> None:
    outcome = browser.authorize(authorize_url(emu, response_type="token"), account=SVC)
    assert outcome.params["error"] == "unsupported_response_type"
    assert outcome.params["error_description"].startswith("AADSTS700054:")
    assert outcome.params["error_uri"].endswith("code=700054")
