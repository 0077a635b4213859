"""The emulator over HTTPS and a replygate container configured against it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from m365emu.testing import RunningEmulator, start_emulator
from replygate.bootstrap import Container, build
from replygate.config import load_settings
from replygate.db import migrate
from replygate.services.applications import register_application
from replygate.services.configuring import parse_settings, save_settings
from tests.support.emulator_app import emulator_application

SHARED = "approvals@contoso.test"


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[RunningEmulator]:
    with start_emulator(workdir=tmp_path / "emu") as running:
        yield running


@pytest.fixture
def control(emu: RunningEmulator) -> Iterator[httpx.Client]:
    with emu.httpx_client(base_url=emu.base_url) as client:
        yield client


@pytest.fixture
def container(emu: RunningEmulator, tmp_path: Path) -> Iterator[Container]:
    settings = load_settings(
        data_dir=tmp_path / "data",
        instance="e2e",
        ca_bundle=emu.ca_file,
        public_url="https://127.0.0.1:8443",
    )
    made = build(settings)
    migrate.upgrade(made.engine)
    yield made
    made.engine.dispose()


def configure(container: Container, emu: RunningEmulator, *, mode: str, folder: str) -> None:
    app = emulator_application(emu, mode=mode)
    register_application(container.uow(), container.clock, container.secrets, app, by="test")
    settings = parse_settings(
        {
            "smtp_user": "svc-replygate@contoso.test",
            "smtp_oauth_application": "emulator",
            "smtp_from_address": SHARED,
            "email_reply_folder": folder,
        }
    )
    save_settings(container.uow(), container.clock, container.secrets, settings, by="test")
