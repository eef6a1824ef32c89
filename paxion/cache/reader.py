"""Reads a feature cache: checks the manifest first, then returns shards as numpy arrays in the stored precision."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from paxion.cache.manifest import check_backbone, read_manifest
from paxion.cache.quant import dequantize_int8
from paxion.errors import CacheError


def _loaded_dtype(ds: h5py.Dataset) -> np.dtype:
    """The dtype a dataset reads as: strings as objects, int8 tokens dequantised to float16, others as stored."""
    if h5py.check_string_dtype(ds.dtype) is not None:
        return np.dtype(object)
    return np.dtype(np.float16) if ds.dtype == np.int8 else ds.dtype


def _read_into(f: h5py.File, name: str, out: np.ndarray) -> None:
    """Fill `out` (C-contiguous, shaped like the dataset) with dataset `name`; stored floats go straight into it."""
    ds = f[name]
    if out.dtype == object:
        out[:] = ds.asstr()[()]
    elif ds.dtype == np.int8:
        dequantize_int8(ds[()], f[f"{name}_scale"][()], out=out)
    else:
        ds.read_direct(out)


class Cache:
    """A feature cache directory written by `paxion extract`.

    root: the cache directory.
    backbone: when given (a spec string, or a Backbone whose config hash is compared too), the cache must
        have been made by it; default None accepts any backbone.
    Raises CacheError for a missing manifest, another schema version, another backbone, or a shard file
    that is missing or not the size the manifest records.
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
                with self._open(record["file"]) as f:
                    if fields is None:
                        fields = [n for n in f if not n.endswith("_scale")]
                    for name in fields:
                        if name not in f:
                            raise CacheError(f"{path}: no field {name!r}")
                        ds = f[name]
                        if len(ds) != clips:
                            raise CacheError(f"{path}: holds a different number of clips than the manifest")
                        if name not in out:
                            out[name] = np.empty((rows, *ds.shape[1:]), _loaded_dtype(ds))
                        _read_into(f, name, out[name][start:start + clips])
            except (OSError, KeyError, ValueError, TypeError) as exc:
                raise CacheError(f"{path}: corrupt shard ({exc})") from None
            start += clips
        return out
