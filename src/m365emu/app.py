"""The ASGI application factory.

`create_app(state, public_base)` mounts, in this order:

1. the identity platform (`m365emu.identity.routes.mount`): `/{tenant}/v2.0/...`,
   `/{tenant}/oauth2/v2.0/...`, `/{tenant}/discovery/v2.0/keys`, `/common/discovery/instance`;
2. each optional half, if its module exists: `m365emu.graph.routes.mount(app, state)`
   (Graph under `/v1.0/...`), `m365emu.control.mount(app, state)` (control API under
   `/_emu/...`) and `m365emu.webview.mount(app, state)` (web view under `/_emu/ui/...`).
   A half is skipped only when its module is absent; an import error inside it propagates.

`public_base` is the external https origin (e.g. `https://127.0.0.1:8700`) used in discovery
documents and links; if None, each request's own base URL is used.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Protocol, cast

from fastapi import FastAPI

from m365emu.identity import routes as identity_routes
from m365emu.state import EmulatorState

OPTIONAL_MOUNTS = ("m365emu.graph.routes", "m365emu.control", "m365emu.webview")


class _Mountable(Protocol):
    def mount(self, app: FastAPI, state: EmulatorState) -> None: ...


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def create_app(state: EmulatorState, public_base: str | None = None) -> FastAPI:
    state.public_base = public_base.rstrip("/") if public_base else None
    app = FastAPI(
        title="m365emu",
        description="Microsoft 365 emulator (identity platform v2.0 + Graph mail)",
        docs_url="/_emu/docs",
        redoc_url=None,
        openapi_url="/_emu/openapi.json",
    )
    app.state.emulator = state
    identity_routes.mount(app, state)
    for name in OPTIONAL_MOUNTS:
        if _module_exists(name):
            module = cast(_Mountable, importlib.import_module(name))
            module.mount(app, state)
    return app
