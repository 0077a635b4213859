"""X-Forwarded-Proto/For count only when the connection comes from a trusted proxy."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from starlette.types import Message, Receive, Scope, Send

from replygate.errors import ConfigurationError
from replygate.web.proxy import TrustedProxyMiddleware


def seen_by_app(trusted: list[str], client: str, headers: dict[str, str]) -> Scope:
    """The scope the wrapped app receives for one request."""
    seen: dict[str, Any] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.update(scope)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        pass

    scope: Scope = {
        "type": "http",
        "scheme": "http",
        "client": (client, 40000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    anyio.run(TrustedProxyMiddleware(app, trusted), scope, receive, send)
    return seen


FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}


def test_trusted_proxy_sets_scheme_and_client() -> None:
    scope = seen_by_app(["10.0.0.5"], "10.0.0.5", FORWARDED)
    assert scope["scheme"] == "https"
    assert scope["client"] == ("203.0.113.7", 0)


def test_untrusted_sender_is_ignored() -> None:
    scope = seen_by_app(["10.0.0.5"], "198.51.100.9", FORWARDED)
    assert scope["scheme"] == "http"
    assert scope["client"] == ("198.51.100.9", 40000)


def test_nothing_is_trusted_by_default() -> None:
    scope = seen_by_app([], "127.0.0.1", FORWARDED)
    assert scope["scheme"] == "http"
    assert scope["client"] == ("127.0.0.1", 40000)


def test_chain_is_walked_from_the_right_past_trusted_hops() -> None:
    headers = {"X-Forwarded-For": "1.1.1.1, 203.0.113.7, 10.1.2.3", "X-Forwarded-Proto": "https"}
    scope = seen_by_app(["10.0.0.0/8"], "10.0.0.5", headers)
    # 1.1.1.1 is whatever the client claimed; 203.0.113.7 is what our proxies saw.
    assert scope["client"] == ("203.0.113.7", 0)


def test_garbled_values_are_ignored() -> None:
    headers = {"X-Forwarded-For": "not-an-ip", "X-Forwarded-Proto": "gopher"}
    scope = seen_by_app(["10.0.0.5"], "10.0.0.5", headers)
    assert scope["scheme"] == "http"
    assert scope["client"] == ("10.0.0.5", 40000)


def test_ipv6_proxy() -> None:
    scope = seen_by_app(["::1"], "::1", FORWARDED)
    assert scope["scheme"] == "https"


def test_bad_configuration_is_named() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        pass

    with pytest.raises(ConfigurationError, match=r"'proxy\.example' is not an IP address"):
        TrustedProxyMiddleware(app, ["proxy.example"])
