"""Reads a feature cache through h5py: checks the manifest first, then returns shards as numpy arrays."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import torch
from h5py import h5d, h5s

from paxion.cache.manifest import (
    check_backbone,
    check_file,
    extra_file,
    read_manifest,
    read_texts,
    shard_problems,
    stored_field,
)
from paxion.cache.quant import CHANNEL_SCALE, SCALE, dequantize
from paxion.errors import CacheError

DEQUANTIZE_CLIPS = 16  # clips dequantised at a time on the CPU (bounds the float32 temporary)


def _read_all(ds: h5d.DatasetID, out: np.ndarray | None = None) -> np.ndarray:
    """All of dataset `ds`, read into `out` (C-contiguous; a new array if None); HDF5 raises if their element
    counts differ. h5py's low-level API: its high-level lookups and selections cost more than a small field."""
    out = np.empty(ds.shape, ds.dtype) if out is None else out
    ds.read(h5s.create_simple(out.shape), h5s.ALL, out)
    return out


def _open_field(f: h5py.File, name: str) -> h5d.DatasetID:
    try:
        return h5d.open(f.id, name.encode())
    except KeyError:
        raise CacheError(f"{f.filename}: no field {name!r}") from None


def _read_field(f: h5py.File, ds: h5d.DatasetID, stored: np.dtype, name: str, out: np.ndarray) -> None:
    """Fill `out` (rows of a result array, shaped like the field) with field `name` (`ds`, stored as `stored`) of
    the open shard `f`: strings decoded, int8 tokens dequantised to float16 when `out` is float16, else as stored."""
    if out.dtype == object:
        out[:] = [s.decode() for s in _read_all(ds).tolist()]
    elif stored == out.dtype:
        _read_all(ds, out)
    else:  # on the CPU, a block of clips at a time
        q, scale, channel = (torch.from_numpy(_read_all(_open_field(f, name + s))) for s in ("", SCALE, CHANNEL_SCALE))
        for i in range(0, len(q), DEQUANTIZE_CLIPS):
            block = slice(i, i + DEQUANTIZE_CLIPS)
            out[block] = dequantize(q[block], scale[block], channel[block], torch.float16).numpy()


class Cache:
    """A feature cache directory written by `paxion extract`.

    root: the cache directory.
    backbone: when given (a spec string, or a Backbone whose config hash is compared too), the cache must
        have been made by it; default None accepts any backbone.
    verify: when True, each shard file's XXH3-128 is compared with the manifest once, before its first read
        (default False: sizes and layout only).
    Raises CacheError for a missing manifest, another schema version (an older one: re-extract), another
    backbone, a shard file that is missing or not the size the manifest records, or a text table that differs
    from its hash or the manifest; reads raise it for a missing field, a dataset whose clip count, dtype or shape
    differs from what the manifest implies, or (with verify) a shard whose bytes differ from its hash.
    """

    def __init__(self, root: str | Path, *, backbone: object | None = None, verify: bool = False) -> None:
        self.root, self.verify = Path(root), verify
        self.manifest = read_manifest(self.root)
        if backbone is not None:
            check_backbone(self.manifest, backbone, root=self.root)
        for record in [s for split in self.manifest["splits"].values() for s in split["shards"]] + list(
                self.manifest.get("files", {}).values()):
            problem = check_file(self.root / record["file"], record, hashed=False)
            if problem:
                raise CacheError(problem)
        self.texts, self.text_emb = read_texts(self.root, self.manifest)
        self._opened: set[str] = set()  # shards whose layout (and with verify, hash) has been checked

    def _open_shard(self, record: dict) -> h5py.File:
        """Open a shard; on its first open check its layout against the manifest (and with verify its hash)."""
        path = self.root / record["file"]
        if record["file"] not in self._opened:
            problems = shard_problems(path, self.manifest, record, hashed=self.verify)
            if problems:
                raise CacheError(problems[0])
            self._opened.add(record["file"])
        try:
            return h5py.File(path, "r")
        except OSError as exc:
            raise CacheError(f"{path}: not a readable HDF5 file ({exc})") from None

    def extra_file(self, role: str) -> Path:
        """The path of the manifest's extra file `role` (e.g. "scorer"), its hash checked (`manifest.extra_file`)."""
        return extra_file(self.root, self.manifest, role)

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

    def read_shard(self, split: str, k: int, fields: Sequence[str] | None = None, *,
                   dequantize: bool = True) -> dict[str, np.ndarray]:
        """All clips of shard k as numpy arrays (ids as str objects); `fields` None = every field. Tokens come
        back in the stored precision: float16, or int8 ones dequantised on the CPU to float16 (their scale fields
        not returned); with `dequantize=False` int8 tokens come back as stored, each with its `{name}_scale` and
        `{name}_channel_scale` fields, for `paxion.cache.quant.as_float32` to dequantise on the device."""
        return self._read(split, [k], fields, dequantize)

    def read_split(self, split: str, fields: Sequence[str] | None = None, *,
                   dequantize: bool = True) -> dict[str, np.ndarray]:
        """All clips of a split as `read_shard` gives them, its shards in order, each read straight into its rows
        of the result."""
        if not self._split(split)["shards"]:
            raise CacheError(f"{self.root}: split {split!r} has no clips")
        return self._read(split, range(self.num_shards(split)), fields, dequantize)

    def _read(self, split: str, shards: Sequence[int], fields: Sequence[str] | None,
              dequantize: bool) -> dict[str, np.ndarray]:
        """Shards `shards` of a split, concatenated; the result is allocated once from the manifest's clip counts."""
        records = [self._split(split)["shards"][k] for k in shards]
        rows_total, out, start = sum(record["clips"] for record in records), {}, 0
        for record in records:
            with self._open_shard(record) as f:
                names = [n for n in f if not (dequantize and n.endswith(SCALE))] if fields is None else list(fields)
                for name in names:  # grows by the scales of int8 fields read as stored
                    # a time-symmetric temporal backbone stores no reversed tokens: they are the tokens read backwards
                    source, flipped = stored_field(name, f)
                    ds = _open_field(f, source)
                    stored = ds.dtype
                    if fields is not None and not dequantize and stored == np.int8:
                        names += [name + SCALE, name + CHANNEL_SCALE]
                    if name not in out:
                        kind = np.float16 if dequantize and stored == np.int8 else stored
                        out[name] = np.empty((rows_total, *ds.shape[1:]), object if stored.kind == "S" else kind)
                    try:
                        rows = out[name][start : start + record["clips"]]
                        _read_field(f, ds, stored, source, rows)
                        if flipped:
                            rows[:] = rows[:, ::-1].copy()
                    except (OSError, KeyError, ValueError, TypeError) as exc:
                        raise CacheError(f"{self.root / record['file']}: corrupt shard ({exc})") from None
            start += record["clips"]
        return out
