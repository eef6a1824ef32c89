"""Writes the cache's HDF5 files through h5py: each under a temporary name, checked, fsynced, then renamed."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import xxhash

from paxion.atomic import atomic_path, remove_stale_temporaries, temporary_name
from paxion.cache.manifest import FEATURES, TABLE, file_record
from paxion.cache.quant import CHANNEL_SCALE, SCALE, quantize_int8
from paxion.errors import CacheError, PaxionError

TOKEN_FIELDS = ("tokens", "tokens_rev")
TOKEN_DTYPES = ("fp16", "int8")


def _add_field(f: h5py.File, name: str, data: np.ndarray) -> None:
    # Contiguous and unfiltered (h5py's default): a field reads in one go at the speed of a plain file read.
    f.create_dataset(name, data=data, track_times=False)


def _digest(a: np.ndarray) -> str:
    return xxhash.xxh3_128_hexdigest(np.ascontiguousarray(a).data)


def _cannot_write(path: Path, exc: BaseException) -> PaxionError:
    """One line for a failed write (disk full, file too large): h5py's messages run over several lines."""
    cause = os.strerror(exc.errno) if getattr(exc, "errno", None) else str(exc).splitlines()[0]
    return PaxionError(f"{path}: cannot write ({cause})")


class ShardWriter:
    """Appends clips to one shard file; `finish()` checks it, renames it into place and returns its record.

    path: the final shard path; the data goes to a temporary name unique to this host and process
        (`paxion.atomic.temporary_name`) until `finish()`.
    capacity: the most clips the shard will hold (its planned size; failed clips make it smaller).
    token_dtype: "fp16" or "int8" (`paxion.cache.quant`: per-token and per-channel scales) for `tokens` and
        `tokens_rev`.
    Video features (fields named after `FEATURES`) are datasets written as they come; every other field is a
    column of the shard's `clips` table, written at `finish()` (strings as UTF-8 at the longest one's length).
    """

    def __init__(self, path: str | Path, *, capacity: int, token_dtype: str = "fp16") -> None:
        if token_dtype not in TOKEN_DTYPES:
            raise ValueError(f"token_dtype must be one of {TOKEN_DTYPES}, not {token_dtype!r}")
        self.path = Path(path)
        remove_stale_temporaries(self.path)
        self.tmp = temporary_name(self.path)
        self.capacity, self.token_dtype, self.count = capacity, token_dtype, 0
        self._file: h5py.File | None = None  # opened lazily on the first append (never before a fork)
        self._columns: dict[str, list[np.ndarray]] = {}  # the table's fields, batch by batch
        self._hashes: dict[str, xxhash.xxh3_128] = {}  # of each feature's bytes as handed to h5py, in order

    def append(self, batch: dict[str, np.ndarray]) -> None:
        """Add a batch of clips: a dict of arrays whose first axis is the clip (tokens as float32)."""
        arrays: dict[str, np.ndarray] = {}
        for name, a in batch.items():
            if name in TOKEN_FIELDS and self.token_dtype == "int8":
                arrays |= zip((name, name + SCALE, name + CHANNEL_SCALE), quantize_int8(a))
            else:
                arrays[name] = a.astype(np.float16) if name in TOKEN_FIELDS else a
        n = len(arrays["id"])
        if n == 0:
            return
        if self.count + n > self.capacity:
            raise ValueError(f"shard {self.path.name} is planned for {self.capacity} clips, got {self.count + n}")
        try:
            if self._file is None:
                self._file = h5py.File(self.tmp, "w")
                for name, a in arrays.items():
                    if name.startswith(FEATURES):
                        self._file.create_dataset(name, (self.capacity, *a.shape[1:]), a.dtype, track_times=False)
                        self._hashes[name] = xxhash.xxh3_128()
            for name, a in arrays.items():
                if name in self._hashes:
                    a = np.ascontiguousarray(a, dtype=self._file[name].dtype)
                    self._file[name][self.count : self.count + n] = a
                    self._hashes[name].update(a.data)
                else:
                    self._columns.setdefault(name, []).append(np.asarray(a))
        except (OSError, RuntimeError) as exc:
            raise _cannot_write(self.path, exc) from None
        self.count += n

    def finish(self) -> dict | None:
        """Write the `clips` table, put the shard at its clip count, re-read every dataset through h5py and compare
        it with the bytes handed in, fsync and rename it into place; returns {file, clips, bytes, xxh3_128,
        fields} (`fields`: every field's name, sorted), or None if it got no clip.

        Raises CacheError when a dataset reads back otherwise than written."""
        if self._file is None:
            return None
        columns = {name: np.concatenate(parts) for name, parts in self._columns.items()}
        for name, a in columns.items():  # strings: UTF-8 at the longest one's length (an HDF5 UTF-8 string column)
            if a.dtype.kind in "OU":
                encoded = [str(s).encode() for s in a.tolist()]
                columns[name] = np.array(encoded, h5py.string_dtype("utf-8", max([1, *map(len, encoded)])))
        table = np.empty(self.count, [(name, a.dtype, a.shape[1:]) for name, a in columns.items()])
        for name, a in columns.items():
            table[name] = a
        expected = {name: h.hexdigest() for name, h in self._hashes.items()} | {TABLE: _digest(table)}
        with atomic_path(self.path) as final:
            try:
                _add_field(self._file, TABLE, table)
                if self.count < self.capacity:  # contiguous datasets cannot shrink: copy each field at its size
                    with h5py.File(final, "w") as shrunk:
                        for name, ds in self._file.items():
                            _add_field(shrunk, name, ds[: self.count])
                self._file.close()
                if self.count == self.capacity:
                    os.replace(self.tmp, final)
                else:
                    os.unlink(self.tmp)
                self._file = None
                with h5py.File(final, "r") as f:
                    wrong = [name for name, digest in expected.items() if _digest(f[name][()]) != digest]
                if wrong:
                    raise CacheError(f"{self.path}: fields {wrong} read back otherwise than written (disk or HDF5 "
                                     "fault)")
                record = file_record(final, clips=self.count, fields=sorted([*self._hashes, *columns]))
            except (OSError, RuntimeError) as exc:
                raise _cannot_write(self.path, exc) from None
        return record | {"file": self.path.name}

    def abort(self) -> None:
        """Close and delete the unfinished shard."""
        if self._file is not None:
            try:
                self._file.close()
            except (OSError, RuntimeError):
                pass  # the write already failed (disk full): that error is the one reported
            self._file = None
        self.tmp.unlink(missing_ok=True)


def write_texts(path: str | Path, texts: list[str], emb: np.ndarray) -> dict:
    """Write the text table (`text` strings, `emb` [n, d] float32) atomically; returns {file, bytes, xxh3_128,
    count}."""
    path = Path(path)
    remove_stale_temporaries(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("text", data=texts, dtype=h5py.string_dtype("utf-8"), track_times=False)
            _add_field(f, "emb", np.asarray(emb, dtype=np.float32))
        record = file_record(tmp, count=len(texts))
    return record | {"file": path.name}
