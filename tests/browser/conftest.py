"""A real replygate server (uvicorn, TLS, background loops) and the emulator, driven by
Debian's Chromium through Playwright for Python.

Chromium comes from the Debian package (``scripts/system-deps.sh`` installs it), never from
``playwright install``. Screenshots of each page go to ``docs/images/`` on every run.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from m365emu.testing import RunningEmulator, start_emulator
from replygate.bootstrap import Container, build
from replygate.config import load_settings
from replygate.db import migrate
from replygate.services.account_ports import Role
from replygate.services.accounts import create_user
from replygate.web.app import create_app
from replygate.web.tls import tls_files

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
ADMIN = "admin"


@dataclass
class Server:
    url: str
    container: Container
    password: str
    cert_file: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {seconds:.0f} s")
        time.sleep(0.2)


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[RunningEmulator]:
    with start_emulator(workdir=tmp_path / "emu") as running:
        yield running


@pytest.fixture
def server(
    emu: RunningEmulator, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Server]:
    """What ``replygate serve`` runs (the app with its loops, over TLS), on a free port.

    Parametrize it indirectly with a dict for more settings."""
    port = free_port()
    settings = load_settings(
        data_dir=tmp_path / "replygate",
        instance="browser",
        public_url=f"https://127.0.0.1:{port}",
        port=port,
        ca_bundle=emu.ca_file,
        **getattr(request, "param", {}),
    )
    container = build(settings)
    migrate.upgrade(container.engine)
    password = secrets.token_urlsafe(16)
    create_user(
        container.uow(),
        username=ADMIN,
        password=password,
        role=Role.ADMIN,
        email="admin@contoso.test",
        actor="test",
    )
    tls = tls_files(settings)
    config = uvicorn.Config(
        create_app(container, workers=True),
        host="127.0.0.1",
        port=port,
        ssl_certfile=str(tls.cert_file),
        ssl_keyfile=str(tls.key_file),
        log_level="warning",
        access_log=False,
        ws="none",
        timeout_graceful_shutdown=5,
    )
    web = uvicorn.Server(config)
    thread = threading.Thread(target=web.run, name="browser-test-web", daemon=True)
    thread.start()
    try:
        wait_until(lambda: web.started, 30, "the server did not start")
        yield Server(f"https://127.0.0.1:{port}", container, password, tls.cert_file)
    finally:
        web.should_exit = True
        thread.join(20)


@pytest.fixture(scope="package")  # closed when the browser tests are done
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/system-deps.sh` (Debian's chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser, server: Server) -> Iterator[BrowserContext]:
    """Closed before the server stops (it depends on it), so no keep-alive holds shutdown."""
    # The server's certificate is self-signed, as `replygate serve` makes it for local use.
    made = browser.new_context(
        ignore_https_errors=True, viewport={"width": 1280, "height": 900}, locale="en-GB"
    )
    made.set_default_timeout(20_000)
    yield made
    made.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def shot(page: Page, name: str) -> None:
    """Save the whole page to docs/images/<name>.png (overwritten on each run)."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMAGES / f"{name}.png"), full_page=True)
