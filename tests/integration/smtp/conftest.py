"""A real SMTP server (aiosmtpd) on 127.0.0.1 with STARTTLS or implicit TLS and AUTH."""

from __future__ import annotations

import base64
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from m365emu.tls import TlsFiles, ensure_certificates

USER = "relay@contoso.test"
PASSWORD = "s3cret-pass"
TOKEN = "eyJ0eXAi.test-access-token"


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    login: str | None


@dataclass
class Handler:
    """Records what arrives; tests set canned replies for RCPT and DATA."""

    received: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None
    tokens_seen: list[str] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        reply = self.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply:
            reply, self.data_reply = self.data_reply, None  # once, then accept
            return reply
        auth = session.auth_data
        login = auth.login if isinstance(auth, LoginPassword) else None
        self.received.append(
            Received(
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                bytes(envelope.original_content or b""),
                login.decode() if isinstance(login, bytes) else login,
            )
        )
        return "250 2.0.0 queued"

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        raw = base64.b64decode(args[1]) if len(args) > 1 else b""
        fields = dict(p.split("=", 1) for p in raw.decode().split("\x01") if "=" in p)
        user, auth = fields.get("user", ""), fields.get("auth", "")
        self.tokens_seen.append(auth)
        if user == USER and auth == f"Bearer {TOKEN}":
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        # XOAUTH2: an error challenge, the client answers with an empty line, then 535.
        await server.challenge_auth('{"status":"401","schemes":"bearer"}')
        return AuthResult(success=False, handled=False)


def authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    # handled=False: aiosmtpd answers 535 itself (its default assumes we already did).
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: Handler
    ca_file: Path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_certificates(tmp_path_factory.mktemp("smtp-tls"))


def _server_context(tls: TlsFiles) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    return context


StartServer = Callable[..., SmtpServer]


@pytest.fixture
def smtp_server(tls_files: TlsFiles) -> Iterator[StartServer]:
    """start(mode="starttls"|"tls"|"plain", size_limit=...) -> a running server."""
    controllers: list[Controller] = []

    def start(mode: str = "starttls", size_limit: int = 10_000_000) -> SmtpServer:
        handler = Handler()
        port = free_port()
        options: dict[str, Any] = {
            "authenticator": authenticator,
            # aiosmtpd 1.4 does not count implicit TLS as TLS: it would hide AUTH, and
            # warns when AUTH is required without it; our client logs in all the same.
            "auth_required": mode == "starttls",
            "auth_require_tls": mode == "starttls",
            "data_size_limit": size_limit,
        }
        if mode == "starttls":
            options |= {"tls_context": _server_context(tls_files), "require_starttls": True}
        controller = Controller(
            handler,
            hostname="127.0.0.1",
            port=port,
            ssl_context=_server_context(tls_files) if mode == "tls" else None,
            **options,
        )
        controller.start()
        controllers.append(controller)
        return SmtpServer("127.0.0.1", port, handler, tls_files.ca_file)

    yield start
    for controller in controllers:
        controller.stop()
