"""Tiny stand-ins for tests: fake frame-wise and temporal backbones that count forward calls, and bench/video writers."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import av
import numpy as np
import torch
from torch import nn

from paxion.extract.backbones.base import Backbone, VideoFeatures


class FakeBackbone(Backbone):
    """A random patch-embedding "video-language model" with the Backbone interface, counting its video passes.

    temporal: when True every frame's tokens also see the running mean of the frames before it, so playing
        the clip backwards changes the tokens (not just their order).
    image_size: input side S (default 16); patch: patch side (default 4), so N = (S / patch)^2 tokens.
    token_dim: D (default 12); embed_dim: d (default 8); seed: weight seed (default 0).
    """

    mean = (0.5, 0.5, 0.5)
    std = (0.25, 0.25, 0.25)

    def __init__(self, *, temporal: bool = False, image_size: int = 16, patch: int = 4, token_dim: int = 12,
                 embed_dim: int = 8, seed: int = 0) -> None:
        super().__init__()
        self.name = "fake-temporal" if temporal else "fake-framewise"
        self.temporal, self.image_size, self.patch = temporal, image_size, patch
        self.token_dim, self.embed_dim, self.tokens_per_frame = token_dim, embed_dim, (image_size // patch) ** 2
        self.embed = nn.Conv2d(3, token_dim, patch, stride=patch)
        self.proj = nn.Linear(token_dim, embed_dim)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
        self.video_calls = 0  # encode_video calls
        self.clips_encoded = 0  # clips through encode_video, reversed passes included
        self.freeze()

    def config_dict(self) -> dict:
        """The fake's shape settings."""
        return {"temporal": self.temporal, "image_size": self.image_size, "patch": self.patch,
                "token_dim": self.token_dim, "embed_dim": self.embed_dim}

    def encode_video(self, pixels: torch.Tensor) -> VideoFeatures:
        """Patch tokens [B, T, N, D], per-frame projections [B, T, d] and their mean [B, d]."""
        self.video_calls += 1
        self.clips_encoded += pixels.shape[0]
        b, t = pixels.shape[:2]
        tokens = self.embed(pixels.flatten(0, 1)).flatten(2).transpose(1, 2).reshape(b, t, self.tokens_per_frame, -1)
        if self.temporal:
            steps = torch.arange(1, t + 1, dtype=tokens.dtype, device=tokens.device).view(1, t, 1, 1)
            tokens = tokens + tokens.cumsum(dim=1) / steps
        frames = self.proj(tokens.mean(dim=2))
        return VideoFeatures(tokens, frames, frames.mean(dim=1))

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """A fixed random vector per distinct text (seeded by its crc32)."""
        rows = [torch.randn(self.embed_dim, generator=torch.Generator().manual_seed(zlib.crc32(t.encode())))
                for t in texts]
        return torch.stack(rows) if rows else torch.zeros(0, self.embed_dim)


def write_video(path: str | Path, frames: np.ndarray, *, fps: int = 8) -> None:
    """Encode uint8 frames [T, H, W, 3] as an mp4 (h264 when available, else mpeg4)."""
    with av.open(str(path), "w") as container:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def moving_square(seed: int, *, frames: int = 12, size: int = 32) -> np.ndarray:
    """A clip of a coloured square sliding across a dark background: uint8 [frames, size, size, 3]."""
    rng = np.random.default_rng(seed)
    colour = rng.integers(80, 256, size=3)
    video = np.full((frames, size, size, 3), 20, dtype=np.uint8)
    y = int(rng.integers(0, size - 8))
    for t in range(frames):
        x = (t * (size - 8)) // max(frames - 1, 1)
        video[t, y:y + 8, x:x + 8] = colour
    return video if seed % 2 == 0 else video[::-1].copy()


def make_bench(root: str | Path, splits: dict[str, int], *, bad: dict[str, str] | None = None) -> tuple[Path, Path]:
    """Write a bench (meta.json + {split}.jsonl) and tiny videos under `root`; returns (bench_dir, videos_dir).

    splits: clips per split. bad: clip id -> "missing" (no file) or "corrupt" (garbage bytes) for bad videos.
    """
    bench, videos = Path(root) / "bench", Path(root) / "videos"
    bench.mkdir(parents=True)
    videos.mkdir(parents=True)
    bad = bad or {}
    seed = 0
    for split, n in splits.items():
        rows = []
        for _ in range(n):
            clip_id = f"{split[0]}{seed}"
            caption = f"Pushing thing {seed % 3} from {'left to right' if seed % 2 == 0 else 'right to left'}"
            rows.append({
                "id": clip_id, "video": f"{clip_id}.mp4", "start": None, "end": None, "caption": caption,
                "template": "Pushing something from left to right", "label": seed % 2,
                "aa_caption": caption.replace("Pushing", "Pulling"), "aa_reason": None,
                "or_caption": None, "or_reason": "no object",
            })
            if bad.get(clip_id) == "corrupt":
                (videos / f"{clip_id}.mp4").write_bytes(b"not a video" * 50)
            elif bad.get(clip_id) != "missing":
                write_video(videos / f"{clip_id}.mp4", moving_square(seed))
            seed += 1
        (bench / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    meta = {"dataset": "fake", "splits": splits, "classes": None, "temporal_classes": None, "builtin_world": False}
    (bench / "meta.json").write_text(json.dumps(meta))
    return bench, videos
