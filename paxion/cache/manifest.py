"""The cache directory's layout, its manifest.json and the checks made before any array is trusted."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import xxhash

from paxion.atomic import write_json  # noqa: F401  (the cache's JSON files are written through it)
from paxion.errors import CacheError

SCHEMA_VERSION = 8  # 8: mc_aa_idx (candidates' antonyms); 7: per-clip aa_same/or_same, per-split counts; 6: int8
# tokens with a channel scale; 5: per-clip class_idx; 4: h5py, whole-file xxh3_128; 3: hand-made checksums
MANIFEST_FILE = "manifest.json"
TEXTS_FILE = "texts.h5"
SCORER_FILE = "scorer.pt"  # what the backbone's own score needs besides the arrays (X-CLIP's prompt generator)
PARTS_DIR = "parts"  # per-shard sidecar records and the extraction config, written while extracting
CONFIG_FILE = "config.json"


def shard_file(split: str, k: int) -> str:
    """The file name of shard k of a split."""
    return f"{split}-{k:05d}.h5"


def part_file(split: str, k: int) -> str:
    """The sidecar record name (inside PARTS_DIR) of shard k of a split."""
    return f"{split}-{k:05d}.json"


def file_hash(path: str | Path) -> str:
    """The XXH3-128 digest of a file's bytes, as 32 hex digits (https://xxhash.com)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, xxhash.xxh3_128).hexdigest()


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


def extra_file(root: str | Path, manifest: dict, role: str) -> Path:
    """The path of the file the manifest's `files` records under `role` (e.g. "scorer"), checked against its
    size and XXH3-128; CacheError when the manifest records none or the file is missing or changed."""
    record = manifest.get("files", {}).get(role)
    if record is None:
        raise CacheError(f"{Path(root) / MANIFEST_FILE}: records no {role} file; re-extract with --overwrite")
    path = Path(root) / record["file"]
    problem = check_file(path, record, hashed=True)
    if problem:
        raise CacheError(problem)
    return path


def read_texts(root: Path, manifest: dict) -> tuple[list[str], np.ndarray]:
    """The text table's strings and embeddings [n, d] float32; CacheError unless its hash, count, shape and
    finite values agree with the manifest."""
    texts, path = manifest["texts"], root / manifest["texts"]["file"]
    problem = check_file(path, texts, hashed=True)  # small, and every consumer reads all of it
    if problem:
        raise CacheError(problem)
    try:
        with h5py.File(path, "r") as f:
            strings, emb = list(f["text"].asstr()[()]), f["emb"][()]
    except (OSError, KeyError) as exc:
        raise CacheError(f"{path}: unreadable text table ({exc})") from None
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
    problem = _structure_problem(manifest)
    if problem:
        raise CacheError(f"{root / MANIFEST_FILE}: malformed ({problem})")
    return manifest


_BACKBONE_KEYS = {"name": str, "config_hash": str, "temporal": bool, "embed_dim": int, "token_dim": int,
                  "tokens_per_frame": int}
_FILE_KEYS = {"file": str, "bytes": int, "xxh3_128": str}
_TOP_KEYS = {"backbone": dict, "frames": int, "token_dtype": str, "texts": dict, "splits": dict}
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", int: "an integer", bool: "true or false"}


def _wrong_key(record: object, keys: dict[str, type]) -> str | None:
    """The first of `keys` that `record` lacks or holds with another JSON type, or None."""
    for key, kind in keys.items():
        value = record.get(key) if isinstance(record, dict) else None
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            return f"{key!r} must be {_JSON_TYPES[kind]}"
    return None


def _structure_problem(manifest: dict) -> str | None:
    """Which value the readers rely on has another JSON type than the writer gives it (a hand edit), or None."""
    records = {"": (manifest, _TOP_KEYS)}
    if isinstance(manifest.get("splits"), dict):
        records |= {"backbone: ": (manifest.get("backbone"), _BACKBONE_KEYS), "texts: ": (manifest.get("texts"), _FILE_KEYS)}
        files = manifest.get("files", {})
        records |= {f"file {role!r}: ": (record, _FILE_KEYS) for role, record in
                    (files.items() if isinstance(files, dict) else [("files", None)])}
        for split, info in manifest["splits"].items():
            records[f"split {split!r}: "] = (info, {"clips": int, "shards": list})
            shards = info.get("shards") if isinstance(info, dict) else None
            for k, shard in enumerate(shards if isinstance(shards, list) else []):
                records[f"split {split!r} shard {k}: "] = (shard, _FILE_KEYS | {"clips": int})
    for where, (record, keys) in records.items():
        wrong = _wrong_key(record, keys)
        if wrong is not None:
            return where + wrong
    return None


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
SAME_FIELDS = ("aa_same", "or_same")  # the AA / OR negative embeds like the caption (cut by the text encoder)
# Fields a temporal backbone whose tokens are time-symmetric leaves out: read as the named field flipped in time,
# or as it is (the score context does not depend on the frames' order then: Backbone.encode_score_context).
FLIPPED_FIELDS = {"tokens_rev": "tokens"}
SHARED_FIELDS = {"score_context_rev": "score_context"}


def stored_field(name: str, present) -> tuple[str, bool]:
    """(the field of a shard whose fields are `present` that holds `name`, whether it is read flipped in time)."""
    if name in present:
        return name, False
    if name in FLIPPED_FIELDS:
        return FLIPPED_FIELDS[name], True
    return SHARED_FIELDS.get(name, name), False


def field_specs(manifest: dict) -> dict[str, tuple[str | None, tuple[int, ...]]]:
    """Per field the manifest implies: (dtype kind and size such as "f2", or None for any, per-clip shape)."""
    bb, t, int8 = manifest["backbone"], manifest["frames"], manifest["token_dtype"] == "int8"
    tokens = (t, bb["tokens_per_frame"], bb["token_dim"])
    video = {"tokens": ("i1" if int8 else "f2", tokens), "frames": ("f4", (t, bb["embed_dim"])),
             "pooled": ("f4", (bb["embed_dim"],))} | (
        {"tokens_scale": ("f2", tokens[:-1]), "tokens_channel_scale": ("f2", tokens[-1:])} if int8 else {}) | (
        {"score_context": ("f4", tuple(bb["score_context"]))} if bb.get("score_context") else {})
    specs = video | {"id": ("S", ()), "label": ("i4", ())} | {name: ("b1", ()) for name in ("salient", *SAME_FIELDS)}
    specs |= {name: (None, ()) for name in ("delta_vt", "theta_vv", *INDEX_FIELDS)}
    return specs | ({f"{name}_rev": spec for name, spec in video.items()} if bb["temporal"] else {})


def _value_problems(f: h5py.File, n_texts: int) -> list[str]:
    """Non-finite floats (int8 tokens: their scales) and text indices outside [-1, n_texts) in an open shard."""
    problems = []
    for name in f:
        values = f[name][()]
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            problems.append(f"field {name!r} has {int((~np.isfinite(values)).sum())} non-finite values")
        if (name in INDEX_FIELDS or name in ("mc_idx", "mc_aa_idx")) and ((values < -1) | (values >= n_texts)).any():
            problems.append(f"field {name!r} refers to texts outside [-1, {n_texts})")
    return problems


def shard_problems(path: Path, manifest: dict, record: dict, *, hashed: bool, complete: bool = False) -> list[str]:
    """What is wrong with a shard file: missing, another size, (when `hashed`) another XXH3-128, then datasets
    with another clip count, or another dtype or per-clip shape than `field_specs` (fields it does not name: the
    clip count only); when `complete` also the fields the manifest implies that it lacks, non-finite floats and
    text indices outside the table. Each problem is one line starting with the path."""
    problem = check_file(path, record, hashed=hashed)
    if problem:
        return [problem]
    specs, clips, problems = field_specs(manifest), record["clips"], []
    try:
        with h5py.File(path, "r") as f:
            for name in sorted({*specs, *f}) if complete else list(f):
                kind, shape = specs.get(name, (None, None))
                ds = f.get(name)
                if ds is None and stored_field(name, f)[0] in f:
                    continue  # read from its source field
                if ds is None:
                    problems.append(f"no field {name!r}")
                elif ds.shape[:1] != (clips,):
                    problems.append(f"field {name!r} holds {ds.shape[:1]} clips, the manifest says {clips}")
                elif shape is not None and ds.shape[1:] != shape:
                    problems.append(f"field {name!r} has shape {ds.shape}, expected {(clips, *shape)}")
                elif kind not in (None, ds.dtype.kind if kind == "S" else f"{ds.dtype.kind}{ds.dtype.itemsize}"):
                    problems.append(f"field {name!r} is stored as {ds.dtype}, expected {kind}")
            if complete and not problems:
                problems = _value_problems(f, manifest["texts"]["count"])
    except (OSError, KeyError, ValueError) as exc:
        problems = [f"unreadable ({exc})"]
    return [f"{path}: {p}" for p in problems]


def summarize(manifest: dict) -> dict:
    """What `paxion cache info` shows: backbone, token dtype, saliency settings, per split clips/shards/bytes, the
    salient fraction and the clips whose caption the text encoder cut / whose AA or OR negative embeds like the
    caption, failures by reason."""
    splits = {}
    for name, info in manifest["splits"].items():
        size = sum(s["bytes"] for s in info["shards"])
        splits[name] = {
            "clips": info["clips"],
            "shards": len(info["shards"]),
            "bytes": size,
            "bytes_per_clip": size / info["clips"] if info["clips"] else 0.0,
            "salient_fraction": info["salient"] / info["clips"] if info["clips"] else 0.0,
        } | {key: info[key] for key in ("captions_cut", "aa_same", "or_same")}
    return {**{key: manifest[key] for key in ("backbone", "frames", "token_dtype", "saliency")},
            "texts": manifest["texts"]["count"], "splits": splits, "failed": len(manifest["failed"]),
            "failed_reasons": dict(Counter(f["reason"] for f in manifest["failed"]))}
