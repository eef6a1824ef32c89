"""Reads a feature cache: checks the manifest first, then returns shards as numpy arrays in the stored precision."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import h5py
import numpy as np

from paxion.cache.manifest import Checksum, check_backbone, read_manifest
from paxion.cache.quant import dequantize_int8
from paxion.errors import CacheError

PAGE = 4096
READ_BLOCK = 1 << 20  # bytes read before their checksum is taken, so that the sums find them still in the CPU cache


def _loaded_dtype(stored: np.dtype) -> np.dtype:
    """The dtype a field reads as: strings as objects, int8 tokens dequantised to float16, others as stored."""
    if stored.kind == "S":
        return np.dtype(object)
    return np.dtype(np.float16) if stored == np.int8 else stored


def page_aligned_empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised array whose data starts on a page boundary (object arrays: a plain one)."""
    # The kernel copies page-cache bytes ~5x slower (AMD EPYC: 18 vs 3.5 ms for 30 MB) when the destination and
    # the file offset differ by 8 or 16 bytes mod 64. numpy starts large arrays 16 bytes past a page; the writer
    # starts large fields on a 4 KiB boundary of the file, so page-aligned arrays keep the two in step.
    dtype = np.dtype(dtype)
    if dtype == object:
        return np.empty(shape, dtype)
    size = math.prod(shape) * dtype.itemsize
    buffer = np.empty(size + PAGE, np.uint8)
    start = -buffer.ctypes.data % PAGE
    return buffer[start : start + size].view(dtype).reshape(shape)


def _field(record: dict, name: str, file: BinaryIO) -> dict:
    """The manifest's {name, offset, dtype, shape} of field `name` of a shard."""
    if name not in record["fields"]:
        raise CacheError(f"{file.name}: no field {name!r}")
    return {"name": name, **record["fields"][name]}


def _read_checked(file: BinaryIO, layout: dict, expected: str | None, out: np.ndarray | None = None) -> np.ndarray:
    """A field's bytes, read from `layout["offset"]` into `out` (a new array if None) and checked against the
    checksum `expected`; raises CacheError when they differ."""
    # Plain reads at the offset the manifest records (HDF5's file open and dataset lookups cost as much as a small
    # shard's data), READ_BLOCK at a time, each block summed right after its copy while the CPU cache holds it.
    dtype, shape = np.dtype(layout["dtype"]), tuple(layout["shape"])
    out = page_aligned_empty(shape, dtype) if out is None else out
    if (out.dtype, out.shape) != (dtype, shape):
        raise CacheError(f"{file.name}: a field is not stored as {out.dtype} {out.shape}")
    data, state = out.reshape(-1).view(np.uint8), Checksum()
    file.seek(layout["offset"])
    for start in range(0, len(data), READ_BLOCK):
        block = data[start : start + READ_BLOCK]
        if file.readinto(block) != len(block):
            raise CacheError(f"{file.name}: the file ends inside a field (truncated shard)")
        state.update(block)
    if state.hexdigest() != expected:
        raise CacheError(f"{file.name}: field {layout['name']!r} does not match its checksum (corrupt shard)")
    return out


def _read_field(file: BinaryIO, record: dict, layout: dict, out: np.ndarray) -> None:
    """Fill `out` (C-contiguous, shaped like the field) with the field `layout` of the shard `record` describes."""
    name = layout["name"]
    expected = record["checksums"].get(name)
    if out.dtype == object:
        out[:] = [s.decode() for s in _read_checked(file, layout, expected).tolist()]
    elif np.dtype(layout["dtype"]) == np.int8:
        scale = f"{name}_scale"
        q = _read_checked(file, layout, expected)
        dequantize_int8(q, _read_checked(file, _field(record, scale, file), record["checksums"].get(scale)), out=out)
    else:
        _read_checked(file, layout, expected, out)


class Cache:
    """A feature cache directory written by `paxion extract`.

    root: the cache directory.
    backbone: when given (a spec string, or a Backbone whose config hash is compared too), the cache must
        have been made by it; default None accepts any backbone.
    Raises CacheError for a missing manifest, another schema version, another backbone, or a shard file
    that is missing or not the size the manifest records; reads raise it for a missing field, another clip
    count, or a field whose bytes do not match its checksum in the manifest (checked on every read).
    """

    def __init__(self, root: str | Path, *, backbone: object | None = None) -> None:
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        if backbone is not None:
            check_backbone(self.manifest, backbone, root=self.root)
        for record in [self.manifest["texts"], *self._shard_records()]:
            path = self.root / record["file"]
            if not path.is_file():
                raise CacheError(f"{path}: missing cache file")
            size, expected = path.stat().st_size, record.get("bytes")  # the texts record has no size
            if expected is not None and size != expected:
                raise CacheError(f"{path}: {size} bytes, the manifest says {expected} (truncated?)")
        with self._open(self.manifest["texts"]["file"]) as f:
            self.texts: list[str] = list(f["text"].asstr()[()])
            self.text_emb: np.ndarray = f["emb"][()]

    def _shard_records(self) -> list[dict]:
        return [s for split in self.manifest["splits"].values() for s in split["shards"]]

    def _open(self, name: str) -> h5py.File:
        try:
            return h5py.File(self.root / name, "r")
        except OSError as exc:
            raise CacheError(f"{self.root / name}: not a readable HDF5 file ({exc})") from None

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
        to float16); `fields` None = every field."""
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
        if fields is None:
            fields = [name for name in records[0]["fields"] if not name.endswith("_scale")]
        out: dict[str, np.ndarray] = {}
        start = 0
        for record in records:
            path, clips = self.root / record["file"], record["clips"]
            try:
                with open(path, "rb", buffering=0) as file:
                    for name in fields:
                        layout = _field(record, name, file)
                        if layout["shape"][:1] != [clips]:
                            raise CacheError(f"{path}: holds a different number of clips than the manifest")
                        if name not in out:
                            dtype = _loaded_dtype(np.dtype(layout["dtype"]))
                            out[name] = page_aligned_empty((rows, *layout["shape"][1:]), dtype)
                        _read_field(file, record, layout, out[name][start : start + clips])
            except (OSError, KeyError, ValueError, TypeError) as exc:
                raise CacheError(f"{path}: corrupt shard ({exc})") from None
            start += clips
        return out
