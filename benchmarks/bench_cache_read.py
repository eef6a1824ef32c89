"""Reading a whole cache through `paxion.cache.reader.Cache` against a plain sequential read of the same files.

Run: python benchmarks/bench_cache_read.py [--clips 1024] [--dtype fp16] [--shard-size 512]
Goal: reader throughput >= 0.8 x the plain read, both from the page cache (files read once before timing).
The plain read puts every file's bytes into one new page-aligned buffer, as the reader puts them into new
page-aligned arrays (the reader's result is new memory too; where a buffer starts matters, see
`page_aligned_empty`). Also printed: the same read into a buffer reused across repeats (the copy from the page
cache alone, no new memory), and `Path.read_bytes` per file, the reference before schema 2 (Python recycles
one buffer for files under 32 MB and maps new memory above, so it flatters small shards and not large ones).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
from bench_extract import make_backbone, make_world

from paxion.cache.reader import Cache, page_aligned_empty
from paxion.extract.pipeline import extract


def best_of(repeats: int, fn) -> float:
    """The fastest of `repeats` timed calls of fn(), in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def read_files(files: list[Path], buffer: np.ndarray) -> None:
    """Read the files one after another into consecutive bytes of `buffer`."""
    start = 0
    for path in files:
        with open(path, "rb", buffering=0) as f:
            start += f.readinto(buffer[start:])


def main() -> None:
    """Build a cache from the built-in world, then print reader and plain-read MB/s and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1024)
    parser.add_argument("--dtype", choices=["fp16", "int8"], default="fp16")
    parser.add_argument("--shard-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cache", type=Path, default=None, help="Time this existing cache instead of building one.")
    args = parser.parse_args()
    if args.cache is None:
        root = Path(tempfile.mkdtemp(prefix="paxion-bench-read-"))
        bench, videos = make_world(root, args.clips)
        backbone, which = make_backbone("cpu")
        args.cache = root / "cache"
        extract(bench, videos, args.cache, backbone, token_dtype=args.dtype, shard_size=args.shard_size)
        print(f"data: built-in synth world, {args.clips} clips; backbone: {which}")
    cache = Cache(args.cache)
    files = [args.cache / s["file"] for split in cache.manifest["splits"].values() for s in split["shards"]]
    size = sum(f.stat().st_size for f in files)
    print(f"cache {args.cache}: {cache.manifest['token_dtype']} tokens, {len(files)} shards, {size / 1e6:.1f} MB")
    reused = page_aligned_empty((size,), np.uint8)

    def h5py_as_stored() -> None:
        for f in files:
            with h5py.File(f) as h:
                for ds in h.values():
                    ds[()]

    timed = {
        "plain": lambda: read_files(files, page_aligned_empty((size,), np.uint8)),
        "reused": lambda: read_files(files, reused),
        "read_bytes": lambda: [len(f.read_bytes()) for f in files],
        "h5py": h5py_as_stored,
        "read_split": lambda: [cache.read_split(split) for split in cache.splits],
        "read_shard": lambda: [
            cache.read_shard(split, k) for split in cache.splits for k in range(cache.num_shards(split))
        ],
    }
    timed["reused"]()  # every timing reads from the page cache
    seconds = {name: best_of(args.repeats, fn) for name, fn in timed.items()}

    def line(label: str, name: str, note: str = "") -> None:
        print(f"{label:<46}{size / seconds[name] / 1e6:8.0f} MB/s{note}")

    line("plain read into a new page-aligned buffer:", "plain", " (the reference)")
    line("plain read into a reused buffer:", "reused", " (page-cache copy alone)")
    line("Path.read_bytes per file:", "read_bytes", " (the reference before schema 2)")
    line("h5py read of every dataset, as stored:", "h5py", " (HDF5's own read path, numpy's allocation)")
    tokens = "float16 tokens" if cache.manifest["token_dtype"] == "fp16" else "int8 tokens -> float16"
    for name in ("read_split", "read_shard"):
        ratios = ", ".join(f"{seconds[ref] / seconds[name]:.2f}" for ref in ("plain", "reused", "read_bytes"))
        line(f"Cache.{name} ({tokens}):", name, f"; ratio {ratios} to the three plain reads (goal >= 0.8 to the first)")


if __name__ == "__main__":
    main()
