"""Helpers for the Graph mail tests: Graph clients with tokens, a webhook subscriber."""

from __future__ import annotations

import functools
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from m365emu.identity.tokens import access_token_for_app, access_token_for_user
from m365emu.testing import RunningEmulator

SVC = "svc-replygate@contoso.test"
SHARED = "approvals@contoso.test"
ALICE = "alice@contoso.test"
BOB = "bob@contoso.test"
ALL_DELEGATED = frozenset(
    {
        "Mail.Send",
        "Mail.ReadWrite",
        "Mail.Send.Shared",
        "Mail.ReadWrite.Shared",
        "User.Read",
        "MailboxSettings.ReadWrite",
    }
)
IMMUTABLE = {"Prefer": 'IdType="ImmutableId"'}


def delegated_token(emu: RunningEmulator, upn: str, scopes: frozenset[str] = ALL_DELEGATED) -> str:
    """A delegated token as the identity half mints it (the MSAL flows have their own tests)."""
    user = emu.state.tenant.user_by(upn)
    assert user is not None
    return access_token_for_user(emu.state, emu.app, user, scopes, "1")[0]


def app_token(
    emu: RunningEmulator, roles: frozenset[str] = frozenset({"Mail.ReadWrite", "Mail.Send"})
) -> str:
    return access_token_for_app(emu.state, emu.app, roles, "1")[0]


def client(emu: RunningEmulator, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=emu.graph_url,
        verify=_ssl(str(emu.ca_file)),
        headers={"Authorization": f"Bearer {token}"},
        timeout=15,
    )


def control(emu: RunningEmulator) -> httpx.Client:
    return httpx.Client(base_url=emu.base_url + "/_emu", verify=_ssl(str(emu.ca_file)), timeout=15)


@functools.cache
def _ssl(ca_file: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)


def as_user(emu: RunningEmulator, upn: str, scopes: frozenset[str] = ALL_DELEGATED) -> httpx.Client:
    return client(emu, delegated_token(emu, upn, scopes))


def mail(to: str, subject: str = "Hello", **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "subject": subject,
        "body": {"contentType": "Text", "content": "Body of " + subject},
        "toRecipients": [{"emailAddress": {"address": to}}],
    }
    message.update(extra)
    return message


def raw_mail(
    to: str, subject: str, body: str = "text", sender: str = "ext@fabrikam.test", msgid: str = ""
) -> bytes:
    return (
        f"From: Ext <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: {msgid or '<' + subject.replace(' ', '.') + '@fabrikam.test>'}\r\n"
        "Date: Mon, 05 Jan 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


def deliver(emu: RunningEmulator, upn: str, raw: bytes, folder: str = "inbox") -> dict[str, Any]:
    """Delivers through the control API, as if the message came from outside."""
    with control(emu) as ctl:
        resp = ctl.post(f"/mailboxes/{upn}/deliver", params={"folder": folder}, content=raw)
    assert resp.status_code == 201, resp.text
    result: dict[str, Any] = resp.json()
    return result


def error_code(resp: httpx.Response) -> str:
    return str(resp.json()["error"]["code"])


class Subscriber:
    """An http://127.0.0.1 webhook endpoint: echoes validation tokens, records POSTs."""

    def __init__(self, echo: bool = True) -> None:
        self.echo = echo
        self.received: list[dict[str, Any]] = []
        self.event = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                token = parse_qs(urlsplit(self.path).query).get("validationToken")
                if token:
                    answer = token[0].encode() if outer.echo else b"nope"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                    return
                outer.received.append({"path": self.path, "body": json.loads(body)})
                outer.event.set()
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def wait(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = threading.Event()
        waited = 0.0
        while len(self.received) < count and waited < timeout:
            deadline.wait(0.02)
            waited += 0.02
        return self.received


@contextmanager
def subscriber(echo: bool = True) -> Iterator[Subscriber]:
    sub = Subscriber(echo)
    sub.thread.start()
    try:
        yield sub
    finally:
        sub.server.shutdown()
        sub.server.server_close()
