"""SQLite takes one process running the loops; a second one is refused with the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from replygate.bootstrap import build
from replygate.config import load_settings
from replygate.db import migrate
from replygate.errors import ConfigurationError
from replygate.worker.guard import hold_worker_lock
from tests.support.workers import ROOT, WorkerPool, clean_environment

FIX = "use PostgreSQL for several workers, or start this one with `replygate serve --no-workers`"


def replygate(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "replygate", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_second_worker_process_is_refused_until_the_first_one_dies(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    container = build(settings)
    migrate.upgrade(container.engine)
    container.verify_secret_key()
    container.engine.dispose()
    env = clean_environment(REPLYGATE_DATA_DIR=str(tmp_path / "data"))
    with WorkerPool(tmp_path / "logs", env) as pool:
        first = pool.start("first")
        first.wait_running()

        second = replygate("worker", env=env)
        assert second.returncode == 4
        assert f"another replygate process (pid {first.process.pid}) already runs" in second.stderr
        assert "a SQLite database takes one worker process" in second.stderr
        assert FIX in " ".join(second.stderr.split())

        serving = replygate("serve", "--port", "1", env=env)  # refused before it listens
        assert serving.returncode == 4
        assert f"pid {first.process.pid}" in serving.stderr

        assert first.kill() == -9  # the kernel drops the lock of a dead process
        after = pool.start("after")
        after.wait_running()
        assert after.stop() == 0


def test_the_lock_is_counted_within_one_process(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    outer = hold_worker_lock(settings)  # serve at start
    inner = hold_worker_lock(settings)  # its background loops
    assert outer is not None
    assert inner is outer
    inner.release()
    assert (tmp_path / "worker.lock").read_text().strip().isdigit()  # still held, pid shown
    outer.release()
    again = hold_worker_lock(settings)
    assert again is not None
    again.release()


def test_another_process_is_refused_in_process_terms(tmp_path: Path) -> None:
    """The refusal as the loops' start-up sees it (serve's background worker)."""
    settings = load_settings(data_dir=tmp_path / "data")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path / "data" / "worker.lock")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigurationError, match=f"pid {holder.pid}"):
            hold_worker_lock(settings)
    finally:
        holder.kill()
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()


def test_postgresql_takes_no_lock(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path, database_url="postgresql+psycopg://postgres@127.0.0.1/none"
    )
    assert hold_worker_lock(settings) is None
    assert not (tmp_path / "worker.lock").exists()


HOLD = """
import fcntl, os, sys, time
os.makedirs(os.path.dirname(sys.argv[1]), exist_ok=True)
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.write(fd, f"{os.getpid()}\\n".encode())
print("held", flush=True)
time.sleep(60)
"""
