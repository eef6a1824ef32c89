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


def _add_field(f: h5py.File, name: str, data: np.ndarray) -> None:
    # Contiguous and unfiltered: a field reads in one go at the speed of a plain file read, and one clip is one
    # offset away. Integrity comes from the per-field checksums in the manifest (see manifest.Checksum).
    f.create_dataset(name, shape=data.shape, dtype=data.dtype, data=data, track_times=False)


def _fixed_utf8(strings: list[str]) -> np.ndarray:
    """Strings as one fixed-length UTF-8 bytes array (h5py stores it as an HDF5 UTF-8 string dataset)."""
    encoded = [s.encode() for s in strings]
    return np.array(encoded, dtype=h5py.string_dtype("utf-8", max([1, *map(len, encoded)])))


def _new_shard_file(path: Path) -> h5py.File:
    # Fields of 64 KiB or more start on a 4 KiB boundary of the file, as the reader's arrays start on a page:
    # the kernel copies page-cache bytes ~5x slower when the two differ by 8 or 16 bytes mod 64 (AMD EPYC).
    return h5py.File(path, "w", alignment_threshold=1 << 16, alignment_interval=4096)


def field_layout(ds: h5py.Dataset) -> dict:
    """Where and how a contiguous dataset's bytes lie in its file: {offset, dtype, shape}."""
    return {"offset": ds.id.get_offset() or 0, "dtype": ds.dtype.str, "shape": list(ds.shape)}


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
        self._strings: dict[str, list[str]] = {}  # string fields, written at finish() once their longest is known

    def _create(self, arrays: dict[str, np.ndarray]) -> None:
        self._file = _new_shard_file(self.tmp)
        for name, a in arrays.items():
            if a.dtype.kind == "O":
                self._strings[name] = []
            else:
                self._file.create_dataset(name, shape=(self.capacity, *a.shape[1:]), dtype=a.dtype, track_times=False)

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
            if name in self._strings:
                self._strings[name] += a.tolist()
            else:
                self._file[name][self.count : self.count + n] = a
        self.count += n

    def finish(self) -> dict | None:
        """Close and rename the shard into place; returns {file, clips, bytes, sha256, checksums and fields (each
        field's offset, dtype and shape in the file)}, or None if it got no clip."""
        if self._file is None:
            return None
        # Contiguous datasets cannot shrink: a shard that lost clips is copied, a field at a time, to its final size.
        with _new_shard_file(self.shrunk) if self.count < self.capacity else nullcontext(self._file) as final:
            if final is not self._file:
                for name, ds in self._file.items():
                    _add_field(final, name, ds[: self.count])
            for name, strings in self._strings.items():
                _add_field(final, name, _fixed_utf8(strings))
            checksums = {name: checksum(ds[()]) for name, ds in final.items()}
            fields = {name: field_layout(ds) for name, ds in final.items()}
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
            "fields": fields,
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
