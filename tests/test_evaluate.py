"""ActionBench scoring: ties, Wilson intervals, AA/VR/OR counts on a tiny fake cache, scorers and `paxion eval`."""

import json
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from model_fakes import make_model
from tiny_cache import make_cache

from paxion import cli as cli_module
from paxion.errors import CacheError, PaxionError
from paxion.models.patched import save_model
from paxion.scoring import BackboneScorer, ModelScorer, encode_split, load_scorer
from paxion.stats import wilson_interval
from paxion.trainer.config import TrainConfig
from paxion.trainer.evaluate import actionbench, pair_credit

T, N, D, DIM = 2, 3, 4, 3
TEXT_EMB = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
# clip: pooled, caption, aa, or (-1 = none), pooled of the stored reversed clip (temporal caches only)
CLIPS = [
    ([1.0, 0.2, 0.0], 0, 1, 2, [0.0, 1.0, 0.0]),   # AA right, OR right; reversed: VR right
    ([0.2, 1.0, 0.0], 0, 1, -1, [1.0, 0.0, 0.0]),  # AA wrong;            reversed: VR wrong
    ([1.0, 0.0, 1.0], 0, -1, 2, [1.0, 0.0, 1.0]),  # OR tie;              reversed: VR tie
    ([1.0, 1.0, 0.0], 0, 1, 2, [1.0, 0.0, 0.0]),   # AA tie, OR right;    reversed: VR wrong
]


class FakeCache:
    """The reader's interface over in-memory arrays, split into shards of `shard_size` clips."""

    def __init__(self, *, temporal=False, shard_size=2, config_hash="h1"):
        self.temporal = temporal
        self.texts = ["a", "b", "c"]
        self.text_emb = TEXT_EMB
        rng = np.random.default_rng(0)
        n = len(CLIPS)
        self.data = {
            "pooled": np.array([c[0] for c in CLIPS], dtype=np.float32),
            "caption_idx": np.array([c[1] for c in CLIPS], dtype=np.int32),
            "aa_idx": np.array([c[2] for c in CLIPS], dtype=np.int32),
            "or_idx": np.array([c[3] for c in CLIPS], dtype=np.int32),
            "tokens": rng.normal(size=(n, T, N, D)).astype(np.float32),
            "aa_same": np.zeros(n, dtype=bool),
            "or_same": np.zeros(n, dtype=bool),
        }
        if temporal:
            self.data["pooled_rev"] = np.array([c[4] for c in CLIPS], dtype=np.float32)
            self.data["tokens_rev"] = rng.normal(size=(n, T, N, D)).astype(np.float32)
        self.shards = [slice(s, s + shard_size) for s in range(0, n, shard_size)]
        backbone = {"name": "fake", "config_hash": config_hash, "temporal": temporal, "embed_dim": DIM,
                    "token_dim": D, "tokens_per_frame": N, "num_params": 100}
        self.manifest = {"backbone": backbone, "frames": T, "splits": {"validation": {"clips": n}}}
        self.splits = ["validation"]

    def num_shards(self, split):
        return len(self.shards)

    def read_shard(self, split, k, fields=None, *, dequantize=True):
        return {f: self.data[f][self.shards[k]] for f in fields or self.data}


def test_ties_count_half():
    credit = pair_credit(torch.tensor([0.5, 0.2, 0.3, 0.3000001]), torch.tensor([0.4, 0.3, 0.3, 0.3]))
    assert credit.tolist() == [1.0, 0.0, 0.5, 0.5]


def test_wilson_interval_by_hand():
    # 8 of 10, z = 1.96: centre (0.8 + 0.19208) / 1.38416 = 0.716738,
    # half 1.96 / 1.38416 * sqrt(0.016 + 0.009604) = 0.226581 -> [49.016, 94.332] %
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(49.016, abs=1e-3) and hi == pytest.approx(94.332, abs=1e-3)
    lo, hi = wilson_interval(0, 5)
    assert lo == 0.0 and 0 < hi < 50


@pytest.mark.parametrize("batch_size", [1, 3, 256])
def test_actionbench_counts_on_a_fake_frame_wise_cache(batch_size):
    result = actionbench(FakeCache(), BackboneScorer(temporal=False), batch_size=batch_size)
    assert result["aa"]["n"] == 3 and result["aa"]["accuracy"] == pytest.approx(100 * 1.5 / 3)
    assert result["or"]["n"] == 3 and result["or"]["accuracy"] == pytest.approx(100 * 2.5 / 3)
    # a frame-wise backbone cannot tell a clip from its reversal: every VR pair is a tie
    assert result["vr"] == {"accuracy": 50.0, "n": 4, "ci95": pytest.approx(wilson_interval(2, 4)),
                            "set": "all"}


def test_actionbench_uses_stored_reversals_of_temporal_caches():
    result = actionbench(FakeCache(temporal=True), BackboneScorer(temporal=True))
    assert result["vr"]["n"] == 4 and result["vr"]["accuracy"] == pytest.approx(100 * 1.5 / 4)


def test_vr_on_the_paper_set_scores_only_clips_with_an_antonym_caption():
    cache = FakeCache(temporal=True)
    paper = actionbench(cache, BackboneScorer(temporal=True), vr_set="aa")
    # clips 0, 1 and 3 have an AA caption: VR right, wrong, wrong
    assert (paper["vr"]["n"], paper["vr"]["accuracy"], paper["vr"]["set"]) == (3, pytest.approx(100 / 3), "aa")
    assert paper["aa"] == actionbench(cache, BackboneScorer(temporal=True))["aa"]
    with pytest.raises(PaxionError, match="unknown VR clip set"):
        actionbench(cache, BackboneScorer(temporal=True), vr_set="some")


@pytest.mark.parametrize("batch_size", [1, 3])
def test_clip_mask_restricts_every_task(batch_size):
    result = actionbench(FakeCache(temporal=True), BackboneScorer(temporal=True), batch_size=batch_size,
                         clips=np.array([True, False, True, True]))
    assert (result["aa"]["n"], result["aa"]["accuracy"]) == (2, pytest.approx(100 * 1.5 / 2))  # right, tie
    assert (result["or"]["n"], result["or"]["accuracy"]) == (3, pytest.approx(100 * 2.5 / 3))  # right, tie, right
    assert (result["vr"]["n"], result["vr"]["accuracy"]) == (3, pytest.approx(100 * 1.5 / 3))  # right, tie, wrong


def test_task_without_pairs_has_no_accuracy():
    cache = FakeCache()
    cache.data["aa_idx"][:] = -1
    result = actionbench(cache, BackboneScorer(temporal=False))
    assert result["aa"] == {"accuracy": None, "n": 0, "ci95": None, "left_out": 0}
    with pytest.raises(CacheError, match="no split 'test'"):
        actionbench(cache, BackboneScorer(temporal=False), "test")


@pytest.mark.parametrize("batch_size", [1, 256])
def test_negatives_that_embed_like_their_caption_are_left_out_not_tied(batch_size):
    cache = FakeCache()
    cache.data["aa_same"][3] = True  # clip 3's AA pair (a tie) and clip 2's OR pair (a tie): truncated alike
    cache.data["or_same"][2] = True
    result = actionbench(cache, BackboneScorer(temporal=False), batch_size=batch_size)
    assert (result["aa"]["n"], result["aa"]["accuracy"], result["aa"]["left_out"]) == (2, 50.0, 1)  # right, wrong
    assert (result["or"]["n"], result["or"]["accuracy"], result["or"]["left_out"]) == (2, 100.0, 1)  # right, right
    masked = actionbench(cache, BackboneScorer(temporal=False), clips=np.array([True, True, True, False]))
    assert (masked["aa"]["left_out"], masked["or"]["left_out"]) == (0, 1)


def test_load_scorer_checks_the_backbone_and_scores_a_run(tmp_path):
    cache = FakeCache()
    assert isinstance(load_scorer(cache, None), BackboneScorer)
    model = make_model("kp-perceiver", backbone=cache.manifest["backbone"], frames=T, num_latents=5)
    save_model(model, tmp_path / "model.pt", config=TrainConfig.paper(num_latents=5).to_dict())
    scorer = load_scorer(cache, tmp_path, device="cpu")
    assert isinstance(scorer, ModelScorer) and scorer.scale == pytest.approx(1 / 0.07, rel=1e-5)
    videos = encode_split(cache, scorer, "validation", batch_size=3)
    assert videos.shape == (4, 5, DIM) and videos.dtype == np.float32
    assert np.allclose(np.linalg.norm(videos, axis=-1), 1, atol=1e-5)
    result = actionbench(cache, scorer)
    assert [result[t]["n"] for t in ("aa", "vr", "or")] == [3, 4, 3]
    with pytest.raises(CacheError, match="trained on backbone features h1"):
        load_scorer(FakeCache(config_hash="other"), tmp_path)


def test_eval_cli_writes_json(tmp_path):
    cache_dir = make_cache(tmp_path / "cache", clips={"validation": 24}, shard_size=10)
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(cli_module.cli, ["eval", "--cache", str(cache_dir), "--backbone-only",
                                                 "--json", str(out), "--device", "cpu", "--batch-size", "7"])
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert set(written) == {"aa", "vr", "or", "per_class"}
    written.pop("per_class")
    for name, task in written.items():
        assert set(task) == {"accuracy", "n", "ci95"} | ({"set"} if name == "vr" else {"left_out"}) and task["n"] == 24
        lo, hi = task["ci95"]
        assert lo <= task["accuracy"] <= hi
    assert written["vr"]["accuracy"] == 50.0
    assert "Video Reversal" in result.output


def test_eval_cli_scores_listed_clips_and_names_the_vr_set(tmp_path):
    cache_dir = make_cache(tmp_path / "cache", clips={"validation": 24}, shard_size=10)
    ids = tmp_path / "pool.txt"
    ids.write_text("".join(f"validation{i}\n" for i in range(3, 13)) + "\nnot-a-clip\n")
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(cli_module.cli, ["eval", "--cache", str(cache_dir), "--backbone-only", "--ids",
                                                 str(ids), "--vr-set", "aa", "--json", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert [written[t]["n"] for t in ("aa", "vr", "or")] == [10, 10, 10]  # every tiny-cache clip has AA and OR
    assert written["vr"]["set"] == "aa"
    assert "1 ids listed" in result.output


def test_eval_cli_rejects_bad_input(tmp_path, monkeypatch, capsys):
    cache_dir = make_cache(tmp_path / "cache", clips={"validation": 4})
    runner = CliRunner()
    neither = runner.invoke(cli_module.cli, ["eval", "--cache", str(cache_dir)])
    assert neither.exit_code == 2 and "--backbone-only" in neither.output
    missing = runner.invoke(cli_module.cli, ["eval", "--cache", str(tmp_path / "nope"), "--backbone-only"])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    monkeypatch.setattr(sys, "argv", ["paxion", "eval", "--cache", str(cache_dir), "--run", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_info:
        cli_module.main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "no such model file" in err and "Traceback" not in err
