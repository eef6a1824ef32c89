"""The cache format: the writer's check, the reader's checks, verify and info."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import weakref
from pathlib import Path

import h5py
import numpy as np
import pytest
import xxhash
from fakes import FakeBackbone, make_bench

from paxion.atomic import TMP_MARK, temporary_name
from paxion.cache import reader
from paxion.cache.manifest import SCHEMA_VERSION, file_hash, read_manifest, write_manifest
from paxion.cache.reader import Cache
from paxion.cache.verify import verify_cache
from paxion.cache.writer import ShardWriter, write_texts
from paxion.errors import CacheError
from paxion.extract import pipeline
from paxion.extract.pipeline import extract
from paxion.report.tables import cache_summary


@pytest.fixture()
def cache_dir(tmp_path):
    """A fresh cache: 4 train clips in 2 shards + 2 validation clips, fake frame-wise backbone."""
    bench = make_bench(tmp_path / "world", {"train": 4, "validation": 2})
    extract(*bench, tmp_path / "cache", FakeBackbone(), frames=4, workers=0, shard_size=2, batch_size=2)
    return tmp_path / "cache"


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
def test_reader_returns_fields_as_stored_and_split_equals_its_shards(tmp_path, token_dtype):
    bench = make_bench(tmp_path / "world", {"train": 5})
    extract(*bench, tmp_path / "cache", FakeBackbone(), frames=4, workers=0, shard_size=2, batch_size=2,
            token_dtype=token_dtype)
    cache, int8 = Cache(tmp_path / "cache", verify=True), token_dtype == "int8"
    whole = cache.read_split("train")
    assert whole["tokens"].dtype == (np.int8 if int8 else np.float16) and whole["pooled"].dtype == np.float32
    assert whole["caption_idx"].dtype == np.int32
    assert {n for n in whole if n.endswith("_scale")} == ({"tokens_scale", "tokens_channel_scale"} if int8 else set())
    shards = [cache.read_shard("train", k) for k in range(cache.num_shards("train"))]
    assert [len(s["id"]) for s in shards] == [2, 2, 1]
    for name, value in whole.items():
        assert np.array_equal(value, np.concatenate([s[name] for s in shards]))
    assert list(cache.read_split("train", ["id"])) == ["id"]
    with h5py.File(tmp_path / "cache" / "train-00001.h5") as f:  # every feature as h5py reads it
        features = {name: ds[()] for name, ds in f.items() if name != "clips"}
    assert set(features) == {"tokens", "frames", "pooled"} | ({"tokens_scale", "tokens_channel_scale"} if int8 else set())
    for name, value in features.items():
        assert shards[1][name].dtype == value.dtype and np.array_equal(shards[1][name], value)


def test_at_most_max_open_shards_stay_open_and_reads_stay_right(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "MAX_OPEN_SHARDS", 2)
    bench = make_bench(tmp_path / "world", {"train": 5})
    extract(*bench, tmp_path / "cache", FakeBackbone(), frames=4, workers=0, shard_size=1, batch_size=2)
    cache, fd_dir = Cache(tmp_path / "cache"), Path("/proc/self/fd")

    def open_shards() -> set[str]:
        targets = {os.path.realpath(fd_dir / fd) for fd in os.listdir(fd_dir)}
        return {Path(t).name for t in targets if t.startswith(str(tmp_path / "cache" / "train-"))}

    first = [cache.read_shard("train", k)["id"][0] for k in range(5)]
    assert open_shards() == {"train-00003.h5", "train-00004.h5"}  # the two used last
    assert [cache.read_shard("train", k)["id"][0] for k in range(5)] == first  # reopened after being closed
    assert list(cache.read_split("train", ["id"])["id"]) == first
    gone = weakref.ref(cache)
    del cache  # no reference cycle: the files close now, not at the next garbage collection
    assert gone() is None and open_shards() == set()


def test_missing_field_or_wrong_clip_count_is_refused(cache_dir):
    with pytest.raises(CacheError, match="no field 'nope'"):
        Cache(cache_dir).read_split("train", ["tokens", "nope"])
    manifest = read_manifest(cache_dir)
    manifest["splits"]["train"]["shards"][1]["clips"] = 3
    write_manifest(cache_dir, manifest)
    with pytest.raises(CacheError, match="train-00001.h5: field '[a-z_]+' holds \\(2,\\) clips, the manifest says 3"):
        Cache(cache_dir).read_split("train")


def test_other_backbone_or_schema_is_refused(cache_dir):
    with pytest.raises(CacheError, match="fake-temporal"):
        Cache(cache_dir, backbone=FakeBackbone(temporal=True))
    with pytest.raises(CacheError, match="config"):
        Cache(cache_dir, backbone=FakeBackbone(seed=1))
    manifest = read_manifest(cache_dir)
    write_manifest(cache_dir, manifest | {"schema_version": 3})
    with pytest.raises(CacheError) as old:
        Cache(cache_dir)
    assert str(old.value) == (
        f"{cache_dir}: cache schema version 3 was made by an older paxion, this one reads version {SCHEMA_VERSION}; "
        "re-extract it with `paxion extract ... --overwrite`"
    )
    write_manifest(cache_dir, manifest | {"schema_version": 99})
    with pytest.raises(CacheError, match=f"schema version 99, this paxion reads version {SCHEMA_VERSION}$"):
        Cache(cache_dir)




def test_a_manifest_edited_by_hand_is_refused_and_a_rerun_repairs_it(tmp_path, cache_dir):
    written = read_manifest(cache_dir)
    expected = xxhash.xxh3_128_hexdigest(json.dumps({k: v for k, v in written.items() if k != "xxh3_128"},
                                                    sort_keys=True, ensure_ascii=False).encode())
    assert written["xxh3_128"] == expected
    path = cache_dir / "manifest.json"
    # a value of the right type (silently wrong without the hash), another type, a lost key, a changed hash
    for edit in ({"frames": written["frames"] + 1}, {"backbone": written["backbone"] | {"temporal": "no"}},
                 {"xxh3_128": "0" * 32}):
        path.write_text(json.dumps(written | edit))
        with pytest.raises(CacheError) as edited:
            Cache(cache_dir)
        assert str(edited.value) == (f"{path}: its values differ from its xxh3_128 (edited or corrupt); rerun the "
                                     "`paxion extract` that made the cache: it keeps the finished shards and rewrites "
                                     "the manifest")
    path.write_text(json.dumps({k: v for k, v in written.items() if k != "texts"}))
    with pytest.raises(CacheError, match="differ from its xxh3_128"):
        read_manifest(cache_dir)
    path.write_text(json.dumps(written, indent=None))  # the layout of the JSON text is not part of the hash
    assert read_manifest(cache_dir) == written
    path.write_text(json.dumps(written | {"frames": 2}))
    shards = {p.name: p.stat().st_mtime_ns for p in cache_dir.glob("*.h5")}
    bench = tmp_path / "world"  # the fixture's bench: the rerun the message asks for
    extract(bench / "bench", bench / "videos", cache_dir, FakeBackbone(), frames=4, workers=0, shard_size=2,
            batch_size=2)
    assert read_manifest(cache_dir) == written
    assert {p.name: p.stat().st_mtime_ns for p in cache_dir.glob("*.h5")} == shards
def test_truncated_or_missing_shard_is_refused_at_open(cache_dir):
    shard = cache_dir / "train-00001.h5"
    size = shard.stat().st_size
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(CacheError, match=f"train-00001.h5: {size - 100} bytes, the manifest says {size} \\(truncated"):
        Cache(cache_dir)
    shard.unlink()
    with pytest.raises(CacheError, match="train-00001.h5: missing"):
        Cache(cache_dir)
    assert any("train-00001.h5: missing" in p for p in verify_cache(cache_dir))


def test_a_field_stored_in_another_dtype_is_refused_at_first_read(cache_dir):
    path = cache_dir / "validation-00000.h5"
    with h5py.File(path, "r+") as f:  # the `clips` table rewritten with its label column as int64
        table = f["clips"][()]
        wider = np.empty(len(table), [(n, np.int64 if n == "label" else table.dtype[n]) for n in table.dtype.names])
        for name in table.dtype.names:
            wider[name] = table[name]
        del f["clips"]
        f.create_dataset("clips", data=wider)
    manifest = read_manifest(cache_dir)
    manifest["splits"]["validation"]["shards"][0]["bytes"] = path.stat().st_size
    write_manifest(cache_dir, manifest)
    cache = Cache(cache_dir)  # sizes agree: the open itself passes
    with pytest.raises(CacheError, match="validation-00000.h5: field 'label' is stored as int64, expected i4"):
        cache.read_split("validation", ["pooled"])


def _swap_two_tokens(path: Path) -> np.ndarray:
    """Swap the first two float16 values of clip 0's tokens in place (4 bytes, one 4 KiB block); returns the
    tokens as they were."""
    with h5py.File(path, "r") as f:
        before, offset = f["tokens"][()], f["tokens"].id.get_offset()
    first, second = before.reshape(-1)[:2]
    assert first != second
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(np.array([second, first], np.float16).tobytes())
    return before


def test_two_values_swapped_inside_one_block_are_caught_by_verify_and_verified_reads(cache_dir):
    assert verify_cache(cache_dir) == []
    before = _swap_two_tokens(cache_dir / "train-00000.h5")
    # a plain open checks sizes and layout only: it reads the swapped values
    got = Cache(cache_dir).read_shard("train", 0, ["tokens"])["tokens"]
    assert not np.array_equal(got, before) and np.array_equal(np.sort(got, axis=None), np.sort(before, axis=None))
    cache = Cache(cache_dir, verify=True)
    with pytest.raises(CacheError, match="train-00000.h5: xxh3_128 differs from the manifest"):
        cache.read_split("train", ["pooled"])
    assert len(cache.read_shard("train", 1)["tokens"]) == 2  # the other shard still reads
    problems = verify_cache(cache_dir)
    assert len(problems) == 1 and "train-00000.h5: xxh3_128 differs" in problems[0]


def test_a_text_table_that_differs_from_its_hash_is_refused_at_open(cache_dir):
    path = cache_dir / "texts.h5"
    with h5py.File(path, "r") as f:
        offset = f["emb"].id.get_offset()
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CacheError, match="texts.h5: xxh3_128 differs from the manifest"):
        Cache(cache_dir)


def test_a_shard_that_lost_clips_is_rewritten_at_its_size(tmp_path):
    clips = {
        "id": np.array(["a", "b", "c"], dtype=object),
        "tokens": np.arange(3 * 8, dtype=np.float32).reshape(3, 2, 4),
        "label": np.arange(3, dtype=np.int32),
    }
    writer = ShardWriter(tmp_path / "s.h5", capacity=5)
    writer.append(clips)
    record = writer.finish()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.h5"]  # no temporary file left
    path = tmp_path / "s.h5"
    assert record == {"file": "s.h5", "clips": 3, "bytes": path.stat().st_size, "xxh3_128": file_hash(path),
                      "fields": ["id", "label", "tokens"]}
    with h5py.File(path) as f:
        assert {name: ds.shape[0] for name, ds in f.items()} == {"clips": 3, "tokens": 3}
        assert f["clips"]["id"].tolist() == [b"a", b"b", b"c"] and np.array_equal(f["clips"]["label"], clips["label"])
        assert f["tokens"].chunks is None and f["tokens"].compression is None
        assert np.array_equal(f["tokens"][()], clips["tokens"].astype(np.float16))


def test_the_writer_refuses_a_shard_that_reads_back_otherwise(tmp_path):
    writer = ShardWriter(tmp_path / "s.h5", capacity=2)
    writer.append({"id": np.array(["a", "b"], dtype=object), "tokens": np.ones((2, 3), np.float32)})
    writer._hashes["tokens"].update(b"x")  # as if h5py had stored other bytes than it was given
    with pytest.raises(CacheError, match="s.h5: fields \\['tokens'\\] read back otherwise than written"):
        writer.finish()
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_ids_of_any_length_and_script_read_back_as_str(tmp_path):
    writer = ShardWriter(tmp_path / "s.h5", capacity=3)
    for ids in (["a"], ["clip-é-ü-longer", "日本"]):  # the longest id comes in a later batch
        writer.append({"id": np.array(ids, dtype=object), "label": np.zeros(len(ids), np.int32)})
    record = writer.finish()
    with h5py.File(tmp_path / "s.h5") as f:
        assert f["clips"].dtype["id"] == np.dtype(f"S{len('clip-é-ü-longer'.encode())}")
    texts = write_texts(tmp_path / "texts.h5", ["a text"], np.zeros((1, 4), np.float32))
    backbone = {"name": "none", "config_hash": "none", "temporal": False, "embed_dim": 4, "token_dim": 4,
                "tokens_per_frame": 1}
    splits = {"train": {"clips": 3, "shards": [record]}}
    write_manifest(tmp_path, {"schema_version": SCHEMA_VERSION, "backbone": backbone, "frames": 1,
                                            "token_dtype": "fp16", "texts": texts, "files": {}, "splits": splits})
    got = Cache(tmp_path).read_split("train")["id"]
    assert got.dtype == object and got.tolist() == ["a", "clip-é-ü-longer", "日本"]


def test_a_second_process_reuses_the_text_table(tmp_path, monkeypatch):
    bench = make_bench(tmp_path / "world", {"train": 4})
    options = {"frames": 4, "workers": 0, "shard_size": 2, "num_shards": 2}
    first = extract(*bench, tmp_path / "c", FakeBackbone(), shard_index=0, **options)
    texts = tmp_path / "c" / "texts.h5"
    written = (texts.stat().st_ino, texts.stat().st_mtime_ns, file_hash(texts))

    def encode_again(*args, **kwargs):
        raise AssertionError("the second process encoded the texts again")

    monkeypatch.setattr(pipeline, "encode_texts", encode_again)
    second = extract(*bench, tmp_path / "c", FakeBackbone(), shard_index=1, **options)
    assert not first.complete and second.complete
    assert (texts.stat().st_ino, texts.stat().st_mtime_ns, file_hash(texts)) == written
    assert Cache(tmp_path / "c").manifest["texts"]["xxh3_128"] == written[2]


def test_verify_names_leftover_temporary_files(cache_dir):
    leftover = cache_dir / "train-00000.h5.tmp-host-123-abcd1234"
    leftover.write_bytes(b"half")
    assert verify_cache(cache_dir) == [f"{leftover}: leftover temporary file of an interrupted write (delete it)"]


def test_verify_and_reader_catch_non_finite_values_and_bad_shapes(cache_dir):
    path = cache_dir / "validation-00000.h5"
    with h5py.File(path, "r+") as f:
        f["pooled"][0, 3] = np.nan
    manifest = read_manifest(cache_dir)
    record = manifest["splits"]["validation"]["shards"][0]
    record |= {"bytes": path.stat().st_size, "xxh3_128": file_hash(path)}  # as if extraction had written the NaN
    write_manifest(cache_dir, manifest)
    problems = verify_cache(cache_dir)
    assert problems == [f"{path}: field 'pooled' has 1 non-finite values"]
    write_manifest(cache_dir, manifest | {"frames": 5})
    problems = verify_cache(cache_dir)
    assert len(problems) == 6 and all("field 'frames' has shape" in p or "field 'tokens' has shape" in p
                                      for p in problems)
    with pytest.raises(CacheError, match="train-00000.h5: field 'frames' has shape \\(2, 4, 8\\), expected \\(2, 5, 8\\)"):
        Cache(cache_dir).read_shard("train", 0, ["pooled"])


def test_the_read_benchmark_runs_on_tiny_input():
    benchmarks = Path(__file__).resolve().parents[1] / "benchmarks"
    done = subprocess.run([sys.executable, "bench_cache_read.py", "--tiny"], check=False, cwd=benchmarks,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for name in ("plain read", "h5py read", "Cache.read_split", "Cache.read_shard"):
        assert name in done.stdout


def test_summary_counts_clips_bytes_and_failures(tmp_path):
    bench = make_bench(tmp_path / "world", {"train": 3}, bad={"t0": "missing"})
    extract(*bench, tmp_path / "c", FakeBackbone(), frames=4, workers=0)
    info = cache_summary(read_manifest(tmp_path / "c"))
    assert info["splits"]["train"]["clips"] == 2 and info["failed"] == 1
    size = (tmp_path / "c" / "train-00000.h5").stat().st_size
    assert info["splits"]["train"]["bytes_per_clip"] == size / 2
    assert info["token_dtype"] == "fp16" and info["backbone"]["name"] == "fake-framewise"


def test_a_new_writer_removes_temporaries_of_dead_processes_only(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    prefix = temporary_name(tmp_path / "s.h5").name.rsplit("-", 2)[0]
    stale, live = tmp_path / f"{prefix}-{dead}-0000aaaa", tmp_path / f"{prefix}-{os.getpid()}-0000bbbb"
    elsewhere = tmp_path / f"s.h5{TMP_MARK}otherhost-{dead}-0000cccc"
    for path in (stale, live, elsewhere):
        path.write_bytes(b"half")
    ShardWriter(tmp_path / "s.h5", capacity=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, elsewhere.name])


def test_a_full_disk_gives_one_line_and_leaves_no_temporary(tmp_path):
    script = f"""
import resource, numpy as np
from paxion.cache.writer import ShardWriter
from paxion.errors import PaxionError
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))  # writes past 100 kB fail (EFBIG)
writer = ShardWriter({str(tmp_path / "s.h5")!r}, capacity=4)
try:
    writer.append({{"id": np.array(["a", "b", "c", "d"], dtype=object), "tokens": np.ones((4, 200, 200), np.float32)}})
except PaxionError as exc:
    writer.abort()
    print(exc)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout == f"{tmp_path / 's.h5'}: cannot write (File too large)\n"
    assert list(tmp_path.iterdir()) == []
