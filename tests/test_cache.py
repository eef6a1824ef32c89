"""The cache format: int8 quantisation, the reader's checks, verify and info."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from fakes import FakeBackbone, make_bench

from paxion.cache.manifest import (
    CHECKSUM_BLOCK,
    SCHEMA_VERSION,
    Checksum,
    checksum,
    read_manifest,
    sha256_file,
    summarize,
    write_json,
)
from paxion.cache.quant import dequantize_int8, quantize_int8
from paxion.cache.reader import Cache
from paxion.cache.verify import verify_cache
from paxion.cache.writer import ShardWriter, write_texts
from paxion.errors import CacheError
from paxion.extract.pipeline import extract


@pytest.fixture()
def cache_dir(tmp_path):
    """A fresh cache: 4 train clips in 2 shards + 2 validation clips, fake frame-wise backbone."""
    bench = make_bench(tmp_path / "world", {"train": 4, "validation": 2})
    extract(*bench, tmp_path / "cache", FakeBackbone(), frames=4, workers=0, shard_size=2, batch_size=2)
    return tmp_path / "cache"


def test_int8_roundtrip_error_is_within_half_a_step_plus_float16_rounding():
    x = np.random.default_rng(0).normal(size=(3, 5, 64)).astype(np.float32) * [[[1.0]], [[10.0]], [[0.01]]]
    x[0, 0] = 0.0
    q, scale = quantize_int8(x)
    assert q.dtype == np.int8 and scale.dtype == np.float16 and scale.shape == (3, 5)
    got = dequantize_int8(q, scale)
    assert got.dtype == np.float16 and got.shape == x.shape
    # float16 rounds the dequantised value once: half a unit in its last place, 2**-11 relative
    err = np.abs(got.astype(np.float32) - x)
    assert (err <= scale.astype(np.float32)[..., None] * 0.5 + np.abs(x) * 2.0**-11 + 1e-6).all()
    assert (got[0, 0] == 0).all()
    exact = (q.astype(np.float32) * scale.astype(np.float32)[..., None]).astype(np.float16)
    assert np.array_equal(got, exact)
    out = np.full((4, 5, 64), np.nan, np.float16)
    rows = out[1:]
    assert dequantize_int8(q, scale, out=rows) is rows and np.array_equal(rows, exact)
    assert np.isnan(out[0]).all()


def test_reader_contract(cache_dir):
    cache = Cache(cache_dir, backbone="fake-framewise")
    assert cache.splits == ["train", "validation"] and not cache.temporal
    assert (cache.num_shards("train"), cache.num_clips("train")) == (2, 4)
    shard = cache.read_shard("train", 1, fields=["tokens", "id"])
    assert set(shard) == {"tokens", "id"} and shard["tokens"].shape == (2, 4, 16, 12)
    assert shard["tokens"].dtype == np.float16 and shard["id"].dtype == object
    whole = cache.read_split("validation")
    assert whole["salient"].dtype == bool and whole["delta_vt"].shape == (2,)
    assert cache.text_emb.shape == (len(cache.texts), 8)
    with pytest.raises(CacheError, match="no split"):
        cache.read_split("test")


@pytest.mark.parametrize("token_dtype", ["fp16", "int8"])
def test_reader_returns_float16_tokens_and_split_equals_its_shards(tmp_path, token_dtype):
    bench = make_bench(tmp_path / "world", {"train": 5})
    extract(
        *bench,
        tmp_path / "cache",
        FakeBackbone(),
        frames=4,
        workers=0,
        shard_size=2,
        batch_size=2,
        token_dtype=token_dtype,
    )
    cache = Cache(tmp_path / "cache")
    whole = cache.read_split("train")
    assert whole["tokens"].dtype == np.float16 and whole["pooled"].dtype == np.float32
    assert whole["tokens"].ctypes.data % 4096 == 0  # page-aligned, see page_aligned_empty
    assert whole["caption_idx"].dtype == np.int32 and not any(name.endswith("_scale") for name in whole)
    shards = [cache.read_shard("train", k) for k in range(cache.num_shards("train"))]
    assert [len(s["id"]) for s in shards] == [2, 2, 1]
    for name, value in whole.items():
        assert np.array_equal(value, np.concatenate([s[name] for s in shards]))
    assert list(cache.read_split("train", ["id"])) == ["id"]


def test_missing_field_or_wrong_clip_count_is_refused(cache_dir):
    with pytest.raises(CacheError, match="no field 'nope'"):
        Cache(cache_dir).read_split("train", ["tokens", "nope"])
    manifest = read_manifest(cache_dir)
    manifest["splits"]["train"]["shards"][1]["clips"] = 3
    (cache_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CacheError, match="different number of clips"):
        Cache(cache_dir).read_split("train")


def test_other_backbone_or_schema_is_refused(cache_dir):
    with pytest.raises(CacheError, match="fake-temporal"):
        Cache(cache_dir, backbone=FakeBackbone(temporal=True))
    with pytest.raises(CacheError, match="config"):
        Cache(cache_dir, backbone=FakeBackbone(seed=1))
    manifest = read_manifest(cache_dir)
    for old_or_new in (SCHEMA_VERSION - 1, 99):  # version 2: no field layout in the manifest, vlen ids
        (cache_dir / "manifest.json").write_text(json.dumps(manifest | {"schema_version": old_or_new}))
        with pytest.raises(
            CacheError, match=f"schema version {old_or_new}, this paxion reads version {SCHEMA_VERSION}"
        ):
            Cache(cache_dir)


def test_truncated_or_missing_shard_is_refused(cache_dir):
    shard = cache_dir / "train-00001.h5"
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(CacheError, match="truncated"):
        Cache(cache_dir)
    shard.unlink()
    with pytest.raises(CacheError, match="missing"):
        Cache(cache_dir)
    assert any("missing" in p for p in verify_cache(cache_dir))


def _flip_bytes(path, field):
    """Flip up to 10 bytes at the start of clip 1 of a field, in place."""
    with h5py.File(path, "r") as f:
        row = f[field][0].nbytes
        start = f[field].id.get_offset() + row
    data = bytearray(path.read_bytes())
    data[start : start + min(row, 10)] = bytes(b ^ 0xFF for b in data[start : start + min(row, 10)])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("token_dtype", "field"), [("fp16", "label"), ("int8", "tokens"), ("int8", "tokens_scale")])
def test_reader_refuses_a_flipped_byte_in_any_field(tmp_path, token_dtype, field):
    bench = make_bench(tmp_path / "world", {"train": 4})
    extract(*bench, tmp_path / "cache", FakeBackbone(), frames=4, workers=0, shard_size=2, token_dtype=token_dtype)
    _flip_bytes(tmp_path / "cache" / "train-00000.h5", field)
    cache = Cache(tmp_path / "cache")
    with pytest.raises(CacheError, match=f"train-00000.h5: field '{field}' does not match its checksum"):
        cache.read_split("train", [field.removesuffix("_scale")])
    assert len(cache.read_shard("train", 1)["tokens"]) == 2  # the other shard still reads


def test_a_manifest_checksum_that_disagrees_is_refused_by_reader_and_verify(cache_dir):
    manifest = read_manifest(cache_dir)
    manifest["splits"]["train"]["shards"][1]["checksums"]["pooled"] = "0" * 32
    (cache_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CacheError, match="train-00001.h5: field 'pooled' does not match its checksum"):
        Cache(cache_dir).read_shard("train", 1, ["pooled"])
    problems = verify_cache(cache_dir)
    assert len(problems) == 1 and "train-00001.h5: field 'pooled' does not match its checksum" in problems[0]


def test_a_shard_that_lost_clips_is_rewritten_at_its_size(tmp_path):
    clips = {
        "id": np.array(["a", "b", "c"], dtype=object),
        "tokens": np.arange(3 * 8, dtype=np.float32).reshape(3, 2, 4),
        "label": np.arange(3, dtype=np.int32),
    }
    writer = ShardWriter(tmp_path / "s.h5", capacity=5)
    writer.append(clips)
    record = writer.finish()
    assert record["clips"] == 3 and sorted(p.name for p in tmp_path.iterdir()) == ["s.h5"]
    with h5py.File(tmp_path / "s.h5") as f:
        assert {name: ds.shape[0] for name, ds in f.items()} == {"id": 3, "tokens": 3, "label": 3}
        assert f["tokens"].chunks is None and np.array_equal(f["tokens"][()], clips["tokens"].astype(np.float16))
        assert record["checksums"] == {name: checksum(f[name][()]) for name in f}
        assert record["fields"]["tokens"] == {"offset": f["tokens"].id.get_offset(), "dtype": "<f2", "shape": [3, 2, 4]}


def test_ids_of_any_length_and_script_read_back_as_str(tmp_path):
    writer = ShardWriter(tmp_path / "s.h5", capacity=3)
    for ids in (["a"], ["clip-é-ü-longer", "日本"]):  # the longest id comes in a later batch
        writer.append({"id": np.array(ids, dtype=object), "label": np.zeros(len(ids), np.int32)})
    record = writer.finish()
    assert record["fields"]["id"]["dtype"] == f"|S{len('clip-é-ü-longer'.encode())}"
    texts = write_texts(tmp_path / "texts.h5", ["a text"], np.zeros((1, 4), np.float32))
    backbone = {"name": "none", "config_hash": "none", "temporal": False}
    splits = {"train": {"clips": 3, "shards": [record]}}
    write_json(
        tmp_path / "manifest.json",
        {"schema_version": SCHEMA_VERSION, "backbone": backbone, "texts": texts, "splits": splits},
    )
    got = Cache(tmp_path).read_split("train")["id"]
    assert got.dtype == object and got.tolist() == ["a", "clip-é-ü-longer", "日本"]


def test_checksum_fed_in_pieces_equals_checksum_of_the_whole():
    data = np.random.default_rng(0).integers(0, 256, 5 * CHECKSUM_BLOCK + 123, dtype=np.uint8)
    state = Checksum()
    for start in range(0, len(data), 2 * CHECKSUM_BLOCK):
        state.update(data[start : start + 2 * CHECKSUM_BLOCK])
    assert state.hexdigest() == checksum(data)
    moved = np.concatenate(
        [data[CHECKSUM_BLOCK : 2 * CHECKSUM_BLOCK], data[:CHECKSUM_BLOCK], data[2 * CHECKSUM_BLOCK :]]
    )
    assert checksum(moved) != checksum(data)
    changed = data.copy()
    changed[-1] ^= 1  # in the zero-padded last block
    assert checksum(changed) != checksum(data)


def test_a_wrong_field_offset_in_the_manifest_is_refused(cache_dir):
    manifest = read_manifest(cache_dir)
    manifest["splits"]["train"]["shards"][0]["fields"]["pooled"]["offset"] += 4
    (cache_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CacheError, match="train-00000.h5: field 'pooled' does not match its checksum"):
        Cache(cache_dir).read_split("train", ["pooled"])
    problems = verify_cache(cache_dir)
    assert len(problems) == 1 and "'pooled' lies in the file otherwise than the manifest says" in problems[0]


def test_verify_catches_a_corrupted_shard(cache_dir):
    assert verify_cache(cache_dir) == []
    _flip_bytes(cache_dir / "train-00000.h5", "tokens")
    problems = verify_cache(cache_dir)
    assert len(problems) == 1 and "train-00000.h5" in problems[0] and "sha256" in problems[0]
    with pytest.raises(CacheError, match="corrupt"):
        Cache(cache_dir).read_shard("train", 0)  # never wrong numbers: each field's checksum is checked


def test_verify_catches_non_finite_values_and_bad_shapes(cache_dir):
    path = cache_dir / "validation-00000.h5"
    with h5py.File(path, "r+") as f:
        f["pooled"][0, 3] = np.nan
        pooled = f["pooled"][()]
    manifest = read_manifest(cache_dir)
    record = manifest["splits"]["validation"]["shards"][0]
    record |= {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    record["checksums"]["pooled"] = checksum(pooled)  # as if extraction itself had written the NaN
    (cache_dir / "manifest.json").write_text(json.dumps(manifest))
    problems = verify_cache(cache_dir)
    assert len(problems) == 1 and "non-finite" in problems[0] and "pooled" in problems[0]
    (cache_dir / "manifest.json").write_text(json.dumps(manifest | {"frames": 5}))
    problems = verify_cache(cache_dir)
    assert len(problems) == 6 and all("'tokens' has shape" in p or "'frames' has shape" in p for p in problems)


def test_summary_counts_clips_bytes_and_failures(tmp_path):
    bench = make_bench(tmp_path / "world", {"train": 3}, bad={"t0": "missing"})
    extract(*bench, tmp_path / "c", FakeBackbone(), frames=4, workers=0)
    info = summarize(read_manifest(tmp_path / "c"))
    assert info["splits"]["train"]["clips"] == 2 and info["failed"] == 1
    size = (tmp_path / "c" / "train-00000.h5").stat().st_size
    assert info["splits"]["train"]["bytes_per_clip"] == size / 2
    assert info["token_dtype"] == "fp16" and info["backbone"]["name"] == "fake-framewise"
