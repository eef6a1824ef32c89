"""Reliability, counted: SIGKILL-and-resume, concurrent writers, bad inputs, corrupted bytes (issue 13).

Run: python benchmarks/bench_reliability.py [--kills 20] [--clips 32] [--flips 50] [--seed 0] [--tiny] [--json F]
Goals: every killed extraction, rerun, ends with a cache whose every tensor equals an uninterrupted run's; every
concurrent-writer run finishes (or one writer refuses in one line) with that same cache; no bad input gives a
traceback; `paxion cache verify` and `Cache(verify=True)` catch every flipped byte. Exits 1 when a goal is missed.
Every run is the `paxion` command line in its own process, the toy backbone on the CPU.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from bench_extract import make_world

from paxion.cache.manifest import MANIFEST_FILE, PARTS_DIR, read_json
from paxion.cache.reader import Cache
from paxion.cache.verify import verify_cache
from paxion.errors import CacheError

TIMEOUT = 300  # seconds any one `paxion` command may take


@dataclass
class World:
    bench: Path
    videos: Path
    shard_size: int

    def extract_args(self, out: Path, *extra: str) -> list[str]:
        return ["extract", "--bench", str(self.bench), "--videos", str(self.videos), "--out", str(out),
                "--device", "cpu", "--workers", "0", "--batch-size", "1", "--shard-size", str(self.shard_size),
                *extra]


@dataclass
class Tally:
    """One row of the table: how many were tried, how many went wrong and how, the command."""

    tried: int = 0
    bad: list[str] = field(default_factory=list)
    notes: dict[str, int] = field(default_factory=dict)
    tracebacks: int = 0

    def note(self, what: str) -> None:
        self.notes[what] = self.notes.get(what, 0) + 1

    def count_tracebacks(self, *texts: str) -> int:
        """Tracebacks printed in `texts` (a run's stdout and stderr), added to this row's count."""
        found = sum(t.count("Traceback (most recent call last)") for t in texts)
        self.tracebacks += found
        return found


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "paxion", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "paxion", *args], capture_output=True, text=True, timeout=TIMEOUT,
                          check=False)


def differences(cache: Path, reference: Path) -> list[str]:
    """What differs between two caches: problems `verify_cache` finds, texts, failures, any tensor of any split."""
    problems = verify_cache(cache)
    if problems:
        return problems
    a, b = Cache(cache, verify=True), Cache(reference, verify=True)
    out = [] if a.texts == b.texts and np.array_equal(a.text_emb, b.text_emb) else ["text table"]
    if a.manifest["failed"] != b.manifest["failed"] or set(a.manifest["splits"]) != set(b.manifest["splits"]):
        out.append("failed clips or splits")
    for split in b.manifest["splits"]:
        x, y = a.read_split(split), b.read_split(split)
        out += [f"{split}/{name}" for name in sorted(set(x) | set(y))
                if name not in x or name not in y or not np.array_equal(x[name], y[name])]
    return out


def kill_phase(out: Path) -> str:
    """Where an extraction stood when it was killed, from what it left in `out`."""
    if (out / MANIFEST_FILE).exists():
        return "after the manifest (run finished)"
    if not (out / PARTS_DIR / "config.json").exists():
        return "before the cache folder was set up"
    shards = len(list((out / PARTS_DIR).glob("*-[0-9][0-9][0-9][0-9][0-9].json")))
    return "before the first shard" if shards == 0 else "between first shard and manifest"


def timed_reference(world: World, out: Path) -> tuple[float, float]:
    """Run the uninterrupted extraction; (seconds until parts/config.json existed, seconds until exit)."""
    begin, proc, setup = time.perf_counter(), start(*world.extract_args(out)), None
    while proc.poll() is None:
        if setup is None and (out / PARTS_DIR / "config.json").exists():
            setup = time.perf_counter() - begin
        time.sleep(0.01)
    total = time.perf_counter() - begin
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"the reference extraction failed:\n{err}")
    return setup or 0.0, total


def kill_and_resume(world: World, reference: Path, tmp: Path, *, kills: int, window: tuple[float, float],
                    rng: np.random.Generator) -> Tally:
    """`kills` times: start an extraction, SIGKILL it after a random delay in `window`, rerun it to completion and
    compare the cache with the reference."""
    tally = Tally()
    for i in range(kills):
        out = tmp / f"killed-{i}"
        proc = start(*world.extract_args(out))
        time.sleep(rng.uniform(*window))
        proc.send_signal(signal.SIGKILL)
        killed_out, killed_err = proc.communicate()
        tally.tried += 1
        tally.note(kill_phase(out))
        rerun = run(*world.extract_args(out))
        problems = differences(out, reference) if rerun.returncode == 0 else [f"rerun exit {rerun.returncode}"]
        if tally.count_tracebacks(killed_out, killed_err, rerun.stdout, rerun.stderr) or problems:
            tally.bad.append(f"kill {i}: {'; '.join(problems)[:300]}{rerun.stderr[-300:]}")
        shutil.rmtree(out)
    return tally


def concurrent_writers(world: World, reference: Path, tmp: Path, *, trials: int, rng: np.random.Generator) -> Tally:
    """Writers at once on one --out, taking turns among: the same command twice, the same command three times, and
    two ranks (--num-shards 2) with --overwrite over a cache of another configuration. Each must exit 0, or refuse
    in one line, and leave the reference's cache."""
    kinds = ["same command x2", "ranks with --overwrite", "same command x3"]
    tally = Tally()
    for i in range(trials):
        kind, out = kinds[i % len(kinds)], tmp / f"concurrent-{i}"
        if kind == "ranks with --overwrite":
            old = run(*world.extract_args(out, "--frames", "2"))
            assert old.returncode == 0, old.stderr
            commands = [world.extract_args(out, "--num-shards", "2", "--shard-index", str(r), "--overwrite")
                        for r in (0, 1)]
        else:
            commands = [world.extract_args(out)] * int(kind[-1])
        procs = []
        for command in commands:
            procs.append(start(*command))
            time.sleep(rng.uniform(0.0, 0.5))
        results = [(p, *p.communicate(timeout=TIMEOUT)) for p in procs]
        tally.tried += 1
        tally.note(kind)
        failed = [f"exit {p.returncode}: {err.strip()[-300:]}" for p, _, err in results
                  if p.returncode != 0 and len(err.strip().splitlines()) != 1]
        refused = sum(p.returncode != 0 for p, *_ in results)
        problems = failed + (differences(out, reference) if refused < len(results) else ["every writer refused"])
        if sum(tally.count_tracebacks(out_text, err) for _, out_text, err in results) or problems:
            tally.bad.append(f"{kind}: {'; '.join(problems)[:300]}")
        shutil.rmtree(out)
    return tally


def _bench_copy(world: World, tmp: Path, name: str, edit: Callable[[list[dict]], Iterable[str]]) -> Path:
    """A copy of the world's bench whose first split file's rows went through `edit(rows) -> lines`."""
    bench = tmp / name
    shutil.copytree(world.bench, bench)
    split = next(iter(read_json(bench / "meta.json")["splits"]))
    rows = [json.loads(line) for line in (bench / f"{split}.jsonl").read_text().splitlines() if line.strip()]
    (bench / f"{split}.jsonl").write_text("".join(line + "\n" for line in edit(rows)))
    return bench


def _row_edits() -> dict[str, Callable[[list[dict]], Iterable[str]]]:
    def bracketed_duplicate(rows):
        rows[0]["id"] = rows[1]["id"] = "[/b]"
        return map(json.dumps, rows)

    def mistyped_start(rows):
        rows[0]["start"] = "0.1"
        return map(json.dumps, rows)

    def id_not_a_string(rows):
        rows[0]["id"] = 7
        return map(json.dumps, rows)

    def truncated_line(rows):
        lines = [json.dumps(r) for r in rows]
        return [*lines[:-1], lines[-1][: len(lines[-1]) // 2]]

    def markup_caption(rows):
        rows[0]["caption"] = "[bold]pushing [/b] something[/]"
        return map(json.dumps, rows)

    return {"bench: duplicate id `[/b]`": bracketed_duplicate, 'bench: `"start": "0.1"`': mistyped_start,
            "bench: integer id": id_not_a_string, "bench: truncated JSONL line": truncated_line,
            "bench: rich markup in a caption": markup_caption}


# The bad inputs a --tiny run tries: one of each kind (bench, command line, videos, cache).
TINY_BAD_INPUTS = ("bench: duplicate id `[/b]`", 'bench: `"start": "0.1"`', "extract: --out inside a file",
                   "videos: one missing, one garbage, one truncated", "eval: truncated-shard",
                   "cache info: garbage-manifest")


def bad_inputs(world: World, reference: Path, tmp: Path, *, tiny: bool) -> tuple[Tally, list[tuple[str, int, str]]]:
    """Feed the command line broken inputs (with `tiny`, only TINY_BAD_INPUTS); each may fail, but in one line,
    never with a traceback."""
    cases: dict[str, list[str]] = {
        "extract: missing bench folder": replace(world, bench=tmp / "nowhere").extract_args(tmp / "x"),
        "extract: shard index outside the process count":
            world.extract_args(tmp / "x", "--num-shards", "2", "--shard-index", "5"),
        "extract: another configuration without --overwrite": world.extract_args(reference, "--frames", "3"),
        "extract: --out inside a file": world.extract_args(tmp / "a-file" / "cache"),
    }
    (tmp / "a-file").write_text("not a folder")
    for i, (name, edit) in enumerate(_row_edits().items()):
        cases[name] = replace(world, bench=_bench_copy(world, tmp, f"bench-{i}", edit)).extract_args(tmp / f"out-{i}")
    no_meta = shutil.copytree(world.bench, tmp / "bench-no-meta")
    (no_meta / "meta.json").unlink()
    cases["bench: no meta.json"] = replace(world, bench=no_meta).extract_args(tmp / "x")
    videos = shutil.copytree(world.videos, tmp / "videos-broken")
    broken = sorted(p for p in videos.rglob("*") if p.is_file())
    broken[0].unlink()
    broken[1].write_bytes(b"\0not a video" * 40)
    broken[2].write_bytes(broken[2].read_bytes()[:300])
    cases["videos: one missing, one garbage, one truncated"] = replace(world, videos=videos).extract_args(
        tmp / "out-videos")

    damaged = {name: shutil.copytree(reference, tmp / f"cache-{name}") for name in
               ("truncated-shard", "truncated-texts", "garbage-manifest", "edited-manifest", "no-texts", "old-schema")}
    shard = min(damaged["truncated-shard"].glob("*-00000.h5"))
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    texts = damaged["truncated-texts"] / "texts.h5"
    texts.write_bytes(texts.read_bytes()[:100])
    (damaged["garbage-manifest"] / MANIFEST_FILE).write_text('{"schema_version": 4, "splits": [')
    (damaged["no-texts"] / "texts.h5").unlink()
    manifest = read_json(damaged["old-schema"] / MANIFEST_FILE)
    edited = manifest | {"frames": manifest["frames"] + 1}  # a hand edit that keeps the manifest's xxh3_128
    (damaged["edited-manifest"] / MANIFEST_FILE).write_text(json.dumps(edited))
    (damaged["old-schema"] / MANIFEST_FILE).write_text(json.dumps(manifest | {"schema_version": 3}))
    split = next(iter(manifest["splits"]))
    for name, root in damaged.items():
        cases[f"cache verify: {name}"] = ["cache", "verify", str(root)]
        cases[f"cache info: {name}"] = ["cache", "info", str(root)]
        cases[f"eval: {name}"] = ["eval", "--cache", str(root), "--backbone-only", "--split", split, "--device", "cpu"]
    cases["retrieve: truncated shard"] = ["retrieve", "--cache", str(damaged["truncated-shard"]), "--task", "label",
                                          "--split", split, "--device", "cpu"]
    cases["retrieve: mc on a cache without mc fields"] = ["retrieve", "--cache", str(reference), "--task", "mc",
                                                         "--split", split, "--device", "cpu"]
    cases["eval: split not in the cache"] = ["eval", "--cache", str(reference), "--backbone-only", "--split", "nope"]

    tally, seen = Tally(), []
    for name, args in cases.items():
        if tiny and name not in TINY_BAD_INPUTS:
            continue
        done = run(*args)
        tally.tried += 1
        if tally.count_tracebacks(done.stdout, done.stderr):
            tally.bad.append(f"{name}: traceback\n{done.stderr[-2000:]}")
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        seen.append((name, done.returncode, lines[-1] if lines and done.returncode else done.stdout.split("\n")[0]))
    return tally, seen


def flipped_bytes(reference: Path, tmp: Path, *, flips: int, rng: np.random.Generator) -> Tally:
    """Flip one random byte of a random cache file (shards, texts.h5) `flips` times; each must be caught by
    `verify_cache` and by reading through `Cache(verify=True)`."""
    cache = shutil.copytree(reference, tmp / "flipped")
    files = sorted(cache.glob("*.h5"))
    tally = Tally()
    for _ in range(flips):
        path = files[rng.integers(len(files))]
        data = bytearray(path.read_bytes())
        at = int(rng.integers(len(data)))
        data[at] ^= int(rng.integers(1, 256))
        path.write_bytes(bytes(data))
        tally.tried += 1
        try:
            c = Cache(cache, verify=True)
            for split in c.manifest["splits"]:
                c.read_split(split)
            caught_by_reader = False
        except CacheError:
            caught_by_reader = True
        caught_by_verify = bool(verify_cache(cache))
        if not (caught_by_verify and caught_by_reader):
            tally.bad.append(f"{path.name} byte {at}: verify {'caught' if caught_by_verify else 'missed'}, "
                             f"Cache(verify=True) {'caught' if caught_by_reader else 'missed'}")
        shutil.copy2(reference / path.name, path)
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=6, help="concurrent-writer runs")
    parser.add_argument("--flips", type=int, default=50, help="single-byte corruptions")
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--shard-size", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true",
                        help="3 kills, 1 concurrent run, 6 bad inputs, 5 flips, 6 clips (for tests)")
    parser.add_argument("--json", type=Path, default=None, help="also write the counts here")
    args = parser.parse_args()
    if args.tiny:
        args.kills, args.concurrent, args.flips, args.clips = 3, 1, 5, 6
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="paxion-reliability-") as tmp:
        tmp = Path(tmp)
        world = World(*make_world(tmp / "world", args.clips), shard_size=args.shard_size)
        reference = tmp / "reference"
        setup, total = timed_reference(world, reference)
        print(f"reference extraction: {args.clips} clips, {total:.1f} s (cache folder set up after {setup:.1f} s)")
        rows = {
            "kills survived": (kill_and_resume(world, reference, tmp, kills=args.kills, window=(setup, total - 0.3),
                                               rng=rng), "SIGKILL after a random delay, rerun, compare"),
            "concurrent writers tried": (concurrent_writers(world, reference, tmp, trials=args.concurrent, rng=rng),
                                         "2-3 `paxion extract` at once on one --out, compare"),
        }
        bad, seen = bad_inputs(world, reference, tmp, tiny=args.tiny)
        rows["bad inputs tried"] = (bad, "CLI on broken benches, videos and caches; tracebacks counted")
        rows["corrupted bytes detected"] = (flipped_bytes(reference, tmp, flips=args.flips, rng=rng),
                                            "one byte flipped in a shard or texts.h5; verify + Cache(verify=True)")
    command = "python benchmarks/bench_reliability.py" + (" --tiny" if args.tiny else "")
    print("\n| what | result | how | command |\n|---|---|---|---|")
    for name, (tally, how) in rows.items():
        notes = ", ".join(f"{k}: {v}" for k, v in sorted(tally.notes.items()))
        print(f"| {name} | {tally.tried - len(tally.bad)} / {tally.tried}{f' ({notes})' if notes else ''} | {how} "
              f"| `{command}` |")
    print(f"| tracebacks seen | {sum(t.tracebacks for t, _ in rows.values())} (goal 0) | in every run above | "
          f"`{command}` |")
    print("\nbad inputs (exit code, last line):")
    for name, code, line in seen:
        print(f"  {name}: {code}: {line[:150]}")
    for name, (tally, _) in rows.items():
        for problem in tally.bad:
            print(f"FAILED {name}: {problem}")
    counts = {name: {"tried": t.tried, "bad": len(t.bad), "notes": t.notes, "problems": t.bad}
              for name, (t, _) in rows.items()}
    if args.json:
        args.json.write_text(json.dumps(counts, indent=2) + "\n")
    sys.exit(1 if any(t.bad for t, _ in rows.values()) else 0)


if __name__ == "__main__":
    main()
