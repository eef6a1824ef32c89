"""Reads a feature cache through h5py: checks the manifest first, then returns shards as numpy arrays."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
from h5py import h5s

from paxion.cache.manifest import (
    MANIFEST_FILE,
    TABLE,
    check_backbone,
    check_file,
    field_specs,
    read_manifest,
    read_texts,
    stored_field,
)
from paxion.cache.quant import with_scales
from paxion.errors import CacheError

MAX_OPEN_SHARDS = 64  # shard files kept open between reads (the ones used last)
Field = np.ndarray | h5py.Dataset  # a column of a shard's `clips` table (read at open) or an open dataset


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
    for name, values in ((n, f[()]) for n, f in fields.items()) if complete and not problems else ():
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            problems.append(f"field {name!r} has {int((~np.isfinite(values)).sum())} non-finite values")
        if name.endswith("_idx") and ((values < -1) | (values >= manifest["texts"]["count"])).any():
            problems.append(f"field {name!r} refers to texts outside [-1, {manifest['texts']['count']})")
    return problems


def open_shard(path: Path, manifest: dict, record: dict, *, hashed: bool,
               complete: bool = False) -> tuple[list[str], dict[str, Field]]:
    """Open and check a shard file: (problems, its fields: the datasets open, the `clips` table's columns read, ids
    as str objects). The file stays open while its datasets are referred to (h5py's weak close degree).
    Problems, one line each starting with the path: missing, another size, (when `hashed`) another XXH3-128,
    unreadable, then fields with another clip count, or another dtype or per-clip shape than `field_specs`
    (fields it does not name: the clip count only); when `complete` also the fields the manifest implies that it
    lacks, non-finite floats and text indices outside the table."""
    problem = check_file(path, record, hashed=hashed)
    if problem:
        return [problem], {}
    try:
        f = h5py.File(path, "r")  # not closed: h5py's close would close its datasets too
        fields = dict(f.items())
        stored = fields.pop(TABLE).id
        table = np.empty(stored.shape, stored.dtype)
        stored.read(h5s.ALL, h5s.ALL, table, mtype=stored.get_type())  # in the file's own type: no conversion
    except (OSError, KeyError) as exc:
        return [f"{path}: unreadable ({exc})"], {}
    for name in table.dtype.names:
        values = table[name]
        fields[name] = (np.array([s.decode() for s in values.tolist()], object) if values.dtype.kind == "S"
                        else np.ascontiguousarray(values))
    return [f"{path}: {p}" for p in _layout_problems(fields, manifest, record["clips"], complete)], fields


class Cache:
    """A feature cache directory written by `paxion extract`.

    root: the cache directory.
    backbone: when given (a spec string, or a Backbone whose config hash is compared too), the cache must
        have been made by it; default None accepts any backbone.
    verify: when True, each shard file's XXH3-128 is compared with the manifest once, before its first read
        (default False: sizes and layout only).
    Attributes: manifest, texts (list[str]), text_emb ([n_text, d] float32), temporal, splits (names).
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
        self._shards = {s["file"]: s for split in self.manifest["splits"].values() for s in split["shards"]}
        for record in [*self._shards.values(), *self.manifest["files"].values()]:
            problem = check_file(self.root / record["file"], record, hashed=False)
            if problem:
                raise CacheError(problem)
        self.texts, self.text_emb = read_texts(self.root, self.manifest)
        self.temporal = bool(self.manifest["backbone"]["temporal"])  # reversed clips stored (not frame-wise)
        self.splits = list(self.manifest["splits"])
        root, manifest, records, hashed = self.root, self.manifest, self._shards, set()  # not self: no cycle

        @functools.lru_cache(MAX_OPEN_SHARDS)  # the shards used last stay open (h5py closes an evicted one)
        def shard(name: str) -> dict[str, Field]:
            """The fields of shard file `name` (`open_shard`), hashed (with verify) before its first read."""
            problems, fields = open_shard(root / name, manifest, records[name], hashed=verify and name not in hashed)
            if problems:
                raise CacheError(problems[0])
            hashed.add(name)
            return fields

        self._shard = shard

    def extra_file(self, role: str) -> Path:
        """The path of the file the manifest's `files` records under `role` (e.g. "scorer"); CacheError when it
        records none, or the file is missing or differs from its size or XXH3-128."""
        record = self.manifest["files"].get(role)
        if record is None:
            raise CacheError(f"{self.root / MANIFEST_FILE}: records no {role} file; re-extract with --overwrite")
        problem = check_file(self.root / record["file"], record, hashed=True)
        if problem:
            raise CacheError(problem)
        return self.root / record["file"]

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

    def read_shard(self, split: str, k: int, fields: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """All clips of shard k as numpy arrays in their stored dtype (ids as str objects); `fields` None = every
        stored field. An int8 field comes with its `{name}_scale` and `{name}_channel_scale` fields, for
        `paxion.cache.quant.as_float32` to dequantise on the device."""
        return self._read([self._split(split)["shards"][k]], fields)

    def read_split(self, split: str, fields: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """All clips of a split as `read_shard` gives them, its shards in order, each read straight into its rows
        of the result (allocated once from the manifest's clip counts)."""
        if not self._split(split)["shards"]:
            raise CacheError(f"{self.root}: split {split!r} has no clips")
        return self._read(self._split(split)["shards"], fields)

    def _read(self, records: list[dict], fields: Sequence[str] | None) -> dict[str, np.ndarray]:
        total, out, start = sum(record["clips"] for record in records), {}, 0
        for record in records:
            shard, rows, path = self._shard(record["file"]), slice(start, start + record["clips"]), record["file"]
            start += record["clips"]
            for name in shard if fields is None else with_scales(fields, lambda m, s=shard: stored_field(m, s)[0] in s):
                # a time-symmetric temporal backbone stores no reversed tokens: they are the tokens read backwards
                source, flipped = stored_field(name, shard)
                if source not in shard:
                    raise CacheError(f"{self.root / path}: no field {name!r}")
                field = shard[source]
                target = out.setdefault(name, np.empty((total, *field.shape[1:]), field.dtype))[rows]
                try:
                    if isinstance(field, np.ndarray):
                        target[:] = field
                    else:
                        field.id.read(h5s.create_simple(target.shape), h5s.ALL, target)  # HDF5 checks counts
                except (OSError, ValueError, TypeError) as exc:
                    raise CacheError(f"{self.root / path}: corrupt shard ({exc})") from None
                if flipped:
                    target[:] = target[:, ::-1].copy()
        return out
