"""Reading a whole cache through `paxion.cache.reader.Cache` against a plain read and h5py's own read of the files.

Run: cd benchmarks && python bench_cache_read.py [--clips 1024] [--shard-size 512] [--dtype fp16 int8]
     python bench_cache_read.py --tiny   (a few seconds: 16 clips, 8-clip shards, to check that it runs)
Goals, all from the page cache (files read once before timing): `read_split` >= 0.95 x the plain read for fp16,
>= 0.8 for int8 (read as stored, then dequantised on the device). Per token dtype it builds a cache of the
built-in world and times, side by side in one run: a plain read of every shard file into one new buffer (the
reference), h5py's read of every dataset as stored, `Cache.read_split` of every split and `Cache.read_shard` of
every shard.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
from bench_extract import make_backbone, make_world

from paxion.cache.reader import Cache
from paxion.extract.pipeline import extract


def best_times(repeats: int, fns: dict) -> dict[str, float]:
    """The fastest of `repeats` timed calls of each function, in seconds; the functions take turns in every
    round, so a change of load on a shared machine hits them all alike. Each timed call follows an untimed call
    of the same function: what one read leaves in the allocator and the kernel's free pages slows the next read
    (measured: whichever read followed h5py's read of every dataset lost 5-10%), and that cost belongs to the
    read that left it, not to the one timed after it."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            fn()
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}


def read_files(files: list[Path], buffer: np.ndarray) -> None:
    """Read the files one after another into consecutive bytes of `buffer`."""
    start = 0
    for path in files:
        with open(path, "rb", buffering=0) as f:
            start += f.readinto(buffer[start:])


def h5py_read(files: list[Path]) -> None:
    """Every dataset of every file through h5py, as stored."""
    for path in files:
        with h5py.File(path, "r") as f:
            for ds in f.values():
                ds[()]


def stored_bytes(files: list[Path], names: list[str]) -> int:
    """The bytes datasets `names` take in the files."""
    total = 0
    for path in files:
        with h5py.File(path, "r") as f:
            total += sum(f[name].id.get_storage_size() for name in names if name in f)
    return total


def measure(cache_dir: Path, repeats: int) -> None:
    """Print MB/s of the reads of one cache and each one's ratio to the plain read (same bytes per second)."""
    cache = Cache(cache_dir)
    files = [cache_dir / s["file"] for split in cache.manifest["splits"].values() for s in split["shards"]]
    size = sum(f.stat().st_size for f in files)
    timed = {  # name: (function, bytes it reads)
        "plain read into a new buffer": (lambda: read_files(files, np.empty(size, np.uint8)), size),
        "h5py read of every dataset, as stored": (lambda: h5py_read(files), size),
    }
    timed |= {
        "Cache.read_split, every split": (lambda: [cache.read_split(split) for split in cache.splits], size),
        "Cache.read_shard, every shard": (lambda: [cache.read_shard(split, k) for split in cache.splits
                                                   for k in range(cache.num_shards(split))], size),
    }
    int8 = cache.manifest["token_dtype"] == "int8"
    if int8:  # the bytes a large backbone's shard is made of: what the per-dataset overhead matters least to
        tokens = stored_bytes(files, ["tokens", "tokens_scale", "tokens_channel_scale"])
        timed["Cache.read_split of tokens + scales only"] = (lambda: [
            cache.read_split(split, ["tokens"]) for split in cache.splits], tokens)
    read_files(files, np.empty(size, np.uint8))  # every timing reads from the page cache
    seconds = best_times(repeats, {name: fn for name, (fn, _) in timed.items()})
    rate = {name: timed[name][1] / s for name, s in seconds.items()}
    reference = rate["plain read into a new buffer"]
    print(f"{'int8' if int8 else 'float16'} tokens: {len(files)} shards, {size / 1e6:.1f} MB, best of {repeats}")
    for name, r in rate.items():
        print(f"  {name:<58}{r / 1e6:8.0f} MB/s  {r / reference:5.2f} of the plain read")


def main() -> None:
    """Build a cache of the built-in world per token dtype (or time --cache), then print the reads side by side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1024)
    parser.add_argument("--dtype", choices=["fp16", "int8"], nargs="+", default=["fp16", "int8"])
    parser.add_argument("--shard-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--cache", type=Path, default=None, help="Time this existing cache instead of building one.")
    parser.add_argument("--tiny", action="store_true", help="16 clips, 8-clip shards, 2 repeats: checks it runs.")
    args = parser.parse_args()
    if args.tiny:
        args.clips, args.shard_size, args.repeats = 16, 8, 2
    if args.cache is not None:
        measure(args.cache, args.repeats)
        return
    with tempfile.TemporaryDirectory(prefix="paxion-bench-read-") as tmp:
        bench, videos = make_world(Path(tmp), args.clips)
        backbone, which = make_backbone("cpu")
        print(f"data: built-in synth world, {args.clips} clips, {args.shard_size}-clip shards; backbone: {which}")
        for dtype in args.dtype:
            out = Path(tmp) / f"cache-{dtype}"
            extract(bench, videos, out, backbone, token_dtype=dtype, shard_size=args.shard_size, splits=["train"])
            measure(out, args.repeats)


if __name__ == "__main__":
    main()
