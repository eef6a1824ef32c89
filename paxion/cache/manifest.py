"""The cache directory's layout, its manifest.json and the checks made before any array is trusted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import xxhash

from paxion.atomic import write_json  # noqa: F401  (the cache's JSON files are written through it)
from paxion.errors import CacheError

SCHEMA_VERSION = 6  # 6: mc_aa_idx (candidates' antonyms); 5: per-clip class_idx; 4: h5py, whole-file xxh3_128 per file; 3: field offsets, own checksums
MANIFEST_FILE = "manifest.json"
TEXTS_FILE = "texts.h5"
PARTS_DIR = "parts"  # per-shard sidecar records and the extraction config, written while extracting
CONFIG_FILE = "config.json"
HASH_BLOCK = 1 << 22  # bytes hashed per read


def shard_file(split: str, k: int) -> str:
    """The file name of shard k of a split."""
    return f"{split}-{k:05d}.h5"


def part_file(split: str, k: int) -> str:
    """The sidecar record name (inside PARTS_DIR) of shard k of a split."""
    return f"{split}-{k:05d}.json"


def file_hash(path: str | Path) -> str:
    """The XXH3-128 digest of a file's bytes, as 32 hex digits (https://xxhash.com)."""
    digest = xxhash.xxh3_128()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def file_record(path: str | Path, **extra: Any) -> dict:
    """The manifest's record of a finished file: {file, bytes, xxh3_128} plus `extra` (e.g. clips, count)."""
    path = Path(path)
    return {"file": path.name, "bytes": path.stat().st_size, "xxh3_128": file_hash(path), **extra}


def check_file(path: Path, record: dict, *, hashed: bool) -> str | None:
    """Why the file at `path` is not the one `record` describes (missing, another size, and when `hashed` another
    XXH3-128), or None when it is."""
    if not path.is_file():
        return f"{path}: missing cache file"
    if path.stat().st_size != record["bytes"]:
        return f"{path}: {path.stat().st_size} bytes, the manifest says {record['bytes']} (truncated or replaced)"
    if hashed and file_hash(path) != record["xxh3_128"]:
        return f"{path}: xxh3_128 differs from the manifest (the file changed or is corrupt)"
    return None


def read_json(path: str | Path) -> Any:
    """Read a JSON file of the cache, turning a missing or malformed one into CacheError."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CacheError(f"{path}: missing") from None
    except (OSError, ValueError) as exc:
        raise CacheError(f"{path}: unreadable ({exc})") from None


def read_manifest(root: str | Path) -> dict:
    """Load and check a cache's manifest: it must exist and have this code's schema version."""
    root = Path(root)
    if not root.is_dir():
        raise CacheError(f"{root}: not a cache directory")
    manifest = read_json(root / MANIFEST_FILE)
    version = manifest.get("schema_version") if isinstance(manifest, dict) else None
    if isinstance(version, int) and version < SCHEMA_VERSION:
        raise CacheError(
            f"{root}: cache schema version {version} was made by an older paxion, this one reads version "
            f"{SCHEMA_VERSION}; re-extract it with `paxion extract ... --overwrite`"
        )
    if version != SCHEMA_VERSION:
        raise CacheError(f"{root}: cache schema version {version}, this paxion reads version {SCHEMA_VERSION}")
    return manifest


def check_backbone(manifest: dict, backbone: object, *, root: str | Path) -> None:
    """Raise CacheError unless the cache was made by `backbone` (a spec string or a Backbone object)."""
    made_by = manifest["backbone"]
    name = backbone if isinstance(backbone, str) else backbone.name
    if name != made_by["name"]:
        raise CacheError(f"{root}: cache was made by backbone {made_by['name']!r}, not {name!r}")
    if not isinstance(backbone, str) and backbone.config_hash() != made_by["config_hash"]:
        raise CacheError(
            f"{root}: cache was made by {name!r} with config {made_by['config_hash']}, "
            f"this backbone has config {backbone.config_hash()}"
        )


INDEX_FIELDS = ("caption_idx", "template_idx", "aa_idx", "or_idx", "class_idx")
REQUIRED_FIELDS = ("id", "tokens", "frames", "pooled", "label", "delta_vt", "theta_vv", "salient", *INDEX_FIELDS)


def field_specs(manifest: dict) -> dict[str, tuple[str | None, tuple[int, ...]]]:
    """Per field the manifest implies: (dtype kind and size such as "f2", or None for any, per-clip shape)."""
    bb, t, int8 = manifest["backbone"], manifest["frames"], manifest["token_dtype"] == "int8"
    tokens = (t, bb["tokens_per_frame"], bb["token_dim"])
    video = {"tokens": ("i1" if int8 else "f2", tokens), "frames": ("f4", (t, bb["embed_dim"])),
             "pooled": ("f4", (bb["embed_dim"],))} | ({"tokens_scale": ("f2", tokens[:-1])} if int8 else {})
    specs = video | {"id": ("S", ()), "label": ("i4", ()), "salient": ("b1", ())}
    specs |= {name: (None, ()) for name in ("delta_vt", "theta_vv", *INDEX_FIELDS)}
    return specs | ({f"{name}_rev": spec for name, spec in video.items()} if bb["temporal"] else {})


def layout_problems(f: h5py.File, manifest: dict, clips: int, names: list[str]) -> list[str]:
    """What is wrong with datasets `names` of an open shard holding `clips` clips: missing, another clip count,
    or another dtype or per-clip shape than `field_specs` (fields it does not name: the clip count only)."""
    specs, problems = field_specs(manifest), []
    for name in names:
        kind, shape = specs.get(name, (None, None))
        ds = f.get(name)
        if ds is None:
            problems.append(f"no field {name!r}")
        elif ds.shape[:1] != (clips,):
            problems.append(f"field {name!r} holds {ds.shape[:1]} clips, the manifest says {clips}")
        elif shape is not None and ds.shape[1:] != shape:
            problems.append(f"field {name!r} has shape {ds.shape}, expected {(clips, *shape)}")
        elif kind not in (None, ds.dtype.kind if kind == "S" else f"{ds.dtype.kind}{ds.dtype.itemsize}"):
            problems.append(f"field {name!r} is stored as {ds.dtype}, expected {kind}")
    return problems


def summarize(manifest: dict) -> dict:
    """What `paxion cache info` shows: backbone, token dtype, per-split clips/shards/bytes, failures by reason."""
    splits = {}
    for name, info in manifest["splits"].items():
        size = sum(s["bytes"] for s in info["shards"])
        splits[name] = {
            "clips": info["clips"],
            "shards": len(info["shards"]),
            "bytes": size,
            "bytes_per_clip": size / info["clips"] if info["clips"] else 0.0,
        }
    reasons: dict[str, int] = {}
    for f in manifest["failed"]:
        reasons[f["reason"]] = reasons.get(f["reason"], 0) + 1
    return {
        "backbone": manifest["backbone"],
        "frames": manifest["frames"],
        "token_dtype": manifest["token_dtype"],
        "texts": manifest["texts"]["count"],
        "splits": splits,
        "failed": len(manifest["failed"]),
        "failed_reasons": reasons,
    }
