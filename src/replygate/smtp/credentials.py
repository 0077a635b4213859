"""How the SMTP and IMAP adapters log in and protect the connection (shared by both).

`Basic` is a user name and password (AUTH PLAIN/LOGIN, IMAP LOGIN); `XOAuth2` is a user
name and a callable returning a current OAuth access token (Microsoft 365 and Gmail accept
SASL XOAUTH2 on SMTP and IMAP). Secrets are never part of a repr or a log line.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Security = Literal["none", "starttls", "tls"]


@dataclass(frozen=True)
class NoAuth:
    """No login: a relay that trusts the network (port 25 on localhost, for example)."""


@dataclass(frozen=True)
class Basic:
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class XOAuth2:
    username: str
    # Called once per connection; the token provider caches and refreshes.
    token: Callable[[], str] = field(repr=False)


Credentials = NoAuth | Basic | XOAuth2


def xoauth2_response(username: str, token: str) -> bytes:
    """The SASL XOAUTH2 initial client response (before base64), as Google and Microsoft
    specify it: `user=<name>^Aauth=Bearer <token>^A^A`."""
    if any(c in username for c in "\x01\r\n") or any(c in token for c in "\x01\r\n "):
        raise ValueError("a user name or token with control characters cannot be sent")
    return f"user={username}\x01auth=Bearer {token}\x01\x01".encode()


def tls_context(given: ssl.SSLContext | None) -> ssl.SSLContext:
    """The context to use: the injected one, else the system's trust store with host
    name checking (never an unverified context)."""
    return given if given is not None else ssl.create_default_context()


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
