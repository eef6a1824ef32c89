"""Multiple-choice training (--objective mc / mc+vac): learns, resumes bitwise, two processes match one."""

import json

import pytest
import torch
import torch.multiprocessing as mp
from test_distributed import _free_port, _losses, _worker
from test_train import Interrupt
from tiny_cache import make_cache

from paxion.cache.reader import Cache
from paxion.errors import PaxionError
from paxion.retrieval.tasks import run_task
from paxion.scoring import load_scorer
from paxion.trainer.train import train

OPTIONS = {"batch_size": 32, "lr": 1e-2, "schedule": "cosine", "eval_split": None, "num_latents": 4, "heads": 2,
           "dim_head": 16, "time_pos_dropout": 0.0}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return make_cache(tmp_path_factory.mktemp("cache"), mc=True)


def _mc_accuracy(cache_dir, run_dir):
    cache = Cache(cache_dir)
    return run_task(cache, load_scorer(cache, run_dir), "mc", split="validation")["accuracy"]


@pytest.mark.parametrize(("model", "objective"), [("kp-perceiver", "mc"), ("paxion", "mc+vac")])
def test_mc_training_beats_the_backbone(cache_dir, tmp_path, model, objective):
    # the tiny backbone's pooled vector sees the object but not the action's direction: the four actions on the
    # clip's object tie, so it is right about a quarter of the time; the tokens hold the direction
    backbone = _mc_accuracy(cache_dir, None)
    train(cache_dir, tmp_path / "run", options=dict(OPTIONS, epochs=8, objective=objective, model=model), device="cpu")
    trained = _mc_accuracy(cache_dir, tmp_path / "run")
    assert trained > backbone + 20, (backbone, trained)  # 96 questions: 20 points is far beyond chance
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["mc"] < metrics[0]["mc"] and "atm" not in metrics[0]
    assert metrics[0]["mc_candidates"] == (5 if objective == "mc" else pytest.approx(5.5, abs=0.01))


@pytest.mark.parametrize("stop_at", [("epoch", 1), ("step", 8)])
def test_mc_resume_equals_an_uninterrupted_run(cache_dir, tmp_path, stop_at):
    options = dict(OPTIONS, epochs=2, objective="mc+vac", memory_budget="1B")  # streaming shards

    def interrupt(event):
        if event["event"] == stop_at[0] and event[stop_at[0]] == stop_at[1]:
            raise Interrupt

    train(cache_dir, tmp_path / "whole", options=options, device="cpu")
    with pytest.raises(Interrupt):
        train(cache_dir, tmp_path / "cut", options=options, device="cpu", progress=interrupt)
    with pytest.raises(PaxionError, match="objective"):
        train(cache_dir, tmp_path / "cut", options=dict(options, objective="mc"), device="cpu", resume=True)
    train(cache_dir, tmp_path / "cut", options=options, device="cpu", resume=True)
    whole, cut = (torch.load(tmp_path / d / "model.pt")["state_dict"] for d in ("whole", "cut"))
    assert whole.keys() == cut.keys() and all(torch.equal(whole[k], cut[k]) for k in whole)
    losses = [_losses(tmp_path / d) for d in ("whole", "cut")]
    assert losses[0] == losses[1]


def test_mc_two_processes_match_one(tmp_path):
    # paxion: the Knowledge Fuser reads the pooled features too; the mc loss is per clip, and averaging the ranks'
    # gradients gives the one-process gradient of the global batch
    cache_dir = make_cache(tmp_path / "cache", clips={"train": 64}, mc=True)
    options = dict(OPTIONS, epochs=2, objective="mc+vac", model="paxion")
    train(cache_dir, tmp_path / "single", options=options, device="cpu")
    mp.spawn(_worker, args=(2, _free_port(), str(cache_dir), str(tmp_path / "ddp"), options), nprocs=2)
    losses = [_losses(tmp_path / d) for d in ("single", "ddp")]
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    single, ddp = (torch.load(tmp_path / d / "model.pt")["state_dict"] for d in ("single", "ddp"))
    for name in single:
        torch.testing.assert_close(ddp[name], single[name], rtol=1e-4, atol=1e-5)


def test_a_cache_without_candidates_is_one_line_error(tmp_path):
    cache_dir = make_cache(tmp_path / "cache", clips={"train": 40})
    with pytest.raises(PaxionError, match=r"--objective mc needs multiple-choice fields .* NExT-QA") as info:
        train(cache_dir, tmp_path / "run", options=dict(OPTIONS, objective="mc"), device="cpu")
    assert "\n" not in str(info.value)
