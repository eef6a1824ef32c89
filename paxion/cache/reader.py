"""Reads a feature cache through h5py: checks the manifest first, then returns shards as numpy arrays."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import torch
from h5py import h5d, h5s

from paxion.cache.manifest import (
    TABLE,
    check_backbone,
    check_file,
    extra_file,
    field_specs,
    read_manifest,
    read_texts,
    stored_field,
)
from paxion.cache.quant import CHANNEL_SCALE, SCALE
from paxion.cache.quant import dequantize as dequantize_int8
from paxion.errors import CacheError

DEQUANTIZE_CLIPS = 16  # clips dequantised at a time on the CPU (bounds the float32 temporary)
MAX_OPEN_SHARDS = 64  # shard files kept open between reads (the ones used last)
Field = np.ndarray | h5d.DatasetID  # a column of a shard's `clips` table (read at open) or an open dataset


def _read_all(field: Field) -> np.ndarray:
    if isinstance(field, np.ndarray):
        return field
    out = np.empty(field.shape, field.dtype)
    field.read(h5s.ALL, h5s.ALL, out, mtype=field.get_type())  # in the file's own type: a copy, no conversion
    return out


def _layout_problems(fields: dict[str, Field], manifest: dict, clips: int, complete: bool) -> list[str]:
    specs, problems = field_specs(manifest), []
    for name in sorted({*specs, *fields}) if complete else fields:
        kind, shape = specs.get(name, (None, None))
        field = fields.get(name)
        if field is None and stored_field(name, fields)[0] in fields:
            continue  # read from its source field
        if field is None:
            problems.append(f"no field {name!r}")
        elif field.shape[:1] != (clips,):
            problems.append(f"field {name!r} holds {field.shape[:1]} clips, the manifest says {clips}")
        elif shape is not None and field.shape[1:] != shape:
            problems.append(f"field {name!r} has shape {field.shape}, expected {(clips, *shape)}")
        elif kind not in (None, "O" if field.dtype.kind == "O" else f"{field.dtype.kind}{field.dtype.itemsize}"):
            problems.append(f"field {name!r} is stored as {field.dtype}, expected {kind}")
    for name, values in ((n, _read_all(f)) for n, f in fields.items()) if complete and not problems else ():
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            problems.append(f"field {name!r} has {int((~np.isfinite(values)).sum())} non-finite values")
        if name.endswith("_idx") and ((values < -1) | (values >= manifest["texts"]["count"])).any():
            problems.append(f"field {name!r} refers to texts outside [-1, {manifest['texts']['count']})")
    return problems


def open_shard(path: Path, manifest: dict, record: dict, *, hashed: bool,
               complete: bool = False) -> tuple[list[str], h5py.File | None, dict[str, Field]]:
    """Open and check a shard file: (problems, the open file or None, its fields: the datasets open, the `clips`
    table's columns read, ids as str objects). Problems, one line each starting with the path: missing, another
    size, (when `hashed`) another XXH3-128, unreadable, then fields with another clip count, or another dtype or
    per-clip shape than `field_specs` (fields it does not name: the clip count only); when `complete` also the
    fields the manifest implies that it lacks, non-finite floats and text indices outside the table."""
    problem = check_file(path, record, hashed=hashed)
    if problem:
        return [problem], None, {}
    try:
        f = h5py.File(path, "r")
        fields = {n: h5d.open(f.id, n.encode()) for n in f}
        table = _read_all(fields.pop(TABLE))
    except (OSError, KeyError) as exc:
        return [f"{path}: unreadable ({exc})"], None, {}
    for name in table.dtype.names:
        values = table[name]
        fields[name] = (np.array([s.decode() for s in values.tolist()], object) if values.dtype.kind == "S"
                        else np.ascontiguousarray(values))
    return [f"{path}: {p}" for p in _layout_problems(fields, manifest, record["clips"], complete)], f, fields


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
        for record in [s for split in self.manifest["splits"].values() for s in split["shards"]] + list(
                self.manifest.get("files", {}).values()):
            problem = check_file(self.root / record["file"], record, hashed=False)
            if problem:
                raise CacheError(problem)
        self.texts, self.text_emb = read_texts(self.root, self.manifest)
        self._hashed: set[str] = set()  # shards checked against their hash (with verify)
        self._open: dict[str, tuple[h5py.File, dict[str, Field]]] = {}  # the MAX_OPEN_SHARDS used last, oldest first
        self._lock = threading.Lock()  # reads come from the loader's thread and the caller's

    def _shard(self, record: dict) -> dict[str, Field]:
        """The fields of shard `record` (`open_shard`); its hash is checked (with verify) before its first read."""
        name = record["file"]
        if name not in self._open:
            hashed = self.verify and name not in self._hashed
            problems, f, fields = open_shard(self.root / name, self.manifest, record, hashed=hashed)
            if problems:
                if f is not None:
                    f.close()
                raise CacheError(problems[0])
            self._hashed.add(name)
            if len(self._open) >= MAX_OPEN_SHARDS:
                self._open.pop(next(iter(self._open)))[0].close()
            self._open[name] = (f, fields)
        self._open[name] = self._open.pop(name)  # most recently used last
        return self._open[name][1]

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
        of the result (allocated once from the manifest's clip counts)."""
        if not self._split(split)["shards"]:
            raise CacheError(f"{self.root}: split {split!r} has no clips")
        return self._read(split, range(self.num_shards(split)), fields, dequantize)

    def _read(self, split: str, shards: Sequence[int], fields: Sequence[str] | None,
              dequantize: bool) -> dict[str, np.ndarray]:
        records = [self._split(split)["shards"][k] for k in shards]
        total, out, start = sum(record["clips"] for record in records), {}, 0
        with self._lock:
            for record in records:
                shard, rows = self._shard(record), slice(start, start + record["clips"])
                names = [n for n in shard if not (dequantize and n.endswith(SCALE))] if fields is None else list(fields)
                for name in names:  # grows by the scales of int8 fields read as stored
                    # a time-symmetric temporal backbone stores no reversed tokens: they are the tokens read backwards
                    source, flipped = stored_field(name, shard)
                    if source not in shard:
                        raise CacheError(f"{self.root / record['file']}: no field {name!r}")
                    field = shard[source]
                    int8 = field.dtype == np.int8
                    names += [name + SCALE, name + CHANNEL_SCALE] if int8 and fields and not dequantize else []
                    if name not in out:
                        out[name] = np.empty((total, *field.shape[1:]), np.float16 if int8 and dequantize else field.dtype)
                    target = out[name][rows]
                    try:
                        if isinstance(field, np.ndarray):
                            target[:] = field
                        elif field.dtype == target.dtype:
                            field.read(h5s.create_simple(target.shape), h5s.ALL, target)  # HDF5 checks the counts
                        else:  # int8 tokens dequantised on the CPU, a block of clips at a time
                            q, scale, channel = (torch.from_numpy(_read_all(shard[source + s]))
                                                 for s in ("", SCALE, CHANNEL_SCALE))
                            for i in range(0, len(q), DEQUANTIZE_CLIPS):
                                block = slice(i, i + DEQUANTIZE_CLIPS)
                                target[block] = dequantize_int8(q[block], scale[block], channel[block], torch.float16).numpy()
                    except (OSError, ValueError, TypeError) as exc:
                        raise CacheError(f"{self.root / record['file']}: corrupt shard ({exc})") from None
                    if flipped:
                        target[:] = target[:, ::-1].copy()
                start += record["clips"]
        return out
