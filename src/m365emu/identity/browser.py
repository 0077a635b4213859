"""A scripted browser for the emulator's sign-in pages (used by tests, never by the server).

It keeps the cookie jar (so the emulator's sign-in session works as in a real browser),
follows redirects inside the emulator, answers the account picker and the consent page, and
stops at the first response addressed to the app: a redirect to the redirect URI, or the
form_post page. Exposed through `m365emu.testing`.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx


class BrowserLoginError(Exception):
    """The emulator showed an error page (e.g. AADSTS50011) or needed an account we lack."""

    def __init__(self, message: str, *, aadsts: int | None = None, html: str = "") -> None:
        super().__init__(message)
        self.aadsts = aadsts
        self.html = html


@dataclass(slots=True)
class AuthorizeResult:
    url: str  # the redirect URL (or the form_post action) the app would receive
    params: dict[str, str]  # code, state, session_state, client_info... or error fields
    pages: list[str] = field(default_factory=list)  # pages shown: "account-picker", "consent"

    @property
    def picker_shown(self) -> bool:
        return "account-picker" in self.pages

    @property
    def consent_shown(self) -> bool:
        return "consent" in self.pages


@dataclass(slots=True)
class _Form:
    action: str
    attrs: dict[str, str]
    fields: dict[str, str] = field(default_factory=dict)


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.page = ""
        self.aadsts: int | None = None
        self.forms: list[_Form] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "body":
            self.page = a.get("data-page", "")
            if a.get("data-aadsts", "").isdigit():
                self.aadsts = int(a["data-aadsts"])
        elif tag == "form":
            self.forms.append(_Form(a.get("action", ""), a))
        elif tag == "input" and self.forms and a.get("name") and a.get("type") != "submit":
            self.forms[-1].fields[a["name"]] = a.get("value", "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


class Browser:
    """One browser profile (cookie jar) that trusts the emulator CA."""

    def __init__(self, ca_file: str | Path, *, timeout: float = 10.0) -> None:
        context = ssl.create_default_context(cafile=str(ca_file))
        self.client = httpx.Client(verify=context, follow_redirects=False, timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def authorize(
        self, auth_uri: str, *, account: str | None = None, consent: bool = True
    ) -> AuthorizeResult:
        """Open `auth_uri`; pick `account` if the picker appears; accept (or decline) consent.

        Raises BrowserLoginError on an error page, or if the picker appears and `account` is
        None. Silent SSO (no page at all) is returned with `pages == []`."""
        origin = urlsplit(auth_uri)[:2]
        response = self.client.get(auth_uri)
        pages: list[str] = []
        for _ in range(10):
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if urlsplit(location)[:2] == origin:
                    response = self.client.get(location)
                    continue
                parts = urlsplit(location)
                query = parts.fragment if parts.fragment and not parts.query else parts.query
                return AuthorizeResult(location, dict(parse_qsl(query)), pages)
            parser = _PageParser()
            parser.feed(response.text)
            if parser.aadsts is not None or not parser.page:
                message = " ".join(t.strip() for t in parser.text if t.strip())
                raise BrowserLoginError(
                    message or f"HTTP {response.status_code}",
                    aadsts=parser.aadsts,
                    html=response.text,
                )
            if parser.page == "form-post":  # the response itself, not a page the user sees
                form = parser.forms[0]
                return AuthorizeResult(form.action, form.fields, pages)
            pages.append(parser.page)
            if parser.page == "account-picker":
                response = self._pick(parser, account, response.text)
            elif parser.page == "consent":
                form = parser.forms[0]
                data = {**form.fields, "accept": "yes" if consent else "no"}
                response = self.client.post(form.action, data=data)
            else:
                raise BrowserLoginError(f"unexpected page {parser.page!r}", html=response.text)
        raise BrowserLoginError("too many steps")

    def _pick(self, parser: _PageParser, account: str | None, html: str) -> httpx.Response:
        if account is None:
            raise BrowserLoginError(
                "the account picker appeared but no account was given", html=html
            )
        wanted = account.lower()
        forms = [f for f in parser.forms if f.attrs.get("data-upn", "").lower() == wanted]
        if forms:
            return self.client.post(forms[0].action, data=forms[0].fields)
        other = next(f for f in parser.forms if "other" in f.attrs.get("class", ""))
        return self.client.post(other.action, data={**other.fields, "login": account})

    def sign_out(self, logout_url: str) -> httpx.Response:
        """Visit the logout endpoint (clears the emulator session cookie)."""
        return self.client.get(logout_url)
