"""The REST API: create latency on SQLite and PostgreSQL, memory per 1,000 waiters.

The server runs in its own process (``bench.apiserver``: uvicorn, plain HTTP on loopback,
background loops off); the client calls it over HTTP with an API token, one create at a
time. Memory is the server's resident set size with 1,000 `wait` long-polls open, less its
size before, per waiter.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from bench.figures import Figure
from bench.harness import percentile

COMMAND = "python -m bench api"
CREATES = 300
WAITERS = 1000
POSTGRES_ADMIN = os.environ.get(
    "REPLYGATE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BODY = {
    "title": "Deploy shop 1.4.2 to production",
    "approvers": ["ann@contoso.test", "bob@contoso.test"],
    "metadata": {"environment": "production", "version": "1.4.2"},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'replygate.db'}"
        return
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"rg_bench_{secrets.token_hex(4)}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def _server(database_url: str, tmp: Path) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLYGATE_")}
    command = [sys.executable, "-m", "bench.apiserver", database_url, str(tmp), str(port)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert process.stdout is not None
        token = process.stdout.readline().strip()
        if not token:
            raise RuntimeError("the API server did not start")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield process, base, token
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _create_latencies(base: str, token: str) -> list[float]:
    headers = {"Authorization": f"Bearer {token}"}
    timings = []
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        for index in range(CREATES + 20):
            start = time.perf_counter()
            answer = client.post("/api/v1/approvals", json={**BODY, "title": f"Deploy {index}"})
            elapsed = time.perf_counter() - start
            if answer.status_code != 201:
                raise RuntimeError(f"create answered {answer.status_code}: {answer.text[:300]}")
            if index >= 20:  # the first ones warm caches and connection pools
                timings.append(elapsed)
    return timings


def _rss(pid: int) -> int:
    """Resident set size in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


async def _waiters(base: str, token: str, pid: int) -> tuple[int, int]:
    """The server's RSS before, and with WAITERS long-polls open."""
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=WAITERS + 10, max_keepalive_connections=WAITERS + 10)
    async with httpx.AsyncClient(
        base_url=base, headers=headers, timeout=120, limits=limits
    ) as client:
        ids = []
        for index in range(10):
            made = await client.post("/api/v1/approvals", json={**BODY, "title": f"Wait {index}"})
            ids.append(made.json()["id"])
        await client.get(f"/api/v1/approvals/{ids[0]}/wait", params={"timeout": 0.1})
        await asyncio.sleep(1)
        before = _rss(pid)
        calls = [
            asyncio.create_task(
                client.get(f"/api/v1/approvals/{ids[i % 10]}/wait", params={"timeout": 60})
            )
            for i in range(WAITERS)
        ]
        # Settle: every call is accepted and parked (the RSS stops growing).
        last, stable = 0, 0
        for _ in range(120):
            await asyncio.sleep(0.5)
            now = _rss(pid)
            stable = stable + 1 if abs(now - last) < 64 * 1024 else 0
            last = now
            if stable >= 4:
                break
        during = _rss(pid)
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
    return before, during


def run() -> list[Figure]:
    figures = []
    for kind in ("sqlite", "postgresql"):
        with (
            tempfile.TemporaryDirectory(prefix="replygate-bench-api-") as tmp,
            _database(kind, Path(tmp)) as url,
            _server(url, Path(tmp)) as (process, base, token),
        ):
            timings = _create_latencies(base, token)
            if kind == "sqlite":
                before, during = asyncio.run(_waiters(base, token, process.pid))
        p50, p99 = percentile(timings, 0.5) * 1000, percentile(timings, 0.99) * 1000
        figures += [
            Figure(
                f"API create latency p50 on {kind} ({len(timings)} sequential POSTs)",
                p50,
                "ms",
                "< 50 ms",
                p50 < 50,
                COMMAND,
            ),
            Figure(f"API create latency p99 on {kind}", p99, "ms", "< 200 ms", p99 < 200, COMMAND),
        ]
    per_thousand = (during - before) / (1024 * 1024)
    figures.append(
        Figure(
            f"Server memory for {WAITERS} concurrent `wait` long-polls (RSS growth, SQLite; "
            f"{before / 1024 / 1024:.0f} MiB before)",
            per_thousand,
            "MiB per 1,000",
            "< 100 MiB per 1,000",
            per_thousand < 100,
            COMMAND,
        )
    )
    return figures
