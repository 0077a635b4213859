"""Webhook delivery over HTTP (httpx) and the settings it runs with."""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import httpx

from replygate import __version__
from replygate.services.webhook_ports import PostResult
from replygate.services.webhooks import DeliveryContext, parse_networks

if TYPE_CHECKING:
    from replygate.bootstrap import Container

TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to: all are checked, since any may be used."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in found})


def pinned(url: str, address: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """The URL with its host replaced by ``address``, the ``Host`` header and the TLS server
    name that keep naming the original host (so certificates are checked against it)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if ":" in address else address
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return urlunsplit(parts._replace(netloc=netloc)), {"Host": parts.netloc}, extensions


class HttpxPoster:
    """POST to a vetted address, without following redirects (they could point anywhere)."""

    def post(
        self, url: str, body: bytes, headers: dict[str, str], *, connect_to: str
    ) -> PostResult:
        target, host, extensions = pinned(url, connect_to)
        started = time.monotonic()
        try:
            with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client:
                answer = client.post(
                    target, content=body, headers={**headers, **host}, extensions=extensions
                )
        except httpx.HTTPError as error:
            raise OSError(f"{type(error).__name__}: {error}") from None
        return PostResult(answer.status_code, int((time.monotonic() - started) * 1000))


def delivery_context(container: Container, worker: str) -> DeliveryContext:
    return DeliveryContext(
        clock=container.clock,
        sealer=container.secrets,
        callback_key=container.secrets.key,
        poster=HttpxPoster(),
        resolve=resolve,
        allowed=parse_networks(container.settings.webhook_allow_networks),
        worker=worker,
        user_agent=f"replygate/{__version__} (webhook)",
    )
