"""Data-parallel training with 2 CPU processes (gloo) matches one process on the same global batch."""

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from tiny_cache import make_cache

from paxion.errors import PaxionError
from paxion.trainer.distributed import context_from_env
from paxion.trainer.train import train

OPTIONS = {"epochs": 2, "batch_size": 32, "lr": 1e-2, "schedule": "cosine", "eval_split": None, "num_latents": 4,
           "heads": 2, "dim_head": 16, "time_pos_dropout": 0.0}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, cache_dir: str, out_dir: str, options: dict = OPTIONS) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    train(cache_dir, out_dir, options=options, device="cpu")


def _losses(run_dir):
    return [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_two_processes_match_one(tmp_path):
    cache_dir = make_cache(tmp_path / "cache", clips={"train": 64})
    train(cache_dir, tmp_path / "single", options=OPTIONS, device="cpu")
    mp.spawn(_worker, args=(2, _free_port(), str(cache_dir), str(tmp_path / "ddp")), nprocs=2)
    assert json.loads((tmp_path / "ddp" / "config.json").read_text())["world_size"] == 2
    assert _losses(tmp_path / "ddp") == pytest.approx(_losses(tmp_path / "single"), rel=1e-5)
    single, ddp = (torch.load(tmp_path / d / "model.pt")["state_dict"] for d in ("single", "ddp"))
    for name in single:
        torch.testing.assert_close(ddp[name], single[name], rtol=1e-4, atol=1e-5)


def test_environment_and_batch_split_are_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    ctx = context_from_env()
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.is_main) == (1, 2, 1, False)
    cache_dir = make_cache(tmp_path / "cache", clips={"train": 40})
    with pytest.raises(PaxionError, match="split evenly"):
        train(cache_dir, tmp_path / "run", options=dict(OPTIONS, batch_size=33), device="cpu")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(PaxionError, match="torchrun"):
        context_from_env()
