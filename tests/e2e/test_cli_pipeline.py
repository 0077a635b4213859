"""A pipeline's view: ``replygate serve`` running, ``replygate request ...`` in another process,
the request decided meanwhile; exit codes 0/1/2/3/4 and the ``--json`` output."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from replygate.bootstrap import Container, build
from replygate.config import load_settings
from replygate.db.tables import OutboxRow
from replygate.domain.model import Channel, Decision, Verdict
from replygate.services.requesting import expire_due_requests
from tests.e2e.test_serve import environment, free_port, replygate, wait_until_healthy

PASSWORD = "a long and real password"


@dataclass
class Server:
    url: str
    env: dict[str, str]  # what a pipeline step has: URL, token, CA file
    container: Container  # the same database, to decide as an approver would


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("serve")
    port = free_port()
    env = environment(data_dir)
    process = subprocess.Popen(
        [sys.executable, "-m", "replygate", "serve", "--port", str(port), "--no-workers"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = f"https://127.0.0.1:{port}"
        cert = data_dir / "tls" / "cert.pem"
        wait_until_healthy(f"{url}/healthz", cert, process)
        created = replygate(
            "users",
            "create",
            "ci",
            "--role",
            "requester",
            "--email",
            "release@contoso.test",
            "--password-stdin",
            env=env,
            stdin=PASSWORD + "\n",
        )
        assert created.returncode == 0, created.stderr
        token = replygate("tokens", "create", "--user", "ci", "--name", "pipeline", env=env)
        assert token.returncode == 0, token.stderr
        assert "shown only now" in token.stderr
        secret = token.stdout.strip()
        assert secret.startswith("rgt_")
        listed = replygate("tokens", "list", env=env)
        assert "pipeline" in listed.stdout
        assert secret not in listed.stdout
        pipeline_env = {
            **environment(data_dir / "elsewhere"),
            "REPLYGATE_URL": url,
            "REPLYGATE_TOKEN": secret,
            "REPLYGATE_CA_FILE": str(cert),
        }
        container = build(load_settings(data_dir=data_dir))
        yield Server(url, pipeline_env, container)
        container.engine.dispose()
    finally:
        process.kill()
        process.wait(10)


def start(server: Server, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "replygate", "request", *args],
        env=server.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def created_id(server: Server, title: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with server.container.uow() as uow:
            found = [r for r in uow.requests.list() if r.title == title]
        if found:
            return found[0].id
        time.sleep(0.1)
    pytest.fail(f"no request {title!r} was created")


def decide(server: Server, request_id: str, approver: str, verdict: Verdict) -> None:
    with server.container.uow() as uow:
        request = uow.requests.get(request_id)
        assert request is not None
        now = server.container.clock.now()
        request.decide(Decision(approver, verdict, "from the test", Channel.EMAIL, now))
        uow.requests.save(request)
        uow.commit()


def create_and_wait(server: Server, title: str, *extra: str) -> subprocess.Popen[str]:
    return start(
        server,
        "create",
        "--title",
        title,
        "--approver",
        "ann@contoso.test",
        "--approver",
        "bob@contoso.test",
        "--detail",
        "environment=production",
        "--link",
        "https://ci.contoso.test/run/42",
        "--wait",
        "--timeout",
        "60s",
        *extra,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=60)
    return process.returncode, out, err


def test_approved_exits_0_with_json(server: Server) -> None:
    process = create_and_wait(server, "Deploy 1", "--json")
    request_id = created_id(server, "Deploy 1")
    decide(server, request_id, "ann@contoso.test", Verdict.APPROVE)
    code, out, err = finish(process)
    assert code == 0, err
    body = json.loads(out)  # one JSON object, nothing else on stdout
    assert body["id"] == request_id
    assert body["state"] == "approved"
    assert (body["timed_out"], body["exit_code"]) == (False, 0)
    assert body["metadata"] == {
        "environment": "production",
        "link": "https://ci.contoso.test/run/42",
    }
    assert body["requester"] == "release@contoso.test"
    assert body["approvers"][0]["decision"]["verdict"] == "approve"


def test_rejected_exits_1_with_plain_lines(server: Server) -> None:
    process = create_and_wait(server, "Deploy 2", "--policy", "all")
    request_id = created_id(server, "Deploy 2")
    decide(server, request_id, "ann@contoso.test", Verdict.APPROVE)
    time.sleep(0.5)
    decide(server, request_id, "bob@contoso.test", Verdict.REJECT)
    code, out, err = finish(process)
    assert code == 1, err
    lines = out.splitlines()
    assert lines[0] == f"created RG-default-{request_id}"
    assert lines[1].startswith(f"waiting for RG-default-{request_id} (all, 2 approver(s))")
    assert "bob@contoso.test rejected: from the test" in lines
    assert lines[-1].startswith(f"RG-default-{request_id} rejected")


def test_expired_exits_2(server: Server) -> None:
    process = create_and_wait(server, "Deploy 3", "--expires-in", "2s", "--json")
    created_id(server, "Deploy 3")
    time.sleep(2.2)
    assert expire_due_requests(server.container.uow(), server.container.clock)
    code, out, err = finish(process)
    assert code == 2, err
    assert json.loads(out)["state"] == "expired"


def test_cancelled_exits_3(server: Server) -> None:
    process = create_and_wait(server, "Deploy 4", "--json")
    request_id = created_id(server, "Deploy 4")
    cancelled = replygate("request", "cancel", request_id, "--reason", "superseded", env=server.env)
    assert cancelled.returncode == 0, cancelled.stderr
    code, out, err = finish(process)
    assert code == 3, err
    assert json.loads(out)["state"] == "cancelled"


def test_timing_out_exits_2_and_wait_resumes(server: Server) -> None:
    code, out, err = finish(create_and_wait(server, "Deploy 5", "--timeout", "2s", "--json"))
    assert code == 2, err
    body = json.loads(out)
    assert (body["state"], body["timed_out"]) == ("pending", True)
    # A later step waits for the same request by id.
    waiting = start(server, "wait", body["token"], "--timeout", "60s")
    time.sleep(0.5)
    decide(server, body["id"], "bob@contoso.test", Verdict.APPROVE)
    code, out, err = finish(waiting)
    assert code == 0, err
    assert out.splitlines()[-1].startswith(f"{body['token']} approved")


def test_create_without_wait_status_and_idempotency(server: Server) -> None:
    args = ("create", "--title", "Deploy 6", "--approver", "ann@contoso.test")
    first = replygate("request", *args, "--idempotency-key", "run-6", env=server.env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("created RG-default-")
    again = replygate("request", *args, "--idempotency-key", "run-6", "--json", env=server.env)
    assert again.returncode == 0
    assert json.loads(again.stdout)["token"] in first.stdout
    status = replygate("request", "status", json.loads(again.stdout)["id"], env=server.env)
    assert status.returncode == 0, status.stderr
    assert "pending  Deploy 6" in status.stdout
    assert "ann@contoso.test: waiting" in status.stdout
    request_id = json.loads(again.stdout)["id"]
    pending = replygate("request", "status", request_id, "--exit-status", env=server.env)
    assert pending.returncode == 5, pending.stderr
    decide(server, request_id, "ann@contoso.test", Verdict.REJECT)
    rejected = replygate("request", "status", request_id, "--exit-status", "--json", env=server.env)
    assert rejected.returncode == 1, rejected.stderr
    assert json.loads(rejected.stdout)["state"] == "rejected"


def test_create_with_markdown_details_a_reminder_and_options(
    server: Server, tmp_path: Path
) -> None:
    notes = tmp_path / "release-notes.md"
    notes.write_text("## Changes\n\n- **faster** refunds\n", encoding="utf-8")
    made = replygate(
        "request", "create", "--title", "Deploy 17", "--approver", "ann@contoso.test",
        "--details", f"@{notes}", "--detail", "version=1.4.2", "--remind-after", "2h",
        "--allow-delegates", "--json", env=server.env,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    body = json.loads(made.stdout)
    assert body["details"] == "## Changes\n\n- **faster** refunds\n\n- **version**: 1.4.2"
    with server.container.uow() as uow:
        request = uow.requests.get(body["id"])
        assert request is not None
        assert request.policy.allow_delegates is True
        assert request.policy.allow_self_approval is False
        reminders = uow.session.scalars(
            select(OutboxRow.next_attempt_at).where(
                OutboxRow.request_id == body["id"], OutboxRow.kind == "reminder_mail"
            )
        ).all()
    assert len(reminders) == 1
    created = datetime.fromisoformat(body["created_at"])
    assert reminders[0].replace(tzinfo=UTC) - created == timedelta(hours=2)

    loopback = replygate(
        "request", "create", "--title", "Deploy 18", "--approver", "ann@contoso.test",
        "--callback-url", "https://127.0.0.1:9/hook", env=server.env,
    )  # fmt: skip
    assert loopback.returncode == 4
    assert "loopback" in loopback.stderr
    missing = replygate(
        "request", "create", "--title", "Deploy 19", "--approver", "ann@contoso.test",
        "--details", f"@{tmp_path / 'nope.md'}", env=server.env,
    )  # fmt: skip
    assert missing.returncode == 4
    assert "--details @" in missing.stderr


def test_usage_and_connection_errors_exit_4(server: Server, tmp_path: Path) -> None:
    missing = replygate("request", "create", "--approver", "a@contoso.test", env=server.env)
    assert missing.returncode == 4
    unknown = replygate("request", "status", "NOSUCHREQ1", env=server.env)
    assert unknown.returncode == 4
    assert "no approval request NOSUCHREQ1" in unknown.stderr
    bad_token = replygate("request", "status", "X", env={**server.env, "REPLYGATE_TOKEN": "rgt_x"})
    assert bad_token.returncode == 4
    assert "API token is not valid" in bad_token.stderr
    untrusted = {k: v for k, v in server.env.items() if k != "REPLYGATE_CA_FILE"}
    refused = replygate("request", "status", "X", env=untrusted)
    assert refused.returncode == 4
    assert "--ca-file" in refused.stderr
    down = replygate(
        "request", "status", "X", env={**server.env, "REPLYGATE_URL": "https://127.0.0.1:1"}
    )
    assert down.returncode == 4
    assert "cannot reach" in down.stderr


def test_a_terminal_gets_the_live_table(server: Server) -> None:
    import os
    import pty
    import threading

    leader, follower = pty.openpty()
    env = {**server.env, "COLUMNS": "100", "LINES": "30", "TERM": "xterm-256color"}
    command = [sys.executable, "-m", "replygate", "request", "create", "--title", "Deploy 7"]
    command += ["--approver", "ann@contoso.test", "--wait", "--timeout", "60s"]
    process = subprocess.Popen(command, env=env, stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    chunks: list[bytes] = []

    def drain() -> None:  # read as it comes: a full terminal buffer would block the CLI
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed with the process
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    request_id = created_id(server, "Deploy 7")
    decide(server, request_id, "ann@contoso.test", Verdict.APPROVE)
    assert process.wait(60) == 0
    reader.join(10)
    os.close(leader)
    text = b"".join(chunks).decode("utf-8", "replace")
    assert "approver" in text  # the table's header
    assert "ann@contoso.test" in text
    assert "approved: from the test" in text
    assert f"RG-default-{request_id}: approved" in text
