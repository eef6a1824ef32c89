"""Time `paxion demo` end to end (goal: full at most 10 minutes, `--quick` at most 2, on 2 CPU cores), per stage."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def time_demo(out: Path, *, quick: bool, device: str) -> tuple[float, dict[str, float]]:
    """Run the demo from nothing into `out` in a fresh process; wall seconds and the report's per-stage seconds."""
    command = [sys.executable, "-m", "paxion", "demo", "--out", str(out), "--device", device]
    start = time.perf_counter()
    subprocess.run([*command, *(["--quick"] if quick else [])], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    return wall, json.loads((out / "report.json").read_text())["timings_s"]


def main() -> None:
    """Print the wall time of each demo size, then every stage's seconds side by side."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="quick,full", help="comma-separated: quick, full (default both)")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    args = parser.parse_args()
    sizes = args.sizes.split(",")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            results[size] = time_demo(Path(tmp) / size, quick=size == "quick", device=args.device)
            print(f"{size}: {results[size][0]:.1f} s wall (device {args.device})", flush=True)
    stages = list(dict.fromkeys(name for _, timings in results.values() for name in timings))
    print(f"\n| stage | {' | '.join(sizes)} |\n|---|{'---|' * len(sizes)}")
    for stage in stages:
        print(f"| {stage} | {' | '.join(f'{results[s][1].get(stage, 0.0):.1f}' for s in sizes)} |")
    print(f"| **wall, whole command** | {' | '.join(f'**{results[s][0]:.1f}**' for s in sizes)} |")


if __name__ == "__main__":
    main()
