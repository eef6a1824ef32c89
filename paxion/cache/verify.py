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
    REQUIRED_FIELDS,
    check_file,
    field_specs,
    layout_problems,
    read_manifest,
)
from paxion.cache.quant import dequantize_int8
from paxion.errors import CacheError


def _value_problems(f: h5py.File, n_texts: int) -> list[str]:
    """Non-finite floats and text indices outside [-1, n_texts) in an open shard."""
    problems = []
    for name in f:
        stored = f[name][()]
        if stored.dtype.kind == "S" or name.endswith("_scale"):
            continue
        values = dequantize_int8(stored, f[f"{name}_scale"][()]) if stored.dtype == np.int8 else stored
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            problems.append(f"field {name!r} has {int((~np.isfinite(values)).sum())} non-finite values")
        if (name in INDEX_FIELDS or name in ("mc_idx", "mc_aa_idx")) and ((values < -1) | (values >= n_texts)).any():
            problems.append(f"field {name!r} refers to texts outside [-1, {n_texts})")
    return problems


def _shard_problems(path: Path, manifest: dict, record: dict) -> list[str]:
    problem = check_file(path, record, hashed=True)
    if problem:
        return [problem]
    try:
        with h5py.File(path, "r") as f:
            names = sorted({*REQUIRED_FIELDS, *field_specs(manifest), *f})
            problems = layout_problems(f, manifest, record["clips"], names)
            problems = problems or _value_problems(f, manifest["texts"]["count"])
    except (OSError, KeyError, ValueError) as exc:
        problems = [f"unreadable ({exc})"]
    return [f"{path}: {p}" for p in problems]


def _texts_problems(root: Path, manifest: dict) -> list[str]:
    texts, path = manifest["texts"], root / manifest["texts"]["file"]
    problem = check_file(path, texts, hashed=True)
    if problem:
        return [problem]
    with h5py.File(path, "r") as f:
        emb = f["emb"][()]
        expected = (texts["count"], manifest["backbone"]["embed_dim"])
        if len(f["text"]) != texts["count"] or emb.shape != expected:
            return [f"{path}: {len(f['text'])} texts / emb {emb.shape}, the manifest says {expected}"]
    return [] if np.isfinite(emb).all() else [f"{path}: non-finite text embeddings"]


def verify_cache(root: str | Path, *, progress: Callable[[int, int], None] | None = None) -> list[str]:
    """Every problem found in a cache (empty = sound); `progress(done, total)` is called after each shard."""
    root = Path(root)
    try:
        manifest = read_manifest(root)
    except CacheError as exc:
        return [str(exc)]
    problems = [f"{path}: leftover temporary file of an interrupted write (delete it)"
                for folder in (root, root / PARTS_DIR) for path in sorted(folder.glob(f"*{TMP_MARK}*"))]
    problems += _texts_problems(root, manifest)
    for split, info in manifest["splits"].items():
        if sum(s["clips"] for s in info["shards"]) != info["clips"]:
            problems.append(f"split {split!r}: shard clip counts do not add up to {info['clips']}")
    shards = [s for info in manifest["splits"].values() for s in info["shards"]]
    for done, record in enumerate(shards, start=1):
        problems += _shard_problems(root / record["file"], manifest, record)
        if progress:
            progress(done, len(shards))
    return problems
