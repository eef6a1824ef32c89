"""Reads a feature cache: checks the manifest first, then returns shards as numpy arrays."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from paxion.cache.manifest import check_backbone, read_manifest
from paxion.cache.quant import dequantize_int8
from paxion.errors import CacheError


def _read_dataset(f: h5py.File, name: str) -> np.ndarray:
    ds = f[name]
    if h5py.check_string_dtype(ds.dtype) is not None:
        return np.array(ds.asstr()[()], dtype=object)
    return ds[()]


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
            self.texts: list[str] = list(_read_dataset(f, "text"))
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
        """All clips of shard k as numpy arrays (tokens dequantised to float32); `fields` None = every field."""
        record = self._split(split)["shards"][k]
        out: dict[str, np.ndarray] = {}
        try:
            with self._open(record["file"]) as f:
                names = [n for n in f if not n.endswith("_scale")] if fields is None else fields
                for name in names:
                    if name not in f:
                        raise CacheError(f"{self.root / record['file']}: no field {name!r}")
                    out[name] = _read_dataset(f, name)
                    if out[name].dtype == np.int8:
                        out[name] = dequantize_int8(out[name], f[f"{name}_scale"][()])
                    elif out[name].dtype == np.float16:
                        out[name] = out[name].astype(np.float32)
        except (OSError, KeyError, ValueError) as exc:
            raise CacheError(f"{self.root / record['file']}: corrupt shard ({exc})") from None
        if any(len(a) != record["clips"] for a in out.values()):
            raise CacheError(f"{self.root / record['file']}: holds a different number of clips than the manifest")
        return out

    def read_split(self, split: str, fields: list[str] | None = None) -> dict[str, np.ndarray]:
        """All clips of a split, its shards concatenated in order."""
        shards = [self.read_shard(split, k, fields) for k in range(self.num_shards(split))]
        if not shards:
            raise CacheError(f"{self.root}: split {split!r} has no clips")
        return {name: np.concatenate([s[name] for s in shards]) for name in shards[0]}
