"""What the mail benchmarks share: the emulator, a configured replygate, counters, limits.

A benchmark runs the real worker against an in-process emulator over HTTPS. The Graph
client's budget and the sender's pacing are set through ``replygate.mailflow.connect``
(the one place transports are wired), so the worker's own code runs unchanged.
"""

from __future__ import annotations

import functools
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from m365emu.testing import RunningEmulator, start_emulator
from replygate import mailflow
from replygate.bootstrap import Container, build
from replygate.config import load_settings
from replygate.db import migrate
from replygate.graph.client import Budget
from replygate.graph.connection import connect
from replygate.graph.sender import Pacing
from replygate.services.applications import ApplicationInput, register_application
from replygate.services.configuring import parse_settings, save_settings

SHARED = "approvals@contoso.test"
SAMPLES = Path(__file__).resolve().parent.parent / "tests" / "data" / "replies"


@dataclass
class Bench:
    emu: RunningEmulator
    control: httpx.Client
    container: Container
    workdir: Path

    def counters(self) -> dict[str, Any]:
        answer = self.control.get("/_emu/counters")
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        return body

    def reset_counters(self) -> None:
        self.control.delete("/_emu/counters").raise_for_status()

    def throttle(self, requests: int, window: int, concurrent: int) -> None:
        limits = {
            "requests_per_window": requests,
            "window_seconds": window,
            "max_concurrent": concurrent,
        }
        self.control.put("/_emu/throttling", json=limits).raise_for_status()

    def deliver(self, raw: bytes, folder: str = "inbox") -> dict[str, Any]:
        answer = self.control.post(
            f"/_emu/mailboxes/{SHARED}/deliver",
            params={"folder": folder, "stamp": "true"},
            content=raw,
        )
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        return body

    def folder(self, folder: str, mailbox: str = SHARED) -> list[dict[str, Any]]:
        answer = self.control.get(f"/_emu/mailboxes/{mailbox}/folders/{folder}/messages")
        answer.raise_for_status()
        return list(answer.json()["value"])


def configure(
    bench: Bench, *, folder: str = "Inbox", polling: int = 15, extra: dict[str, Any] | None = None
) -> None:
    """The emulator's app registered app-only, and Email Settings on the shared mailbox."""
    emu, container = bench.emu, bench.container
    app = ApplicationInput(
        name="emulator",
        tenant=emu.tenant_id,
        client_id=emu.client_id,
        mode="app-only",
        cloud="custom",
        authority_host=emu.base_url,
        graph_url=emu.base_url,
        client_secret=emu.client_secret,
        secret_expires_at=datetime(2099, 1, 1, tzinfo=UTC),
    )
    register_application(container.uow(), container.clock, container.secrets, app, by="bench")
    values: dict[str, Any] = {
        "smtp_user": "svc-replygate@contoso.test",
        "smtp_oauth_application": "emulator",
        "smtp_from_address": SHARED,
        "email_reply_folder": folder,
        "polling_interval_seconds": polling,
        **(extra or {}),
    }
    settings = parse_settings(values)
    save_settings(container.uow(), container.clock, container.secrets, settings, by="bench")


@contextmanager
def transports(budget: Budget | None = None, pacing: Pacing | None = None) -> Iterator[None]:
    """Graph connections opened meanwhile use this budget and pacing."""
    # Set by name: `connect` is imported into mailflow, not part of its interface.
    original = getattr(mailflow, "connect")  # noqa: B009
    setattr(mailflow, "connect", functools.partial(connect, budget=budget, pacing=pacing))  # noqa: B010
    try:
        yield
    finally:
        setattr(mailflow, "connect", original)  # noqa: B010


@contextmanager
def bench_environment(
    *,
    instance: str = "bench",
    database_url: str | None = None,
    public_url: str = "https://127.0.0.1:8443",
) -> Iterator[Bench]:
    with tempfile.TemporaryDirectory(prefix="replygate-bench-") as tmp:
        root = Path(tmp)
        with start_emulator(workdir=root / "emu") as emu:
            overrides: dict[str, Any] = {
                "data_dir": root / "data",
                "instance": instance,
                "ca_bundle": emu.ca_file,
                "public_url": public_url,
            }
            if database_url:
                overrides["database_url"] = database_url
            container = build(load_settings(**overrides))
            migrate.upgrade(container.engine)
            with emu.httpx_client(base_url=emu.base_url, timeout=60) as control:
                try:
                    yield Bench(emu, control, container, root)
                finally:
                    container.engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def web_app(container: Container, port: int) -> Iterator[None]:
    """replygate's web app (background loops off) over plain HTTP on loopback, in a thread:
    the emulator reaches loopback URLs, so change notifications can be delivered."""
    import uvicorn

    from replygate.web.app import create_app

    config = uvicorn.Config(
        create_app(container, workers=False),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def percentile(values: list[float], share: float) -> float:
    """The `share` quantile (0..1) by linear interpolation; the median for 0.5."""
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[min(98, max(0, round(share * 100) - 1))]
