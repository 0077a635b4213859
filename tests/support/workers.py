"""Worker subprocesses (``replygate worker`` with the test hooks) that a test can kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

ROOT = Path(__file__).resolve().parents[2]


def clean_environment(**extra: str) -> dict[str, str]:
    """The test's environment without any REPLYGATE_/RG_TEST_ setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REPLYGATE_", "RG_TEST_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass
class WorkerProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_running(self, timeout: float = 60) -> None:
        """Until the worker says it runs; fails with its log if it exits first."""
        deadline = time.monotonic() + timeout
        while "running; Ctrl-C stops it" not in self.log():
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.process.returncode}:\n" + self.log()[-3000:]
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not start:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def wait_exit(self, timeout: float = 60) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still runs:\n{self.log()[-3000:]}") from None

    def kill(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        return self.process.wait(30)

    def stop(self) -> int:
        """SIGTERM (a clean stop: the lease is released), SIGKILL after 30 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(30)
            except subprocess.TimeoutExpired:
                pass
        return self.kill()

    def close(self) -> None:
        self.kill()
        self.log_file.close()


@dataclass
class WorkerPool:
    """Starts hooked workers; every one is killed and its log closed when the block ends."""

    logs: Path
    env: Mapping[str, str]
    args: tuple[str, ...] = ("worker",)
    started: list[WorkerProcess] = field(default_factory=list)

    def start(self, name: str, **extra: str) -> WorkerProcess:
        self.logs.mkdir(parents=True, exist_ok=True)
        path = self.logs / f"{name}-{len(self.started)}.log"
        log_file = path.open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.hooked_worker", *self.args],
            cwd=ROOT,
            env={**self.env, **extra},
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        worker = WorkerProcess(name, process, path, log_file)
        self.started.append(worker)
        return worker

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for worker in self.started:
            worker.close()


def wait_for(condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)
