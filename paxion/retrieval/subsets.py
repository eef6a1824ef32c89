"""User-given subsets: class lists (a file, or a list shipped as package data) and clip-id pools, one per line."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np

from paxion.errors import PaxionError

# Named class lists shipped with the package: `--classes NAME` reads CLASS_LISTS / f"{NAME}.txt".
CLASS_LISTS = Path(__file__).resolve().parent.parent / "bench" / "data" / "classes"


def read_lines(path: str | Path, *, what: str) -> list[str]:
    """The stripped non-blank lines of a UTF-8 text file; PaxionError when it cannot be read or holds none."""
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PaxionError(f"{path}: cannot read the {what} ({exc})") from None
    items = [line.strip() for line in lines if line.strip()]
    if not items:
        raise PaxionError(f"{path}: the {what} is empty")
    return items


def known_class_lists() -> list[str]:
    """Names of the class lists shipped as package data (e.g. temporal-kinetics, where present)."""
    return sorted(p.stem for p in CLASS_LISTS.glob("*.txt"))


def read_classes(source: str | Path) -> list[str]:
    """Class names, one per line, from a file path or a shipped list's name (`known_class_lists`); an existing
    file wins over a name. Duplicates are dropped, first occurrence kept."""
    path = Path(source)
    if not path.is_file() and str(source) in known_class_lists():
        path = CLASS_LISTS / f"{source}.txt"
    elif not path.is_file():
        known = ", ".join(known_class_lists()) or "none"
        raise PaxionError(f"{source}: no such class list file, and not a shipped list name (shipped: {known})")
    return list(dict.fromkeys(read_lines(path, what="class list")))


def read_ids(path: str | Path) -> list[str]:
    """Clip ids, one per line (e.g. the paper's 2,088-clip SSv2 validation pool)."""
    return read_lines(path, what="clip id list")


def clip_mask(cache, split: str, ids: Collection[str]) -> tuple[np.ndarray, int]:
    """(mask [n] over the split's clips in cache order: id listed in `ids`, how many listed ids the split lacks).

    Listed ids the split lacks (clips that failed extraction, another split's) are counted, not an error;
    PaxionError when it holds none of them."""
    clip_ids = cache.read_split(split, ["id"])["id"].tolist()
    wanted = set(ids)
    mask = np.array([clip in wanted for clip in clip_ids], dtype=bool)
    if not mask.any():
        raise PaxionError(f"none of the {len(wanted)} listed clip ids is in split {split!r} of the cache")
    return mask, len(wanted - set(clip_ids))
