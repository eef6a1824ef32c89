"""Reads a feature cache: checks the manifest first, then returns shards as numpy arrays in the stored precision."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import h5py
import numpy as np
from h5py import h5d

from paxion.cache.manifest import check_backbone, checksum, read_manifest
from paxion.cache.quant import dequantize_int8
from paxion.errors import CacheError

PAGE = 4096


def _loaded_dtype(stored: np.dtype) -> np.dtype:
    """The dtype a dataset reads as: strings as objects, int8 tokens dequantised to float16, others as stored."""
    if h5py.check_string_dtype(stored) is not None:
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


def _dataset(f: h5py.File, name: str) -> h5d.DatasetID:
    """The low-level handle of dataset `name` (h5py's Dataset object costs ~50 us more a field)."""
    try:
        return h5d.open(f.id, name.encode())
    except KeyError:
        raise CacheError(f"{f.filename}: no field {name!r}") from None


def _read_raw(file: BinaryIO, ds: h5d.DatasetID, out: np.ndarray | None = None) -> np.ndarray:
    """A contiguous dataset's bytes read from the file straight into `out` (a new array if None)."""
    # HDF5's own read path costs ~0.1 ms a field, as much as the data of a small shard; the writer stores every
    # field contiguously, so its bytes are one offset away (and the reader checks them against their checksum).
    dtype, shape = ds.dtype, ds.shape
    out = page_aligned_empty(shape, dtype) if out is None else out
    offset = ds.get_offset()
    if out.nbytes and (offset is None or dtype != out.dtype or shape != out.shape):
        raise ValueError(f"a field is not stored contiguously as {out.dtype} {out.shape}")
    file.seek(offset or 0)
    if file.readinto(out.reshape(-1).view(np.uint8)) != out.nbytes:
        raise ValueError("the file ends inside a field")
    return out


def _read_into(f: h5py.File, file: BinaryIO, name: str, ds: h5d.DatasetID, out: np.ndarray) -> dict[str, np.ndarray]:
    """Fill `out` (C-contiguous, shaped like the dataset) with dataset `name`; stored floats go straight into it.
    Returns what was read as stored, by dataset name (int8 tokens bring their scales), for the checksums."""
    if out.dtype == object:
        out[:] = h5py.Dataset(ds).asstr()[()]
        return {name: out}
    if ds.dtype == np.int8:
        stored = {name: _read_raw(file, ds), f"{name}_scale": _read_raw(file, _dataset(f, f"{name}_scale"))}
        dequantize_int8(*stored.values(), out=out)
        return stored
    return {name: _read_raw(file, ds, out)}


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
        out: dict[str, np.ndarray] = {}
        start = 0
        for record in records:
            path, clips = self.root / record["file"], record["clips"]
            try:
                with self._open(record["file"]) as f, open(path, "rb") as file:
                    if fields is None:
                        fields = [n for n in f if not n.endswith("_scale")]
                    for name in fields:
                        ds = _dataset(f, name)
                        shape = ds.shape
                        if shape[:1] != (clips,):
                            raise CacheError(f"{path}: holds a different number of clips than the manifest")
                        if name not in out:
                            out[name] = page_aligned_empty((rows, *shape[1:]), _loaded_dtype(ds.dtype))
                        for stored, values in _read_into(f, file, name, ds, out[name][start : start + clips]).items():
                            if checksum(values) != record.get("checksums", {}).get(stored):
                                raise CacheError(
                                    f"{path}: field {stored!r} does not match its checksum (corrupt shard)"
                                )
            except (OSError, KeyError, ValueError, TypeError) as exc:
                raise CacheError(f"{path}: corrupt shard ({exc})") from None
            start += clips
        return out
