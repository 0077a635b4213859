"""The installed ``replygate`` command, run as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from replygate import __version__
from replygate.db import migrate
from replygate.db.engine import make_engine
from replygate.db.tables import OAuthApplicationRow
from replygate.secretbox import SecretBox, parse_key


def replygate(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REPLYGATE_")}
    return subprocess.run(
        [sys.executable, "-m", "replygate", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_version_and_help(tmp_path: Path) -> None:
    version = replygate("--version", env={})
    assert version.returncode == 0
    assert version.stdout.strip() == f"replygate {__version__}"
    help_text = replygate("--help", env={})
    assert help_text.returncode == 0
    for command in ("db", "secrets", "reply", "demo"):
        assert command in help_text.stdout


def test_db_upgrade_on_empty_database(database_url: str, tmp_path: Path) -> None:
    env = {"REPLYGATE_DATA_DIR": str(tmp_path), "REPLYGATE_DATABASE_URL": database_url}
    first = replygate("db", "upgrade", env=env)
    assert first.returncode == 0, first.stderr
    head = migrate.head_revision(make_engine(database_url))
    assert f"database at revision {head}" in first.stdout
    again = replygate("db", "upgrade", env=env)
    assert again.returncode == 0, again.stderr
    current = replygate("db", "current", env=env)
    assert f"database: {head}" in current.stdout


def test_bad_setting_is_one_clear_line(tmp_path: Path) -> None:
    result = replygate(
        "db",
        "upgrade",
        env={"REPLYGATE_INSTANCE": "Not Valid", "REPLYGATE_DATA_DIR": str(tmp_path)},
    )
    assert result.returncode == 4
    assert "REPLYGATE_INSTANCE (instance)" in result.stderr
    assert "Traceback" not in result.stderr


def test_rotate_reencrypts_stored_secrets_and_lost_key_is_named(tmp_path: Path) -> None:
    env = {"REPLYGATE_DATA_DIR": str(tmp_path)}
    assert replygate("db", "upgrade", env=env).returncode == 0
    key_file = tmp_path / "secret.key"
    old = SecretBox(parse_key(key_file.read_text(), "file"), "file")
    engine = create_engine(f"sqlite:///{tmp_path / 'replygate.db'}")
    with Session(engine) as session:
        now = datetime.now(UTC)
        session.add(
            OAuthApplicationRow(
                name="prod",
                tenant="contoso.test",
                client_id="c",
                mode="delegated",
                cloud="global",
                credential_kind="secret",
                secret_encrypted=old.encrypt("s3cret-value", "client secret"),
                created_at=now,
                updated_at=now,
            )
        )
        session.commit()

    rotated = replygate("secrets", "rotate", env=env)
    assert rotated.returncode == 0, rotated.stderr
    assert "re-encrypted 1 stored secret(s)" in rotated.stdout
    new = SecretBox(parse_key(key_file.read_text(), "file"), "file")
    assert new.key_id != old.key_id
    with Session(engine) as session:
        stored = session.scalars(select(OAuthApplicationRow.secret_encrypted)).one()
    assert stored is not None
    assert new.decrypt(stored, "client secret") == "s3cret-value"
    assert b"s3cret-value" not in (tmp_path / "replygate.db").read_bytes()
    engine.dispose()

    key_file.write_text(replygate("secrets", "new-key", env={}).stdout)  # the old key is lost
    lost = replygate("db", "upgrade", env=env)
    assert lost.returncode == 4
    assert "encrypted with secret key" in lost.stderr
    assert "restore the original key" in lost.stderr
    assert "Traceback" not in lost.stderr


@pytest.mark.parametrize("args", [["db"], ["secrets"], ["reply"]])
def test_groups_without_a_command_show_help(args: list[str]) -> None:
    result = replygate(*args, env={})
    assert "Usage" in result.stdout + result.stderr
