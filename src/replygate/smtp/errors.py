"""SMTP failures as replygate errors: permanent ones are `UserError`s (the outbox marks the
row failed and shows the reason), transient ones `TransportFailure`s (retried later)."""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

from replygate.errors import ConfigurationError, TransportFailure, UserError


class PermanentSendError(UserError):
    """The server refused for good (5xx): recipients, sender, size, content."""

    def __init__(self, message: str, *, fix: str = "", code: int | None = None) -> None:
        super().__init__(message, fix=fix)
        self.code = code


class SmtpConfigurationError(ConfigurationError):
    """Login refused, TLS not offered or not trusted, mechanism missing: an admin must act."""


class TransientSendError(TransportFailure):
    """4xx or a connection problem: try again later (the outbox backs off)."""

    retry_after: float | None = None

    def __init__(self, message: str, *, fix: str = "", code: int | None = None) -> None:
        super().__init__(message, fix=fix)
        self.code = code


AUTH_FIX = (
    "Check the SMTP username and password in Email Settings. Microsoft 365 needs SMTP AUTH "
    "enabled for the mailbox (Authenticated SMTP); Gmail needs an app password or OAuth."
)
OAUTH_FIX = (
    "Authorise the OAuth application again; the token needs SMTP.Send (Microsoft 365: "
    "https://outlook.office.com/SMTP.Send, with SMTP AUTH enabled for the mailbox) or the "
    "mail scope (Gmail: https://mail.google.com/)."
)


def _text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return " ".join(text.split())


def from_code(code: int, text: bytes | str, what: str) -> UserError | TransientSendError:
    """A reply code of the server as our error: 4xx transient, anything else permanent."""
    said = f"{code} {_text(text)}".strip()
    if 400 <= code < 500:
        return TransientSendError(
            f"The SMTP server deferred {what}: {said}", fix="replygate retries later.", code=code
        )
    if code == 552 or "5.3.4" in said:
        return PermanentSendError(
            f"The message is too large for the SMTP server: {said}",
            fix="Shorten the request details.",
            code=code,
        )
    return PermanentSendError(
        f"The SMTP server refused {what}: {said}",
        fix="Check the addresses; the server's answer says why.",
        code=code,
    )


@contextmanager
def smtp_errors(host: str, port: int, oauth: bool) -> Iterator[None]:
    """Map smtplib and socket errors; our own errors pass through."""
    where = f"{host}:{port}"
    try:
        yield
    except smtplib.SMTPAuthenticationError as error:
        raise SmtpConfigurationError(
            f"The SMTP server {where} refused the login: {error.smtp_code} "
            f"{_text(error.smtp_error)}",
            fix=OAUTH_FIX if oauth else AUTH_FIX,
        ) from None
    except smtplib.SMTPRecipientsRefused as error:
        # Every recipient refused: the most lenient code decides (one 4xx = try again).
        codes = {addr: code for addr, (code, _) in error.recipients.items()}
        worst = min(codes.values(), default=550)
        refused = ", ".join(f"{a} ({c} {_text(t)})" for a, (c, t) in error.recipients.items())
        if 400 <= worst < 500:
            raise TransientSendError(
                f"The SMTP server deferred the recipients: {refused}",
                fix="replygate retries later.",
                code=worst,
            ) from None
        raise PermanentSendError(
            f"The SMTP server refused every recipient: {refused}",
            fix="Correct the approvers' addresses.",
            code=worst,
        ) from None
    except smtplib.SMTPSenderRefused as error:
        raise from_code(error.smtp_code, error.smtp_error, f"the sender {error.sender}") from None
    except smtplib.SMTPResponseException as error:  # SMTPDataError and the rest
        raise from_code(error.smtp_code, error.smtp_error, "the message") from None
    except smtplib.SMTPNotSupportedError as error:
        raise SmtpConfigurationError(
            f"The SMTP server {where} does not support what is needed: {error}",
            fix="Check the SMTP security and auth type in Email Settings.",
        ) from None
    except ssl.SSLCertVerificationError as error:
        raise SmtpConfigurationError(
            f"The TLS certificate of {where} is not trusted: {error.verify_message}",
            fix="Use the host name the certificate names, or trust the issuing CA "
            "(CA bundle setting).",
        ) from None
    except ssl.SSLError as error:
        raise SmtpConfigurationError(
            f"TLS with {where} failed: {error.reason or error}",
            fix="Check the SMTP security setting: implicit TLS is usually port 465, "
            "STARTTLS port 587.",
        ) from None
    except (smtplib.SMTPException, OSError) as error:  # disconnects, timeouts, refused, DNS
        name = type(error).__name__
        if isinstance(error, socket.gaierror):
            name = "host name not found"
        raise TransientSendError(
            f"Could not talk to the SMTP server {where}: {name}: {error}",
            fix="Check the SMTP host and port; replygate retries later.",
        ) from None
