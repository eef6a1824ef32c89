"""Extraction: read-back equals the backbone, resume, bad videos, reversal, work splitting."""

from __future__ import annotations

import json
import sys

import h5py
import numpy as np
import pytest
import torch
from fakes import FakeBackbone, make_bench

from paxion.cache.quant import as_float32
from paxion.cache.reader import Cache
from paxion.cli import main
from paxion.errors import CacheError, PaxionError
from paxion.extract import backbones
from paxion.extract.pipeline import extract
from paxion.extract.saliency import state_change
from paxion.extract.texts import class_text, distinct_texts, text_indices
from paxion.extract.video import read_frames


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """5 train + 3 validation clips."""
    return make_bench(tmp_path_factory.mktemp("world"), {"train": 5, "validation": 3})


def _run(bench, out, backbone=None, **kw):
    kw = {"frames": 4, "batch_size": 2, "workers": 0, "shard_size": 2} | kw
    return extract(*bench, out, backbone or FakeBackbone(), **kw)


def _expected(bench, backbone, split, frames=4):
    rows = [json.loads(line) for line in (bench[0] / f"{split}.jsonl").read_text().splitlines()]
    clips = np.stack([read_frames(bench[1] / r["video"], num_frames=frames, size=backbone.image_size) for r in rows])
    with torch.no_grad():
        return rows, clips, backbone.encode_video(backbone.preprocess(clips))


def test_cache_equals_backbone_output(bench, tmp_path):
    backbone = FakeBackbone()
    result = _run(bench, tmp_path / "c", backbone)
    assert result.complete and result.clips == 8 and not result.failed
    cache = Cache(tmp_path / "c", backbone=backbone)
    for split in ("train", "validation"):
        rows, _, feats = _expected(bench, backbone, split)
        got = cache.read_split(split)
        assert list(got["id"]) == [r["id"] for r in rows]
        np.testing.assert_allclose(got["tokens"], feats.tokens.numpy(), rtol=2e-3, atol=2e-3)
        np.testing.assert_allclose(got["pooled"], feats.pooled.numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got["frames"], feats.frames.numpy(), rtol=1e-5, atol=1e-5)
        assert [cache.texts[i] for i in got["caption_idx"]] == [r["caption"] for r in rows]
        assert (got["or_idx"] == -1).all()
        assert [cache.texts[i] for i in got["class_idx"]] == [r["template"] for r in rows]  # labelled: template
        np.testing.assert_allclose(cache.text_emb[got["aa_idx"]], backbone.encode_text([r["aa_caption"] for r in rows]))
    assert cache.manifest["backbone"]["num_params"] == sum(p.numel() for p in backbone.parameters())


def test_int8_is_half_the_bytes_and_close(bench, tmp_path):
    backbone = FakeBackbone(token_dim=64)
    _run(bench, tmp_path / "fp16", backbone, shard_size=8)
    _run(bench, tmp_path / "int8", backbone, shard_size=8, token_dtype="int8")
    fp16, int8 = Cache(tmp_path / "fp16").read_split("train"), Cache(tmp_path / "int8").read_split("train")
    assert (int8["tokens"].dtype, fp16["tokens"].dtype) == (np.int8, np.float16)
    a = as_float32({name: torch.from_numpy(v) for name, v in int8.items() if name.startswith("tokens")})["tokens"]
    a, b = a.numpy(), fp16["tokens"].astype(np.float32)
    with h5py.File(tmp_path / "fp16" / "train-00000.h5") as f16, h5py.File(tmp_path / "int8" / "train-00000.h5") as f8:
        scales = [f8[f"tokens{s}"] for s in ("_scale", "_channel_scale")]
        step = scales[0][()].astype(np.float32)[..., None] * scales[1][()].astype(np.float32)[:, None, None, :]
        ratio = sum(ds.id.get_storage_size() for ds in [f8["tokens"], *scales]) / f16["tokens"].id.get_storage_size()
    # half a quantisation step (and the fp16 tokens' own rounding on top)
    assert (np.abs(a[:8] - b[:8]) <= step * 0.51 + np.abs(b[:8]) * 2.0**-10).all()
    assert 0.5 < ratio < 0.55  # int8 values + one fp16 scale per 64 values + one per channel and clip


class Interrupt(Exception):
    pass


def test_interrupted_run_resumes_to_the_same_cache(bench, tmp_path):
    _run(bench, tmp_path / "whole")

    def stop_after_two_shards(p):
        if p.shards_done == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        _run(bench, tmp_path / "resumed", progress=stop_after_two_shards)
    assert not (tmp_path / "resumed" / "manifest.json").exists()
    assert not list((tmp_path / "resumed").glob("*.tmp*"))
    backbone = FakeBackbone()
    result = _run(bench, tmp_path / "resumed", backbone)
    assert (result.shards_resumed, result.shards_written) == (2, 3)
    assert backbone.clips_encoded == 4  # the 4 clips of the 3 unfinished shards, nothing more
    whole = (tmp_path / "whole" / "manifest.json").read_text()
    assert (tmp_path / "resumed" / "manifest.json").read_text() == whole
    for split in ("train", "validation"):
        a, b = Cache(tmp_path / "whole").read_split(split), Cache(tmp_path / "resumed").read_split(split)
        assert all(np.array_equal(a[k], b[k]) for k in a)


def test_bad_videos_are_recorded_and_skipped(tmp_path):
    bench = make_bench(tmp_path, {"train": 4}, bad={"t1": "missing", "t2": "corrupt"})
    result = _run(bench, tmp_path / "c")
    assert result.complete and result.clips == 2
    cache = Cache(tmp_path / "c")
    assert list(cache.read_split("train")["id"]) == ["t0", "t3"]
    failed = {f["id"]: f for f in cache.manifest["failed"]}
    assert set(failed) == {"t1", "t2"} and all(f["reason"] and f["split"] == "train" for f in failed.values())
    assert failed["t1"]["video"] == "t1.mp4"


def test_framewise_reversal_costs_no_backbone_pass(bench, tmp_path):
    backbone = FakeBackbone()
    _run(bench, tmp_path / "c", backbone, batch_size=8, shard_size=8)
    assert (backbone.video_calls, backbone.clips_encoded) == (2, 8)
    assert "tokens_rev" not in Cache(tmp_path / "c").read_shard("train", 0)


def test_temporal_backbone_stores_reversed_clips(bench, tmp_path):
    backbone = FakeBackbone(temporal=True)
    _run(bench, tmp_path / "c", backbone)
    assert backbone.clips_encoded == 16
    got = Cache(tmp_path / "c").read_split("train")
    _, clips, _ = _expected(bench, backbone, "train")
    with torch.no_grad():
        rev = backbone.encode_video(backbone.preprocess(clips[:, ::-1].copy()))
    np.testing.assert_allclose(got["tokens_rev"], rev.tokens.numpy(), rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(got["pooled_rev"], rev.pooled.numpy(), rtol=1e-5, atol=1e-5)
    assert np.abs(got["tokens_rev"] - got["tokens"][:, ::-1]).max() > 0.1


def test_other_config_into_same_dir_is_refused(bench, tmp_path):
    _run(bench, tmp_path / "c")
    with pytest.raises(CacheError, match="another configuration"):
        _run(bench, tmp_path / "c", frames=6)
    assert _run(bench, tmp_path / "c", frames=6, overwrite=True).complete
    assert Cache(tmp_path / "c").read_split("train")["tokens"].shape[1] == 6


def test_two_processes_make_the_same_cache_as_one(bench, tmp_path, monkeypatch):
    _run(bench, tmp_path / "one")
    first = _run(bench, tmp_path / "two", num_shards=2, shard_index=1)
    assert not first.complete and first.shards_written == 2
    assert not (tmp_path / "two" / "manifest.json").exists()
    monkeypatch.setenv("WORLD_SIZE", "2")  # the second one as torchrun would start it
    monkeypatch.setenv("RANK", "0")
    second = _run(bench, tmp_path / "two")
    assert second.complete and second.shards_written == 3
    assert (tmp_path / "two" / "manifest.json").read_text() == (tmp_path / "one" / "manifest.json").read_text()


def test_shard_index_outside_the_process_count_is_refused(bench, tmp_path):
    with pytest.raises(PaxionError, match="shard index 2"):
        _run(bench, tmp_path / "c", num_shards=2, shard_index=2)


def test_decoding_workers_give_the_same_cache(bench, tmp_path):
    _run(bench, tmp_path / "w0")
    _run(bench, tmp_path / "w2", workers=2)
    for split in ("train", "validation"):
        a, b = Cache(tmp_path / "w0").read_split(split), Cache(tmp_path / "w2").read_split(split)
        for name in a:  # the backbone's float sums may differ in the last bit with other memory alignment
            if a[name].dtype.kind == "f":
                np.testing.assert_allclose(b[name], a[name], rtol=1e-5, atol=1e-5)
            else:
                np.testing.assert_array_equal(b[name], a[name])


def test_saliency_follows_appendix_c():
    a, b = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    changing = torch.stack([a, a, b, b])[None]  # first half a, second half b
    still = torch.stack([a, a, a, a])[None]
    delta, theta, keep = state_change(torch.cat([changing, still]), torch.stack([a, a]))
    np.testing.assert_allclose(delta.numpy(), [1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(theta.numpy(), [0.0, 1.0], atol=1e-6)
    assert keep.tolist() == [True, False]
    _, _, keep = state_change(changing, a[None], delta_vt=1.5)
    assert keep.tolist() == [False]


def _cli(monkeypatch, capsys, *argv):
    """Run `paxion ARGV` in-process with the fake backbone; returns (exit code, stdout + stderr)."""
    monkeypatch.setattr(backbones, "load_backbone", lambda spec, device: FakeBackbone())
    monkeypatch.setattr(sys, "argv", ["paxion", *map(str, argv)])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out + out.err


def test_cli_extract_info_verify(monkeypatch, capsys, tmp_path):
    bench, videos = make_bench(tmp_path, {"train": 3}, bad={"t1": "corrupt"})
    args = ["extract", "--bench", bench, "--videos", videos, "--frames", 4, "--workers", 0, "--device", "cpu"]
    code, out = _cli(monkeypatch, capsys, *args, "--out", tmp_path / "c")
    assert code == 0 and "2 clips cached, 1 failed" in out and "t1" in out
    code, out = _cli(monkeypatch, capsys, "cache", "info", tmp_path / "c")
    assert code == 0 and "fake-framewise" in out and "1 failed" in out
    assert _cli(monkeypatch, capsys, "cache", "verify", tmp_path / "c")[0] == 0
    shard = tmp_path / "c" / "train-00000.h5"
    shard.write_bytes(shard.read_bytes()[:-1] + b"x")
    code, out = _cli(monkeypatch, capsys, "cache", "verify", tmp_path / "c")
    assert code == 1 and "xxh3_128" in out and "1 problem" in out


def test_cli_fails_only_when_every_clip_fails(monkeypatch, capsys, tmp_path):
    bench, videos = make_bench(tmp_path, {"train": 2}, bad={"t0": "missing", "t1": "corrupt"})
    code, out = _cli(monkeypatch, capsys, "extract", "--bench", bench, "--videos", videos, "--out", tmp_path / "c",
                     "--workers", 0, "--frames", 4)
    assert code == 1 and "every clip failed" in out and "Traceback" not in out
    code, out = _cli(monkeypatch, capsys, "extract", "--bench", bench, "--videos", videos, "--out", tmp_path / "c",
                     "--batch-size", 0)
    assert code == 2 and "batch-size" in out


def test_texts_are_deduplicated_and_referenced_by_index():
    records = [
        {"caption": "q a", "template": None, "aa_caption": "q b", "or_caption": None, "candidates": ["q a", "q b", "q c"],
         "answer": 0},
        {"caption": "q c", "template": None, "aa_caption": None, "or_caption": "q a", "candidates": ["q c", "q d"],
         "answer": 1},
    ]
    texts = distinct_texts(records)
    assert texts == ["q a", "q b", "q c", "q d"]
    index = {t: i for i, t in enumerate(texts)}
    refs = text_indices(records[1], index)
    assert (refs["caption_idx"], refs["aa_idx"], refs["or_idx"], refs["template_idx"]) == (2, -1, 0, -1)
    assert refs["mc_idx"].tolist() == [2, 3] and refs["mc_answer"] == 1
    assert refs["mc_aa_idx"].tolist() == [-1, -1]  # a bench without candidate antonyms


def test_candidate_antonyms_join_the_text_table():
    record = {"caption": "q a", "template": None, "aa_caption": None, "or_caption": None, "candidates": ["q a", "q b"],
              "answer": 0, "candidates_aa": [None, "q not b"]}
    texts = distinct_texts([record])
    assert texts == ["q a", "q b", "q not b"]
    refs = text_indices(record, {t: i for i, t in enumerate(texts)})
    assert refs["mc_aa_idx"].tolist() == [-1, 2] and refs["mc_aa_idx"].dtype == np.int32


def test_a_clip_class_is_stored_as_its_text():
    kinetics = {"caption": "abseiling", "template": None, "label": 0, "class_name": "abseiling"}
    ssv2 = {"caption": "Pushing a cup from left to right", "template": "Pushing something from left to right",
            "label": 93}
    ego4d = {"caption": "C picks up a knife", "template": "C picks up something", "label": None}
    assert [class_text(r) for r in (kinetics, ssv2, ego4d)] == ["abseiling", ssv2["template"], None]
    texts = distinct_texts([kinetics, ssv2, ego4d])
    assert "abseiling" in texts and ssv2["template"] in texts
    index = {t: i for i, t in enumerate(texts)}
    assert [int(text_indices(r, index)["class_idx"]) for r in (kinetics, ssv2, ego4d)] == [
        index["abseiling"], index[ssv2["template"]], -1]
