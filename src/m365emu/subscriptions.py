"""Change-notification subscriptions on messages: handshake, notifications, lifecycle events.

Delivery follows https://learn.microsoft.com/graph/change-notifications-delivery-webhooks:
the notification URL must echo `validationToken` as text/plain with 200 within 10 s, both
for `notificationUrl` and `lifecycleNotificationUrl`; notifications are POSTed as JSON
`{"value": [...]}` carrying `clientState`; lifecycle events
(https://learn.microsoft.com/graph/change-notifications-lifecycle-events) are
`reauthorizationRequired`, `subscriptionRemoved` and `missed`.

The emulator relaxes one rule for tests: `http://` is accepted for loopback hosts.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from m365emu.mailstore import Mailbox, StoredMessage, iso

log = logging.getLogger(__name__)
VALIDATION_TIMEOUT_S = 10.0
NOTIFY_TIMEOUT_S = 3.0  # Graph expects an answer within 3 s
LIFECYCLE_EVENTS = frozenset({"reauthorizationRequired", "subscriptionRemoved", "missed"})


@dataclass
class Subscription:
    id: str
    client_id: str
    tenant_id: str
    user_id: str
    folder_id: str | None  # None: the whole mailbox
    resource: str
    change_types: frozenset[str]
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expires: datetime
    immutable: bool
    creator_id: str
    needs_reauthorization: bool = False

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.client_id,
            "changeType": ",".join(sorted(self.change_types)),
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": iso(self.expires),
            "creatorId": self.creator_id,
            "includeResourceData": False,
            "latestSupportedTlsVersion": "v1_2",
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationQueryOptions": None,
            "notificationContentType": None,
            "notificationUrlAppId": None,
        }


def url_allowed(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")


@dataclass
class Subscriptions:
    now: Callable[[], datetime]
    items: dict[str, Subscription] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)  # every POST made, for tests
    verify: bool | str = True  # httpx `verify`: True, False or a CA bundle path
    loop: asyncio.AbstractEventLoop | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def _ssl(self) -> bool | ssl.SSLContext:
        if isinstance(self.verify, str):
            return ssl.create_default_context(cafile=self.verify)
        return self.verify

    async def validate(self, url: str) -> bool:
        """The handshake: POST ?validationToken=...; the body must echo it, status 200."""
        token = "Validation: Testing client application reachability for subscription " + (
            secrets.token_hex(8)
        )
        self.loop = asyncio.get_running_loop()
        try:
            async with httpx.AsyncClient(verify=self._ssl(), timeout=VALIDATION_TIMEOUT_S) as c:
                resp = await c.post(
                    url, params={"validationToken": token}, headers={"Content-Type": "text/plain"}
                )
        except httpx.HTTPError as exc:
            self._record("validation", url, None, {"validationToken": token}, str(exc))
            return False
        ok = resp.status_code == 200 and resp.text == token
        self._record("validation", url, resp.status_code, {"validationToken": token}, resp.text)
        return ok

    def _record(
        self, kind: str, url: str, status: int | None, payload: Any, answer: str = ""
    ) -> None:
        self.log.append(
            {
                "kind": kind,
                "url": url,
                "status": status,
                "payload": payload,
                "answer": answer,
                "at": iso(self.now()),
            }
        )

    def active(self) -> list[Subscription]:
        now = self.now()
        for sid in [s.id for s in self.items.values() if s.expires <= now]:
            del self.items[sid]
        return list(self.items.values())

    def on_change(self, mb: Mailbox, folder_id: str, msg: StoredMessage, change: str) -> None:
        """Store listener: queue one notification per matching subscription."""
        for sub in self.active():
            if sub.user_id != mb.user_id or change not in sub.change_types:
                continue
            if sub.folder_id is not None and sub.folder_id != folder_id:
                continue
            mid = msg.immutable_id if sub.immutable else msg.rest_id
            path = f"Users/{mb.user_id}/Messages/{mid}"
            item = {
                "subscriptionId": sub.id,
                "subscriptionExpirationDateTime": iso(sub.expires),
                "changeType": change,
                "resource": path,
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.Message",
                    "@odata.id": path,
                    "@odata.etag": f'W/"{msg.change_key}"',
                    "id": mid,
                },
                "clientState": sub.client_state,
                "tenantId": sub.tenant_id,
            }
            self._post_later("notification", sub.notification_url, {"value": [item]})

    def lifecycle(self, sub: Subscription, event: str) -> None:
        """Send a lifecycle event; `subscriptionRemoved` also deletes the subscription."""
        if sub.lifecycle_url is None:
            raise ValueError("the subscription has no lifecycleNotificationUrl")
        item = {
            "lifecycleEvent": event,
            "subscriptionId": sub.id,
            "subscriptionExpirationDateTime": iso(sub.expires),
            "clientState": sub.client_state,
            "tenantId": sub.tenant_id,
        }
        if event == "reauthorizationRequired":
            sub.needs_reauthorization = True
        if event == "subscriptionRemoved":
            self.items.pop(sub.id, None)
        self._post_later("lifecycle", sub.lifecycle_url, {"value": [item]})

    def _post_later(self, kind: str, url: str, payload: dict[str, Any]) -> None:
        loop = self.loop
        if loop is None or loop.is_closed():
            self._record(kind, url, None, payload, "no event loop")
            return
        coro = self._post(kind, url, payload)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            task = loop.create_task(coro)
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        else:  # a control hook called from another thread
            asyncio.run_coroutine_threadsafe(coro, loop)

    async def _post(self, kind: str, url: str, payload: dict[str, Any]) -> None:
        try:
            async with httpx.AsyncClient(verify=self._ssl(), timeout=NOTIFY_TIMEOUT_S) as c:
                resp = await c.post(url, json=payload)
            self._record(kind, url, resp.status_code, payload)
        except httpx.HTTPError as exc:
            log.info("notification to %s failed: %s", url, exc)
            self._record(kind, url, None, payload, str(exc))
