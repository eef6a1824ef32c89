"""`paxion cache verify`: whole-file hashes, shapes, clip counts, non-finite values and text indices of every
cache file, and temporary files left by interrupted writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

from paxion.atomic import TMP_MARK
from paxion.cache.manifest import (
    INDEX_FIELDS,
    PARTS_DIR,
    check_file,
    field_specs,
    layout_problems,
    read_manifest,
    read_texts,
)
from paxion.errors import CacheError


def _value_problems(f: h5py.File, n_texts: int) -> list[str]:
    """Non-finite floats (int8 tokens: their scales) and text indices outside [-1, n_texts) in an open shard."""
    problems = []
    for name in f:
        values = f[name][()]
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            problems.append(f"field {name!r} has {int((~np.isfinite(values)).sum())} non-finite values")
        if (name in INDEX_FIELDS or name == "mc_idx") and ((values < -1) | (values >= n_texts)).any():
            problems.append(f"field {name!r} refers to texts outside [-1, {n_texts})")
    return problems


def _shard_problems(path: Path, manifest: dict, record: dict) -> list[str]:
    problem = check_file(path, record, hashed=True)
    if problem:
        return [problem]
    try:
        with h5py.File(path, "r") as f:
            names = sorted({*field_specs(manifest), *f})
            problems = layout_problems(f, manifest, record["clips"], names)
            problems = problems or _value_problems(f, manifest["texts"]["count"])
    except (OSError, KeyError, ValueError) as exc:
        problems = [f"unreadable ({exc})"]
    return [f"{path}: {p}" for p in problems]


def verify_cache(root: str | Path, *, progress: Callable[[int, int], None] | None = None) -> list[str]:
    """Every problem found in a cache (empty = sound); `progress(done, total)` is called after each shard."""
    root = Path(root)
    try:
        manifest = read_manifest(root)
    except CacheError as exc:
        return [str(exc)]
    problems = [f"{path}: leftover temporary file of an interrupted write (delete it)"
                for folder in (root, root / PARTS_DIR) for path in sorted(folder.glob(f"*{TMP_MARK}*"))]
    try:
        read_texts(root, manifest)
    except CacheError as exc:
        problems.append(str(exc))
    for split, info in manifest["splits"].items():
        if sum(s["clips"] for s in info["shards"]) != info["clips"]:
            problems.append(f"split {split!r}: shard clip counts do not add up to {info['clips']}")
    shards = [s for info in manifest["splits"].values() for s in info["shards"]]
    for done, record in enumerate(shards, start=1):
        problems += _shard_problems(root / record["file"], manifest, record)
        if progress:
            progress(done, len(shards))
    return problems
