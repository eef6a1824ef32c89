"""Reading a whole cache through `paxion.cache.reader.Cache` against a plain sequential read of the same files.

Run: python benchmarks/bench_cache_read.py [--clips 1024] [--dtype fp16]
Goal: reader throughput >= 0.8 x the plain read (both from the page cache, files read once before timing).
The h5py line is the floor a checksummed HDF5 read sets: the reader returns float16 tokens (int8 ones
dequantised to float16), so what is left beyond it is the dequantisation of int8 caches.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py
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

    def h5py_as_stored() -> None:
        for f in files:
            with h5py.File(f) as h:
                for ds in h.values():
                    ds[()]

    def reader() -> None:
        for split in cache.splits:
            cache.read_split(split)

    plain()  # every timing reads from the page cache
    plain_s, stored_s, reader_s = (best_of(args.repeats, fn) for fn in (plain, h5py_as_stored, reader))
    print(f"plain sequential read:                      {size / plain_s / 1e6:8.0f} MB/s")
    print(f"h5py read of every dataset, as stored:      {size / stored_s / 1e6:8.0f} MB/s "
          "(HDF5 verifies each chunk's fletcher32 checksum)")
    tokens = "float16 tokens" if cache.manifest["token_dtype"] == "fp16" else "int8 tokens -> float16"
    print(f"Cache.read_split ({tokens + '):':<26}{size / reader_s / 1e6:8.0f} MB/s of file bytes; "
          f"ratio {plain_s / reader_s:.2f} to the plain read (goal >= 0.8), "
          f"{stored_s / reader_s:.2f} to the h5py read")


if __name__ == "__main__":
    main()
