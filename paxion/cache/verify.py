"""`paxion cache verify`: whole-file hashes, shapes, clip counts, non-finite values and text indices of every
cache file, and temporary files left by interrupted writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from paxion.atomic import TMP_MARK
from paxion.cache.manifest import PARTS_DIR, check_file, read_manifest, read_texts
from paxion.cache.reader import open_shard
from paxion.errors import CacheError


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
    files = [check_file(root / record["file"], record, hashed=True) for record in manifest["files"].values()]
    problems += filter(None, files)
    for split, info in manifest["splits"].items():
        if sum(s["clips"] for s in info["shards"]) != info["clips"]:
            problems.append(f"split {split!r}: shard clip counts do not add up to {info['clips']}")
    shards = [s for info in manifest["splits"].values() for s in info["shards"]]
    for done, record in enumerate(shards, start=1):
        problems += open_shard(root / record["file"], manifest, record, hashed=True, complete=True)[0]
        if progress:
            progress(done, len(shards))
    return problems
