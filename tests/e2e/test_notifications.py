"""Graph change notifications: the emulator calls replygate's HTTPS endpoint, which wakes
the worker; forged notifications do not; lifecycle events make it subscribe again."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn

from m365emu.testing import RunningEmulator
from replygate.bootstrap import Container, build
from replygate.config import load_settings
from replygate.db import migrate
from replygate.services.requesting import RequestDraft, create_request
from replygate.web.app import create_app
from replygate.web.tls import tls_files
from replygate.worker import subscription
from replygate.worker.loops import Worker
from tests.e2e.conftest import configure


@dataclass
class Served:
    container: Container
    url: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(emu: RunningEmulator, tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    settings = load_settings(
        data_dir=tmp_path / "data",
        instance="e2e",
        ca_bundle=emu.ca_file,
        public_url=f"https://127.0.0.1:{port}",
        port=port,
    )
    container = build(settings)
    migrate.upgrade(container.engine)
    tls = tls_files(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(container, workers=False),
            host="127.0.0.1",
            port=port,
            ssl_certfile=str(tls.cert_file),
            ssl_keyfile=str(tls.key_file),
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.05)
    with httpx.Client(base_url=emu.base_url, verify=emu.ssl_context()) as control:
        # The emulator must trust replygate's self-signed certificate, as Graph trusts a CA's.
        control.put("/_emu/subscriptions/config", json={"verify": str(tls.cert_file)})
    yield Served(container, settings.public_url)
    server.should_exit = True
    thread.join(10)
    container.engine.dispose()


def test_notification_wakes_the_worker_and_forgeries_do_not(
    emu: RunningEmulator, control: httpx.Client, served: Served
) -> None:
    container = served.container
    configure(container, emu, mode="app-only", folder="Inbox")
    worker = Worker(container)
    worker.run_once()
    assert worker.subscription == "subscribed"
    subs = control.get("/_emu/subscriptions").json()["value"]
    assert [s["notificationUrl"] for s in subs] == [served.url + "/graph/notifications"]

    draft = RequestDraft(
        title="Deploy",
        approvers=["alice@contoso.test"],
        requester="ci@contoso.test",
        expires_in=timedelta(hours=1),
    )
    create_request(container.uow(), container.clock, "e2e", draft, created_by="t")
    worker.run_once()
    container.read_now.clear()

    # A forged notification (wrong clientState) is accepted and ignored.
    stored = subscription.load(container)
    assert stored is not None
    forged = {
        "value": [{"subscriptionId": stored.id, "clientState": "guess", "changeType": "created"}]
    }
    with httpx.Client(verify=False) as outsider:  # noqa: S501 - the test plays an attacker
        assert outsider.post(served.url + "/graph/notifications", json=forged).status_code == 202
    assert not container.read_now.is_set()

    inbox = control.get("/_emu/mailboxes/alice@contoso.test/folders/inbox/messages").json()
    message_id = inbox["value"][0]["id"]
    control.post(
        f"/_emu/ui/alice@contoso.test/messages/{message_id}/reply", data={"text": "Approved"}
    )
    assert container.read_now.wait(10), "no genuine notification reached replygate"
    report = worker.run_once()
    assert report.read is not None
    assert report.read.decided == 1

    # A forged lifecycle event (wrong clientState) changes nothing; Graph removing the
    # subscription (the emulator posts the genuine event) makes the next round subscribe anew.
    event = {"subscriptionId": stored.id, "lifecycleEvent": "subscriptionRemoved"}
    with httpx.Client(verify=False) as outsider:  # noqa: S501 - the test plays an attacker
        forged_event = {"value": [{**event, "clientState": "guess"}]}
        answer = outsider.post(served.url + "/graph/lifecycle", json=forged_event)
        assert answer.status_code == 202
    assert subscription.load(container) is not None
    removed = control.post(
        f"/_emu/subscriptions/{stored.id}/lifecycle", json={"event": "subscriptionRemoved"}
    )
    assert removed.status_code == 202
    deadline = time.monotonic() + 10
    while subscription.load(container) is not None:
        assert time.monotonic() < deadline, "the emulator's lifecycle event never arrived"
        time.sleep(0.05)
    worker.run_once()
    renewed = subscription.load(container)
    assert renewed is not None
    assert renewed.id != stored.id
    worker.close()


def test_no_subscription_for_a_shared_mailbox_in_delegated_mode(
    emu: RunningEmulator, served: Served
) -> None:
    container = served.container
    configure(container, emu, mode="delegated", folder="Inbox")
    from m365emu.testing import run_msal_browser_login
    from replygate import authorising

    with container.uow() as uow:
        app = uow.applications.by_name("emulator")
        assert app is not None
        assert app.id is not None
    answer = run_msal_browser_login(
        authorising.start(container, app.id, by="t"),
        emu.ca_file,
        account="svc-replygate@contoso.test",
    )
    authorising.finish(container, answer)
    worker = Worker(container)
    worker.run_once()
    assert worker.subscription.startswith("polling only: delegated tokens cannot subscribe")
    worker.close()


def test_validation_handshake_echoes_the_token(served: Served) -> None:
    with httpx.Client(verify=False) as graph:  # noqa: S501 - plays Graph, certificate aside
        answer = graph.post(served.url + "/graph/notifications?validationToken=abc%20123")
    assert answer.status_code == 200
    assert answer.text == "abc 123"
    assert answer.headers["content-type"].startswith("text/plain")
