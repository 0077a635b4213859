"""Run the benchmarks (all, or those named); a run of all writes docs/benchmarks.md."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from bench.figures import Figure, render

BENCHMARKS = ["startup", "api", "sending", "reading"]
OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def main(names: list[str]) -> None:
    figures: list[Figure] = []
    for name in names or BENCHMARKS:
        module = importlib.import_module(f"bench.{name}")
        for figure in module.run():
            print(f"{figure.name}: {figure.value:.3g} {figure.unit} (goal {figure.goal})")
            figures.append(figure)
    if names:  # a partial run must not replace the document of a whole one
        print(f"{OUTPUT} is written by a run of all benchmarks (`make bench`)")
        return
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(render(figures))
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main(sys.argv[1:])
