"""The training loop: learns action knowledge, resumes bitwise, guards RUN_DIR, --init, defaults, CLI."""

import json

import pytest
import torch
from click.testing import CliRunner
from tiny_cache import make_cache

from paxion.cache.reader import Cache
from paxion.cli import cli
from paxion.errors import PaxionError
from paxion.trainer.evaluate import actionbench
from paxion.trainer.scoring import build_model, load_model, load_scorer
from paxion.trainer.train import (
    PAPER_DEFAULTS,
    WORLD_DEFAULTS,
    WORLD_MODEL_OPTIONS,
    _initialise_patcher,
    resolve_options,
    train,
)

SMALL = {"num_latents": 4, "heads": 2, "dim_head": 16}
FAST = {"batch_size": 32, "lr": 1e-2, "schedule": "cosine", "model_options": SMALL, "device": "cpu"}


class Interrupt(Exception):
    pass


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return make_cache(tmp_path_factory.mktemp("cache"))


def accuracies(result):
    return {task: result[task]["accuracy"] for task in ("aa", "vr")}


def test_training_raises_aa_and_vr_above_the_backbone(cache_dir, tmp_path):
    cache = Cache(cache_dir)
    backbone = accuracies(actionbench(load_scorer(cache, None), cache, "validation"))
    events = []
    summary = train(cache_dir, tmp_path / "run", epochs=8, progress=events.append, **FAST)
    trained = accuracies(summary["eval"])
    assert trained["aa"] > backbone["aa"] + 25 and trained["vr"] > backbone["vr"] + 25, (backbone, trained)
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics[:-1]] == list(range(1, 9)) and metrics[-1]["eval"] == "validation"
    assert metrics[-2]["loss"] < metrics[0]["loss"]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["backbone_hash"] == cache.manifest["backbone"]["config_hash"] and config["lr"] == 1e-2
    start = events[0]
    assert start["event"] == "start" and start["trainable"] > 0 and start["backbone_params"] == 1_000_000
    assert sum(e["event"] == "step" for e in events) == start["total_steps"] == 8 * 6
    assert load_model(tmp_path / "run" / "model.pt").kind == "kp-perceiver"


@pytest.mark.parametrize("stop_at", [("epoch", 1), ("step", 14)])
def test_resume_equals_an_uninterrupted_run(cache_dir, tmp_path, stop_at):
    options = dict(FAST, epochs=3, eval_split=None, memory_budget="1B")  # streaming shards
    train(cache_dir, tmp_path / "whole", **options)

    def interrupt(event):
        if event["event"] == stop_at[0] and event[stop_at[0]] == stop_at[1]:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(cache_dir, tmp_path / "cut", progress=interrupt, **options)
    assert not (tmp_path / "cut" / "model.pt").exists()
    with pytest.raises(PaxionError, match="--resume"):
        train(cache_dir, tmp_path / "cut", **options)
    train(cache_dir, tmp_path / "cut", resume=True, **options)
    whole, cut = (torch.load(tmp_path / d / "model.pt")["state_dict"] for d in ("whole", "cut"))
    assert whole.keys() == cut.keys() and all(torch.equal(whole[k], cut[k]) for k in whole)
    lines = [(tmp_path / d / "metrics.jsonl").read_text().splitlines() for d in ("whole", "cut")]
    assert [json.loads(a)["loss"] for a in lines[0]] == [json.loads(b)["loss"] for b in lines[1]]
    again = train(cache_dir, tmp_path / "cut", resume=True, **options)
    assert again["finished_before"]


def test_run_dir_guards(cache_dir, tmp_path):
    options = dict(FAST, epochs=1, eval_split=None)
    train(cache_dir, tmp_path / "run", **options)
    with pytest.raises(PaxionError, match="finished run"):
        train(cache_dir, tmp_path / "run", **options)
    with pytest.raises(PaxionError, match="lr"):
        train(cache_dir, tmp_path / "run", resume=True, **dict(options, lr=1e-3))


def test_init_copies_the_patcher_and_checks_its_kind(cache_dir, tmp_path):
    train(cache_dir, tmp_path / "kp", **dict(FAST, epochs=1, eval_split=None))
    backbone = Cache(cache_dir).manifest["backbone"]
    fused = build_model("paxion", backbone=backbone, frames=4, **SMALL)
    _initialise_patcher(fused, tmp_path / "kp", backbone["config_hash"])
    source = load_model(tmp_path / "kp" / "model.pt").patcher().state_dict()
    assert all(torch.equal(source[k], v) for k, v in fused.patcher().state_dict().items())
    with pytest.raises(PaxionError, match="patcher"):
        train(cache_dir, tmp_path / "tf", model="kp-transformer", init=tmp_path / "kp",
              **dict(FAST, epochs=1, model_options={}))
    summary = train(cache_dir, tmp_path / "px", model="paxion", init=tmp_path / "kp", **dict(FAST, epochs=1))
    assert summary["eval"]["aa"]["n"] == 96


def test_defaults_follow_the_cache_and_explicit_options_win():
    world = resolve_options({"bench": {"builtin_world": True}}, lr=None, epochs=None, batch_size=128)
    assert world["lr"] == WORLD_DEFAULTS["lr"] and world["epochs"] == WORLD_DEFAULTS["epochs"]
    assert world["batch_size"] == 128 and world["schedule"] == "cosine" and world["saliency"] is False
    assert world["model_options"] == WORLD_MODEL_OPTIONS["kp-perceiver"]
    transformer = resolve_options({"bench": {"builtin_world": True}}, model="kp-transformer")
    assert transformer["model_options"] == WORLD_MODEL_OPTIONS["kp-transformer"]
    paper = resolve_options({"bench": {"builtin_world": False}})
    assert {k: paper[k] for k in PAPER_DEFAULTS} == PAPER_DEFAULTS


def test_template_text_turns_vac_off(cache_dir, tmp_path):
    events = []
    train(cache_dir, tmp_path / "run", text="template", progress=events.append, **dict(FAST, epochs=1, eval_split=None))
    assert events[0]["config"]["vac"] is False and any("VAC" in note for note in events[0]["notes"])


def test_cli_train_and_bad_input(cache_dir, tmp_path):
    runner = CliRunner()
    ok = runner.invoke(cli, ["train", "--cache", str(cache_dir), "--out", str(tmp_path / "run"), "--epochs", "1",
                             "--lr", "1e-2", "--device", "cpu", "--eval-split", "none"])
    assert ok.exit_code == 0, ok.output
    assert "trainable" in ok.output and (tmp_path / "run" / "model.pt").exists()
    missing = runner.invoke(cli, ["train", "--cache", str(tmp_path / "nope"), "--out", str(tmp_path / "x")])
    assert missing.exit_code != 0 and "does not exist" in missing.output
    zero = runner.invoke(cli, ["train", "--cache", str(cache_dir), "--out", str(tmp_path / "y"), "--epochs", "0"])
    assert zero.exit_code != 0
    budget = runner.invoke(cli, ["train", "--cache", str(cache_dir), "--out", str(tmp_path / "z"),
                                 "--memory-budget", "lots"])
    assert budget.exit_code != 0 and "not a size" in budget.output
