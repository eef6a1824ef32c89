"""Time `paxion demo` end to end (goal: full at most 10 minutes, `--quick` at most 2, on 2 CPU cores), per stage.

Run: python benchmarks/bench_demo.py [--sizes quick,full] [--device cpu] [--tiny]
quick and full run the `paxion demo` command in a fresh process; tiny (a world too small for the command to
offer) runs the same study through the library in this process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _tiny import parse_args

from paxion.demo.study import DemoPlan, run_study

# seed 67: a world this small whose clips cover every temporal template, as the temporal retrieval task needs
TINY = DemoPlan(train_clips=16, val_clips=8, patch_epochs=1, downstream_epochs=1, seed=67, shift_clips=8)


class _Quiet:
    """A study reporter that shows nothing."""

    def stage(self, name: str, total: int | None):
        return lambda n=1: None

    def done(self, name: str, seconds: float, reused: bool) -> None:
        pass


def time_demo(out: Path, *, size: str, device: str) -> tuple[float, dict[str, float]]:
    """Run the demo of `size` from nothing into `out`; wall seconds and the report's per-stage seconds."""
    start = time.perf_counter()
    if size == "tiny":
        run_study(out, plan=TINY, device=device, reporter=_Quiet())
    else:
        command = [sys.executable, "-m", "paxion", "demo", "--out", str(out), "--device", device]
        subprocess.run([*command, *(["--quick"] if size == "quick" else [])], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    return wall, json.loads((out / "report.json").read_text())["timings_s"]


def main() -> None:
    """Print the wall time of each demo size, then every stage's seconds side by side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="quick,full", help="comma-separated: tiny, quick, full (default quick,full)")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    args = parse_args(parser, {"sizes": "tiny"})
    sizes = args.sizes.split(",")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            results[size] = time_demo(Path(tmp) / size, size=size, device=args.device)
            print(f"{size}: {results[size][0]:.1f} s wall (device {args.device})", flush=True)
    stages = list(dict.fromkeys(name for _, timings in results.values() for name in timings))
    print(f"\n| stage | {' | '.join(sizes)} |\n|---|{'---|' * len(sizes)}")
    for stage in stages:
        print(f"| {stage} | {' | '.join(f'{results[s][1].get(stage, 0.0):.1f}' for s in sizes)} |")
    print(f"| **wall, whole command** | {' | '.join(f'**{results[s][0]:.1f}**' for s in sizes)} |")


if __name__ == "__main__":
    main()
