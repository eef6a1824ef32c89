"""The cache directory's layout, its manifest.json and the checks made before any array is trusted."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from paxion.errors import CacheError

SCHEMA_VERSION = 3  # 3: field layout in the manifest, ids as fixed-length UTF-8; 2: contiguous fields with
# checksums in the manifest; 1: fletcher32 chunks
MANIFEST_FILE = "manifest.json"
TEXTS_FILE = "texts.h5"
PARTS_DIR = "parts"  # per-shard sidecar records and the extraction config, written while extracting
CONFIG_FILE = "config.json"


def shard_file(split: str, k: int) -> str:
    """The file name of shard k of a split."""
    return f"{split}-{k:05d}.h5"


def part_file(split: str, k: int) -> str:
    """The sidecar record name (inside PARTS_DIR) of shard k of a split."""
    return f"{split}-{k:05d}.json"


def sha256_file(path: str | Path) -> str:
    """The hex sha256 digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


CHECKSUM_BLOCK = 4096  # bytes: a disk page, the unit in which storage loses or misplaces data
_WORDS = CHECKSUM_BLOCK // 8


class Checksum:
    """A Fletcher-style checksum of bytes fed in order by `update` (every piece but the last a whole number of
    4 KiB blocks); `hexdigest()` gives the 32 hex digits the manifest records per shard field."""

    # The 4 KiB blocks' 64-bit words are summed mod 2**64 (the last block zero-padded); the digest is the sum of
    # the block sums and their sum weighted by position, so one changed word always shows and a moved block almost
    # always. Why not a standard hash: the read itself copies 5-9 GB/s from the page cache and these numpy sums
    # run at ~16 GB/s (~34 GB/s on bytes still in the CPU cache, which is how the reader feeds them), while sha256
    # runs at 1.6 GB/s, zlib's crc32 at 3.3 and HDF5's fletcher32 filter at ~1.4 (BENCHMARKS.md). The loader
    # reads shards on a background thread while training holds the cores, so the check stays single-threaded.
    # The whole-file sha256 stays for `paxion cache verify`.

    def __init__(self) -> None:
        self._sums: list[np.ndarray] = []  # the block sums so far, weighted only at the end (fewer numpy calls)

    def update(self, data: np.ndarray) -> None:
        """Add the next bytes (a C-contiguous uint8 array)."""
        whole = len(data) - len(data) % CHECKSUM_BLOCK
        self._sums.append(data[:whole].view(np.uint64).reshape(-1, _WORDS).sum(axis=1))
        if whole < len(data):
            last = np.zeros(CHECKSUM_BLOCK, np.uint8)
            last[: len(data) - whole] = data[whole:]
            self._sums.append(last.view(np.uint64).sum(keepdims=True))

    def hexdigest(self) -> str:
        """The checksum of the bytes so far."""
        sums = np.concatenate(self._sums) if self._sums else np.zeros(0, np.uint64)
        weighted = sums * np.arange(1, len(sums) + 1, dtype=np.uint64)
        return f"{int(sums.sum()):016x}{int(weighted.sum()):016x}"


def checksum(a: np.ndarray) -> str:
    """The checksum (see Checksum) of a numeric or fixed-length bytes array's stored bytes."""
    state = Checksum()
    state.update(np.ascontiguousarray(a).reshape(-1).view(np.uint8))
    return state.hexdigest()


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON atomically: to a temporary name, then rename over the target."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


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
