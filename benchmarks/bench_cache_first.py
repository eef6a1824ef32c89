"""Cache-first training against the original design that runs the frozen backbone on every training step.

On a built-in world with the toy backbone, one run measures KP-Perceiver [VTC+DVDM] steps/s fed from the
cache (plus the one-time extraction) and fed by a per-step backbone pass over the clip and its reversal
(frames decoded each step, or already decoded in memory), and prints the time for E = 1, 10, 40 epochs and
the speed-up. It then estimates the same speed-up from FLOPs for a ViT-L/14 backbone and for the toy one.

Run: python benchmarks/bench_cache_first.py [--clips 512] [--batch-size 64] [--steps 8] [--rounds 2] [--device auto]
     [--tiny]
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from _tiny import parse_args
from bench_extract import make_backbone, make_world
from bench_train_loader import steps_per_second

from paxion.cache.loader import CacheLoader
from paxion.cache.reader import Cache
from paxion.device import resolve_device
from paxion.extract.backbones.toy import ToyConfig
from paxion.extract.pipeline import extract
from paxion.extract.video import read_frames
from paxion.models.layers import KPPerceiver
from paxion.models.patched import build_model
from paxion.trainer.config import TrainConfig

WORLD = TrainConfig.builtin_world()

EPOCHS = (1, 10, 40)
LABEL_FIELDS = ("caption_idx", "template_idx", "aa_idx", "salient")
# ViT-L/14 at 224 x 224 (CLIP, InternVideo): 16 x 16 patches + CLS; its joint space is 768 wide.
VIT_L14 = {"layers": 24, "width": 1024, "mlp": 4096, "tokens": 257, "patch": 14}
VIT_L14_EMBED_DIM = 768


def vit_forward_flops(*, layers: int, width: int, mlp: int, tokens: int, patch: int, channels: int = 3) -> float:
    """Forward FLOPs of one image through a ViT encoder (a multiply-add counts 2).

    Per layer, with P = 4 * width^2 + 2 * width * mlp weights (q, k, v, out; the two MLP matrices):
        linear     2 * P * tokens
        attention  2 * 2 * tokens^2 * width          (Q K^T and softmax(.) V)
    plus the patch embedding 2 * (tokens - 1) * channels * patch^2 * width. Norms, softmax, biases ignored.
    """
    per_layer = 2 * (4 * width**2 + 2 * width * mlp) * tokens + 2 * 2 * tokens**2 * width
    return layers * per_layer + 2 * (tokens - 1) * channels * patch**2 * width


def perceiver_forward_flops(*, tokens: int, token_dim: int, dim: int, num_latents: int, heads: int, dim_head: int,
                            ff_mult: int) -> float:
    """Forward FLOPs of KP-Perceiver on one clip of `tokens` (T x N) visual tokens of width token_dim.

    With inner = heads * dim_head and L = num_latents:
        keys, values   2 * tokens * token_dim * 2 * inner
        queries        2 * L * dim * inner
        attention      2 * 2 * L * tokens * inner      (Q K^T and softmax(.) V)
        output         2 * L * inner * dim
        feed-forward   2 * L * 2 * ff_mult * dim^2
    Norms, embeddings added to the tokens and the loss are ignored.
    """
    inner = heads * dim_head
    return (2 * tokens * token_dim * 2 * inner + 2 * num_latents * dim * inner + 4 * num_latents * tokens * inner
            + 2 * num_latents * inner * dim + 4 * num_latents * ff_mult * dim**2)


def patcher_train_flops(*, tokens: int, token_dim: int, dim: int, options: dict | None = None) -> float:
    """Training FLOPs of KP-Perceiver [VTC+DVDM] per clip: (forward + backward ~ 3 x forward) x (clip + reversal).

    `options` are KPPerceiver keyword options (default None = its defaults); those that change no size are ignored.
    """
    sizes = {name: p.default for name, p in inspect.signature(KPPerceiver).parameters.items()
             if name in ("num_latents", "heads", "dim_head", "ff_mult")}
    sizes |= {name: value for name, value in (options or {}).items() if name in sizes}
    return 3 * 2 * perceiver_forward_flops(tokens=tokens, token_dim=token_dim, dim=dim, **sizes)


def flops_speedups(*, frame_flops: float, frames: int, patcher_flops: float, passes_once: int = 1) -> dict[int, float]:
    """Estimated speed-up per E of EPOCHS: E x (backbone on clip + reversal + patcher) / (backbone once + E x patcher).

    passes_once is the backbone passes per clip of the one-time extraction: 1 for a frame-wise backbone (the
    reversal is the flipped tokens), 2 for a temporal one.
    """
    per_step = 2 * frames * frame_flops + patcher_flops
    once = passes_once * frames * frame_flops
    return {e: e * per_step / (once + e * patcher_flops) for e in EPOCHS}


def cycle(loader: CacheLoader) -> Iterator[dict[str, torch.Tensor]]:
    """The loader's batches epoch after epoch, as `paxion train` sees them."""
    for epoch in itertools.count():
        loader.set_epoch(epoch)
        yield from loader


def backbone_batches(backbone: torch.nn.Module, clips: list, labels: dict[str, np.ndarray], *, batch_size: int,
                     frames: int, device: torch.device, seed: int = 0) -> Iterator[dict[str, torch.Tensor]]:
    """Training batches made as the original design did: backbone forward on each clip and its reversal, per step.

    `clips` holds video paths (decoded here, every step) or decoded uint8 frames [T, H, W, 3]; labels holds the
    cache's per-clip text indices and flags in the same order.
    """
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(clips))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            rows = order[start:start + batch_size]
            batch = np.stack([read_frames(clips[i], num_frames=frames, size=backbone.image_size)
                              if isinstance(clips[i], Path) else clips[i] for i in rows])
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
                pixels = backbone.preprocess(batch)
                tokens = backbone.encode_video(pixels).tokens
                tokens_rev = backbone.encode_video(pixels.flip(1)).tokens
            yield {"tokens": tokens, "tokens_rev": tokens_rev,
                   **{name: torch.from_numpy(labels[name][rows]).to(device) for name in LABEL_FIELDS}}


def timed_rate(batches: Iterator[dict[str, torch.Tensor]], model: torch.nn.Module, text_emb: torch.Tensor,
               optimizer: torch.optim.Optimizer, *, steps: int) -> float:
    """Steps/s of KP-Perceiver [VTC+DVDM] training over the next `steps` batches (their making included)."""
    return steps_per_second(itertools.islice(batches, steps), model, text_emb, optimizer)


def print_measured(rows: dict[str, dict], steps_per_epoch: int) -> None:
    """The measured table: steps/s, epoch time, one-time cost, time for E epochs and speed-up over cache-first."""
    head = " | ".join(f"E={e} s" for e in EPOCHS) + " | " + " | ".join(f"speed-up E={e}" for e in EPOCHS)
    print(f"| feed | steps/s | epoch s ({steps_per_epoch} steps) | one-time s | {head} |")
    print("|---" * (4 + 2 * len(EPOCHS)) + "|")
    cache_first = rows["cache-first"]
    for name, row in rows.items():
        epoch_s = steps_per_epoch / row["rate"]
        total = {e: row["once"] + e * epoch_s for e in EPOCHS}
        cache_total = {e: cache_first["once"] + e * steps_per_epoch / cache_first["rate"] for e in EPOCHS}
        times = " | ".join(f"{total[e]:.1f}" for e in EPOCHS)
        speedups = " | ".join(f"{total[e] / cache_total[e]:.1f}x" for e in EPOCHS)
        print(f"| {name} | {row['rate']:.2f} | {epoch_s:.2f} | {row['once']:.1f} | {times} | {speedups} |")


def print_estimates(measured_epoch_ratio: dict[str, float], frames: int) -> None:
    """FLOPs-based speed-ups for ViT-L/14 and the toy backbone, the toy's beside the measured epoch ratios."""
    vit = vit_forward_flops(**VIT_L14)
    vit_kp = patcher_train_flops(tokens=frames * VIT_L14["tokens"], token_dim=VIT_L14["width"], dim=VIT_L14_EMBED_DIM)
    toy_cfg = ToyConfig()
    # the toy ViT's MLP is 4 x width (paxion.extract.backbones.toy._encoder)
    toy = vit_forward_flops(layers=toy_cfg.layers, width=toy_cfg.width, mlp=4 * toy_cfg.width,
                            tokens=toy_cfg.grid**2 + 1, patch=toy_cfg.patch)
    toy_kp = patcher_train_flops(tokens=frames * (toy_cfg.grid**2 + 1), token_dim=toy_cfg.width,
                                 dim=toy_cfg.embed_dim, options=WORLD.model_options())
    print(f"\nFLOPs estimate ({frames} frames; per-step = backbone on clip + reversal every epoch, "
          "cache-first = one frame-wise pass once):")
    print("| backbone | backbone GFLOPs/frame | backbone GFLOPs/clip per step (x2) | patcher train GFLOPs/clip | "
          + " | ".join(f"est. speed-up E={e}" for e in EPOCHS) + " | per-epoch ratio (E large) |")
    print("|---" * (5 + len(EPOCHS)) + "|")
    for name, frame_flops, kp in (("ViT-L/14 224", vit, vit_kp), ("toy 48px", toy, toy_kp)):
        est = flops_speedups(frame_flops=frame_flops, frames=frames, patcher_flops=kp)
        per_epoch = (2 * frames * frame_flops + kp) / kp
        print(f"| {name} | {frame_flops / 1e9:.3f} | {2 * frames * frame_flops / 1e9:.2f} | {kp / 1e9:.3f} | "
              + " | ".join(f"{est[e]:.1f}x" for e in EPOCHS) + f" | {per_epoch:.1f}x |")
    print("toy per-epoch ratio measured (per-step epoch / cache-first epoch): "
          + ", ".join(f"{name} {ratio:.1f}x" for name, ratio in measured_epoch_ratio.items()))


def main() -> None:
    """Measure both designs on one world and print the measured table and the FLOPs estimates."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=512, help="training clips in the world (default 512)")
    parser.add_argument("--batch-size", type=int, default=64, help="global batch (default 64, the world's)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per feed and round (default 8)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved timing rounds, best counts (default 2)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="extraction decoding workers (default 2)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--work", type=Path, default=None, help="folder for the world and cache (default: a temp)")
    args = parse_args(parser, {"clips": 8, "batch_size": 4, "steps": 1, "rounds": 1, "frames": 4, "workers": 0})
    device = resolve_device(args.device)
    root = args.work or Path(tempfile.mkdtemp(prefix="paxion-bench-cache-first-"))
    bench, videos = make_world(root, args.clips)
    backbone, which = make_backbone(str(device))
    print(f"world: {args.clips} clips in {root}; backbone: {which}; device: {device}; batch {args.batch_size}; "
          f"{args.steps} timed steps per feed, best of {args.rounds}; torch threads: {torch.get_num_threads()}")

    shutil.rmtree(root / "cache", ignore_errors=True)  # time a full extraction, not a resume
    start = time.perf_counter()
    extract(bench, videos, root / "cache", backbone, frames=args.frames, batch_size=32, workers=args.workers,
            device=str(device))
    extract_s = time.perf_counter() - start
    cache = Cache(root / "cache")
    print(f"extraction: {extract_s:.1f} s = {cache.num_clips('train') / extract_s:.1f} clips/s (one-time)")

    # The per-step design encodes the reversed clip itself, so its patcher reads tokens_rev like a temporal cache.
    record = cache.manifest["backbone"]
    loader = CacheLoader(cache, batch_size=args.batch_size, device=device, drop_last=True)
    stored = cache.read_split("train", fields=["id", *LABEL_FIELDS])
    video_of = {r["id"]: videos / r["video"] for r in map(json.loads, (bench / "train.jsonl").read_text().splitlines())}
    paths = [video_of[str(clip_id)] for clip_id in stored["id"]]
    decoded = [read_frames(p, num_frames=args.frames, size=backbone.image_size) for p in paths]
    feeds = {"cache-first": (cycle(loader), record)}
    for name, clips in (("per-step decode+forward", paths), ("per-step forward-only", decoded)):
        feeds[name] = (backbone_batches(backbone, clips, stored, batch_size=args.batch_size, frames=args.frames,
                                        device=device), {**record, "temporal": True})
    trainers = {}
    for name, (batches, backbone_entry) in feeds.items():
        torch.manual_seed(0)
        model = build_model(WORLD.to_dict(), backbone=backbone_entry, frames=args.frames).to(device)
        trainers[name] = (batches, model, loader.text_emb, torch.optim.AdamW(model.parameters(), lr=1e-5))
        timed_rate(*trainers[name], steps=2)  # warm-up
    rates = {name: 0.0 for name in trainers}
    for _ in range(args.rounds):  # interleaved, best of rounds: other load on a shared machine hits all feeds alike
        for name, trainer in trainers.items():
            rates[name] = max(rates[name], timed_rate(*trainer, steps=args.steps))
    rows = {name: {"rate": rate, "once": extract_s if name == "cache-first" else 0.0} for name, rate in rates.items()}

    print()
    print_measured(rows, len(loader))
    print_estimates({name: rows["cache-first"]["rate"] / row["rate"] for name, row in rows.items()
                     if name != "cache-first"}, args.frames)
    print(f"files left in {root}")


if __name__ == "__main__":
    main()
