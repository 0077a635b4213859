"""docs/microsoft-365.md names what the code has: Email Settings fields and permissions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from replygate.graph.clouds import (
    APPLICATION_PERMISSIONS,
    CLOUDS,
    DELEGATED_PERMISSIONS,
    Permission,
)
from replygate.services.configuring import EmailSettings

DOC = Path(__file__).resolve().parents[2] / "docs" / "microsoft-365.md"
# Grouped in one row of the doc with their own wording (basic auth only).
GROUPED = {
    "smtp_host",
    "smtp_port",
    "smtp_security",
    "smtp_username",
    "imap_host",
    "imap_port",
    "imap_security",
    "imap_username",
}


def _text() -> str:
    return " ".join(DOC.read_text(encoding="utf-8").split())


@pytest.mark.parametrize("name", sorted(EmailSettings.model_fields))
def test_every_email_setting_is_documented(name: str) -> None:
    text = _text()
    assert f"`{name}`" in text, f"docs/microsoft-365.md does not name the setting {name}"
    description = " ".join((EmailSettings.model_fields[name].description or "").split())
    if name not in GROUPED:
        assert description in text, f"the description of {name} changed: update the doc"


@pytest.mark.parametrize(
    "permission", [*DELEGATED_PERMISSIONS, *APPLICATION_PERMISSIONS], ids=lambda p: p.name
)
def test_every_permission_is_documented_with_its_reason(permission: Permission) -> None:
    text = _text()
    name, reason = permission.name, permission.reason
    assert re.search(rf"\| `{re.escape(name)}`[^|]*\| {re.escape(reason)} \|", text), (
        f"docs/microsoft-365.md lacks the row for {name}: {reason}"
    )


def test_every_national_cloud_is_documented_with_its_endpoints() -> None:
    text = _text()
    for cloud in CLOUDS.values():
        row = rf"\| `{cloud.name.value}` \|[^\n]*`{cloud.authority_host}` \| `{cloud.graph_url}` \|"
        assert re.search(row, text), f"the {cloud.name.value} row is missing or out of date"
