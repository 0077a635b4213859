"""Mounts the identity-platform endpoints on the emulator app."""

from __future__ import annotations

from fastapi import FastAPI

from m365emu.identity import authorize, discovery, signin, token_endpoint
from m365emu.state import EmulatorState

GET_POST = ["GET", "POST"]


def mount(app: FastAPI, state: EmulatorState) -> None:
    del state  # handlers read it from app.state.emulator
    add = app.add_route
    add("/{tenant}/v2.0/.well-known/openid-configuration", discovery.openid_configuration)
    add("/{tenant}/discovery/v2.0/keys", discovery.keys)
    add("/common/discovery/instance", discovery.instance_discovery)
    add("/{tenant}/oauth2/v2.0/authorize", authorize.authorize, methods=GET_POST)
    add("/{tenant}/login", signin.login, methods=["POST"])
    add("/{tenant}/consent", signin.consent, methods=["POST"])
    add("/{tenant}/oauth2/v2.0/token", token_endpoint.token, methods=["POST"])
    add("/{tenant}/oauth2/v2.0/logout", signin.logout, methods=GET_POST)
