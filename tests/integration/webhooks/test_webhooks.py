"""Webhooks against a real local receiver: signatures, retries with backoff, the log."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from replygate.bootstrap import Container
from replygate.db.tables import WebhookDeliveryRow, WebhookSubscriptionRow
from replygate.domain.model import Channel, Decision, Verdict
from replygate.errors import InvalidInput
from replygate.services import webhooks
from replygate.services.account_ports import Role
from replygate.services.webhook_ports import Event
from replygate.worker.loops import Worker
from replygate.worker.webhook_http import delivery_context, resolve
from tests.conftest import FixedClock
from tests.integration.api.conftest import Caller, make_caller, new_request
from tests.integration.web.conftest import TestClient
from tests.integration.webhooks.conftest import Receiver


@pytest.fixture
def admin(container: Container) -> Caller:
    return make_caller(container, "root", Role.ADMIN)


def subscribe(client: TestClient, admin: Caller, url: str, events: list[str]) -> dict[str, str]:
    answer = client.post(
        "/api/v1/webhooks", json={"name": "ci", "url": url, "events": events}, headers=admin.headers
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, str] = answer.json()
    return body


def deliver(container: Container) -> webhooks.DeliveryReport:
    return webhooks.deliver_due(container.uow, delivery_context(container, "test"))


def test_signed_delivery_retried_with_backoff_and_logged(
    client: TestClient, container: Container, clock: FixedClock, receiver: Receiver, admin: Caller
) -> None:
    hook = subscribe(client, admin, receiver.url, ["request.created"])
    assert hook["secret"].startswith("whsec_")
    with container.uow() as uow:  # stored encrypted, never as it is
        (stored,) = uow.session.scalars(select(WebhookSubscriptionRow.secret_encrypted)).all()
    assert stored.startswith("rg1:")
    assert hook["secret"] not in stored
    created = client.post(
        "/api/v1/approvals",
        json=new_request(callback_url=receiver.url + "?request=1"),
        headers=admin.headers,
    )
    assert created.status_code == 201, created.text
    request = created.json()
    receiver.failures_first = 1

    first = deliver(container)
    assert len(first.retrying) == 1
    assert len(first.delivered) == 1
    with container.uow() as uow:
        retry = uow.session.get_one(WebhookDeliveryRow, first.retrying[0])
        wait = retry.next_attempt_at - clock.now()
    assert timedelta(seconds=10) <= wait <= timedelta(seconds=12)
    assert deliver(container).delivered == []  # not due yet: nothing is sent early
    clock.advance(seconds=13)
    assert deliver(container).delivered == first.retrying
    assert len(receiver.received) == 3

    for received in receiver.received:
        secret = hook["secret"] if received.path == "/hooks" else request["callback_secret"]
        header = received.headers["x-replygate-signature"]
        assert webhooks.verify_signature(secret, header, received.body, clock.now())
        assert not webhooks.verify_signature(secret, header, received.body + b" ", clock.now())
        assert not webhooks.verify_signature("whsec_other", header, received.body, clock.now())
        assert not webhooks.verify_signature(  # outside the replay window
            secret, header, received.body, clock.now() + timedelta(minutes=6)
        )
        event = json.loads(received.body)
        assert event["type"] == "request.created" == received.headers["x-replygate-event"]
        assert event["id"] == received.headers["x-replygate-delivery"]
        assert event["request"]["id"] == request["id"]
    # The retry carries the same event (same id and body), signed anew.
    assert receiver.received[0].body == receiver.received[2].body

    log = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=admin.headers)
    assert log.status_code == 200
    (delivery,) = log.json()
    assert delivery["state"] == "delivered"
    assert [a["status_code"] for a in delivery["log"]] == [500, 200]
    assert delivery["log"][0]["error"] == "the receiver answered 500"
    detail = client.get(f"/api/v1/approvals/{request['id']}", headers=admin.headers).json()
    assert {d["state"] for d in detail["webhooks"]} == {"delivered"}


def test_events_of_a_request_life(
    client: TestClient, container: Container, receiver: Receiver, admin: Caller
) -> None:
    subscribe(client, admin, receiver.url, [])  # no events listed: all of them
    request_id = client.post("/api/v1/approvals", json=new_request(), headers=admin.headers).json()[
        "id"
    ]
    with container.uow() as uow:
        webhooks.record_mail_sent(uow, "request_mail", request_id)
        webhooks.record_mail_sent(uow, "reminder_mail", request_id)  # not an event
        webhooks.record_mail_failed(uow, "request_mail", request_id, "Send As denied")
        request = uow.requests.get(request_id)
        assert request is not None
        decision = Decision(
            "ann@contoso.test", Verdict.APPROVE, "ok", Channel.EMAIL, request.created_at
        )
        request.decide(decision)
        uow.requests.save(request)
        webhooks.record_decision(uow, request, decision)
        uow.commit()
    deliver(container)
    types = [json.loads(r.body)["type"] for r in receiver.received]
    assert types == [
        "request.created",
        "request.sent",
        "request.delivery_failed",
        "request.decision",
        "request.closed",
    ]
    closed = json.loads(receiver.received[-1].body)
    assert closed["request"]["state"] == "approved"
    assert json.loads(receiver.received[3].body)["decision"]["verdict"] == "approve"


def test_cancel_sends_closed_and_unsubscribed_events_are_not_sent(
    client: TestClient, container: Container, receiver: Receiver, admin: Caller
) -> None:
    subscribe(client, admin, receiver.url, ["request.closed"])
    request_id = client.post("/api/v1/approvals", json=new_request(), headers=admin.headers).json()[
        "id"
    ]
    client.post(f"/api/v1/approvals/{request_id}/cancel", headers=admin.headers)
    deliver(container)
    (only,) = receiver.received
    assert json.loads(only.body)["type"] == Event.CLOSED.value
    assert json.loads(only.body)["request"]["state"] == "cancelled"


def test_the_worker_delivers_webhooks_even_without_mail_settings(
    client: TestClient, container: Container, receiver: Receiver, admin: Caller
) -> None:
    subscribe(client, admin, receiver.url, ["request.created"])
    client.post("/api/v1/approvals", json=new_request(), headers=admin.headers)
    worker = Worker(container)
    report = worker.run_once(read=False)
    assert "send" in report.errors  # no Email Settings yet
    assert report.webhooks is not None
    assert len(report.webhooks.delivered) == 1
    assert len(receiver.received) == 1


def test_gives_up_after_the_last_attempt(
    client: TestClient, container: Container, clock: FixedClock, receiver: Receiver, admin: Caller
) -> None:
    subscribe(client, admin, receiver.url, ["request.created"])
    client.post("/api/v1/approvals", json=new_request(), headers=admin.headers)
    receiver.failures_first = 1000
    for _ in range(webhooks.MAX_ATTEMPTS):
        deliver(container)
        clock.advance(hours=2)
    with container.uow() as uow:
        (row,) = uow.session.scalars(select(WebhookDeliveryRow)).all()
        assert (row.state, row.attempts, row.last_status) == ("failed", webhooks.MAX_ATTEMPTS, 500)
    assert len(receiver.received) == webhooks.MAX_ATTEMPTS


def test_no_answer_is_retried(
    client: TestClient, container: Container, receiver: Receiver, admin: Caller
) -> None:
    subscribe(client, admin, receiver.url.replace("/hooks", "/x"), ["request.created"])
    with container.uow() as uow:
        hook = uow.webhooks.subscriptions()[0]
    # Point it at a port nothing listens on (the receiver's, after it stops, is unsafe).
    with container.uow() as uow:
        row = uow.session.get_one(WebhookSubscriptionRow, hook.id)
        row.url = "http://127.0.0.1:9/nothing"
        uow.commit()
    client.post("/api/v1/approvals", json=new_request(), headers=admin.headers)
    report = deliver(container)
    assert len(report.retrying) == 1
    with container.uow() as uow:
        (row2,) = uow.session.scalars(select(WebhookDeliveryRow)).all()
        assert row2.last_error.startswith("no answer")
        assert row2.last_status is None


# -- URL refusal ---------------------------------------------------------------------------

REFUSED = [
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[fe80::1]/",
    "http://127.0.0.1:8080/",
    "http://localhost/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://10.1.2.3/",
    "http://172.16.0.1/",
    "https://192.168.1.10/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
]


@pytest.mark.parametrize("url", REFUSED)
def test_non_public_addresses_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput, match="loopback, link-local, private or metadata"):
        webhooks.check_url(url, resolve)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "http://user:pw@example.com/", "/relative", "http://"]
)
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput):
        webhooks.check_url(url, lambda host, port: ["93.184.216.34"])


def test_allowed_networks_are_explicit() -> None:
    allowed = webhooks.parse_networks(["10.0.0.0/8"])
    webhooks.check_url("http://10.1.2.3/hook", resolve, allowed)
    with pytest.raises(InvalidInput):
        webhooks.check_url("http://169.254.169.254/", resolve, allowed)
    # A name is refused when any of its addresses is not allowed.
    with pytest.raises(InvalidInput):
        webhooks.check_url("http://mixed.example/", lambda h, p: ["93.184.216.34", "10.0.0.1"])
    webhooks.check_url("http://public.example/", lambda h, p: ["93.184.216.34"])


def test_the_api_refuses_metadata_and_private_urls(
    client: TestClient, admin: Caller, container: Container
) -> None:
    for url in ("http://169.254.169.254/", "http://[fd00:ec2::254]/", "http://192.168.0.5/"):
        hook = client.post(
            "/api/v1/webhooks", json={"name": "x", "url": url}, headers=admin.headers
        )
        assert hook.status_code == 422, url
        assert "metadata" in hook.json()["detail"]
        callback = client.post(
            "/api/v1/approvals", json=new_request(callback_url=url), headers=admin.headers
        )
        assert callback.status_code == 422
    with container.uow() as uow:
        assert uow.requests.list() == []


def test_a_refused_address_at_delivery_fails_without_a_request(
    client: TestClient, container: Container, receiver: Receiver, admin: Caller
) -> None:
    subscribe(client, admin, receiver.url, ["request.created"])
    client.post("/api/v1/approvals", json=new_request(), headers=admin.headers)
    strict = webhooks.DeliveryContext(
        **{**delivery_context(container, "test").__dict__, "allowed": ()}
    )
    report = webhooks.deliver_due(container.uow, strict)
    assert len(report.failed) == 1
    assert receiver.received == []


def test_webhooks_admin_needs_settings_scopes(
    client: TestClient, container: Container, receiver: Receiver, admin: Caller
) -> None:
    requester = make_caller(container, "pipeline", Role.REQUESTER)
    refused = client.post(
        "/api/v1/webhooks", json={"name": "x", "url": receiver.url}, headers=requester.headers
    )
    assert refused.status_code == 403
    assert client.get("/api/v1/webhooks", headers=requester.headers).status_code == 403
    hook = subscribe(client, admin, receiver.url, [])
    listed = client.get("/api/v1/webhooks", headers=admin.headers).json()
    assert [h["name"] for h in listed] == ["ci"]
    assert "secret" not in listed[0]
    duplicate = client.post(
        "/api/v1/webhooks", json={"name": "ci", "url": receiver.url}, headers=admin.headers
    )
    assert duplicate.status_code == 409
    unknown_event = client.post(
        "/api/v1/webhooks",
        json={"name": "y", "url": receiver.url, "events": ["request.nope"]},
        headers=admin.headers,
    )
    assert unknown_event.status_code == 422
    assert client.delete(f"/api/v1/webhooks/{hook['id']}", headers=admin.headers).status_code == 204
    assert client.delete(f"/api/v1/webhooks/{hook['id']}", headers=admin.headers).status_code == 404
    with container.uow() as uow:
        assert uow.session.scalars(select(WebhookSubscriptionRow)).all() == []


def test_the_post_goes_to_the_vetted_address(
    client: TestClient, container: Container, receiver: Receiver, admin: Caller
) -> None:
    """No second lookup between the check and the connection (DNS rebinding): the name
    below exists for the checking resolver only, yet the receiver gets the POST."""
    port = receiver.url.split(":")[2].split("/")[0]
    url = f"http://hooks.example.test:{port}/hooks"
    subscribe(client, admin, receiver.url, ["request.created"])
    with container.uow() as uow:
        row = uow.session.scalars(select(WebhookSubscriptionRow)).one()
        row.url = url
        uow.commit()
    client.post("/api/v1/approvals", json=new_request(), headers=admin.headers)
    lookups: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    context = webhooks.DeliveryContext(
        **{**delivery_context(container, "test").__dict__, "resolve": resolver}
    )
    assert len(webhooks.deliver_due(container.uow, context).delivered) == 1
    assert lookups == ["hooks.example.test"]
    (received,) = receiver.received
    assert received.headers["host"] == f"hooks.example.test:{port}"


def test_pinned_urls_keep_the_name_for_host_and_tls() -> None:
    from replygate.worker.webhook_http import pinned

    assert pinned("https://hooks.example.com/a?b=1", "93.184.216.34") == (
        "https://93.184.216.34/a?b=1",
        {"Host": "hooks.example.com"},
        {"sni_hostname": "hooks.example.com"},
    )
    assert pinned("http://h.example:8080/x", "2001:db8::1")[0] == "http://[2001:db8::1]:8080/x"
