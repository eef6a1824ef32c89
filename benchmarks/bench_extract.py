"""Extraction speed against the backbone's forward pass alone on decoded frames; cache bytes per clip, fp16 vs int8.

Run: python benchmarks/bench_extract.py [--clips 256] [--workers 2] [--device auto] [--bench B --videos V] [--tiny]
Goal: extraction clips/s >= 0.8 x forward-only clips/s (decoding overlaps the forward pass).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _tiny import parse_args

from paxion.cache.manifest import read_manifest
from paxion.device import resolve_device
from paxion.errors import BackboneError
from paxion.extract.backbones import load_backbone
from paxion.extract.pipeline import extract
from paxion.extract.video import read_frames
from paxion.report.tables import cache_summary


def make_world(root: Path, clips: int) -> tuple[Path, Path]:
    """A built-in synth world of `clips` training clips and its bench; returns (bench_dir, videos_dir)."""
    from paxion.bench.build import build_bench
    from paxion.bench.readers import read_dataset
    from paxion.synth.world import write_world

    write_world(root / "world", train=clips, val=0, seed=0)
    build_bench(read_dataset("ssv2", root / "world" / "annotations", videos=root / "world" / "videos"), root / "bench")
    return root / "bench", root / "world" / "videos"


def make_backbone(device: str | torch.device) -> tuple[torch.nn.Module, str]:
    """The toy backbone with its shipped weights, else the same architecture with random weights (same cost)."""
    try:
        return load_backbone("toy", device=device), "toy (shipped weights)"
    except BackboneError:
        from paxion.extract.backbones.toy import ToyBackbone, ToyModel

        return ToyBackbone(model=ToyModel()).to(device), "toy architecture, random weights (no shipped weights found)"


def forward_only(backbone: torch.nn.Module, clips: np.ndarray, *, batch_size: int, device: torch.device) -> float:
    """Seconds for preprocess + encode_video (+ the reversed pass of a temporal backbone) over decoded clips."""
    start = time.perf_counter()
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
        for i in range(0, len(clips), batch_size):
            pixels = backbone.preprocess(clips[i:i + batch_size])
            feats = backbone.encode_video(pixels)
            if backbone.temporal:
                feats = backbone.encode_video(pixels.flip(1))
            feats.tokens.float().cpu()
    return time.perf_counter() - start


def main() -> None:
    """Print forward-only and extraction clips/s, their ratio, and bytes per clip for fp16 and int8 caches."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=256)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--bench", type=Path, default=None, help="Use this bench (and --videos), not a new world.")
    parser.add_argument("--videos", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=None, help="Folder for the world and caches (default: a temp).")
    args = parse_args(parser, {"clips": 8, "batch_size": 4, "workers": 1})
    device = resolve_device(args.device)
    root = args.work or Path(tempfile.mkdtemp(prefix="paxion-bench-extract-"))
    bench, videos = (args.bench, args.videos) if args.bench else make_world(root, args.clips)
    backbone, which = make_backbone(device)
    print(f"data: {bench} (built-in synth world); backbone: {which}; device: {device}; "
          f"workers: {args.workers}; torch threads: {torch.get_num_threads()}")

    rows = [json.loads(line) for line in (bench / "train.jsonl").read_text().splitlines()]
    decoded = np.stack([read_frames(videos / r["video"], num_frames=args.frames, size=backbone.image_size)
                        for r in rows])
    forward_only(backbone, decoded[:args.batch_size], batch_size=args.batch_size, device=device)  # warm-up
    forward_s = min(forward_only(backbone, decoded, batch_size=args.batch_size, device=device) for _ in range(2))

    sizes, extract_s = {}, {}
    for dtype in ("fp16", "int8"):
        shutil.rmtree(root / f"cache-{dtype}", ignore_errors=True)  # time a full extraction, not a resume
        start = time.perf_counter()
        extract(bench, videos, root / f"cache-{dtype}", backbone, frames=args.frames, batch_size=args.batch_size,
                workers=args.workers, device=device, token_dtype=dtype)
        extract_s[dtype] = time.perf_counter() - start
        sizes[dtype] = cache_summary(read_manifest(root / f"cache-{dtype}"))["splits"]["train"]["bytes_per_clip"]

    n = len(rows)
    print(f"forward pass alone (decoded frames): {n / forward_s:8.1f} clips/s")
    print(f"extraction, fp16 cache:              {n / extract_s['fp16']:8.1f} clips/s  "
          f"ratio {forward_s / extract_s['fp16']:.2f} (goal >= 0.8)")
    print(f"extraction, int8 cache:              {n / extract_s['int8']:8.1f} clips/s")
    print(f"bytes per clip: fp16 {sizes['fp16']:,.0f}, int8 {sizes['int8']:,.0f} "
          f"(int8/fp16 = {sizes['int8'] / sizes['fp16']:.2f})")
    print(f"files left in {root}")


if __name__ == "__main__":
    main()
