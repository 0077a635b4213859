"""Helpers every identity endpoint shares: the state, the public base URL, the tenant check."""

from __future__ import annotations

from typing import cast

from starlette.requests import Request

from m365emu.identity import errors
from m365emu.state import EmulatorState
from m365emu.tenant import Tenant


def state_of(request: Request) -> EmulatorState:
    return cast(EmulatorState, request.app.state.emulator)


def base_url(request: Request) -> str:
    """The emulator's public https origin (create_app's public_base, else the request's)."""
    configured = state_of(request).public_base
    return configured or str(request.base_url).rstrip("/")


def resolve_tenant(state: EmulatorState, segment: str) -> Tenant:
    """The tenant an authority segment names; AADSTS90002 if none."""
    if not state.tenant.resolves(segment):
        raise errors.invalid_tenant(segment)
    return state.tenant
