"""The training loop: a patched model trained on cached features, checkpointed every epoch, resumable."""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from paxion.atomic import ensure_dir, save_torch, write_json, write_text
from paxion.cache.loader import TRAIN_FIELDS, CacheLoader
from paxion.cache.manifest import read_json
from paxion.cache.reader import Cache
from paxion.device import resolve_device
from paxion.errors import PaxionError, first_line
from paxion.models.patched import PatchedModel, build_model, count_parameters, load_model, save_model
from paxion.scoring import ModelScorer, load_scorer
from paxion.trainer import distributed
from paxion.trainer.config import TEXT_KEYS, TrainConfig, parse_bytes, resolve_config
from paxion.trainer.evaluate import TASKS, actionbench
from paxion.trainer.losses import MC_FIELDS, MC_OBJECTIVES, objective_loss

Progress = Callable[[dict], None]


def _read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _check_run_dir(out: Path, record: dict, resume: bool) -> None:
    """A RUN_DIR holding a run needs --resume and the same settings (every field that changes the weights)."""
    saved_config = out / "config.json"
    if not saved_config.exists():
        return
    if not resume:
        state = "a finished run" if (out / "model.pt").exists() else "an unfinished run (add --resume to continue it)"
        raise PaxionError(f"{out} already holds {state}; choose another --out")
    saved = read_json(saved_config)
    keys = (*TrainConfig.paper().result_fields(), "backbone_hash")
    differ = [key for key in keys if saved.get(key) != record.get(key)]
    if differ:
        details = ", ".join(f"{k}: {saved.get(k)!r} -> {record.get(k)!r}" for k in differ)
        raise PaxionError(f"cannot resume {out} with other settings ({details})")


def _initialise_patcher(model: PatchedModel, init: str, backbone_hash: str) -> None:
    """Copy the Knowledge Patcher of another run's model into `model` (same patcher kind and shapes)."""
    source, _ = load_model(Path(init) / "model.pt")
    if source.backbone.get("config_hash") != backbone_hash:
        raise PaxionError(f"--init {init} was trained on another backbone's features than this cache's")
    want, have = type(model.patcher()).__name__, type(source.patcher()).__name__
    if want != have:
        raise PaxionError(f"--init {init} has a {have} patcher, but {model.kind} needs a {want}")
    if source.frames != model.frames:
        raise PaxionError(f"--init {init} was trained on {source.frames} frames per clip, this cache has {model.frames}")
    try:
        model.patcher().load_state_dict(source.patcher().state_dict())
    except RuntimeError as exc:
        raise PaxionError(f"--init {init}: its patcher has other shapes ({first_line(exc)})") from None


def _schedule(optimizer: torch.optim.Optimizer, kind: str, total_steps: int,
              warmup_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step lr factor: linear warm-up over `warmup_steps`, then constant or cosine decay to 0 at the end."""
    decay_steps = max(total_steps - warmup_steps, 1)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        if kind == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(step - warmup_steps, decay_steps) / decay_steps))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _loader_fields(cache: Cache, config: TrainConfig) -> tuple[str, ...]:
    """The per-clip fields the objective reads; PaxionError when an mc objective meets a cache without candidates."""
    fields = TRAIN_FIELDS + (("tokens_rev", "pooled_rev") if cache.temporal else ())
    if config.objective not in MC_OBJECTIVES:
        return fields
    if not set(MC_FIELDS) <= cache.fields(config.split):
        raise PaxionError(f"{cache.root}: --objective {config.objective} needs multiple-choice fields "
                          f"({', '.join(MC_FIELDS)}), which only a NExT-QA bench's cache has")
    return fields + MC_FIELDS


def _rng_state(device: torch.device) -> dict:
    return {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state["cuda"] is not None:
        torch.cuda.set_rng_state(state["cuda"], device)


def _load_checkpoint(path: Path) -> dict | None:
    """The checkpoint to resume from (None when the run stopped before its first epoch ended)."""
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's message is a paragraph on weights_only
        raise PaxionError(f"{path}: unreadable checkpoint (not a torch file of tensors)") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise PaxionError(f"{path}: unreadable checkpoint ({first_line(exc)})") from None


def _save_checkpoint(path: Path, state: dict) -> None:
    """Write the checkpoint atomically (a crash never leaves half a file)."""
    save_torch(path, state)


def train_step(model: PatchedModel, batch: dict[str, torch.Tensor], text_emb: torch.Tensor,
               optimizer: torch.optim.Optimizer, *, world_size: int = 1, **loss_options) -> dict[str, float]:
    """One optimisation step on a batch (this rank's slice when world_size > 1); returns the loss parts."""
    # Under data parallelism every rank computes the loss of the whole global batch from all-gathered
    # features; all_gather's backward sums the ranks' gradients into each rank's part, so averaging the
    # parameter gradients over ranks gives exactly the gradient one process gets on the global batch.
    gather = distributed.gather_cat if world_size > 1 else None
    loss, parts = objective_loss(model, batch, text_emb, gather=gather, **loss_options)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if world_size > 1:
        distributed.average_gradients(model.parameters(), world_size)
    optimizer.step()
    return parts


def train(
    cache_dir: str | Path,
    out_dir: str | Path,
    *,
    options: Mapping[str, Any] | None = None,
    device: str = "auto",
    resume: bool = False,
    verify: bool = False,
    progress: Progress | None = None,
) -> dict:
    """Train a patched model on a cache split into RUN_DIR; returns the run's summary.

    options: TrainConfig fields to set (default None = none); the rest come from the cache's preset
    (`TrainConfig.builtin_world()` when the cache says it is the built-in world, else `TrainConfig.paper()`) and,
    with `init`, that run's patcher options. `progress(event)` gets {"event": "start" | "step" | "epoch" | "eval"
    ...} dicts on rank 0. RUN_DIR gets config.json (the whole config plus run facts), metrics.jsonl,
    checkpoint.pt and model.pt (both carry the config). verify: check each shard's XXH3-128 before its first read
    (`Cache(..., verify=True)`). Raises PaxionError for bad options or a RUN_DIR that holds another run.
    """
    ctx = distributed.context_from_env()
    cache = Cache(cache_dir, verify=verify)
    out = Path(out_dir)
    backbone = cache.manifest["backbone"]
    builtin = bool(cache.manifest.get("bench", {}).get("builtin_world"))
    given = dict(options or {})
    if given.get("init") is not None:
        given["init"] = str(Path(given["init"]).resolve())
    if "memory_budget" in given:
        given["memory_budget"] = parse_bytes(given["memory_budget"])
    init_config = load_model(Path(given["init"]) / "model.pt")[1] if given.get("init") else None
    config = resolve_config(builtin_world=builtin, given=given, init_config=init_config)
    config.check(cache.splits)
    fields = _loader_fields(cache, config)
    notes = []
    if config.text == "template" and config.vac:
        config = dataclasses.replace(config, vac=False)
        notes.append("VAC is off: --text template has no antonym captions to contrast with")
    record = {**config.to_dict(), "preset": "builtin_world" if builtin else "paper",
              "cache": str(Path(cache_dir).resolve()), "backbone_hash": backbone["config_hash"],
              "world_size": ctx.world_size, "device": device}
    batch = min(config.batch_size, cache.num_clips(config.split))
    if batch % ctx.world_size:
        raise PaxionError(f"batch size {batch} does not split evenly over {ctx.world_size} processes")
    _check_run_dir(out, record, resume)
    if resume and (out / "model.pt").exists():
        return {"run_dir": str(out), "rank": ctx.rank, "finished_before": True,
                "metrics": _read_metrics(out / "metrics.jsonl")}
    checkpoint = _load_checkpoint(out / "checkpoint.pt") if resume else None

    dev = resolve_device(device)
    if ctx.enabled and dev.type == "cuda":
        dev = torch.device("cuda", ctx.local_rank)
    started_group = distributed.start(ctx, dev)
    try:
        return _run(cache, out, config, record, batch, fields, notes, checkpoint, ctx, dev, progress)
    finally:
        if started_group:
            distributed.stop()


def _run(cache: Cache, out: Path, config: TrainConfig, record: dict, batch_size: int, fields: tuple[str, ...],
         notes: list[str], checkpoint: dict | None, ctx: distributed.DistContext, dev: torch.device, progress: Progress | None) -> dict:
    """The training loop proper, after the options and RUN_DIR have been checked."""
    report = progress if (progress is not None and ctx.is_main) else (lambda event: None)
    backbone = cache.manifest["backbone"]
    torch.manual_seed(config.seed)
    net = build_model(config.to_dict(), backbone=backbone, frames=cache.manifest["frames"])
    if config.init is not None and checkpoint is None:
        _initialise_patcher(net, config.init, backbone["config_hash"])
    net.to(dev)
    loader = CacheLoader(cache, config.split, batch_size=batch_size, device=dev, seed=config.seed, drop_last=True,
                         fields=fields, memory_budget=config.memory_budget, rank=ctx.rank, world_size=ctx.world_size)
    steps_per_epoch = len(loader)
    total_steps = steps_per_epoch * config.epochs
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = _schedule(optimizer, config.schedule, total_steps, config.warmup_steps(total_steps))
    start_epoch = 0
    if checkpoint is not None:
        net.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        _set_rng_state(checkpoint["rng"], dev)
        start_epoch = checkpoint["epoch"]
    metrics_path = out / "metrics.jsonl"
    if ctx.is_main:
        ensure_dir(out)
        write_json(out / "config.json", record)
        kept = [m for m in _read_metrics(metrics_path) if m.get("epoch", math.inf) <= start_epoch]
        write_text(metrics_path, "".join(json.dumps(m) + "\n" for m in kept))
    trainable = count_parameters(net)
    report({"event": "start", "config": record, "notes": notes, "trainable": trainable,
            "patcher": count_parameters(net.patcher()), "backbone_params": backbone.get("num_params"),
            "steps_per_epoch": steps_per_epoch, "total_steps": total_steps, "start_epoch": start_epoch,
            "resident": loader.resident, "device": str(dev)})
    loss_options = {"objective": config.objective, "text_key": TEXT_KEYS[config.text], "atm_weight": config.atm_weight,
                    "vac": config.vac, "use_saliency": config.saliency, "smoothing": config.label_smoothing}
    last: dict = {}
    for epoch in range(start_epoch, config.epochs):
        net.train()
        loader.set_epoch(epoch)
        began, sums = time.perf_counter(), {}
        for i, batch in enumerate(loader):
            parts = train_step(net, batch, loader.text_emb, optimizer, world_size=ctx.world_size, **loss_options)
            scheduler.step()
            sums = {k: sums.get(k, 0.0) + v for k, v in parts.items()}
            report({"event": "step", "epoch": epoch + 1, "step": epoch * steps_per_epoch + i + 1,
                    "total_steps": total_steps, "loss": parts["loss"]})
        last = {"epoch": epoch + 1, "step": (epoch + 1) * steps_per_epoch,
                **{k: v / max(steps_per_epoch, 1) for k, v in sums.items()},
                "lr": scheduler.get_last_lr()[0], "time_s": time.perf_counter() - began}
        if ctx.is_main:
            with metrics_path.open("a") as f:
                f.write(json.dumps(last) + "\n")
            _save_checkpoint(out / "checkpoint.pt", {
                "model": net.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "epoch": epoch + 1, "step": (epoch + 1) * steps_per_epoch, "rng": _rng_state(dev), "config": config.to_dict()})
            if config.eval_every_epoch and config.eval_split in cache.splits:
                curve = actionbench(cache, ModelScorer(net), config.eval_split, device=dev)
                with metrics_path.open("a") as f:
                    f.write(json.dumps({"epoch": epoch + 1, **{t: curve[t]["accuracy"] for t in TASKS}}) + "\n")
        distributed.barrier(ctx)
        report({"event": "epoch", **last})
    summary = {"run_dir": str(out), "rank": ctx.rank, "finished_before": False, "trainable": trainable, "notes": notes,
               "last": last, "eval_split": config.eval_split, "eval": None}
    if ctx.is_main:
        save_model(net, out / "model.pt", config=config.to_dict())
        summary["eval"] = _evaluate(cache, out, config.eval_split, dev, report)
    distributed.barrier(ctx)
    return summary


def _evaluate(cache: Cache, out: Path, split: str | None, dev: torch.device, report: Progress) -> dict | None:
    """ActionBench on `split` with the saved model, appended to metrics.jsonl (None when the cache lacks it)."""
    if split is None or split not in cache.splits:
        return None
    report({"event": "eval", "split": split, "clips": cache.num_clips(split)})
    result = actionbench(cache, load_scorer(cache, out, device=dev), split, device=dev)
    with (out / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"eval": split, **result}) + "\n")
    return result
