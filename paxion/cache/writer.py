"""Writes the cache's HDF5 files: each under a temporary name, renamed only when complete."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from paxion.cache.manifest import sha256_file
from paxion.cache.quant import quantize_int8

TOKEN_FIELDS = ("tokens", "tokens_rev")
TOKEN_DTYPES = ("fp16", "int8")
STRING = h5py.string_dtype("utf-8")


def _file_record(path: Path, count: int) -> dict:
    return {"file": path.name, "clips": count, "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def _encode_tokens(name: str, x: np.ndarray, token_dtype: str) -> dict[str, np.ndarray]:
    if token_dtype == "int8":
        q, scale = quantize_int8(x)
        return {name: q, f"{name}_scale": scale}
    return {name: x.astype(np.float16)}


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
        self.capacity = capacity
        self.token_dtype = token_dtype
        self.count = 0
        self._file: h5py.File | None = None  # opened lazily on the first append (never before a fork)

    def _create(self, arrays: dict[str, np.ndarray]) -> None:
        self._file = h5py.File(self.tmp, "w")
        for name, a in arrays.items():
            per_clip = a.shape[1:]
            # One clip per chunk for token arrays (random per-clip reads); one chunk per field otherwise.
            rows = 1 if name.startswith("tokens") else self.capacity
            text = a.dtype.kind == "O"
            # fletcher32: HDF5 checks every chunk on read, so flipped bytes raise instead of giving wrong numbers.
            self._file.create_dataset(
                name, shape=(self.capacity, *per_clip), maxshape=(None, *per_clip), dtype=STRING if text else a.dtype,
                chunks=(rows, *per_clip), fletcher32=not text, track_times=False,
            )

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
            self._file[name][self.count:self.count + n] = a
        self.count += n

    def finish(self) -> dict | None:
        """Close and rename the shard into place; returns {file, clips, bytes, sha256}, or None if it got no clip."""
        if self._file is None:
            return None
        if self.count < self.capacity:
            for ds in self._file.values():
                ds.resize(self.count, axis=0)
        self._file.close()
        self._file = None
        os.replace(self.tmp, self.path)
        return _file_record(self.path, self.count)

    def abort(self) -> None:
        """Close and delete the unfinished shard."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self.tmp.unlink(missing_ok=True)


def write_texts(path: str | Path, texts: list[str], emb: np.ndarray) -> dict:
    """Write the text table (`text` strings, `emb` [n, d] float32) atomically; returns {file, count, sha256}."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with h5py.File(tmp, "w") as f:
        f.create_dataset("text", data=np.array(texts, dtype=object), dtype=STRING, track_times=False)
        f.create_dataset("emb", data=np.asarray(emb, dtype=np.float32), fletcher32=len(texts) > 0, track_times=False)
    os.replace(tmp, path)
    return {"file": path.name, "count": len(texts), "sha256": sha256_file(path)}
