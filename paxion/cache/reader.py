"""Reads a feature cache through h5py: checks the manifest first, then returns shards as numpy arrays."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
from h5py import h5d, h5s

from paxion.cache.manifest import FLIPPED_FIELDS, check_backbone, check_file, layout_problems, read_manifest
from paxion.cache.quant import dequantize_int8
from paxion.errors import CacheError


def _read_all(ds: h5d.DatasetID, out: np.ndarray | None = None) -> np.ndarray:
    """All of dataset `ds`, read into `out` (C-contiguous; a new array if None); HDF5 raises if their element
    counts differ. h5py's low-level API: its high-level lookups and selections cost more than a small field."""
    out = np.empty(ds.shape, ds.dtype) if out is None else out
    ds.read(h5s.create_simple(out.shape), h5s.ALL, out)
    return out


def _read_field(f: h5py.File, ds: h5d.DatasetID, name: str, out: np.ndarray) -> None:
    """Fill `out` (rows of a result array, shaped like the field) with field `name` (`ds`) of the open shard `f`."""
    if out.dtype == object:
        out[:] = [s.decode() for s in _read_all(ds).tolist()]
    elif ds.dtype == np.int8:
        dequantize_int8(_read_all(ds), _read_all(h5d.open(f.id, f"{name}_scale".encode())), out=out)
    else:
        _read_all(ds, out)


def _open(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise CacheError(f"{path}: not a readable HDF5 file ({exc})") from None


class Cache:
    """A feature cache directory written by `paxion extract`.

    root: the cache directory.
    backbone: when given (a spec string, or a Backbone whose config hash is compared too), the cache must
        have been made by it; default None accepts any backbone.
    verify: when True, each shard file's XXH3-128 is compared with the manifest once, before its first read
        (default False: sizes and layout only).
    Raises CacheError for a missing manifest, another schema version (an older one: re-extract), another
    backbone, a shard file that is missing or not the size the manifest records, or a text table that differs
    from its hash; reads raise it for a missing field, a dataset whose clip count, dtype or shape differs from
    what the manifest implies, or (with verify) a shard whose bytes differ from its hash.
    """

    def __init__(self, root: str | Path, *, backbone: object | None = None, verify: bool = False) -> None:
        self.root = Path(root)
        self.verify = verify
        self.manifest = read_manifest(self.root)
        if backbone is not None:
            check_backbone(self.manifest, backbone, root=self.root)
        texts = self.manifest["texts"]
        for record in [s for split in self.manifest["splits"].values() for s in split["shards"]]:
            self._check(record, hashed=False)
        self._check(texts, hashed=True)  # small, and every consumer reads all of it
        self._opened: set[str] = set()  # shards whose layout (and with verify, hash) has been checked
        with _open(self.root / texts["file"]) as f:
            self.texts: list[str] = list(f["text"].asstr()[()])
            self.text_emb: np.ndarray = f["emb"][()]
        if len(self.texts) != texts["count"]:
            raise CacheError(f"{self.root / texts['file']}: {len(self.texts)} texts, the manifest says {texts['count']}")

    def _check(self, record: dict, *, hashed: bool) -> None:
        problem = check_file(self.root / record["file"], record, hashed=hashed)
        if problem:
            raise CacheError(problem)

    def _open_shard(self, record: dict) -> h5py.File:
        """Open a shard; on its first open check its layout against the manifest (and with verify its hash)."""
        first = record["file"] not in self._opened
        if first and self.verify:
            self._check(record, hashed=True)
        f = _open(self.root / record["file"])
        problems = layout_problems(f, self.manifest, record["clips"], list(f)) if first else []
        if problems:
            f.close()
            raise CacheError(f"{self.root / record['file']}: {problems[0]}")
        self._opened.add(record["file"])
        return f

    @property
    def temporal(self) -> bool:
        """Whether the backbone is temporal (reversed clips are stored) rather than frame-wise."""
        return bool(self.manifest["backbone"]["temporal"])

    @property
    def splits(self) -> list[str]:
        """The split names in the cache."""
        return list(self.manifest["splits"])

    def num_clips(self, split: str) -> int:
        """How many clips a split holds."""
        return self._split(split)["clips"]

    def num_shards(self, split: str) -> int:
        """How many shard files a split has."""
        return len(self._split(split)["shards"])

    def _split(self, split: str) -> dict:
        if split not in self.manifest["splits"]:
            raise CacheError(f"{self.root}: no split {split!r} (has {', '.join(self.splits)})")
        return self.manifest["splits"][split]

    def read_shard(self, split: str, k: int, fields: list[str] | None = None) -> dict[str, np.ndarray]:
        """All clips of shard k as numpy arrays in the stored precision (fp16 tokens; int8 tokens dequantised
        to float16; ids as str objects); `fields` None = every field but the int8 scales."""
        return self._read(split, [k], fields)

    def read_split(self, split: str, fields: list[str] | None = None) -> dict[str, np.ndarray]:
        """All clips of a split, its shards in order, each read straight into its rows of the result."""
        if not self._split(split)["shards"]:
            raise CacheError(f"{self.root}: split {split!r} has no clips")
        return self._read(split, range(self.num_shards(split)), fields)

    def _read(self, split: str, shards: Sequence[int], fields: list[str] | None) -> dict[str, np.ndarray]:
        """Shards `shards` of a split, concatenated; the result is allocated once from the manifest's clip counts."""
        records = [self._split(split)["shards"][k] for k in shards]
        rows = sum(record["clips"] for record in records)
        out: dict[str, np.ndarray] = {}
        start = 0
        for record in records:
            path, clips = self.root / record["file"], record["clips"]
            with self._open_shard(record) as f:
                for name in [n for n in f if not n.endswith("_scale")] if fields is None else fields:
                    # a time-symmetric temporal backbone stores no reversed tokens: they are the tokens read backwards
                    source = FLIPPED_FIELDS.get(name, name) if name not in f else name
                    try:
                        ds = h5d.open(f.id, source.encode())
                    except KeyError:
                        raise CacheError(f"{path}: no field {name!r}") from None
                    if name not in out:
                        loaded = object if ds.dtype.kind == "S" else np.float16 if ds.dtype == np.int8 else ds.dtype
                        out[name] = np.empty((rows, *ds.shape[1:]), loaded)
                    try:
                        _read_field(f, ds, source, out[name][start : start + clips])
                        if source != name:
                            out[name][start : start + clips] = out[name][start : start + clips, ::-1].copy()
                    except (OSError, KeyError, ValueError, TypeError) as exc:
                        raise CacheError(f"{path}: corrupt shard ({exc})") from None
            start += clips
        return out
