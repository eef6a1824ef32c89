"""Training steps/s fed by CacheLoader (resident and streaming) vs the same batches already in memory.

Writes a random cache shaped like the built-in world's (8 frames x 37 tokens x 96 wide, joint dim 64) to a
temporary directory, trains KP-Perceiver [VTC+DVDM] from it and prints steps/s and the ratio to feeding
the same batches from tensors already on the device (goal >= 0.9). With --dtype int8 the loaders keep int8
tokens and their scales on the device and dequantise each batch there; the in-memory feed is those batches,
already dequantised. Streaming (memory budget 0) shuffles pools of MAX_POOL_SHARDS shards.

    python benchmarks/bench_train_loader.py [--clips 1024] [--shard-size 128] [--device auto] [--rounds 3]
        [--dtype fp16|int8] [--tiny]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _tiny import parse_args

from paxion.cache.loader import MAX_POOL_SHARDS, CacheLoader
from paxion.cache.manifest import SCHEMA_VERSION, shard_file, write_manifest
from paxion.cache.reader import Cache
from paxion.cache.writer import ShardWriter, write_texts
from paxion.device import resolve_device
from paxion.models.patched import build_model
from paxion.trainer.config import TrainConfig
from paxion.trainer.train import train_step

FRAMES, TOKENS, WIDTH, DIM, TEXTS = 8, 37, 96, 64, 400


def write_random_cache(root: Path, *, clips: int, shard_size: int, token_dtype: str = "fp16") -> None:
    """A cache of random features with the built-in world's shapes."""
    rng = np.random.default_rng(0)
    texts = write_texts(root / "texts.h5", [f"text {i}" for i in range(TEXTS)], rng.normal(size=(TEXTS, DIM)))
    shards = []
    for k, start in enumerate(range(0, clips, shard_size)):
        n = min(shard_size, clips - start)
        writer = ShardWriter(root / shard_file("train", k), capacity=n, token_dtype=token_dtype)
        writer.append({
            "id": np.array([str(start + i) for i in range(n)], dtype=object),
            "tokens": rng.normal(size=(n, FRAMES, TOKENS, WIDTH)).astype(np.float32),
            "pooled": rng.normal(size=(n, DIM)).astype(np.float32),
            "caption_idx": rng.integers(0, TEXTS, n).astype(np.int32),
            "template_idx": rng.integers(0, TEXTS, n).astype(np.int32),
            "aa_idx": rng.integers(-1, TEXTS, n).astype(np.int32),
            "salient": rng.random(n) < 0.8,
        })
        shards.append(writer.finish())
    backbone = {"name": "random", "config_hash": "random", "temporal": False, "embed_dim": DIM, "token_dim": WIDTH,
                "tokens_per_frame": TOKENS, "num_params": 0}
    write_manifest(root, {
        "schema_version": SCHEMA_VERSION, "backbone": backbone, "frames": FRAMES, "token_dtype": token_dtype,
        "bench": {"builtin_world": False}, "texts": texts, "files": {}, "splits": {"train": {"clips": clips, "shards": shards}},
        "failed": []})


def steps_per_second(batches, model, text_emb, optimizer) -> float:
    """Train one pass over `batches` (any iterable of batch dicts) and return its steps per second."""
    began, steps = time.perf_counter(), 0
    for batch in batches:
        train_step(model, batch, text_emb, optimizer, objective="vtc+dvdm")
        steps += 1
    if text_emb.is_cuda:
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - began)


def main() -> None:
    """Measure and print the three feeds and their ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1024)
    parser.add_argument("--shard-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", choices=["fp16", "int8"], default="fp16", help="token storage of the cache")
    parser.add_argument("--rounds", type=int, default=3, help="passes per feed; the best one counts")
    args = parse_args(parser, {"clips": 8, "shard_size": 4, "batch_size": 4, "rounds": 1})
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        write_random_cache(Path(tmp), clips=args.clips, shard_size=args.shard_size, token_dtype=args.dtype)
        cache = Cache(tmp)
        model = build_model(TrainConfig.paper().to_dict(), backbone=cache.manifest["backbone"], frames=FRAMES).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
        feeds = {
            "resident": CacheLoader(cache, batch_size=args.batch_size, device=device, drop_last=True),
            "streaming": CacheLoader(cache, batch_size=args.batch_size, device=device, drop_last=True,
                                     memory_budget=0, pool_shards=MAX_POOL_SHARDS),
        }
        in_memory = list(feeds["resident"])
        text_emb = feeds["resident"].text_emb
        steps_per_second(in_memory, model, text_emb, optimizer)  # warm-up
        best = {name: 0.0 for name in ("in-memory", *feeds)}
        for _ in range(args.rounds):
            best["in-memory"] = max(best["in-memory"], steps_per_second(in_memory, model, text_emb, optimizer))
            for name, loader in feeds.items():
                best[name] = max(best[name], steps_per_second(loader, model, text_emb, optimizer))
    print(f"device {device}, {args.dtype} tokens, {args.clips} clips in shards of {args.shard_size}, "
          f"batch {args.batch_size}, {len(in_memory)} steps per pass, best of {args.rounds}")
    for name, rate in best.items():
        ratio = f"  ratio {rate / best['in-memory']:.3f}" if name != "in-memory" else ""
        print(f"{name:>10}: {rate:8.1f} steps/s{ratio}")


if __name__ == "__main__":
    main()
