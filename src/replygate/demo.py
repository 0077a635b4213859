"""``replygate demo``: the whole product against the built-in Microsoft 365 emulator.

One process runs the emulator (tenant contoso.test: an admin, three approvers, a service
account and the shared mailbox approvals@contoso.test with Send As and Full Access granted
to it) and replygate over HTTPS with SQLite in a fresh data directory: an OAuth
application registered and authorised for the service account, Email Settings filled in,
an inbox rule moving replies to Inbox/Approvals, and two sample requests. ``check`` runs
the same scenario headless: an approver replies through the emulator, and the run
succeeds only if that reply closed a request.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from m365emu.testing import RunningEmulator, run_msal_browser_login, start_emulator
from replygate import authorising
from replygate.bootstrap import Container, build
from replygate.config import load_settings
from replygate.db import migrate
from replygate.domain.model import Policy, PolicyKind, RequestState
from replygate.services.account_ports import Role
from replygate.services.accounts import create_user
from replygate.services.applications import ApplicationInput, register_application
from replygate.services.configuring import parse_settings, save_settings
from replygate.services.requesting import RequestDraft, create_request

SHARED = "approvals@contoso.test"
SERVICE_ACCOUNT = "svc-replygate@contoso.test"
REPLY_FOLDER = "Inbox/Approvals"
APPROVERS = ("alice@contoso.test", "bob@contoso.test", "carol@contoso.test")
DEMO_APPLICATION = "Contoso (emulator)"


@dataclass
class Demo:
    emulator: RunningEmulator
    container: Container
    console_url: str
    admin_password: str
    request_ids: list[str]
    tls_cert: Path


def free_port(preferred: int) -> int:
    """``preferred`` when it is free, else any free port (0 asks for any)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _reply_rule(emulator: RunningEmulator, instance: str) -> None:
    """What an Exchange admin's New-InboxRule does, done on the emulator's mailbox."""
    from m365emu.graph.core import graph_of

    store = graph_of(emulator.state).mail.store
    box = store.mailbox_for(SHARED)
    assert box is not None  # the default tenant has it
    folder = store.ensure_path(box, REPLY_FOLDER)
    box.rules.append(
        {
            "id": "replygate-demo-rule",
            "displayName": "replygate approval replies",
            "sequence": 1,
            "isEnabled": True,
            "conditions": {"subjectContains": [f"[RG-{instance}-"]},
            "actions": {"moveToFolder": folder.id, "stopProcessingRules": True},
        }
    )


def _configure(container: Container, emulator: RunningEmulator) -> None:
    clock, box = container.clock, container.secrets
    app = register_application(
        container.uow(),
        clock,
        box,
        ApplicationInput(
            name=DEMO_APPLICATION,
            tenant=emulator.tenant_id,
            client_id=emulator.client_id,
            mode="delegated",
            cloud="custom",
            authority_host=emulator.base_url,
            graph_url=emulator.base_url,
            client_secret=emulator.client_secret,
            secret_expires_at=datetime(2099, 12, 31, tzinfo=UTC),
        ),
        by="demo",
    )
    settings = parse_settings(
        {
            "smtp_user": SERVICE_ACCOUNT,
            "smtp_oauth_application": DEMO_APPLICATION,
            "smtp_from_address": SHARED,
            "email_reply_folder": REPLY_FOLDER,
            "polling_interval_seconds": 5,
        }
    )
    save_settings(container.uow(), clock, box, settings, by="demo")
    assert app.id is not None
    sign_in = authorising.start(container, app.id, by="demo")
    answer = run_msal_browser_login(sign_in, emulator.ca_file, account=SERVICE_ACCOUNT)
    authorising.finish(container, answer)


def _sample_requests(container: Container, instance: str) -> list[str]:
    drafts = [
        RequestDraft(
            title="Deploy payments-api 2.3.1 to production",
            approvers=APPROVERS,
            requester="admin@contoso.test",
            details="Release notes: **faster refunds**, fixed currency rounding.",
            metadata={
                "pipeline": "https://ci.contoso.test/payments-api/runs/4711",
                "environment": "production",
                "version": "2.3.1",
            },
            expires_in=timedelta(hours=8),
        ),
        RequestDraft(
            title="Rotate orders-db credentials in prod-eu",
            approvers=APPROVERS[:2],
            requester="admin@contoso.test",
            policy=Policy(PolicyKind.ALL),
            metadata={"environment": "prod-eu", "ticket": "SEC-1187"},
            expires_in=timedelta(hours=24),
        ),
    ]
    made = [
        create_request(container.uow(), container.clock, instance, d, created_by="demo")
        for d in drafts
    ]
    return [m.request.id for m in made]


@contextmanager
def running_demo(port: int, emulator_port: int, data_dir: Path | None = None) -> Iterator[Demo]:
    """Everything started and configured; stopped and removed when the block ends."""
    import uvicorn

    from replygate.web.app import create_app
    from replygate.web.tls import tls_files
    from replygate.worker.guard import WorkerLock, hold_worker_lock

    root = Path(tempfile.mkdtemp(prefix="replygate-demo-")) if data_dir is None else data_dir
    instance = "demo"
    emulator = start_emulator(workdir=root / "m365emu", port=emulator_port)
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None
    lock: WorkerLock | None = None
    try:
        _reply_rule(emulator, instance)
        port = free_port(port)
        settings = load_settings(
            data_dir=root / "replygate",
            instance=instance,
            public_url=f"https://127.0.0.1:{port}",
            port=port,
            ca_bundle=emulator.ca_file,
            sign_in_application=DEMO_APPLICATION,  # the approvers sign in with "Microsoft"
        )
        # The demo runs the loops on SQLite: refuse plainly if a process already does here.
        lock = hold_worker_lock(settings)
        container = build(settings)
        migrate.upgrade(container.engine)
        container.verify_secret_key()
        _configure(container, emulator)
        password = secrets.token_urlsafe(12)
        create_user(
            container.uow(),
            username="admin",
            password=password,
            role=Role.ADMIN,
            email="admin@contoso.test",
            actor="demo",
        )
        for approver in APPROVERS:  # viewers: they may approve their requests on the web
            create_user(
                container.uow(),
                username=approver.partition("@")[0],
                password=secrets.token_urlsafe(24),  # never used: they sign in with Microsoft
                role=Role.VIEWER,
                email=approver,
                actor="demo",
            )
        request_ids = _sample_requests(container, instance)
        tls = tls_files(settings)
        config = uvicorn.Config(
            create_app(container, workers=True),
            host="127.0.0.1",
            port=port,
            ssl_certfile=str(tls.cert_file),
            ssl_keyfile=str(tls.key_file),
            log_level="warning",
            access_log=False,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="replygate-demo-web", daemon=True)
        thread.start()
        web = server
        _wait_until(lambda: web.started, 30, "the console did not start")
        yield Demo(
            emulator, container, f"https://127.0.0.1:{port}/", password, request_ids, tls.cert_file
        )
    finally:
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(15)
        emulator.stop()
        if lock is not None:
            lock.release()
        if data_dir is None:
            shutil.rmtree(root, ignore_errors=True)


def _wait_until(condition: Callable[[], bool], seconds: float, failure: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(failure)
        time.sleep(0.25)


def reply_as_approver(
    demo: Demo, approver: str, request_id: str, text: str, wait: float = 60
) -> None:
    """Find the request mail in the approver's inbox and reply through the emulator's web view."""
    with httpx.Client(base_url=demo.emulator.base_url, verify=demo.emulator.ssl_context()) as web:
        found: list[dict[str, str]] = []

        def arrived() -> bool:
            listing = web.get(f"/_emu/mailboxes/{approver}/folders/inbox/messages").json()
            found[:] = [m for m in listing["value"] if f"-{request_id}]" in m["subject"]]
            return bool(found)

        _wait_until(arrived, wait, f"the request mail did not reach {approver}")
        answer = web.post(
            f"/_emu/ui/{approver}/messages/{found[0]['id']}/reply", data={"text": text}
        )
        if answer.status_code != 303:  # the web view redirects to Sent Items when it sent
            raise RuntimeError(f"the emulator refused the reply: {answer.status_code}")


def request_state(demo: Demo, request_id: str) -> RequestState:
    with demo.container.uow() as uow:
        request = uow.requests.get(request_id)
    assert request is not None
    return request.state


def check(port: int = 0, emulator_port: int = 0, echo: Callable[[str], None] = print) -> bool:
    """The demo headless: True only if a reply sent through the emulator closed a request."""
    started = time.monotonic()
    with running_demo(port, emulator_port) as demo:
        target = demo.request_ids[0]
        echo(f"demo up in {time.monotonic() - started:.1f} s; replying as alice@contoso.test")
        reply_as_approver(demo, "alice@contoso.test", target, "Approved, ship it")
        try:
            _wait_until(lambda: request_state(demo, target) is RequestState.APPROVED, 60, "")
        except TimeoutError:
            echo(f"request {target} is still {request_state(demo, target).value} after 60 s")
            return False
        echo(f"request {target} approved {time.monotonic() - started:.1f} s after start")
        return True
