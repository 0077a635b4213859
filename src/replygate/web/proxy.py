"""Honour ``X-Forwarded-Proto``/``X-Forwarded-For`` only from the configured proxies.

Anyone can send these headers; trusting them from everyone would let a client claim https
(OAuth refuses plain http) or dodge the per-address sign-in limit. uvicorn's own proxy
handling is turned off in ``serve`` so that this middleware is the only one deciding.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from replygate.errors import ConfigurationError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ConfigurationError(
                f"REPLYGATE_TRUSTED_PROXIES: {entry!r} is not an IP address or network",
                fix='list addresses or networks, e.g. ["127.0.0.1", "10.0.0.0/8"]',
            ) from None
    return tuple(networks)


class TrustedProxyMiddleware:
    def __init__(self, app: ASGIApp, trusted: Iterable[str]) -> None:
        self.app = app
        self.networks = parse_networks(trusted)

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and client and self._trusted(client[0]):
            headers = Headers(scope=scope)
            proto = _last(headers.getlist("x-forwarded-proto")).lower()
            if proto in ("http", "https"):
                secure = proto == "https"
                if scope["type"] == "websocket":
                    scope["scheme"] = "wss" if secure else "ws"
                else:
                    scope["scheme"] = proto
            forwarded = self._client_from(headers.getlist("x-forwarded-for"))
            if forwarded is not None:
                scope["client"] = (forwarded, 0)
        await self.app(scope, receive, send)

    def _client_from(self, values: list[str]) -> str | None:
        """The nearest address that is not one of our proxies (walking right to left)."""
        hops = [hop.strip() for value in values for hop in value.split(",") if hop.strip()]
        for hop in reversed(hops):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return None  # a garbled chain: keep the proxy's own address
            if not self._trusted(hop):
                return hop
        return hops[0] if hops else None


def _last(values: list[str]) -> str:
    """The value the nearest proxy appended (the last of a comma-separated list)."""
    hops = [hop.strip() for value in values for hop in value.split(",") if hop.strip()]
    return hops[-1] if hops else ""
