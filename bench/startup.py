"""Start-up time of the CLI (``replygate --help``) and of the server (``replygate serve``
until ``/healthz`` answers over TLS)."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.figures import Figure

RUNS = 15
GOAL_SECONDS = 0.5
SERVER_RUNS = 5
SERVER_GOAL_SECONDS = 3.0


def cli() -> Figure:
    script = Path(sys.executable).with_name("replygate")
    command = [str(script), "--help"]
    subprocess.run(command, capture_output=True, check=True)  # warm the file cache
    timings = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        timings.append(time.perf_counter() - start)
    median = statistics.median(timings)
    return Figure(
        name="CLI start-up (`replygate --help`), median of 15",
        value=median,
        unit="s",
        goal=f"< {GOAL_SECONDS} s",
        meets_goal=median < GOAL_SECONDS,
        command="python -m bench startup",
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve_once(data_dir: Path) -> float:
    """Seconds from launching `replygate serve` until /healthz answers (any status)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLYGATE_")}
    env["REPLYGATE_DATA_DIR"] = str(data_dir)
    port = _free_port()
    command = [sys.executable, "-m", "replygate", "serve", "--port", str(port), "--no-workers"]
    cert = data_dir / "tls" / "cert.pem"
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while time.perf_counter() - start < 60:
            if process.poll() is not None:
                raise RuntimeError(f"serve exited with {process.returncode}")
            if cert.exists():
                try:
                    context = ssl.create_default_context(cafile=str(cert))
                    httpx.get(f"https://127.0.0.1:{port}/healthz", verify=context, timeout=5)
                    return time.perf_counter() - start
                except (httpx.TransportError, ssl.SSLError, OSError):
                    pass
            time.sleep(0.02)
        raise RuntimeError("serve did not answer /healthz within 60 s")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def server() -> Figure:
    with tempfile.TemporaryDirectory(prefix="replygate-bench-serve-") as tmp:
        data_dir = Path(tmp)
        first = _serve_once(data_dir)  # creates the database, the key and the certificate
        timings = [_serve_once(data_dir) for _ in range(SERVER_RUNS)]
    median = statistics.median(timings)
    return Figure(
        name=f"Server start-up (`replygate serve` until /healthz answers), median of "
        f"{SERVER_RUNS} (first start, creating database, key and TLS files: {first:.2f} s)",
        value=median,
        unit="s",
        goal=f"< {SERVER_GOAL_SECONDS} s",
        meets_goal=median < SERVER_GOAL_SECONDS,
        command="python -m bench startup",
    )


def run() -> list[Figure]:
    return [cli(), server()]
