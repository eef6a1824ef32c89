"""`paxion cache verify`: checksums (file and field), shapes, clip counts and non-finite values of every cache file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

from paxion.cache.manifest import checksum, read_manifest, sha256_file
from paxion.cache.quant import dequantize_int8
from paxion.cache.writer import field_layout
from paxion.errors import CacheError

INDEX_FIELDS = ("caption_idx", "template_idx", "aa_idx", "or_idx")


def _expected_shapes(manifest: dict) -> dict[str, tuple[int, ...]]:
    """The per-clip shape of every field a shard must hold."""
    bb, t = manifest["backbone"], manifest["frames"]
    video = {
        "tokens": (t, bb["tokens_per_frame"], bb["token_dim"]),
        "frames": (t, bb["embed_dim"]),
        "pooled": (bb["embed_dim"],),
    }
    shapes = {**video, "id": (), "label": (), "delta_vt": (), "theta_vv": (), "salient": ()}
    shapes |= {name: () for name in INDEX_FIELDS}
    if bb["temporal"]:
        shapes |= {f"{name}_rev": shape for name, shape in video.items()}
    if manifest["token_dtype"] == "int8":
        shapes |= {f"{name}_scale": shapes[name][:-1] for name in ("tokens", "tokens_rev") if name in shapes}
    return shapes


def _check_file(path: Path, record: dict) -> list[str]:
    if not path.is_file():
        return [f"{path}: missing"]
    if "bytes" in record and path.stat().st_size != record["bytes"]:
        return [f"{path}: {path.stat().st_size} bytes, manifest says {record['bytes']}"]
    if sha256_file(path) != record["sha256"]:
        return [f"{path}: sha256 differs from the manifest (file changed or corrupt)"]
    return []


def _check_shard(f: h5py.File, manifest: dict, record: dict, n_texts: int) -> list[str]:
    problems = []
    n = record["clips"]
    for name, shape in _expected_shapes(manifest).items():
        if name not in f:
            problems.append(f"field {name!r} missing")
        elif f[name].shape != (n, *shape):
            problems.append(f"field {name!r} has shape {f[name].shape}, expected {(n, *shape)}")
    if problems:
        return problems
    for name in f:
        a = f[name]
        text = h5py.check_string_dtype(a.dtype) is not None
        stored = a[()]
        if field_layout(a) != record.get("fields", {}).get(name):
            problems.append(f"field {name!r} lies in the file otherwise than the manifest says (offset, dtype, shape)")
        if checksum(stored) != record.get("checksums", {}).get(name):
            problems.append(f"field {name!r} does not match its checksum in the manifest")
        if text or name.endswith("_scale"):
            continue
        values = dequantize_int8(stored, f[f"{name}_scale"][()]) if stored.dtype == np.int8 else stored
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            problems.append(f"field {name!r} has {int((~np.isfinite(values)).sum())} non-finite values")
        if (name in INDEX_FIELDS or name == "mc_idx") and ((values < -1) | (values >= n_texts)).any():
            problems.append(f"field {name!r} refers to texts outside [-1, {n_texts})")
    return problems


def verify_cache(root: str | Path, *, progress: Callable[[int, int], None] | None = None) -> list[str]:
    """Every problem found in a cache (empty = sound); `progress(done, total)` is called after each file."""
    root = Path(root)
    try:
        manifest = read_manifest(root)
    except CacheError as exc:
        return [str(exc)]
    texts = manifest["texts"]
    shards = [(split, s) for split, info in manifest["splits"].items() for s in info["shards"]]
    problems = _check_file(root / texts["file"], texts)
    if not problems:
        with h5py.File(root / texts["file"], "r") as f:
            emb = f["emb"][()]
            if len(f["text"]) != texts["count"] or emb.shape != (texts["count"], manifest["backbone"]["embed_dim"]):
                problems.append(
                    f"{root / texts['file']}: {len(f['text'])} texts / emb {emb.shape}, manifest says {texts['count']}"
                )
            if not np.isfinite(emb).all():
                problems.append(f"{root / texts['file']}: non-finite text embeddings")
    for split, info in manifest["splits"].items():
        if sum(s["clips"] for s in info["shards"]) != info["clips"]:
            problems.append(f"split {split!r}: shard clip counts do not add up to {info['clips']}")
    for done, (split, record) in enumerate(shards, start=1):
        path = root / record["file"]
        file_problems = _check_file(path, record)
        if not file_problems:
            try:
                with h5py.File(path, "r") as f:
                    file_problems = _check_shard(f, manifest, record, texts["count"])
            except (OSError, KeyError, ValueError) as exc:
                file_problems = [f"unreadable ({exc})"]
            file_problems = [f"{path}: {p}" for p in file_problems]
        problems += file_problems
        if progress:
            progress(done, len(shards))
    return problems
