"""One place that wires an OAuth application to the Graph adapter (for bootstrap and tests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import requests

from replygate.graph.auth import GraphAuth, OAuthAppConfig, TokenProvider
from replygate.graph.client import Budget, GraphClient
from replygate.graph.clouds import Mode
from replygate.graph.mailbox import GraphReplyMailbox
from replygate.graph.sender import GraphMailSender, Pacing
from replygate.graph.subscriptions import GraphSubscriptions


@dataclass
class GraphConnection:
    tokens: TokenProvider
    client: GraphClient
    sender: GraphMailSender

    def mailbox(self, address: str, *, page_size: int = 50) -> GraphReplyMailbox:
        return GraphReplyMailbox(self.client, address, page_size=page_size)

    def subscriptions(self, address: str) -> GraphSubscriptions:
        return GraphSubscriptions(self.client, address)

    def close(self) -> None:
        self.client.close()


def connect(
    config: OAuthAppConfig,
    cache_blob: str | None = None,
    *,
    http_client: requests.Session | None = None,
    verify: Any = True,
    transport: httpx.BaseTransport | None = None,
    budget: Budget | None = None,
    pacing: Pacing | None = None,
) -> GraphConnection:
    """Tokens, a budgeted Graph client and a paced sender for one OAuth application.
    Persist `tokens.serialized_cache()` (encrypted) whenever `tokens.cache_changed`."""
    tokens = TokenProvider(config, cache_blob, http_client=http_client)
    client = GraphClient(
        tokens.cloud.graph_url,
        GraphAuth(tokens),
        acting_user=config.expected_username if config.mode is Mode.DELEGATED else None,
        transport=transport,
        verify=verify,
        budget=budget,
    )
    return GraphConnection(tokens, client, GraphMailSender(client, pacing=pacing))
