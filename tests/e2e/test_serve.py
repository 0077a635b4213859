"""``replygate serve`` as an operator runs it: real TLS, real sign-in, clean shutdown."""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

PASSWORD = "a long and real password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def environment(data_dir: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REPLYGATE_")}
    return {**clean, "REPLYGATE_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}


def replygate(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "replygate", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def wait_until_healthy(url: str, cert: Path, process: subprocess.Popen[str]) -> httpx.Response:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve exited early with {process.returncode}")
        if cert.exists():
            try:
                return httpx.get(url, verify=ssl.create_default_context(cafile=str(cert)))
            except (httpx.ConnectError, ssl.SSLError, OSError):
                pass
        time.sleep(0.2)
    pytest.fail("serve did not answer /healthz within 60 s")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, dict[str, str]]]:
    port = free_port()
    env = environment(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "replygate", "serve", "--port", str(port), "--no-workers"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process, port, env
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def test_serve_over_tls_sign_in_and_stop(
    server: tuple[subprocess.Popen[str], int, dict[str, str]], tmp_path: Path
) -> None:
    process, port, env = server
    base = f"https://127.0.0.1:{port}"
    cert = tmp_path / "tls" / "cert.pem"
    health = wait_until_healthy(f"{base}/healthz", cert, process)
    assert health.status_code == 200, health.text
    assert health.json()["database"]["status"] == "ok"
    assert health.json()["status"] == "degraded"  # no Email Settings yet: a warning
    assert health.headers["strict-transport-security"]

    created = replygate(
        "users", "create", "root", "--admin", "--password-stdin", env=env, stdin=PASSWORD + "\n"
    )
    assert created.returncode == 0, created.stderr
    assert "created admin root" in created.stdout

    context = ssl.create_default_context(cafile=str(cert))
    with httpx.Client(base_url=base, verify=context) as browser:
        page = browser.get("/login")
        match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert match
        form = {"username": "root", "password": PASSWORD, "csrf_token": match.group(1)}
        signed_in = browser.post("/login", data=form)
        assert signed_in.status_code == 303
        assert "secure" in signed_in.headers["set-cookie"].lower()
        dashboard = browser.get("/")
        assert dashboard.status_code == 200
        assert "<h1>Dashboard</h1>" in dashboard.text
        assert "root" in dashboard.text

    with pytest.raises(httpx.ConnectError):  # the certificate is not trusted blindly
        httpx.get(f"{base}/healthz", verify=ssl.create_default_context())

    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the signal so that the parent sees
    # it (what systemd counts as a clean stop).
    assert process.returncode == -signal.SIGTERM, output
    assert "Application shutdown complete." in output
    assert f"replygate serving on https://127.0.0.1:{port}/" in output
    assert "self-signed certificate:" in output
    assert "background loops: off" in output
    assert PASSWORD not in output
    assert "Traceback" not in output


def test_no_migrate_on_an_empty_database_says_what_to_do(tmp_path: Path) -> None:
    result = replygate(
        "serve", "--no-migrate", "--port", str(free_port()), env=environment(tmp_path)
    )
    assert result.returncode == 4
    assert "run `replygate db upgrade`" in result.stderr
    assert "Traceback" not in result.stderr
