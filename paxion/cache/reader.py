"""Reads a feature cache through h5py: checks the manifest first, then returns shards as numpy arrays."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import torch
from h5py import h5d, h5s

from paxion.cache.manifest import (TABLE, FLIPPED_FIELDS, check_backbone, check_file, read_manifest, read_texts,
                                   shard_problems)
from paxion.cache.quant import CHANNEL_SCALE, SCALE, dequantize
from paxion.errors import CacheError

DEQUANTIZE_CLIPS = 16  # clips dequantised at a time on the CPU (bounds the float32 temporary)
MAX_OPEN_SHARDS = 64  # shard files kept open between reads (the ones used last)

Field = np.ndarray | h5d.DatasetID  # a column of the `clips` table, read at open, or a dataset read on demand


def _read_all(field: Field) -> np.ndarray:
    if isinstance(field, np.ndarray):
        return field
    out = np.empty(field.shape, field.dtype)
    field.read(h5s.ALL, h5s.ALL, out, mtype=field.get_type())  # the file's own type: HDF5 copies, no conversion
    return out


class Cache:
    """A feature cache directory written by `paxion extract`.

    root: the cache directory.
    backbone: when given (a spec string, or a Backbone whose config hash is compared too), the cache must
        have been made by it; default None accepts any backbone.
    verify: when True, each shard file's XXH3-128 is compared with the manifest once, before its first read
        (default False: sizes and layout only).
    Raises CacheError for a missing manifest, another schema version (an older one: re-extract), another
    backbone, a shard file that is missing or not the size the manifest records, or a text table that differs
    from its hash or the manifest; reads raise it for a missing field, a field whose clip count, dtype or shape
    differs from what the manifest implies, or (with verify) a shard whose bytes differ from its hash.
    """

    def __init__(self, root: str | Path, *, backbone: object | None = None, verify: bool = False) -> None:
        self.root, self.verify = Path(root), verify
        self.manifest = read_manifest(self.root)
        if backbone is not None:
            check_backbone(self.manifest, backbone, root=self.root)
        for record in [s for split in self.manifest["splits"].values() for s in split["shards"]]:
            problem = check_file(self.root / record["file"], record, hashed=False)
            if problem:
                raise CacheError(problem)
        self.texts, self.text_emb = read_texts(self.root, self.manifest)
        self._checked: set[str] = set()  # shards whose layout (and with verify, hash) has been checked
        self._open: dict[str, tuple[h5py.File, dict[str, Field]]] = {}  # least recently used first
        self._lock = threading.Lock()  # reads come from the loader's thread and the caller's

    def _shard(self, record: dict) -> dict[str, Field]:
        """The fields of shard `record`, checked against the manifest (and with verify its hash) on first use."""
        name, path = record["file"], self.root / record["file"]
        shard = self._open.pop(name, None)
        if shard is None:
            problems = [] if name in self._checked else shard_problems(path, self.manifest, record, hashed=self.verify)
            if problems:
                raise CacheError(problems[0])
            self._checked.add(name)
            try:
                f = h5py.File(path, "r")
                fields = {n: h5d.open(f.id, n.encode()) for n in f}
                table = _read_all(fields.pop(TABLE)) if TABLE in fields else np.empty(0, [])
            except (OSError, KeyError) as exc:
                raise CacheError(f"{path}: not a readable HDF5 file ({exc})") from None
            for column in table.dtype.names or ():
                values = table[column]
                fields[column] = np.array([s.decode() for s in values.tolist()], object) if values.dtype.kind == "S" \
                    else np.ascontiguousarray(values)
            if len(self._open) >= MAX_OPEN_SHARDS:
                self._open.pop(next(iter(self._open)))[0].close()
            shard = (f, fields)
        self._open[name] = shard
        return shard[1]

    @property
    def temporal(self) -> bool:
        """Whether the backbone is temporal (reversed clips are stored) rather than frame-wise."""
        return bool(self.manifest["backbone"]["temporal"])

    @property
    def splits(self) -> list[str]:
        """The split names in the cache."""
        return list(self.manifest["splits"])

    def fields(self, split: str) -> set[str]:
        """The fields every shard of a split stores (a temporal backbone's `tokens_rev` reads even when left out)."""
        stored = [set(shard["fields"]) for shard in self._split(split)["shards"]]
        return set.intersection(*stored) if stored else set()

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
        total, out, start = sum(record["clips"] for record in records), {}, 0
        with self._lock:
            for record in records:
                shard, rows = self._shard(record), slice(start, start + record["clips"])
                names = [n for n in shard if not (dequantize and n.endswith(SCALE))] if fields is None else list(fields)
                for name in names:  # grows by the scales of int8 fields read as stored
                    # a time-symmetric temporal backbone stores no reversed tokens: they are the tokens read backwards
                    source = name if name in shard else FLIPPED_FIELDS.get(name, name)
                    if source not in shard:
                        raise CacheError(f"{self.root / record['file']}: no field {name!r}")
                    field = shard[source]
                    if fields is not None and not dequantize and field.dtype == np.int8:
                        names += [name + SCALE, name + CHANNEL_SCALE]
                    if name not in out:
                        kind = np.float16 if dequantize and field.dtype == np.int8 else field.dtype
                        out[name] = np.empty((total, *field.shape[1:]), kind)
                    try:
                        self._fill(out[name][rows], shard, source)
                    except (OSError, ValueError, TypeError) as exc:
                        raise CacheError(f"{self.root / record['file']}: corrupt shard ({exc})") from None
                    if source != name:
                        out[name][rows] = out[name][rows][:, ::-1].copy()
                start += record["clips"]
        return out

    @staticmethod
    def _fill(rows: np.ndarray, shard: dict[str, Field], name: str) -> None:
        """Fill `rows` (shaped like the field) with field `name` of `shard`, read straight into them when stored
        as `rows.dtype`, else int8 tokens dequantised to float16 a block of clips at a time."""
        field = shard[name]
        if isinstance(field, np.ndarray):
            rows[:] = field
        elif field.dtype == rows.dtype:
            field.read(h5s.create_simple(rows.shape), h5s.ALL, rows)  # HDF5 raises if the counts differ
        else:
            q, scale, channel = (torch.from_numpy(_read_all(shard[name + s])) for s in ("", SCALE, CHANNEL_SCALE))
            for i in range(0, len(q), DEQUANTIZE_CLIPS):
                block = slice(i, i + DEQUANTIZE_CLIPS)
                rows[block] = dequantize(q[block], scale[block], channel[block], torch.float16).numpy()
