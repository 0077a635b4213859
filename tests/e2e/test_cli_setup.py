"""Scripted set-up through the CLI: apps, settings, and the configuration test's verdict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def replygate(*args: str, data_dir: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLYGATE_")}
    env["REPLYGATE_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "replygate", *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_register_configure_and_test_without_authorisation(tmp_path: Path) -> None:
    assert replygate("db", "upgrade", data_dir=tmp_path).returncode == 0
    added = replygate(
        "apps",
        "add",
        "--name",
        "prod",
        "--tenant",
        "contoso.com",
        "--client-id",
        "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "--secret-stdin",
        "--secret-expires",
        "2099-06-30",
        data_dir=tmp_path,
        stdin="a-client-secret\n",
    )
    assert added.returncode == 0, added.stderr
    assert (
        "redirect URI to register in Entra ID: https://localhost:8443/oauth/callback"
        in added.stdout
    )
    assert b"a-client-secret" not in (tmp_path / "replygate.db").read_bytes()
    listed = replygate("apps", "list", data_dir=tmp_path)
    assert (
        "prod\tdelegated\tcontoso.com\tsecret expires 2099-06-30\tnot authorised" in listed.stdout
    )

    settings = tmp_path / "settings.toml"
    settings.write_text(
        'smtp_user = "svc@contoso.com"\nsmtp_oauth_application = "prod"\n'
        'smtp_from_address = "approvals@contoso.com"\nemail_reply_folder = "Inbox/Approvals"\n'
    )
    saved = replygate("settings", "set", str(settings), data_dir=tmp_path)
    assert saved.returncode == 0, saved.stderr
    shown = json.loads(replygate("settings", "show", data_dir=tmp_path).stdout)
    assert shown["version"] == 1
    assert shown["email_reply_folder"] == "Inbox/Approvals"

    tested = replygate("config", "test", "--json", data_dir=tmp_path)
    assert tested.returncode == 1
    report = json.loads(tested.stdout)
    assert [s["status"] for s in report["steps"]] == ["failed", "skipped", "skipped", "skipped"]
    assert "press Authorize and sign in as svc@contoso.com" in report["steps"][0]["fix"]


def test_update_keeps_the_secret_unless_the_client_id_changes(tmp_path: Path) -> None:
    assert replygate("db", "upgrade", data_dir=tmp_path).returncode == 0
    added = replygate(
        "apps",
        "add",
        "--name",
        "prod",
        "--tenant",
        "contoso.com",
        "--client-id",
        "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "--secret-stdin",
        "--secret-expires",
        "2099-06-30",
        data_dir=tmp_path,
        stdin="a-client-secret\n",
    )
    assert added.returncode == 0, added.stderr
    assert "update" in replygate("apps", "--help", data_dir=tmp_path).stdout
    renamed = replygate(
        "apps", "update", "1", "--name", "prod-eu", "--tenant", "fabrikam.com", data_dir=tmp_path
    )
    assert renamed.returncode == 0, renamed.stderr
    assert "saved 'prod-eu' (id 1)" in renamed.stdout
    corrected = replygate(
        "apps", "update", "1", "--secret-expires", "2099-03-31", data_dir=tmp_path
    )
    assert corrected.returncode == 0, corrected.stderr
    listed = replygate("apps", "list", data_dir=tmp_path)
    assert "prod-eu\tdelegated\tfabrikam.com\tsecret expires 2099-03-31" in listed.stdout

    other = ("--client-id", "11111111-2222-4333-8444-555555555555")
    refused = replygate("apps", "update", "1", *other, data_dir=tmp_path)
    assert refused.returncode == 4
    assert "credential: a new client id needs its own client secret" in refused.stderr
    assert "Traceback" not in refused.stderr
    moved = replygate(
        "apps",
        "update",
        "1",
        *other,
        "--secret-stdin",
        "--secret-expires",
        "2099-01-01",
        data_dir=tmp_path,
        stdin="the-new-apps-secret\n",
    )
    assert moved.returncode == 0, moved.stderr


def test_bad_settings_file_names_the_field(tmp_path: Path) -> None:
    assert replygate("db", "upgrade", data_dir=tmp_path).returncode == 0
    settings = tmp_path / "settings.toml"
    settings.write_text('smtp_auth_type = "oauth"\nemail_reply_folder = "Inbox//x"\n')
    refused = replygate("settings", "set", str(settings), data_dir=tmp_path)
    assert refused.returncode == 4
    assert "email_reply_folder" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_outbox_list_retry_and_cancel(tmp_path: Path) -> None:
    from replygate.bootstrap import build
    from replygate.config import load_settings
    from replygate.services.requesting import RequestDraft, create_request

    assert replygate("db", "upgrade", data_dir=tmp_path).returncode == 0
    container = build(load_settings(data_dir=tmp_path))
    draft = RequestDraft(title="Deploy", approvers=["a@contoso.com"], requester="ci@contoso.com")
    created = create_request(container.uow(), container.clock, "default", draft, created_by="t")
    with container.uow() as uow:
        row_id = uow.outbox.list()[0].id
        uow.outbox.mark_failed(row_id, "Send As is not granted")
        uow.commit()
    container.engine.dispose()

    listed = replygate("outbox", "list", "--state", "failed", data_dir=tmp_path)
    assert f"{row_id}\trequest_mail\t{created.request.id}\tfailed" in listed.stdout
    assert "Send As is not granted" in listed.stdout
    assert replygate("outbox", "retry", str(row_id), data_dir=tmp_path).returncode == 0
    again = replygate("outbox", "retry", str(row_id), data_dir=tmp_path)
    assert again.returncode == 4
    assert "not a failed row" in again.stderr
    assert replygate("outbox", "cancel", str(row_id), data_dir=tmp_path).returncode == 0
    assert "cancelled" in replygate("outbox", "list", data_dir=tmp_path).stdout
