"""Start-up time of the CLI: ``replygate --help`` (goal: under 0.5 s)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.figures import Figure

RUNS = 15
GOAL_SECONDS = 0.5


def run() -> list[Figure]:
    script = Path(sys.executable).with_name("replygate")
    command = [str(script), "--help"]
    subprocess.run(command, capture_output=True, check=True)  # warm the file cache
    timings = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        timings.append(time.perf_counter() - start)
    median = statistics.median(timings)
    return [
        Figure(
            name="CLI start-up (`replygate --help`), median of 15",
            value=median,
            unit="s",
            goal=f"< {GOAL_SECONDS} s",
            meets_goal=median < GOAL_SECONDS,
            command="python -m bench startup",
        )
    ]
