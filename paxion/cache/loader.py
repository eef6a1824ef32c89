"""Batches from a feature cache to the device: a resident split shuffled whole, or pools of shards streamed in
on a background thread and shuffled together."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from paxion.cache.manifest import field_specs
from paxion.cache.quant import as_float32, with_scales
from paxion.errors import CacheError, PaxionError

TRAIN_FIELDS = ("tokens", "pooled", "caption_idx", "template_idx", "aa_idx", "salient")  # + reversed for temporal
DEFAULT_MEMORY_BUDGET = 2 * 1000**3  # bytes; a split under this stays resident on the device
MAX_POOL_SHARDS = 8  # shards shuffled together when streaming; fewer when two pools overrun the memory budget


@dataclass(frozen=True)
class Pool:
    """One step of an epoch: load `shards`, append their clips to the carried rows, emit `batches`. Rows of the
    pool buffer are the carried rows first, then each shard's clips in order; `batches` and `carry` index it."""

    shards: tuple[int, ...]
    batches: tuple[np.ndarray, ...]
    carry: np.ndarray


def plan_epoch(shard_sizes: Sequence[int], *, batch_size: int, seed: int, epoch: int, pool_shards: int = 2,
               shuffle: bool = True, drop_last: bool = False) -> list[Pool]:
    """The batches of one epoch as a pure function of (shard sizes, seed, epoch): shard order shuffled, each
    batch drawn from one permutation of a pool of `pool_shards` shards plus the rows left over from the previous
    pool (`pool_shards` >= the number of shards: one permutation of the whole split)."""
    if batch_size < 1 or pool_shards < 1:
        raise PaxionError("batch size and pool size must be at least 1")
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(shard_sizes)) if shuffle else np.arange(len(shard_sizes))
    pools: list[Pool] = []
    carried = 0
    for start in range(0, len(order), pool_shards):
        shards = tuple(int(k) for k in order[start:start + pool_shards])
        rows = carried + sum(shard_sizes[k] for k in shards)
        perm = rng.permutation(rows) if shuffle else np.arange(rows)
        last = start + pool_shards >= len(order)
        full = rows if last and not drop_last else rows // batch_size * batch_size  # last: a smaller final batch
        pools.append(Pool(shards, tuple(perm[i:i + batch_size] for i in range(0, full, batch_size)),
                          perm[full:] if not last else np.empty(0, dtype=np.int64)))
        carried = len(pools[-1].carry)
    return pools


class CacheLoader:
    """Iterates a cache split as dicts of device tensors, the same batches for the same seed and epoch.

    A split that fits `memory_budget` bytes (fields counted as stored) is loaded once, kept on the device and
    shuffled whole each epoch. Otherwise shards are read whole on a background thread (pinned when the device is
    CUDA), copied with non_blocking=True and shuffled together `pool_shards` at a time (default: up to
    MAX_POOL_SHARDS, as many as let the pool and the next one being read fit the budget, at least 2). Fields stay
    as stored on the device (int8 tokens with their scales); each batch is dequantised and converted to float32
    after slicing (`paxion.cache.quant.as_float32`). With `world_size` > 1 each rank yields its contiguous slice
    of every global batch. `text_emb` is the cache's text table, put on the device once.
    """

    def __init__(self, cache, split: str = "train", *, batch_size: int = 32, device: str | torch.device = "cpu",
                 fields: Sequence[str] | None = None, seed: int = 0, shuffle: bool = True, drop_last: bool = False,
                 memory_budget: int = DEFAULT_MEMORY_BUDGET, pool_shards: int | None = None, rank: int = 0,
                 world_size: int = 1) -> None:
        if split not in cache.splits:
            raise CacheError(f"the cache has no split {split!r} (it has: {', '.join(cache.splits) or 'none'})")
        if not 0 <= rank < world_size:
            raise PaxionError(f"rank {rank} is outside world size {world_size}")
        self.cache, self.split = cache, split
        self.batch_size, self.seed, self.shuffle, self.drop_last = batch_size, seed, shuffle, drop_last
        self.rank, self.world_size = rank, world_size
        self.device = torch.device(device)
        temporal = ("tokens_rev", "pooled_rev") if cache.temporal else ()
        self.fields = tuple(fields) if fields is not None else TRAIN_FIELDS + temporal
        self.shard_sizes = [int(shard["clips"]) for shard in cache.manifest["splits"][split]["shards"]]
        # a clip's bytes as stored (int8 fields with their scales; 4 for a field of any dtype or one unnamed)
        specs = field_specs(cache.manifest)
        stored = with_scales(self.fields, specs.__contains__)
        clip_bytes = sum(math.prod(shape) * (int(kind[1:]) if kind and kind != "O" else 4)
                         for kind, shape in (specs.get(n, (None, ())) for n in stored))
        self.nbytes = sum(self.shard_sizes) * clip_bytes
        self.resident = self.nbytes <= memory_budget
        if pool_shards is None:
            fit = memory_budget // max(1, 2 * clip_bytes * max(self.shard_sizes, default=1))
            pool_shards = min(MAX_POOL_SHARDS, max(2, fit))
        self.pool_shards = max(1, len(self.shard_sizes)) if self.resident else pool_shards
        self.text_emb = torch.from_numpy(np.ascontiguousarray(cache.text_emb)).to(self.device)
        self.epoch = 0
        self._data: dict[str, torch.Tensor] | None = None
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="paxion-prefetch")

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order the next iteration follows (seed + epoch -> order)."""
        self.epoch = epoch

    def plan(self) -> list[Pool]:
        """The pools and global batches (before the rank slice) of the current epoch."""
        return plan_epoch(self.shard_sizes, batch_size=self.batch_size, seed=self.seed, epoch=self.epoch,
                          pool_shards=self.pool_shards, shuffle=self.shuffle, drop_last=self.drop_last)

    def __len__(self) -> int:
        return sum(len(pool.batches) for pool in self.plan())

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return self._iter_resident() if self.resident else self._iter_streaming()

    def _read_host(self, shard: int) -> dict[str, torch.Tensor]:
        """One whole shard as stored (int8 tokens with their scales) as host tensors, pinned when they are headed
        for a CUDA device."""
        arrays = self.cache.read_shard(self.split, shard, self.fields)
        host = {name: torch.from_numpy(np.ascontiguousarray(a)) for name, a in arrays.items()}
        return {name: t.pin_memory() for name, t in host.items()} if self.device.type == "cuda" else host

    def _load(self, shards: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Host or device shards copied to the device and concatenated along the clip axis."""
        return {name: torch.cat([s[name].to(self.device, non_blocking=True) for s in shards]) for name in shards[0]}

    def _slice(self, data: dict[str, torch.Tensor], rows: np.ndarray) -> dict[str, torch.Tensor]:
        # this rank's contiguous part of the global batch (the parts in rank order give it back)
        index = torch.from_numpy(np.array_split(rows, self.world_size)[self.rank]).to(self.device)
        return as_float32({name: t.index_select(0, index) for name, t in data.items()})

    def _iter_resident(self) -> Iterator[dict[str, torch.Tensor]]:
        if self._data is None:
            self._data = self._load([self._read_host(k) for k in range(len(self.shard_sizes))])
        offsets = np.cumsum([0, *self.shard_sizes])
        for pool in self.plan():  # one pool: the whole split
            rows = np.concatenate([np.arange(offsets[k], offsets[k + 1]) for k in pool.shards])
            for batch in pool.batches:
                yield self._slice(self._data, rows[batch])

    def _iter_streaming(self) -> Iterator[dict[str, torch.Tensor]]:
        pools = self.plan()
        # the shards' reads, kept `pool_shards` ahead on the background thread so a pool rarely waits for them
        reads = (self._reader.submit(self._read_host, k) for pool in pools for k in pool.shards)
        ahead = list(itertools.islice(reads, self.pool_shards))
        carried: list[dict[str, torch.Tensor]] = []
        for pool in pools:
            loaded = []
            for _ in pool.shards:
                loaded.append(ahead.pop(0).result())
                ahead += itertools.islice(reads, 1)
            buffer = self._load(carried + loaded)
            for batch in pool.batches:
                yield self._slice(buffer, batch)
            keep = torch.from_numpy(pool.carry).to(self.device)
            carried = [{name: t.index_select(0, keep) for name, t in buffer.items()}]
