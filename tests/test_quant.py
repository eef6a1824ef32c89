"""int8 tokens: accuracy with outlier channels, exact round trip, reads as stored, loader batches dequantised."""

import h5py
import numpy as np
import pytest
import torch
from fakes import FakeBackbone, make_bench

from paxion.cache.loader import CacheLoader
from paxion.cache.quant import as_float32, dequantize, quantize_int8
from paxion.cache.reader import Cache
from paxion.cache.verify import verify_cache
from paxion.extract.pipeline import extract
from paxion.scoring import iter_batches

CLIPS, T, N, D = 3, 8, 37, 768


def gaussian_clips(*, outliers: bool, token_spread: bool, seed: int = 0) -> np.ndarray:
    """Clips [CLIPS, T, N, D] of unit gaussians; `outliers`: channels 5 and 300 are 80x larger; `token_spread`:
    each token scaled by a log-normal factor (token norms spread over about 10x)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(CLIPS, T, N, D)).astype(np.float32)
    if token_spread:
        x *= np.exp(0.7 * rng.normal(size=(CLIPS, T, N, 1))).astype(np.float32)
    if outliers:
        x[..., [5, 300]] *= 80
    return x


def roundtrip(x: np.ndarray) -> np.ndarray:
    q, scale, channel = quantize_int8(x)
    return dequantize(*map(torch.from_numpy, (q, scale, channel))).numpy()


def channel_median_errors(x: np.ndarray, got: np.ndarray) -> np.ndarray:
    """Per channel, the median over all tokens of |got - x| / |x|."""
    return np.median((np.abs(got - x) / np.abs(x)).reshape(-1, x.shape[-1]), axis=0)


@pytest.mark.parametrize("token_spread", [False, True])
def test_every_channel_keeps_its_median_error_under_two_percent_with_outlier_channels(token_spread):
    x = gaussian_clips(outliers=True, token_spread=token_spread)
    assert channel_median_errors(x, roundtrip(x)).max() <= 0.02
    # one absmax scale per token (schema 4) loses the ordinary channels on the same tokens
    step = np.abs(x).max(axis=-1, keepdims=True) / 127
    per_token = np.rint(x / step) * step
    assert np.median(channel_median_errors(x, per_token)) > 0.15


@pytest.mark.parametrize("outliers", [False, True])
def test_token_errors_stay_small_when_token_norms_spread(outliers):
    x = gaussian_clips(outliers=outliers, token_spread=True, seed=1)
    got = roundtrip(x)
    assert channel_median_errors(x, got).max() <= 0.02
    ordinary = np.delete(np.arange(D), [5, 300])
    token_error = np.linalg.norm((got - x)[..., ordinary], axis=-1) / np.linalg.norm(x[..., ordinary], axis=-1)
    assert np.median(token_error) <= 0.01 and token_error.max() <= 0.05


def test_dequantize_is_q_times_both_scales_and_within_half_a_step():
    x = np.random.default_rng(2).normal(size=(4, 2, 5, 64)).astype(np.float32) * np.float32(3.0)
    x[0, 0, 0] = 0.0  # a zero token
    x[1, ..., 7] = 0.0  # a zero channel
    x[2] *= 1e3
    q, scale, channel = quantize_int8(x)
    assert (q.dtype, scale.dtype, channel.dtype) == (np.int8, np.float16, np.float16)
    assert (q.shape, scale.shape, channel.shape) == (x.shape, (4, 2, 5), (4, 64))
    assert np.abs(q.astype(int)).max() == 127
    step = scale.astype(np.float32)[..., None] * channel.astype(np.float32)[:, None, None, :]
    expected = q.astype(np.float32) * step
    got = dequantize(*map(torch.from_numpy, (q, scale, channel)))
    assert got.dtype == torch.float32 and np.array_equal(got.numpy(), expected)
    half = dequantize(*map(torch.from_numpy, (q, scale, channel)), dtype=torch.float16)
    assert np.array_equal(half.numpy(), expected.astype(np.float16))
    assert (np.abs(expected - x) <= step * 0.5 * (1 + 1e-5) + 1e-6).all()
    assert (expected[0, 0, 0] == 0).all() and (expected[1, ..., 7] == 0).all()


def test_as_float32_dequantises_int8_fields_and_drops_their_scales():
    q, scale, channel = map(torch.from_numpy, quantize_int8(np.full((2, 3, 4), 127.0, np.float32)))
    batch = {"tokens": q, "tokens_scale": scale, "tokens_channel_scale": channel,
             "pooled": torch.ones(2, 5, dtype=torch.float16), "label": torch.tensor([1, 2], dtype=torch.int32)}
    out = as_float32(batch)
    assert set(out) == {"tokens", "pooled", "label"}
    assert out["tokens"].dtype == out["pooled"].dtype == torch.float32 and out["label"].dtype == torch.int32
    assert torch.equal(out["tokens"], torch.full((2, 3, 4), 127.0))


@pytest.fixture(scope="module")
def int8_cache(tmp_path_factory):
    """An int8 cache of 7 train clips in shards of 3 (temporal fake backbone: tokens and tokens_rev)."""
    root = tmp_path_factory.mktemp("int8")
    bench = make_bench(root / "world", {"train": 7})
    extract(*bench, root / "cache", FakeBackbone(temporal=True, token_dim=32), frames=4, workers=0, shard_size=3,
            batch_size=4, token_dtype="int8")
    return root / "cache"


def stored(root, split="train") -> dict[str, np.ndarray]:
    """Every dataset of a split's shards as h5py reads it, concatenated in shard order."""
    cache = Cache(root)
    parts = []
    for record in cache.manifest["splits"][split]["shards"]:
        with h5py.File(root / record["file"]) as f:
            parts.append({name: ds[()] for name, ds in f.items()})
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def independent_dequantize(raw: dict[str, np.ndarray], name: str) -> np.ndarray:
    scale, channel = raw[f"{name}_scale"].astype(np.float32), raw[f"{name}_channel_scale"].astype(np.float32)
    return raw[name].astype(np.float32) * (scale[..., None] * channel[:, None, None, :])


def test_reads_int8_fields_as_stored_with_their_scales(int8_cache):
    cache, raw = Cache(int8_cache, verify=True), stored(int8_cache)
    as_stored = cache.read_split("train", ["tokens", "pooled"])
    assert set(as_stored) == {"tokens", "tokens_scale", "tokens_channel_scale", "pooled"}
    for name, value in as_stored.items():
        assert value.dtype == raw[name].dtype and np.array_equal(value, raw[name])
    everything = cache.read_shard("train", 1)
    assert {"tokens_rev_scale", "tokens_rev_channel_scale", "id"} <= set(everything)
    assert everything["tokens_rev"].dtype == np.int8
    assert set(cache.read_split("train", ["tokens_scale"])) == {"tokens_scale"}
    assert verify_cache(int8_cache) == []


@pytest.mark.parametrize("budget", [10**9, 0])
def test_loader_batches_of_an_int8_cache_are_the_dequantised_tokens(int8_cache, budget):
    raw = stored(int8_cache)
    loader = CacheLoader(Cache(int8_cache), batch_size=3, memory_budget=budget, shuffle=False)
    assert loader.resident == (budget > 0)
    batches = list(loader)
    for name in ("tokens", "tokens_rev"):
        got = torch.cat([b[name] for b in batches])
        assert got.dtype == torch.float32 and np.array_equal(got.numpy(), independent_dequantize(raw, name))
    assert torch.equal(torch.cat([b["pooled"] for b in batches]), torch.from_numpy(raw["pooled"]))
    assert not any(name.endswith("_scale") for b in batches for name in b)
    if loader.resident:  # kept on the device as stored
        assert loader._data["tokens"].dtype == torch.int8


def test_scoring_batches_of_an_int8_cache_are_dequantised_on_the_device(int8_cache):
    raw = stored(int8_cache)
    batches = list(iter_batches(Cache(int8_cache), "train", ("tokens", "tokens_rev", "pooled"), batch_size=2))
    assert [len(b["tokens"]) for b in batches] == [2, 1, 2, 1, 1]  # shards of 3, 3 and 1 clips
    for name in ("tokens", "tokens_rev"):
        got = torch.cat([b[name] for b in batches])
        assert got.dtype == torch.float32 and np.array_equal(got.numpy(), independent_dequantize(raw, name))
    assert not any(name.endswith("_scale") for b in batches for name in b)
