"""``replygate users ...`` in-process, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from replygate.bootstrap import Container
from replygate.cli.main import app
from replygate.services import accounts
from replygate.services.account_ports import Role
from tests.integration.web.conftest import PASSWORD


@pytest.fixture
def run(container: Container, database_url: str, tmp_path: Path) -> CliRunner:
    return CliRunner(
        env={"REPLYGATE_DATA_DIR": str(tmp_path), "REPLYGATE_DATABASE_URL": database_url}
    )


def test_create_with_prompt_list_disable_enable(run: CliRunner, container: Container) -> None:
    created = run.invoke(
        app,
        ["users", "create", "alice", "--admin", "--email", "alice@contoso.test"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert created.exit_code == 0, created.output
    assert "created admin alice" in created.output
    assert PASSWORD not in created.output
    listed = run.invoke(app, ["users", "list"])
    assert "alice" in listed.output
    assert "admin" in listed.output
    assert "active" in listed.output
    assert run.invoke(app, ["users", "disable", "alice"]).exit_code == 0
    assert "disabled" in run.invoke(app, ["users", "list"]).output
    assert run.invoke(app, ["users", "enable", "alice"]).exit_code == 0
    assert accounts.authenticate(container.uow(), username="alice", password=PASSWORD).username


def test_password_from_stdin_and_set_password(run: CliRunner, container: Container) -> None:
    created = run.invoke(
        app,
        ["users", "create", "ci", "--role", "requester", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert created.exit_code == 0, created.output
    user = accounts.authenticate(container.uow(), username="ci", password=PASSWORD)
    assert user.role is Role.REQUESTER
    reset = run.invoke(
        app, ["users", "set-password", "ci", "--password-stdin"], input="a fresh password\n"
    )
    assert reset.exit_code == 0, reset.output
    again = accounts.authenticate(container.uow(), username="ci", password="a fresh password")
    assert again.username == "ci"


def test_default_role_is_viewer_and_errors_are_one_line(run: CliRunner) -> None:
    assert (
        "created viewer"
        in run.invoke(app, ["users", "create", "vic", "--password-stdin"], input=PASSWORD).output
    )
    duplicate = run.invoke(app, ["users", "create", "vic", "--password-stdin"], input=PASSWORD)
    assert duplicate.exit_code == 4
    assert "error: a user named 'vic' exists already" in duplicate.output
    short = run.invoke(app, ["users", "create", "zed", "--password-stdin"], input="short")
    assert short.exit_code == 4
    assert "too short" in short.output
    mixed = run.invoke(app, ["users", "create", "x", "--admin", "--role", "viewer"])
    assert mixed.exit_code == 4
    assert "disagree" in mixed.output
    missing = run.invoke(app, ["users", "disable", "ghost"])
    assert missing.exit_code == 4
    assert "no user named 'ghost'" in missing.output


def test_refuses_an_empty_database(tmp_path: Path) -> None:
    runner = CliRunner(env={"REPLYGATE_DATA_DIR": str(tmp_path / "fresh")})
    result = runner.invoke(app, ["users", "list"])
    assert result.exit_code == 4
    assert "run `replygate db upgrade`" in result.output
