"""Decoding speed of SSv2-like clips (VP9 WebM, 427x240, 12 fps, 4 s, made here with PyAV): PyAV vs torchcodec on
the CPU, in clips per second per core, and how many cores would keep a CLIP ViT-B/16 busy on an H100-class GPU.

Run: python benchmarks/bench_decode.py [--clips 24] [--frames 8] [--size 224] [--forward-device cuda] [--json OUT]
     [--tiny]
Each decoder samples `--frames` frames per clip at the segment centres and resizes them to `--size` square, as
extraction does. Per core = clips / CPU seconds of the process (decoder threads included). The GPU side is
measured with `--forward-device`: a CLIP ViT-B/16 vision tower (transformers, random weights: the cost does not
depend on them) encodes `--forward-batch` frames at 224 under bf16 autocast. Without it, it is an estimate from
FLOPs: `--gflop-per-frame` (CLIP ViT-B/16 at 224: 17.6 G multiply-adds, 2 FLOPs each) x frames per clip against
`--gpu-tflops` (dense bf16 peak) x `--utilisation`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from _tiny import parse_args

from paxion.extract.video import read_frames

Decode = Callable[..., np.ndarray]  # decode(path, *, num_frames, size) -> uint8 [T, size, size, 3]


def make_clips(root: Path, *, clips: int, seconds: float, width: int = 427, height: int = 240, fps: int = 12) -> list[Path]:
    """`clips` VP9 WebM files of a textured square moving over a panning textured background with sensor noise
    (SSv2's size and rate; a hand-held camera makes every frame change)."""
    rng = np.random.default_rng(0)
    paths = []
    for c in range(clips):
        path = root / f"clip{c:03d}.webm"
        coarse = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
        background = coarse.repeat(8, axis=0).repeat(8, axis=1)[:height, :width]
        square = rng.integers(0, 256, (60, 60, 3), dtype=np.uint8)
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libvpx-vp9", rate=fps, options={"deadline": "realtime", "cpu-used": "8"})
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            frames = round(seconds * fps)
            for i in range(frames):
                image = np.roll(background, 2 * i, axis=1)
                image = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
                x, y = (width - 60) * i // max(frames - 1, 1), (height - 60) // 2
                image[y:y + 60, x:x + 60] = square
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            container.mux(stream.encode(None))
        paths.append(path)
    return paths


def pyav(path: Path, *, num_frames: int, size: int) -> np.ndarray:
    """paxion's decoder (`read_frames`, PyAV)."""
    return read_frames(path, num_frames=num_frames, size=size)


def torchcodec_decoder() -> tuple[Decode | None, str | None]:
    """A torchcodec decoder with the same sampling rule on one FFmpeg thread, or None and why it cannot be used."""
    try:
        from torchcodec.decoders import VideoDecoder
    except (ImportError, OSError, RuntimeError) as exc:  # native libraries can fail to load as well
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"

    def decode(path: Path, *, num_frames: int, size: int) -> np.ndarray:
        decoder = VideoDecoder(str(path), num_ffmpeg_threads=1, dimension_order="NCHW")
        begin = decoder.metadata.begin_stream_seconds or 0.0
        length = (decoder.metadata.end_stream_seconds or decoder.metadata.duration_seconds) - begin
        times = [begin + (2 * k + 1) * length / (2 * num_frames) for k in range(num_frames)]
        frames = decoder.get_frames_played_at(seconds=times).data.float()
        resized = F.interpolate(frames, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        return resized.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()

    return decode, None


def measure(decode: Decode, paths: list[Path], *, num_frames: int, size: int, repeats: int) -> dict:
    """Wall and CPU seconds to decode every clip `repeats` times in this process (after one warm-up clip)."""
    decode(paths[0], num_frames=num_frames, size=size)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        for path in paths:
            out = decode(path, num_frames=num_frames, size=size)
            assert out.shape == (num_frames, size, size, 3)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    n = repeats * len(paths)
    return {"clips": n, "wall_s": wall, "cpu_s": cpu, "clips_per_s": n / wall, "clips_per_core_s": n / cpu}


def gpu_estimate(*, gflop_per_frame: float, frames: int, tflops: float, utilisation: float) -> dict:
    """Clips per second a GPU encodes from FLOPs: tflops x utilisation / (gflop_per_frame x frames)."""
    per_clip = gflop_per_frame * frames
    return {"gflop_per_clip": per_clip, "clips_per_s": tflops * 1e3 * utilisation / per_clip}


def measure_forward(device: str, *, frames: int, batch: int, repeats: int, tiny: bool) -> dict:
    """Clips per second a CLIP ViT-B/16 vision tower encodes on `device` (batches of `batch` frames, bf16 autocast
    on CUDA, after two warm-up batches); `tiny` swaps in a 2-layer 32-wide tower at 32 pixels, to check the code."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    config = (CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                               image_size=32, patch_size=16) if tiny else
              CLIPVisionConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                               num_attention_heads=12, image_size=224, patch_size=16))
    model = CLIPVisionModel(config).to(device).eval()
    pixels = torch.randn(batch, 3, config.image_size, config.image_size, device=device)
    on_cuda = torch.device(device).type == "cuda"
    with torch.inference_mode(), torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=on_cuda):
        for step in range(2 + repeats):
            if step == 2:
                if on_cuda:
                    torch.cuda.synchronize()
                start = time.perf_counter()
            model(pixel_values=pixels).last_hidden_state.float().sum().item()
    seconds = time.perf_counter() - start
    frames_per_s = batch * repeats / seconds
    name = torch.cuda.get_device_name(device) if on_cuda else "cpu"
    return {"device": name, "model": "tiny 2-layer ViT" if tiny else "CLIP ViT-B/16", "frames_per_s": frames_per_s,
            "clips_per_s": frames_per_s / frames, "batch": batch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=4.0, help="clip length (SSv2 clips are 2-6 s)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--gflop-per-frame", type=float, default=35.2, help="CLIP ViT-B/16 at 224: 2 x 17.6 GMACs")
    parser.add_argument("--gpu-tflops", type=float, default=989.0, help="H100 SXM dense bf16 peak")
    parser.add_argument("--utilisation", type=float, default=0.4, help="fraction of peak a ViT-B forward reaches")
    parser.add_argument("--forward-device", default=None,
                        help="measure a CLIP ViT-B/16 forward pass on this device (e.g. cuda) instead of estimating")
    parser.add_argument("--forward-batch", type=int, default=512, help="frames per forward batch (default 512)")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parse_args(parser, {"clips": 2, "seconds": 1.0, "repeats": 1, "size": 32, "forward_device": "cpu",
                               "forward_batch": 2})

    torch.set_num_threads(1)
    decoders: dict[str, Decode] = {"pyav": pyav}
    skipped = {}
    decode, why = torchcodec_decoder()
    if decode is None:
        skipped["torchcodec"] = why
    else:
        decoders["torchcodec"] = decode
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_clips(Path(tmp), clips=args.clips, seconds=args.seconds)
        mb = sum(p.stat().st_size for p in paths) / len(paths) / 1e6
        print(f"{len(paths)} VP9 WebM clips, 427x240, 12 fps, {args.seconds:g} s, {mb:.2f} MB each; "
              f"{args.frames} frames per clip resized to {args.size}")
        results = {name: measure(fn, paths, num_frames=args.frames, size=args.size, repeats=args.repeats)
                   for name, fn in decoders.items()}
    for name, r in results.items():
        print(f"{name:>10}: {r['clips_per_s']:.1f} clips/s in one process, {r['clips_per_core_s']:.1f} clips/s per "
              f"core ({r['cpu_s']:.2f} CPU s for {r['clips']} clips)")
    for name, why in skipped.items():
        print(f"{name:>10}: not measured ({why})")
    best = max(results, key=lambda name: results[name]["clips_per_core_s"])
    if args.forward_device:
        gpu = measure_forward(args.forward_device, frames=args.frames, batch=args.forward_batch,
                              repeats=max(args.repeats, 5), tiny=args.tiny)
        cores = gpu["clips_per_s"] / results[best]["clips_per_core_s"]
        print(f"measured forward on {gpu['device']}: {gpu['model']}, bf16 autocast, {gpu['batch']} frames a batch -> "
              f"{gpu['frames_per_s']:.0f} frames/s = {gpu['clips_per_s']:.0f} clips/s; {best} needs {cores:.0f} "
              f"cores to keep up")
    else:
        gpu = gpu_estimate(gflop_per_frame=args.gflop_per_frame, frames=args.frames, tflops=args.gpu_tflops,
                           utilisation=args.utilisation)
        cores = gpu["clips_per_s"] / results[best]["clips_per_core_s"]
        print(f"GPU estimate from FLOPs (not measured): {args.gflop_per_frame:g} GFLOP/frame x {args.frames} frames "
              f"= {gpu['gflop_per_clip']:.1f} GFLOP/clip; {args.gpu_tflops:g} TFLOPS x {args.utilisation:g} -> "
              f"{gpu['clips_per_s']:.0f} clips/s; {best} needs {cores:.0f} cores to keep up")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results, "skipped": skipped,
                                               "gpu": gpu, "cores": {best: cores}}, indent=2))


if __name__ == "__main__":
    main()
