"""Webhook safety: the signature scheme and the refusal of non-public URLs.

``X-Replygate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``;
receivers refuse a ``t`` further than ``REPLAY_WINDOW`` from their clock. URLs whose host
resolves to any non-global address (loopback, link-local and cloud metadata, private,
carrier-grade NAT, unspecified, multicast) are refused unless inside an allowed network.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from replygate.errors import InvalidInput
from replygate.services.webhook_ports import Resolver

REPLAY_WINDOW = timedelta(minutes=5)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


# -- signatures --------------------------------------------------------------------------


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify_signature(
    secret: str, header: str, body: bytes, now: datetime, window: timedelta = REPLAY_WINDOW
) -> bool:
    """What a receiver does: the HMAC matches and the timestamp is within the window."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now.timestamp() - timestamp) > window.total_seconds():
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def callback_secret(key: bytes, request_id: str) -> str:
    """The secret that signs a request's own callbacks (derived: nothing more to store)."""
    derived = hmac.new(key, b"replygate:callback:" + request_id.encode(), hashlib.sha256)
    return "whsec_" + derived.hexdigest()


# -- URL safety --------------------------------------------------------------------------


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    try:
        return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values)
    except ValueError as error:
        raise InvalidInput(f"webhook_allow_networks: {error}") from None


def check_url(url: str, resolve: Resolver, allowed: Sequence[Network] = ()) -> list[str]:
    """Refuse URLs that are not http(s) or reach a non-global address not allowed; return
    the vetted addresses, so the POST can go to one of them and not to a fresh lookup."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"webhook URL {url[:200]!r}: must be an absolute http(s) URL")
    if parts.username or parts.password:
        raise InvalidInput("webhook URL: credentials in the URL are not accepted")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = resolve(parts.hostname, port)
    except (OSError, ValueError) as error:
        raise InvalidInput(f"webhook URL: {parts.hostname} cannot be resolved ({error})") from None
    if not addresses:
        raise InvalidInput(f"webhook URL: {parts.hostname} resolves to no address")
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if address.is_global and not address.is_multicast:
            continue
        if any(address in network for network in allowed):
            continue
        raise InvalidInput(
            f"webhook URL: {parts.hostname} resolves to {address}, a loopback, link-local, "
            "private or metadata address",
            fix="use a public address, or add its network to REPLYGATE_WEBHOOK_ALLOW_NETWORKS",
        )
    return list(addresses)
