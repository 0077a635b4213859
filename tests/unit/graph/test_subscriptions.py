"""Subscriptions: request shapes, expiry capping, clientState checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx

from replygate.graph.subscriptions import (
    GraphSubscriptions,
    genuine_notifications,
    new_client_state,
)

from .fakes import Script, graph_error, make_client

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
BOX = "approvals@contoso.test"


def answer(expiry: str = "2026-01-08T07:00:00Z") -> httpx.Response:
    return httpx.Response(201, json={"id": "s1", "resource": "r", "expirationDateTime": expiry})


def test_create_names_the_folder_and_caps_the_lifetime() -> None:
    script = Script(answer())
    client, _ = make_client(script)
    subs = GraphSubscriptions(client, BOX, now=lambda: NOW)
    info = subs.create("f1", "https://rg.example/graph/notify", "secret", minutes=99_999)
    body = json.loads(script.requests[0].content)
    assert body["resource"] == f"users/{BOX}/mailFolders/f1/messages"
    assert body["expirationDateTime"] == "2026-01-08T07:30:00.0000000Z"  # 4,230 minutes
    assert body["clientState"] == "secret"
    assert "lifecycleNotificationUrl" not in body
    assert info.expires_at == datetime(2026, 1, 8, 7, 0, tzinfo=UTC)


def test_renew_patches_and_delete_tolerates_gone() -> None:
    script = Script(
        httpx.Response(200, json={"id": "s1", "expirationDateTime": "2026-01-08T07:00:00Z"}),
        graph_error(404, "ErrorItemNotFound"),
    )
    client, _ = make_client(script)
    subs = GraphSubscriptions(client, BOX, now=lambda: NOW)
    assert subs.renew("s1").id == "s1"
    subs.delete("s1")
    assert [r.method for r in script.requests] == ["PATCH", "DELETE"]


def test_only_notifications_with_our_client_state_are_kept() -> None:
    state = new_client_state()
    assert len(state) <= 128
    payload = {
        "value": [
            {"subscriptionId": "s1", "clientState": state},
            {"subscriptionId": "s1", "clientState": "forged"},
            {"subscriptionId": "s9", "clientState": state},
            {"subscriptionId": "s1"},
        ]
    }
    assert len(genuine_notifications(payload, state)) == 2
    assert genuine_notifications(payload, state, {"s1"}) == [payload["value"][0]]
