"""Throughput of the trainable heads: scoring clips/s and training steps/s per model kind.

Shapes default to a CLIP ViT-B/16-like cache (T=8 frames, N=197 tokens of D=768, d=512).
Run: python benchmarks/bench_models.py [--tokens 197] [--device auto] [--tiny]
"""

import argparse
import time

import torch
from _tiny import parse_args

from paxion.device import resolve_device
from paxion.models.patched import MODEL_KINDS, build_model, count_parameters, format_parameters
from paxion.scoring import ModelScorer
from paxion.trainer.config import TrainConfig
from paxion.trainer.losses import objective_loss


def _timed(fn, repeats: int, device: torch.device) -> float:
    """Seconds per call of fn, after one warm-up call."""
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def measure(model, eval_batch: dict, train_batch: dict, text_emb: torch.Tensor, *, repeats: int,
            device: torch.device) -> tuple[float, float]:
    """Scoring clips/s (clip and reversed clip) and AdamW training steps/s of one model."""
    scorer = ModelScorer(model)
    score_s = _timed(lambda: scorer.encode_video(eval_batch, reverse=True), repeats, device)
    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def step() -> None:
        loss, _ = objective_loss(model, train_batch, text_emb)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    return len(eval_batch["tokens"]) / score_s, 1 / _timed(step, repeats, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=197)
    parser.add_argument("--token-dim", type=int, default=768)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--eval-batch", type=int, default=64)
    parser.add_argument("--train-batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parse_args(parser, {"frames": 2, "tokens": 5, "token_dim": 16, "dim": 8, "eval_batch": 4, "train_batch": 4,
                               "repeats": 1})
    device = resolve_device(args.device)
    torch.manual_seed(0)
    backbone = {"name": "bench", "config_hash": "bench", "temporal": False, "embed_dim": args.dim,
                "token_dim": args.token_dim, "tokens_per_frame": args.tokens, "num_params": 150_000_000}

    def batch(size: int) -> dict[str, torch.Tensor]:
        return {
            "tokens": torch.randn(size, args.frames, args.tokens, args.token_dim, device=device),
            "pooled": torch.randn(size, args.dim, device=device),
            "caption_idx": torch.randint(0, 1000, (size,), device=device),
            "aa_idx": torch.randint(0, 1000, (size,), device=device),
            "salient": torch.rand(size, device=device) < 0.8,
        }

    eval_batch, train_batch = batch(args.eval_batch), batch(args.train_batch)
    text_emb = torch.randn(1000, args.dim, device=device)
    print(f"device {device}, T={args.frames} N={args.tokens} D={args.token_dim} d={args.dim}")
    for kind in MODEL_KINDS:
        model = build_model(TrainConfig.paper(model=kind).to_dict(), backbone=backbone, frames=args.frames).to(device)
        clips_s, steps_s = measure(model, eval_batch, train_batch, text_emb, repeats=args.repeats, device=device)
        params = format_parameters(count_parameters(model), backbone["num_params"])
        print(f"{kind:15s} params {params:>14s}  scoring {clips_s:9.1f} clips/s  "
              f"training {steps_s:7.2f} steps/s (batch {args.train_batch}, VTC+DVDM)")


if __name__ == "__main__":
    main()
