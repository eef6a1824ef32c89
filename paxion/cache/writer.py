"""Writes the cache's HDF5 files: each under a temporary name, renamed only when complete."""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path

import h5py
import numpy as np

from paxion.cache.manifest import checksum, sha256_file
from paxion.cache.quant import quantize_int8

TOKEN_FIELDS = ("tokens", "tokens_rev")
TOKEN_DTYPES = ("fp16", "int8")
STRING = h5py.string_dtype("utf-8")


def _encode_tokens(name: str, x: np.ndarray, token_dtype: str) -> dict[str, np.ndarray]:
    if token_dtype == "int8":
        q, scale = quantize_int8(x)
        return {name: q, f"{name}_scale": scale}
    return {name: x.astype(np.float16)}


def _add_field(
    f: h5py.File, name: str, shape: tuple[int, ...], dtype: np.dtype, data: np.ndarray | None = None
) -> None:
    # Contiguous and unfiltered: a field reads in one go at the speed of a plain file read, and one clip is one
    # offset away. Integrity comes from the per-field checksums in the manifest (see manifest.checksum).
    f.create_dataset(name, shape=shape, dtype=STRING if dtype.kind == "O" else dtype, data=data, track_times=False)


def _new_shard_file(path: Path) -> h5py.File:
    # Fields of 64 KiB or more start on a 4 KiB boundary of the file, as the reader's arrays start on a page:
    # the kernel copies page-cache bytes ~5x slower when the two differ by 8 or 16 bytes mod 64 (AMD EPYC).
    return h5py.File(path, "w", alignment_threshold=1 << 16, alignment_interval=4096)


def _stored(ds: h5py.Dataset, rows: int) -> np.ndarray:
    """The first `rows` rows of a dataset as the reader gets them (strings as str objects)."""
    return (ds.asstr() if h5py.check_string_dtype(ds.dtype) is not None else ds)[:rows]


class ShardWriter:
    """Appends clips to one shard file; `finish()` renames it into place and returns its record.

    path: the final shard path; the data goes to `path.tmp` until `finish()`.
    capacity: the most clips the shard will hold (its planned size; failed clips make it smaller).
    token_dtype: "fp16" or "int8" (per-token symmetric scale) for `tokens` and `tokens_rev`.
    """

    def __init__(self, path: str | Path, *, capacity: int, token_dtype: str = "fp16") -> None:
        if token_dtype not in TOKEN_DTYPES:
            raise ValueError(f"token_dtype must be one of {TOKEN_DTYPES}, not {token_dtype!r}")
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        self.shrunk = self.path.with_name(self.path.name + ".tmp-shrunk")
        self.capacity = capacity
        self.token_dtype = token_dtype
        self.count = 0
        self._file: h5py.File | None = None  # opened lazily on the first append (never before a fork)

    def _create(self, arrays: dict[str, np.ndarray]) -> None:
        self._file = _new_shard_file(self.tmp)
        for name, a in arrays.items():
            _add_field(self._file, name, (self.capacity, *a.shape[1:]), a.dtype)

    def append(self, batch: dict[str, np.ndarray]) -> None:
        """Add a batch of clips: a dict of arrays whose first axis is the clip (tokens as float32)."""
        arrays: dict[str, np.ndarray] = {}
        for name, a in batch.items():
            if a.dtype.kind == "U":
                a = a.astype(object)
            arrays.update(_encode_tokens(name, a, self.token_dtype) if name in TOKEN_FIELDS else {name: a})
        n = len(arrays["id"])
        if n == 0:
            return
        if self.count + n > self.capacity:
            raise ValueError(f"shard {self.path.name} is planned for {self.capacity} clips, got {self.count + n}")
        if self._file is None:
            self._create(arrays)
        for name, a in arrays.items():
            self._file[name][self.count : self.count + n] = a
        self.count += n

    def finish(self) -> dict | None:
        """Close and rename the shard into place; returns {file, clips, bytes, sha256, checksums (one per field)},
        or None if it got no clip."""
        if self._file is None:
            return None
        # Contiguous datasets cannot shrink: a shard that lost clips is copied, a field at a time, to its final size.
        with _new_shard_file(self.shrunk) if self.count < self.capacity else nullcontext() as shrunk:
            checksums = {}
            for name, ds in self._file.items():
                values = _stored(ds, self.count)
                checksums[name] = checksum(values)
                if shrunk is not None:
                    _add_field(shrunk, name, values.shape, values.dtype, values)
        self._file.close()
        self._file = None
        if self.count < self.capacity:
            os.replace(self.shrunk, self.tmp)
        os.replace(self.tmp, self.path)
        return {
            "file": self.path.name,
            "clips": self.count,
            "bytes": self.path.stat().st_size,
            "sha256": sha256_file(self.path),
            "checksums": checksums,
        }

    def abort(self) -> None:
        """Close and delete the unfinished shard."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self.tmp.unlink(missing_ok=True)
        self.shrunk.unlink(missing_ok=True)


def write_texts(path: str | Path, texts: list[str], emb: np.ndarray) -> dict:
    """Write the text table (`text` strings, `emb` [n, d] float32) atomically; returns {file, count, sha256}."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with h5py.File(tmp, "w") as f:
        f.create_dataset("text", data=np.array(texts, dtype=object), dtype=STRING, track_times=False)
        f.create_dataset("emb", data=np.asarray(emb, dtype=np.float32), fletcher32=len(texts) > 0, track_times=False)
    os.replace(tmp, path)
    return {"file": path.name, "count": len(texts), "sha256": sha256_file(path)}
