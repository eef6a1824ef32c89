"""CacheLoader: deterministic order, every clip once per epoch, resident == streaming, rank slices."""

import numpy as np
import pytest
import torch

from paxion.cache.loader import CacheLoader, plan_epoch
from paxion.errors import CacheError, PaxionError

FRAMES, TOKENS, WIDTH, DIM = 2, 3, 4, 5


class ShardCache:
    """A cache-shaped object over in-memory shards, float16 tokens as the reader returns them; each clip's
    caption_idx is its global number."""

    def __init__(self, sizes, *, temporal=False):
        self.temporal = temporal
        self.text_emb = np.ones((7, DIM), dtype=np.float32)
        self.splits = {"train": {"clips": sum(sizes)}}
        self.manifest = {
            "frames": FRAMES, "token_dtype": "fp16",
            "backbone": {"tokens_per_frame": TOKENS, "token_dim": WIDTH, "embed_dim": DIM, "temporal": temporal},
            "splits": {"train": {"clips": sum(sizes), "shards": [{"clips": n} for n in sizes]}},
        }
        self.reads = []
        start = 0
        self.shards = []
        for n in sizes:
            ids = np.arange(start, start + n)
            start += n
            shard = {
                "tokens": np.broadcast_to(ids[:, None, None, None], (n, FRAMES, TOKENS, WIDTH)).astype(np.float16),
                "pooled": np.repeat(ids[:, None], DIM, 1).astype(np.float32),
                "caption_idx": ids.astype(np.int32),
                "template_idx": ids.astype(np.int32),
                "aa_idx": ids.astype(np.int32),
                "salient": ids % 2 == 0,
            }
            if temporal:
                shard["tokens_rev"] = -shard["tokens"]
                shard["pooled_rev"] = -shard["pooled"]
            self.shards.append(shard)

    def num_shards(self, split):
        return len(self.shards)

    def read_shard(self, split, k, fields=None, *, dequantize=True):
        self.reads.append(k)
        return {f: self.shards[k][f] for f in (fields or self.shards[k])}


def epoch_ids(loader):
    return [batch["caption_idx"].tolist() for batch in loader]


def test_every_clip_once_per_epoch_and_rows_stay_together():
    cache = ShardCache([10, 7, 13, 4, 9], temporal=True)
    loader = CacheLoader(cache, batch_size=6, memory_budget=0, seed=3)
    assert not loader.resident
    seen = []
    for batch in loader:
        ids = batch["caption_idx"]
        assert torch.equal(batch["tokens"][:, 0, 0, 0], ids.float())
        assert torch.equal(batch["pooled_rev"][:, 0], -ids.float())
        assert torch.equal(batch["salient"], ids % 2 == 0)
        seen += ids.tolist()
    assert sorted(seen) == list(range(43))
    sizes = [len(b) for b in epoch_ids(loader)]
    assert sizes == [6] * 7 + [1] and len(loader) == 8


def test_same_seed_same_batches_other_seed_or_epoch_differs():
    cache = ShardCache([8, 8, 8, 8])
    first = epoch_ids(CacheLoader(cache, batch_size=5, memory_budget=0, seed=1))
    assert first == epoch_ids(CacheLoader(cache, batch_size=5, memory_budget=0, seed=1))
    assert first != epoch_ids(CacheLoader(cache, batch_size=5, memory_budget=0, seed=2))
    loader = CacheLoader(cache, batch_size=5, memory_budget=0, seed=1)
    loader.set_epoch(1)
    assert first != epoch_ids(loader)


def test_batches_mix_shards_and_shard_order_changes():
    cache = ShardCache([16] * 6)
    loader = CacheLoader(cache, batch_size=8, memory_budget=0, seed=0)
    shards_per_batch = [len({i // 16 for i in ids}) for ids in epoch_ids(loader)]
    assert max(shards_per_batch) > 1
    orders = set()
    for epoch in range(5):
        loader.set_epoch(epoch)
        cache.reads.clear()
        list(loader)
        orders.add(tuple(cache.reads))
    assert len(orders) > 1


def test_resident_equals_streaming_and_reads_each_shard_once():
    cache = ShardCache([9, 11, 5, 12])
    resident = CacheLoader(cache, batch_size=4, seed=7)
    # its own cache: the streaming loader's read-ahead thread may still be reading after the loop ends
    streaming = CacheLoader(ShardCache([9, 11, 5, 12]), batch_size=4, seed=7, memory_budget=1, pool_shards=4)
    assert resident.resident and not streaming.resident
    for epoch in range(2):
        resident.set_epoch(epoch)
        streaming.set_epoch(epoch)
        for a, b in zip(resident, streaming, strict=True):
            assert a.keys() == b.keys()
            for name in a:
                assert torch.equal(a[name], b[name])
    cache.reads.clear()
    list(resident)
    assert cache.reads == []  # resident data is loaded once


def test_abandoned_and_repeated_epochs_keep_the_batches():
    cache = ShardCache([6, 9, 7, 8, 5])
    loader = CacheLoader(cache, batch_size=4, seed=5, memory_budget=0)

    def fresh(epoch):
        other = CacheLoader(cache, batch_size=4, seed=5, memory_budget=0)
        other.set_epoch(epoch)
        return epoch_ids(other)

    next(iter(loader))  # abandoned after one batch
    for epoch in (0, 1, 2, 7, 7):
        loader.set_epoch(epoch)
        assert epoch_ids(loader) == fresh(epoch)


def test_rank_slices_partition_the_global_batch():
    cache = ShardCache([10, 10, 10])
    whole = epoch_ids(CacheLoader(cache, batch_size=6, seed=4, memory_budget=0, drop_last=True))
    parts = [epoch_ids(CacheLoader(cache, batch_size=6, seed=4, memory_budget=0, drop_last=True, rank=r,
                                   world_size=2)) for r in range(2)]
    assert [a + b for a, b in zip(*parts)] == whole
    assert all(len(a) == 3 for a in parts[0])


def test_drop_last_and_plan_is_pure():
    pools = plan_epoch([5, 5, 5], batch_size=4, seed=0, epoch=0, drop_last=True)
    sizes = [len(b) for p in pools for b in p.batches]
    assert sizes == [4, 4, 4]
    again = plan_epoch([5, 5, 5], batch_size=4, seed=0, epoch=0, drop_last=True)
    assert all(np.array_equal(a, b) for p, q in zip(pools, again) for a, b in zip(p.batches, q.batches))


def test_text_table_on_device_and_bad_input():
    cache = ShardCache([3])
    loader = CacheLoader(cache, batch_size=2)
    assert loader.text_emb.shape == (7, DIM) and loader.text_emb.dtype == torch.float32
    with pytest.raises(CacheError):
        CacheLoader(cache, "validation")
    with pytest.raises(PaxionError):
        CacheLoader(cache, batch_size=2, rank=2, world_size=2)


@pytest.mark.parametrize("budget", [10**9, 0])
def test_batches_are_float32_and_the_split_stays_float16(budget):
    cache = ShardCache([5, 6], temporal=True)
    loader = CacheLoader(cache, batch_size=4, memory_budget=budget)
    for batch in loader:
        assert batch["tokens"].dtype == batch["tokens_rev"].dtype == batch["pooled"].dtype == torch.float32
        assert batch["caption_idx"].dtype == torch.int32 and batch["salient"].dtype == torch.bool
        assert batch["tokens"].device == loader.device
    if loader.resident:
        assert loader._data["tokens"].dtype == torch.float16


def test_memory_budget_counts_tokens_as_stored():
    cache = ShardCache([4, 4])
    per_clip = FRAMES * TOKENS * WIDTH * 2 + DIM * 4 + 3 * 4 + 1  # tokens, pooled, 3 indices (int32), salient
    assert CacheLoader(cache, batch_size=2).nbytes == 8 * per_clip
    assert CacheLoader(cache, batch_size=2, memory_budget=8 * per_clip).resident
    assert not CacheLoader(cache, batch_size=2, memory_budget=8 * per_clip - 1).resident
    cache.manifest["token_dtype"] = "int8"  # one byte a value, a float16 scale per token and per channel
    int8_clip = per_clip - FRAMES * TOKENS * WIDTH + 2 * FRAMES * TOKENS + 2 * WIDTH
    assert CacheLoader(cache, batch_size=2).nbytes == 8 * int8_clip
    temporal = ShardCache([4, 4], temporal=True)  # + tokens_rev with its own scales, pooled_rev
    temporal.manifest["token_dtype"] = "int8"
    rev_bytes = FRAMES * TOKENS * WIDTH + 2 * FRAMES * TOKENS + 2 * WIDTH + DIM * 4
    assert CacheLoader(temporal, batch_size=2).nbytes == 8 * (int8_clip + rev_bytes)


def same_shard_share(batches, shard_size):
    """The share of pairs of clips in one batch that come from the same shard (clip i is in shard i // size)."""
    same = pairs = 0
    for ids in batches:
        shard = np.array(ids) // shard_size
        same += int((shard[:, None] == shard[None, :]).sum() - len(shard)) // 2
        pairs += len(shard) * (len(shard) - 1) // 2
    return same / pairs


def test_batches_mix_clips_of_one_video_like_a_uniform_shuffle():
    """Each shard holds the clips of one video: resident batches pair a video with itself as often as a uniform
    shuffle of the split does, streaming ones as often as a uniform shuffle of 8 shards does."""
    sizes = [8] * 32
    per_clip = FRAMES * TOKENS * WIDTH * 2 + DIM * 4 + 3 * 4 + 1
    uniform = 7 / 255  # P(two clips of 256 share one of the 8-clip shards) = 8 * 7 / (256 * 255) * 32
    pool_of_8 = 7 / 63
    shares = {}
    for name, budget in (("resident", 10**9), ("streaming", 2 * 8 * 8 * per_clip), ("two shards", 0)):
        loader = CacheLoader(ShardCache(sizes), batch_size=16, memory_budget=budget, seed=11)
        assert loader.pool_shards == {"resident": 32, "streaming": 8, "two shards": 2}[name]
        batches = []
        for epoch in range(4):
            loader.set_epoch(epoch)
            batches += epoch_ids(loader)
        shares[name] = same_shard_share(batches, 8)
    assert abs(shares["resident"] - uniform) < 0.015
    assert abs(shares["streaming"] - pool_of_8) < 0.03
    assert shares["two shards"] > 0.4  # what pools of two consecutive shards gave: 7 / 15 for the full pools
