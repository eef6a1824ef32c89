"""The cache directory's layout, its manifest.json and the checks made before any array is trusted."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import xxhash

from paxion.atomic import write_json
from paxion.cache.quant import CHANNEL_SCALE, SCALE
from paxion.errors import CacheError

SCHEMA_VERSION = 10  # older ones and what changed: docs/architecture.md section 5
MANIFEST_FILE, TEXTS_FILE, CONFIG_FILE = "manifest.json", "texts.h5", "config.json"
SCORER_FILE = "scorer.pt"  # what the backbone's own score needs besides the arrays (X-CLIP's prompt generator)
PARTS_DIR = "parts"  # per-shard sidecar records and the extraction config, written while extracting
TABLE = "clips"  # the shard's compound dataset: one column per field that is not a video feature
# fields starting with these (reversed, scales) are datasets of their own
FEATURES = ("tokens", "frames", "pooled", "score_context")
# Fields a temporal backbone whose tokens are time-symmetric leaves out, read as (a stored field, whether flipped in
# time): the reversed tokens are the tokens flipped; neither the score context (Backbone.encode_score_context) nor an
# int8 clip's channel scale depends on the frames' order.
DERIVED_FIELDS = {"tokens_rev": ("tokens", True), "tokens_rev_scale": ("tokens_scale", True),
                  "tokens_rev_channel_scale": ("tokens_channel_scale", False),
                  "score_context_rev": ("score_context", False)}


def stored_field(name: str, present) -> tuple[str, bool]:
    """(the field of a shard whose fields are `present` that holds `name`, whether it is read flipped in time)."""
    return (name, False) if name in present else DERIVED_FIELDS.get(name, (name, False))


def shard_file(split: str, k: int, suffix: str = ".h5") -> str:
    """The file name of shard k of a split (with suffix ".json": its sidecar record inside PARTS_DIR)."""
    return f"{split}-{k:05d}{suffix}"


def file_hash(path: str | Path) -> str:
    """The XXH3-128 digest of a file's bytes, as 32 hex digits (https://xxhash.com)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, xxhash.xxh3_128).hexdigest()


def file_record(path: str | Path, **extra: Any) -> dict:
    """The manifest's record of any finished file: {file, bytes, xxh3_128} plus `extra` (e.g. clips, count)."""
    path = Path(path)
    return {"file": path.name, "bytes": path.stat().st_size, "xxh3_128": file_hash(path), **extra}


def check_file(path: Path, record: dict, *, hashed: bool) -> str | None:
    """Why the file at `path` is not the one `record` (`file_record`) describes (missing, another size, and when
    `hashed` another XXH3-128), or None when it is."""
    if not path.is_file():
        return f"{path}: missing cache file"
    if path.stat().st_size != record["bytes"]:
        return f"{path}: {path.stat().st_size} bytes, the manifest says {record['bytes']} (truncated or replaced)"
    if hashed and file_hash(path) != record["xxh3_128"]:
        return f"{path}: xxh3_128 differs from the manifest (the file changed or is corrupt)"
    return None


def read_texts(root: Path, manifest: dict) -> tuple[list[str], np.ndarray]:
    """The text table's strings and embeddings [n, d] float32; CacheError unless its hash, count, shape and
    finite values agree with the manifest."""
    texts, path = manifest["texts"], root / manifest["texts"]["file"]
    problem = check_file(path, texts, hashed=True)  # small, and every consumer reads all of it
    if problem:
        raise CacheError(problem)
    with h5py.File(path, "r") as f:  # its hash matched: the file extraction wrote
        strings, emb = list(f["text"].asstr()[()]), f["emb"][()]
    expected = (texts["count"], manifest["backbone"]["embed_dim"])
    if len(strings) != texts["count"] or emb.shape != expected:
        raise CacheError(f"{path}: {len(strings)} texts / emb {emb.shape}, the manifest says {expected}")
    if not np.isfinite(emb).all():
        raise CacheError(f"{path}: non-finite text embeddings")
    return strings, emb


def read_json(path: str | Path) -> Any:
    """Read a JSON file of the cache, turning a missing or malformed one into CacheError."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CacheError(f"{path}: missing") from None
    except (OSError, ValueError) as exc:
        raise CacheError(f"{path}: unreadable ({exc})") from None


def read_manifest(root: str | Path) -> dict:
    """Load and check a cache's manifest: it must exist, have this code's schema version and match its own
    XXH3-128 (`write_manifest`), so every value is the one extraction wrote (CacheError otherwise; an older schema:
    re-extract)."""
    root = Path(root)
    manifest = read_json(root / MANIFEST_FILE)
    version = manifest.get("schema_version") if isinstance(manifest, dict) else None
    if isinstance(version, int) and version < SCHEMA_VERSION:
        raise CacheError(f"{root}: cache schema version {version} was made by an older paxion, this one reads version "
                         f"{SCHEMA_VERSION}; re-extract it with `paxion extract ... --overwrite`")
    if version != SCHEMA_VERSION:
        raise CacheError(f"{root}: cache schema version {version}, this paxion reads version {SCHEMA_VERSION}")
    if manifest.get("xxh3_128") != _manifest_hash(manifest):
        raise CacheError(f"{root / MANIFEST_FILE}: its values differ from its xxh3_128 (edited or corrupt); rerun the "
                         "`paxion extract` that made the cache: it keeps the finished shards and rewrites the manifest")
    return manifest


def write_manifest(root: str | Path, manifest: dict) -> dict:
    """Write manifest.json atomically with `xxh3_128`: the XXH3-128 of its other keys as `json.dumps(...,
    sort_keys=True, ensure_ascii=False)` writes them (the manifest holds every other file's hash: this closes the
    chain). Returns the manifest written."""
    manifest = manifest | {"xxh3_128": _manifest_hash(manifest)}
    write_json(Path(root) / MANIFEST_FILE, manifest)
    return manifest


def _manifest_hash(manifest: dict) -> str:
    body = {key: value for key, value in manifest.items() if key != "xxh3_128"}
    return xxhash.xxh3_128_hexdigest(json.dumps(body, sort_keys=True, ensure_ascii=False).encode())


def check_backbone(manifest: dict, backbone: object, *, root: str | Path) -> None:
    """Raise CacheError unless the cache was made by `backbone` (a spec string or a Backbone object)."""
    made_by = manifest["backbone"]
    name = backbone if isinstance(backbone, str) else backbone.name
    if name != made_by["name"]:
        raise CacheError(f"{root}: cache was made by backbone {made_by['name']!r}, not {name!r}")
    if not isinstance(backbone, str) and backbone.config_hash() != made_by["config_hash"]:
        raise CacheError(f"{root}: cache was made by {name!r} with config {made_by['config_hash']}, this backbone "
                         f"has config {backbone.config_hash()}")


def field_specs(manifest: dict) -> dict[str, tuple[str | None, tuple[int, ...]]]:
    """Per field the manifest implies: (dtype kind and size such as "f2", "O" for str objects, or None for any,
    per-clip shape); a temporal backbone's reversed features are named `tokens_rev`, `tokens_rev_scale`, ..."""
    bb, t, int8 = manifest["backbone"], manifest["frames"], manifest["token_dtype"] == "int8"
    tokens = (t, bb["tokens_per_frame"], bb["token_dim"])
    specs = {"id": ("O", ()), "label": ("i4", ())} | dict.fromkeys(("salient", "aa_same", "or_same"), ("b1", ()))
    specs |= dict.fromkeys(("delta_vt", "theta_vv", "caption_idx", "template_idx", "aa_idx", "or_idx", "class_idx"),
                           (None, ()))
    for rev in ("", "_rev") if bb["temporal"] else ("",):
        specs |= {f"tokens{rev}": ("i1" if int8 else "f2", tokens), f"frames{rev}": ("f4", (t, bb["embed_dim"])),
                  f"pooled{rev}": ("f4", (bb["embed_dim"],))}
        if int8:
            specs |= {f"tokens{rev}{SCALE}": ("f2", tokens[:-1]), f"tokens{rev}{CHANNEL_SCALE}": ("f2", tokens[-1:])}
        if bb.get("score_context"):
            specs[f"score_context{rev}"] = ("f4", tuple(bb["score_context"]))
    return specs
