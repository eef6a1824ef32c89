"""The training loop: learns action knowledge, resumes bitwise, guards RUN_DIR, --init, defaults, CLI."""

import json
import math

import pytest
import torch
from click.testing import CliRunner
from model_fakes import make_model
from tiny_cache import make_cache

from paxion.cache.reader import Cache
from paxion.cli import cli
from paxion.errors import PaxionError
from paxion.models.patched import load_model
from paxion.scoring import load_scorer
from paxion.trainer.config import TrainConfig, field_help, parse_bytes, resolve_config
from paxion.trainer.evaluate import actionbench
from paxion.trainer.train import _initialise_patcher, train

SMALL = {"num_latents": 4, "heads": 2, "dim_head": 16}
FAST = {"batch_size": 32, "lr": 1e-2, "schedule": "cosine", **SMALL}


class Interrupt(Exception):
    pass


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return make_cache(tmp_path_factory.mktemp("cache"))


def accuracies(result):
    return {task: result[task]["accuracy"] for task in ("aa", "vr")}


def test_training_raises_aa_and_vr_above_the_backbone(cache_dir, tmp_path):
    cache = Cache(cache_dir)
    backbone = accuracies(actionbench(cache, load_scorer(cache, None), "validation"))
    events = []
    summary = train(cache_dir, tmp_path / "run", options=dict(FAST, epochs=8), device="cpu", progress=events.append)
    trained = accuracies(summary["eval"])
    assert trained["aa"] > backbone["aa"] + 25 and trained["vr"] > backbone["vr"] + 25, (backbone, trained)
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics[:-1]] == list(range(1, 9)) and metrics[-1]["eval"] == "validation"
    assert metrics[-2]["loss"] < metrics[0]["loss"]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["backbone_hash"] == cache.manifest["backbone"]["config_hash"] and config["preset"] == "paper"
    # the whole config is saved: what was given, and the paper preset's values for the rest
    expected = TrainConfig.paper(**FAST, epochs=8).to_dict()
    assert {k: config[k] for k in expected} == expected and config["label_smoothing"] == 0.1
    model, saved = load_model(tmp_path / "run" / "model.pt")
    assert saved == expected and model.options == TrainConfig.paper(**FAST).model_options()
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert checkpoint["config"] == expected
    start = events[0]
    assert start["event"] == "start" and start["trainable"] > 0 and start["backbone_params"] == 1_000_000
    assert sum(e["event"] == "step" for e in events) == start["total_steps"] == 8 * 6
    assert model.kind == "kp-perceiver"


@pytest.mark.parametrize("stop_at", [("epoch", 1), ("step", 14)])
def test_resume_equals_an_uninterrupted_run(cache_dir, tmp_path, stop_at):
    options = dict(FAST, epochs=3, eval_split=None, memory_budget="1B")  # streaming shards
    train(cache_dir, tmp_path / "whole", options=options, device="cpu")

    def interrupt(event):
        if event["event"] == stop_at[0] and event[stop_at[0]] == stop_at[1]:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(cache_dir, tmp_path / "cut", options=options, device="cpu", progress=interrupt)
    assert not (tmp_path / "cut" / "model.pt").exists()
    with pytest.raises(PaxionError, match="--resume"):
        train(cache_dir, tmp_path / "cut", options=options, device="cpu")
    train(cache_dir, tmp_path / "cut", options=options, device="cpu", resume=True)
    whole, cut = (torch.load(tmp_path / d / "model.pt")["state_dict"] for d in ("whole", "cut"))
    assert whole.keys() == cut.keys() and all(torch.equal(whole[k], cut[k]) for k in whole)
    lines = [(tmp_path / d / "metrics.jsonl").read_text().splitlines() for d in ("whole", "cut")]
    assert [json.loads(a)["loss"] for a in lines[0]] == [json.loads(b)["loss"] for b in lines[1]]
    again = train(cache_dir, tmp_path / "cut", options=options, device="cpu", resume=True)
    assert again["finished_before"]


def test_run_dir_guards(cache_dir, tmp_path):
    options = dict(FAST, epochs=1, eval_split=None)
    train(cache_dir, tmp_path / "run", options=options, device="cpu")
    with pytest.raises(PaxionError, match="finished run"):
        train(cache_dir, tmp_path / "run", options=options, device="cpu")
    with pytest.raises(PaxionError, match="lr"):
        train(cache_dir, tmp_path / "run", options=dict(options, lr=1e-3), device="cpu", resume=True)
    with pytest.raises(PaxionError, match="label_smoothing"):
        train(cache_dir, tmp_path / "run", options=dict(options, label_smoothing=0.0), device="cpu", resume=True)
    # a finished run resumed with another memory budget or eval split has nothing to redo
    again = train(cache_dir, tmp_path / "run", options=dict(options, memory_budget="1B"), device="cpu", resume=True)
    assert again["finished_before"]


def test_init_copies_the_patcher_and_checks_its_kind(cache_dir, tmp_path):
    train(cache_dir, tmp_path / "kp", options=dict(FAST, epochs=1, eval_split=None), device="cpu")
    backbone = Cache(cache_dir).manifest["backbone"]
    fused = make_model("paxion", backbone=backbone, frames=4, **SMALL)
    _initialise_patcher(fused, tmp_path / "kp", backbone["config_hash"])
    source = load_model(tmp_path / "kp" / "model.pt")[0].patcher().state_dict()
    assert all(torch.equal(source[k], v) for k, v in fused.patcher().state_dict().items())
    with pytest.raises(PaxionError, match="patcher"):
        train(cache_dir, tmp_path / "tf", options={"batch_size": 32, "model": "kp-transformer", "init": tmp_path / "kp"},
              device="cpu")
    # the patcher options come from the --init run, not from the preset
    summary = train(cache_dir, tmp_path / "px", options={"model": "paxion", "init": tmp_path / "kp", "batch_size": 32,
                                                             "lr": 1e-2, "epochs": 1}, device="cpu")
    assert summary["eval"]["aa"]["n"] == 96
    assert load_model(tmp_path / "px" / "model.pt")[0].options == TrainConfig.paper(**SMALL).model_options()


def test_presets_given_options_win_and_init_supplies_the_patcher():
    world = resolve_config(builtin_world=True, given={"batch_size": 128})
    # the built-in world's preset is today's demo behaviour
    assert (world.epochs, world.lr, world.batch_size, world.schedule, world.warmup, world.saliency) == (
        12, 2e-3, 128, "cosine", 0.0, False)
    assert world.model_options() == {"num_latents": 16, "heads": 4, "dim_head": 32, "ff_mult": 2,
                                     "time_pos_emb": True, "token_pos_emb": True, "embedding_std": 0.5,
                                     "time_pos_dropout": 0.0}
    assert resolve_config(builtin_world=True, given={"model": "kp-transformer"}).model_options() == {
        "heads": 4, "ff_mult": 2, "time_pos_emb": True, "embedding_std": 0.5, "time_pos_dropout": 0.0}
    paper = resolve_config(builtin_world=False, given={})
    # the official code: AdamW lr 1e-5, wd 0.05, global batch 64, one epoch, frame-embedding dropout 0.1
    assert paper == TrainConfig.paper() and (paper.lr, paper.weight_decay, paper.batch_size, paper.epochs) == (
        1e-5, 0.05, 64, 1)
    assert (paper.time_pos_dropout, paper.token_pos_emb, paper.saliency, paper.label_smoothing) == (0.1, False, True, 0.1)
    init = {"heads": 2, "dim_head": 16, "num_latents": 4, "token_pos_emb": True, "lr": 5.0}
    from_init = resolve_config(builtin_world=False, given={"model": "paxion", "heads": 3}, init_config=init)
    assert (from_init.heads, from_init.dim_head, from_init.num_latents, from_init.token_pos_emb) == (3, 16, 4, True)
    assert from_init.lr == 1e-5  # only patcher options come from the --init run
    with pytest.raises(PaxionError, match="unknown training option"):
        resolve_config(builtin_world=False, given={"learning_rate": 1.0})
    assert "[default: 1e-05, official code" in field_help("lr") and "0.002 on the built-in world" in field_help("lr")


def test_bad_values_and_warmup_schedule(cache_dir, tmp_path):
    with pytest.raises(PaxionError, match="schedule"):
        train(cache_dir, tmp_path / "a", options={"schedule": "linear"}, device="cpu")
    with pytest.raises(PaxionError, match="lr must be above 0"):
        train(cache_dir, tmp_path / "b", options={"lr": 0.0}, device="cpu")
    with pytest.raises(PaxionError, match="no split 'nope'"):
        train(cache_dir, tmp_path / "c", options={"split": "nope"}, device="cpu")
    assert TrainConfig.paper(warmup=0.25).warmup_steps(48) == 12 and TrainConfig.paper(warmup=5).warmup_steps(48) == 5
    # 6 steps per epoch, 2 epochs, warm-up 4 steps then cosine over the other 8: lr after epoch 1 is at step 6
    train(cache_dir, tmp_path / "w", options=dict(FAST, epochs=2, warmup=4, eval_split=None), device="cpu")
    lrs = [json.loads(line)["lr"] for line in (tmp_path / "w" / "metrics.jsonl").read_text().splitlines()]
    assert lrs[0] == pytest.approx(1e-2 * 0.5 * (1 + math.cos(math.pi * 2 / 8))) and lrs[1] == pytest.approx(0.0)


def test_template_text_turns_vac_off(cache_dir, tmp_path):
    events = []
    train(cache_dir, tmp_path / "run", options=dict(FAST, text="template", epochs=1, eval_split=None), device="cpu",
          progress=events.append)
    assert events[0]["config"]["vac"] is False and any("VAC" in note for note in events[0]["notes"])


def test_cli_train_and_bad_input(cache_dir, tmp_path):
    runner = CliRunner()
    ok = runner.invoke(cli, ["train", "--cache", str(cache_dir), "--out", str(tmp_path / "run"), "--epochs", "1",
                             "--lr", "1e-2", "--device", "cpu", "--eval-split", "none", "--no-vac",
                             "--heads", "2", "--label-smoothing", "0.2", "--no-time-pos-emb"])
    assert ok.exit_code == 0, ok.output
    assert "trainable" in ok.output and (tmp_path / "run" / "model.pt").exists()
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    given = {"epochs": 1, "lr": 1e-2, "eval_split": None, "vac": False, "heads": 2, "label_smoothing": 0.2,
             "time_pos_emb": False}
    assert {k: config[k] for k in given} == given and config["batch_size"] == 64 and config["dim_head"] == 64
    usage = runner.invoke(cli, ["train", "--help"]).output
    assert "[default: 1e-05, official code" in " ".join(usage.split())
    missing = runner.invoke(cli, ["train", "--cache", str(tmp_path / "nope"), "--out", str(tmp_path / "x")])
    assert missing.exit_code != 0 and "does not exist" in missing.output
    zero = runner.invoke(cli, ["train", "--cache", str(cache_dir), "--out", str(tmp_path / "y"), "--epochs", "0"])
    assert zero.exit_code != 0
    budget = runner.invoke(cli, ["train", "--cache", str(cache_dir), "--out", str(tmp_path / "z"),
                                 "--memory-budget", "lots"])
    assert budget.exit_code != 0 and "not a size" in budget.output


def test_eval_every_epoch_appends_a_learning_curve(cache_dir, tmp_path):
    options = dict(FAST, epochs=2, eval_every_epoch=True)
    summary = train(cache_dir, tmp_path / "run", options=options, device="cpu")
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    curve = [m for m in lines if "aa" in m and "eval" not in m]
    assert [m["epoch"] for m in curve] == [1, 2]
    assert curve[-1] == {"epoch": 2, **accuracies(summary["eval"]), "or": summary["eval"]["or"]["accuracy"]}


def test_parse_bytes():
    assert parse_bytes("2GB") == 2_000_000_000
    assert parse_bytes("1.5 KiB") == 1536
    assert parse_bytes("123") == 123
    for bad in ("lots", "2XB", "-1GB"):
        with pytest.raises(PaxionError):
            parse_bytes(bad)
