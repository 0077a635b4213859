"""A measured figure, its goal, and the command that produced it; rendered to Markdown."""

from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    goal: str
    meets_goal: bool
    command: str
    detail: str = ""  # where the value comes from, printed under the table


def machine_line() -> str:
    cpus = os.cpu_count() or 0
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{platform.machine()}, {cpus} CPU(s){memory}, Python {platform.python_version()}"


def render(figures: list[Figure]) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench`); do not edit by hand.",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {machine_line()}",
        "",
        "| figure | value | goal | met | command |",
        "|---|---|---|---|---|",
    ]
    for f in figures:
        met = "yes" if f.meets_goal else "**no**"
        value = "not measured" if math.isnan(f.value) else f"{f.value:.3g} {f.unit}".strip()
        lines.append(f"| {f.name} | {value} | {f.goal} | {met} | `{f.command}` |")
    details = [f"- **{f.name}**: {f.detail}" for f in figures if f.detail]
    if details:
        lines += ["", "## Where the figures come from", "", *details]
    return "\n".join(lines) + "\n"
