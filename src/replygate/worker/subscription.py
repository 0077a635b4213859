"""A Graph change-notification subscription on the reply folder, kept alive by the worker.

A notification only wakes the worker for an immediate delta round; polling remains the
fallback, so a lost notification costs latency, never mail. Graph needs an https
``PUBLIC_URL`` it can reach, and on a mailbox other than the signed-in user's own it
needs application permissions: where that does not hold, no subscription is made.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from replygate.bootstrap import Container
from replygate.errors import ReplygateError
from replygate.graph.subscriptions import GraphSubscriptions, new_client_state
from replygate.mailflow import Mailflow

log = logging.getLogger(__name__)

META_KEY = "graph_subscription"
PURPOSE = "subscription client state"
RENEW_BEFORE = timedelta(hours=12)
NOTIFICATION_PATH = "/graph/notifications"
LIFECYCLE_PATH = "/graph/lifecycle"


@dataclass(frozen=True)
class StoredSubscription:
    id: str
    resource_key: str  # mailbox + folder path it watches
    expires_at: datetime
    client_state: str


def eligible(flow: Mailflow, public_url: str) -> str | None:
    """Why no subscription can be made, or None when one can."""
    if flow.connection is None or flow.application is None or flow.imap is not None:
        return "the reply folder is not read through Microsoft Graph"
    parts = urlsplit(public_url)
    unreachable = parts.scheme != "https" or parts.hostname in ("localhost", "127.0.0.1", "::1")
    emulated = flow.application.cloud == "custom"  # the emulator reaches loopback; Graph cannot
    if unreachable and not emulated:
        return "PUBLIC_URL is not a public https URL Graph can reach"
    own = (flow.settings.smtp_user or "").lower() == (flow.settings.reply_address or "").lower()
    if flow.application.mode == "delegated" and not own:
        return "delegated tokens cannot subscribe to another mailbox (app-only can)"
    return None


def load(container: Container) -> StoredSubscription | None:
    with container.uow() as uow:
        stored = uow.meta.get(META_KEY)
    data = json.loads(stored) if stored else None
    if not data:
        return None
    return StoredSubscription(
        data["id"],
        data["resource_key"],
        datetime.fromisoformat(data["expires_at"]),
        container.secrets.decrypt(data["client_state"], PURPOSE),
    )


def _save(container: Container, sub: StoredSubscription | None) -> None:
    with container.uow() as uow:
        if sub is None:
            uow.meta.put(META_KEY, json.dumps(None))
        else:
            uow.meta.put(
                META_KEY,
                json.dumps(
                    {
                        "id": sub.id,
                        "resource_key": sub.resource_key,
                        "expires_at": sub.expires_at.isoformat(),
                        "client_state": container.secrets.encrypt(sub.client_state, PURPOSE),
                    }
                ),
            )
        uow.commit()


def forget(container: Container) -> None:
    """Drop the stored subscription so the next round makes a new one (lifecycle events)."""
    _save(container, None)


def keep_subscription(container: Container, flow: Mailflow, folder_id: str) -> str:
    """Create or renew the subscription when needed; return what was done."""
    public_url = container.settings.public_url
    why_not = eligible(flow, public_url)
    if why_not is not None:
        return f"polling only: {why_not}"
    address = flow.settings.reply_address or ""
    key = f"{address.lower()}|{flow.settings.email_reply_folder}"
    stored = _load_safely(container)
    graph = GraphSubscriptions(flow.graph.client, address)
    now = container.clock.now()
    if stored is not None and stored.resource_key == key and stored.expires_at - now > RENEW_BEFORE:
        return "subscribed"
    try:
        if stored is not None and stored.resource_key == key:
            info = graph.renew(stored.id)
            _save(container, StoredSubscription(info.id, key, info.expires_at, stored.client_state))
            return "renewed"
        if stored is not None:
            graph.delete(stored.id)  # the settings moved to another folder
        state = new_client_state()
        info = graph.create(
            folder_id,
            public_url + NOTIFICATION_PATH,
            state,
            lifecycle_url=public_url + LIFECYCLE_PATH,
        )
    except ReplygateError as error:
        forget(container)
        return f"polling only: the subscription was refused ({error.message})"
    _save(container, StoredSubscription(info.id, key, info.expires_at, state))
    log.info("Graph subscription %s on %s until %s", info.id, key, info.expires_at.isoformat())
    return "subscribed"


def _load_safely(container: Container) -> StoredSubscription | None:
    try:
        return load(container)
    except (ValueError, KeyError, TypeError):
        return None  # "null" or an old shape: make a new one
