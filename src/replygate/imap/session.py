"""One logged-in IMAP connection: TLS or STARTTLS, LOGIN/PLAIN or XOAUTH2, errors mapped.

imaplib does the protocol; this adds what replygate needs around it: certificate checks
(never an unverified context), no password over plain text to a remote host, the
capabilities after login, SELECT with UIDVALIDITY/UIDNEXT, and plain-language errors.
"""

from __future__ import annotations

import imaplib
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from replygate.imap.errors import (
    LOGIN_FIX,
    OAUTH_FIX,
    FolderNotFound,
    ImapConfigurationError,
    ImapFailure,
)
from replygate.imap.protocol import quote, uids_of
from replygate.smtp.credentials import (
    Basic,
    Credentials,
    NoAuth,
    Security,
    XOAuth2,
    is_loopback,
    tls_context,
    xoauth2_response,
)


@dataclass(frozen=True)
class ImapSettings:
    host: str
    port: int = 993
    security: Security = "tls"
    credentials: Credentials = field(default_factory=NoAuth)
    ssl_context: ssl.SSLContext | None = None  # None: the system's trust store, verified
    timeout: float = 30.0


@dataclass(frozen=True)
class Selected:
    folder: str
    uidvalidity: int
    uidnext: int | None


class ImapSession:
    def __init__(self, settings: ImapSettings) -> None:
        self.settings = settings
        self.selected: Selected | None = None
        self.capabilities: frozenset[str] = frozenset()
        self.imap = self._connect()
        try:
            self._login()
            self.capabilities = self._capabilities()
        except BaseException:
            self.abandon()
            raise

    def abandon(self) -> None:
        """Close the socket without a goodbye (the connection is broken or unwanted)."""
        with suppress(OSError):  # already closed by the other side
            self.imap.shutdown()

    @property
    def where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def _connect(self) -> imaplib.IMAP4:
        s = self.settings
        context = tls_context(s.ssl_context)
        with mapped(self.where):
            if s.security == "tls":
                return imaplib.IMAP4_SSL(s.host, s.port, ssl_context=context, timeout=s.timeout)
            imap = imaplib.IMAP4(s.host, s.port, timeout=s.timeout)
            if s.security == "starttls":
                try:
                    if "STARTTLS" not in imap.capabilities:  # never fall back to plain text
                        raise ImapConfigurationError(
                            f"The IMAP server {self.where} does not offer STARTTLS.",
                            fix="Use implicit TLS (usually port 993).",
                        )
                    imap.starttls(context)
                except BaseException:
                    imap.shutdown()
                    raise
            return imap

    def _login(self) -> None:
        s, creds = self.settings, self.settings.credentials
        if isinstance(creds, NoAuth):
            raise ImapConfigurationError(
                "IMAP needs a login.", fix="Set the IMAP auth type to basic or oauth."
            )
        if s.security == "none" and not is_loopback(s.host):
            raise ImapConfigurationError(
                f"Refusing to send a password to {s.host} without TLS.",
                fix="Set IMAP security to tls or starttls.",
            )
        try:
            if isinstance(creds, Basic):
                if "AUTH=PLAIN" in self.imap.capabilities:  # UTF-8 safe, unlike LOGIN
                    plain = f"\0{creds.username}\0{creds.password}".encode()
                    self.imap.authenticate("PLAIN", _once(plain))
                else:
                    self.imap.login(creds.username, creds.password)
            elif isinstance(creds, XOAuth2):
                response = xoauth2_response(creds.username, creds.token())
                # On failure the server sends an error challenge; the empty answer ends it.
                self.imap.authenticate("XOAUTH2", _once(response))
        except imaplib.IMAP4.abort as error:
            raise ImapFailure(
                f"The IMAP server {self.where} hung up during login: {error}"
            ) from None
        except (imaplib.IMAP4.error, UnicodeEncodeError) as error:
            raise ImapConfigurationError(
                f"The IMAP server {self.where} refused the login: {_text(error)}",
                fix=OAUTH_FIX if isinstance(creds, XOAuth2) else LOGIN_FIX,
            ) from None

    def _capabilities(self) -> frozenset[str]:
        _, data = self.imap.capability()
        line = b" ".join(d for d in data if isinstance(d, bytes))
        return frozenset(line.decode("ascii", "replace").upper().split())

    def has(self, capability: str) -> bool:
        return capability.upper() in self.capabilities

    def check(self, typ: str, data: list[Any], what: str) -> list[Any]:
        if typ != "OK":
            raise ImapFailure(f"The IMAP server {self.where} refused {what}: {_text(data)}")
        return data

    def select(self, folder: str, *, fresh: bool = False) -> Selected:
        """SELECT, unless selected already; `fresh` selects again to see a new UIDNEXT."""
        if not fresh and self.selected is not None and self.selected.folder == folder:
            return self.selected
        self.selected = None
        typ, data = self.imap.select(quote(folder))
        if typ != "OK":
            raise FolderNotFound(
                f"The folder {folder!r} cannot be opened: {_text(data)}",
                fix="Check the Email Reply Folder; the folder may have been renamed.",
            )
        validity = self.imap.response("UIDVALIDITY")[1]
        uidnext = self.imap.response("UIDNEXT")[1]
        if not validity or not validity[0]:
            raise ImapFailure(f"The IMAP server {self.where} gave no UIDVALIDITY for {folder}")
        nxt = uids_of(uidnext) if uidnext and uidnext[0] else []
        self.selected = Selected(folder, int(validity[0]), nxt[0] if nxt else None)
        return self.selected

    def uid(self, command: str, *args: str) -> list[Any]:
        typ, data = self.imap.uid(command, *args)
        return self.check(typ, data, f"UID {command}")

    def close(self) -> None:
        try:
            self.imap.logout()  # closes the socket too
        except (imaplib.IMAP4.error, OSError):
            self.abandon()


def _once(response: bytes) -> Any:
    answers = iter([response])
    return lambda _challenge: next(answers, b"")


def _text(value: object) -> str:
    if isinstance(value, list):
        value = b" ".join(v for v in value if isinstance(v, bytes))
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.split())


@contextmanager
def mapped(where: str) -> Iterator[None]:
    """Socket, TLS and protocol failures as replygate errors; ours pass through."""
    try:
        yield
    except ssl.SSLCertVerificationError as error:
        raise ImapConfigurationError(
            f"The TLS certificate of {where} is not trusted: {error.verify_message}",
            fix="Use the host name the certificate names, or trust the issuing CA.",
        ) from None
    except ssl.SSLError as error:
        raise ImapConfigurationError(
            f"TLS with {where} failed: {error.reason or error}",
            fix="Check the IMAP security setting: implicit TLS is usually port 993.",
        ) from None
    except (imaplib.IMAP4.error, OSError, EOFError) as error:  # abort, timeouts, refused
        name = "host name not found" if isinstance(error, socket.gaierror) else type(error).__name__
        raise ImapFailure(
            f"Could not talk to the IMAP server {where}: {name}: {_text(error)}",
            fix="Check the IMAP host and port; replygate retries later.",
        ) from None
