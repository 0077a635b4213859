"""Mounts the identity-platform endpoints on the emulator app."""

from __future__ import annotations

from fastapi import FastAPI

from m365emu.identity import discovery
from m365emu.state import EmulatorState


def mount(app: FastAPI, state: EmulatorState) -> None:
    del state  # handlers read it from app.state.emulator
    add = app.add_route
    add("/{tenant}/v2.0/.well-known/openid-configuration", discovery.openid_configuration)
    add("/{tenant}/discovery/v2.0/keys", discovery.keys)
    add("/common/discovery/instance", discovery.instance_discovery)
