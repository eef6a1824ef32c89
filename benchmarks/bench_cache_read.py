"""Reading a whole cache through `paxion.cache.reader.Cache` against a plain sequential read of the same files.

Run: python benchmarks/bench_cache_read.py [--clips 1024] [--dtype fp16]
Goal: reader throughput >= 0.8 x the plain read (both from the page cache, files read once before timing).
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
from bench_extract import make_backbone, make_world

from paxion.cache.reader import Cache
from paxion.extract.pipeline import extract


def best_of(repeats: int, fn) -> float:
    """The fastest of `repeats` timed calls of fn(), in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    """Build a cache from the built-in world, then print reader and plain-read MB/s and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1024)
    parser.add_argument("--dtype", choices=["fp16", "int8"], default="fp16")
    parser.add_argument("--shard-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
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

    def plain() -> None:
        for f in files:
            f.read_bytes()

    def plain_then_float32() -> None:
        for f in files:
            with h5py.File(io.BytesIO(f.read_bytes())) as h:
                h["tokens"][()].astype(np.float32)

    def reader() -> None:
        for split in cache.splits:
            cache.read_split(split)

    plain()  # both timings read from the page cache
    plain_s, reader_s = best_of(args.repeats, plain), best_of(args.repeats, reader)
    converted_s = best_of(args.repeats, plain_then_float32)
    print(f"plain sequential read:                    {size / plain_s / 1e6:8.0f} MB/s")
    print(f"plain read + tokens to float32 (numpy):   {size / converted_s / 1e6:8.0f} MB/s")
    print(f"Cache.read_split (tokens float32):        {size / reader_s / 1e6:8.0f} MB/s of file bytes; "
          f"ratio {plain_s / reader_s:.2f} to the plain read (goal >= 0.8), "
          f"{converted_s / reader_s:.2f} to plain read + conversion")


if __name__ == "__main__":
    main()
