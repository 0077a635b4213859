"""Change notifications on the reply folder: create, renew, delete, check what arrives.

A notification only says "something changed"; replygate answers it with a delta round, so
polling stays the fallback and nothing is read from the notification itself. Subscriptions
on a shared mailbox need application permissions (delegated `.Shared` scopes cannot
subscribe); Outlook subscriptions live at most 4,230 minutes, so the worker renews them.
Cost: 1 request per create, renew or delete.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from replygate.graph.client import GraphClient, segment
from replygate.graph.errors import GraphNotFound

MAX_MINUTES = 4230  # Outlook message subscriptions (Microsoft's published maximum)
DEFAULT_MINUTES = 4200  # a little under the maximum, so clock skew cannot get it refused


def new_client_state() -> str:
    """A secret (at most 128 characters) that every genuine notification echoes."""
    return secrets.token_urlsafe(48)


@dataclass(frozen=True)
class SubscriptionInfo:
    id: str
    resource: str
    expires_at: datetime


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _info(body: Mapping[str, Any]) -> SubscriptionInfo:
    raw = str(body["expirationDateTime"])
    return SubscriptionInfo(str(body["id"]), str(body.get("resource", "")), _parse(raw))


def _parse(raw: str) -> datetime:
    moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


class GraphSubscriptions:
    """Subscriptions on folders of one mailbox."""

    def __init__(
        self, client: GraphClient, mailbox: str, *, now: Callable[[], datetime] = _utc_now
    ) -> None:
        self.client, self.mailbox, self._now = client, mailbox, now

    def _expiry(self, minutes: int) -> str:
        return _stamp(self._now() + timedelta(minutes=min(minutes, MAX_MINUTES)))

    def create(
        self,
        folder_id: str,
        notification_url: str,
        client_state: str,
        *,
        lifecycle_url: str | None = None,
        minutes: int = DEFAULT_MINUTES,
    ) -> SubscriptionInfo:
        body: dict[str, Any] = {
            "changeType": "created",
            "notificationUrl": notification_url,
            "resource": f"users/{self.mailbox}/mailFolders/{segment(folder_id)}/messages",
            "expirationDateTime": self._expiry(minutes),
            "clientState": client_state,
        }
        if lifecycle_url:
            body["lifecycleNotificationUrl"] = lifecycle_url
        return _info(self.client.post_json("subscriptions", mailbox=self.mailbox, json=body))

    def renew(self, subscription_id: str, *, minutes: int = DEFAULT_MINUTES) -> SubscriptionInfo:
        response = self.client.request(
            "PATCH",
            f"subscriptions/{segment(subscription_id)}",
            mailbox=self.mailbox,
            json={"expirationDateTime": self._expiry(minutes)},
        )
        return _info(response.json())

    def delete(self, subscription_id: str) -> None:
        try:
            self.client.request(
                "DELETE", f"subscriptions/{segment(subscription_id)}", mailbox=self.mailbox
            )
        except GraphNotFound:
            return  # gone already: what we wanted


def genuine_notifications(
    payload: Mapping[str, Any], client_state: str, subscription_ids: set[str] | None = None
) -> list[dict[str, Any]]:
    """The notifications in a webhook POST that carry our clientState (compared in constant
    time) and, if given, belong to one of our subscriptions; the rest are dropped."""
    kept: list[dict[str, Any]] = []
    for item in payload.get("value") or []:
        if not isinstance(item, dict):
            continue
        state = str(item.get("clientState") or "")
        if not hmac.compare_digest(state.encode(), client_state.encode()):
            continue
        if subscription_ids is not None and item.get("subscriptionId") not in subscription_ids:
            continue
        kept.append(item)
    return kept
