"""The emulator's app registration as replygate registers it (the custom cloud)."""

from __future__ import annotations

from datetime import UTC, datetime

from m365emu.testing import RunningEmulator
from replygate.services.applications import ApplicationInput

FAR_FUTURE = datetime(2099, 1, 1, tzinfo=UTC)


def emulator_application(
    emu: RunningEmulator,
    *,
    mode: str = "delegated",
    client_secret: str | None = None,
    expires_at: datetime = FAR_FUTURE,
    name: str = "emulator",
) -> ApplicationInput:
    """``client_secret`` None: the registration's own secret."""
    return ApplicationInput(
        name=name,
        tenant=emu.tenant_id,
        client_id=emu.client_id,
        mode=mode,  # type: ignore[arg-type]
        cloud="custom",
        authority_host=emu.base_url,
        graph_url=emu.base_url,
        client_secret=emu.client_secret if client_secret is None else client_secret,
        secret_expires_at=expires_at,
    )
