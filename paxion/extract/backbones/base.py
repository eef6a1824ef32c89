"""The frozen backbone interface every adapter implements, and its shared preprocessing."""

from __future__ import annotations

import abc
import hashlib
import json
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class VideoFeatures(NamedTuple):
    """A batch of encoded clips: tokens [B, T, N, D], frames [B, T, d], pooled [B, d] (joint space, raw)."""

    tokens: torch.Tensor
    frames: torch.Tensor
    pooled: torch.Tensor


def time_mean(frames: torch.Tensor) -> torch.Tensor:
    """Mean of per-frame embeddings [B, T, d] over time that is bit-identical for the time-reversed clip."""
    # x_i + x_(T-1-i) is the same float in either order, so the summed sequence is a palindrome.
    return (frames + frames.flip(1)).mean(dim=1) / 2


def resize_normalise(
    frames: np.ndarray | torch.Tensor,
    *,
    size: int,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Turn uint8 frames [B, T, H, W, 3] into normalised float pixels [B, T, 3, size, size]."""
    x = torch.as_tensor(frames).to(device)
    if x.dtype != torch.uint8 or x.ndim != 5 or x.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames [B, T, H, W, 3], got {x.dtype} {tuple(x.shape)}")
    b, t, h, w, _ = x.shape
    x = x.reshape(b * t, h, w, 3).permute(0, 3, 1, 2).float().div_(255.0)
    if (h, w) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    m = torch.tensor(mean, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, 3, 1, 1)
    return ((x - m) / s).reshape(b, t, 3, size, size)


@dataclass(frozen=True)
class PixelSpec:
    """An image processor's geometry and statistics (the fields of transformers' CLIPImageProcessor config).

    size: an int resizes the shorter side to it keeping the aspect ratio (the longer side truncated to an int, as
    transformers does); (height, width) resizes to exactly that. crop: (height, width) of the centre crop, or None.
    resample: "bilinear" or "bicubic" (PIL's kernels, antialiased when shrinking). A shorter-side size needs a crop.
    """

    size: int | tuple[int, int]
    crop: tuple[int, int] | None
    resample: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def resized(self, h: int, w: int) -> tuple[int, int]:
        """The (height, width) an h x w image is resized to."""
        if not isinstance(self.size, int):
            return tuple(self.size)
        if h <= w:
            return self.size, int(self.size * w / h)
        return int(self.size * h / w), self.size

    @property
    def output(self) -> tuple[int, int]:
        """(height, width) of the pixels the model gets (the crop when there is one)."""
        return self.crop if self.crop is not None else tuple(self.size)


def processor_pixels(
    frames: np.ndarray | torch.Tensor, spec: PixelSpec, *, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Uint8 frames [B, T, H, W, 3] of any size into normalised pixels [B, T, 3, h, w], as the image processor.

    Resize (to uint8, as PIL does), centre crop at ((H - h) // 2, (W - w) // 2), scale by 1/255, normalise; batched
    in torch on `device`. Source: transformers' image_transforms (get_resize_output_image_size, center_crop).
    """
    x = torch.as_tensor(frames).to(device)
    if x.dtype != torch.uint8 or x.ndim != 5 or x.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames [B, T, H, W, 3], got {x.dtype} {tuple(x.shape)}")
    b, t, h, w, _ = x.shape
    x = x.reshape(b * t, h, w, 3).permute(0, 3, 1, 2).float()
    rh, rw = spec.resized(h, w)
    # PIL resizes width, then height, rounding to uint8 after each pass; bicubic overshoots, so the order matters
    for size in ((h, rw), (rh, rw)):
        if size != tuple(x.shape[-2:]):
            x = F.interpolate(x, size=size, mode=spec.resample, antialias=True, align_corners=False)
            x = x.round_().clamp_(0, 255)
    if spec.crop is not None:
        (ch, cw), (rh, rw) = spec.crop, x.shape[-2:]
        top, left = (rh - ch) // 2, (rw - cw) // 2
        x = x[..., top:top + ch, left:left + cw]
    m = torch.tensor(spec.mean, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(spec.std, device=x.device).view(1, 3, 1, 1)
    return ((x / 255.0 - m) / s).reshape(b, t, 3, *x.shape[-2:])


class Backbone(nn.Module, abc.ABC):
    """A frozen video-language model: subclasses set the attributes and implement the encoders."""

    name: str
    temporal: bool
    image_size: int
    embed_dim: int
    token_dim: int
    tokens_per_frame: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    logit_scale: float = 100.0  # inverse temperature of the backbone's own scores (CLIP's trained value)
    # A temporal backbone sets True once encode_reversed found its reversed tokens to be the tokens flipped; the
    # cache then stores no reversed tokens.
    tokens_symmetric: bool | None = False
    # Per-clip shape of what the backbone's own video-text score reads besides `pooled` (X-CLIP's prompt generator:
    # a visual context [P, d]); None for a cosine score. The cache stores it as the float32 field `score_context`.
    score_context_shape: tuple[int, ...] | None = None

    def freeze(self) -> Backbone:
        """Put the model in eval mode with every parameter frozen; returns self."""
        self.eval()
        self.requires_grad_(False)
        return self

    def train(self, mode: bool = True) -> Backbone:
        """A backbone stays in eval mode: dropout and friends are never switched on."""
        return super().train(False)

    @property
    def device(self) -> torch.device:
        """The device the weights live on."""
        return next(self.parameters()).device

    @abc.abstractmethod
    def config_dict(self) -> dict:
        """The configuration that, with the weights, defines the model's outputs."""

    def config_hash(self) -> str:
        """A stable hash (16 hex digits) of the configuration and the exact weights."""
        if getattr(self, "_config_hash", None) is None:
            h = hashlib.sha256(json.dumps(self.config_dict(), sort_keys=True, default=str).encode())
            for key, value in sorted(self.state_dict().items()):
                h.update(f"{key}:{value.dtype}:{tuple(value.shape)}".encode())
                h.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
            self._config_hash = h.hexdigest()[:16]
        return self._config_hash

    @property
    def decode_geometry(self) -> tuple[int, bool]:
        """(size, crop) the decoder should deliver frames at: squashed to size x size, or (crop True) the shorter
        side resized to size and the centred square kept. Default: squashed to the model's input."""
        return self.image_size, False

    def preprocess(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Resize uint8 frames [B, T, H, W, 3] to the model's input and normalise: float [B, T, 3, S, S]."""
        return resize_normalise(frames, size=self.image_size, mean=self.mean, std=self.std, device=self.device)

    @abc.abstractmethod
    def encode_video(self, pixels: torch.Tensor) -> VideoFeatures:
        """Encode preprocessed pixels [B, T, 3, S, S] into tokens, per-frame and pooled embeddings."""

    def encode_reversed(self, pixels: torch.Tensor, feats: VideoFeatures) -> VideoFeatures:
        """The time-reversed clip's features, given the clip's pixels and `feats` = encode_video(pixels).

        Default: encode the flipped pixels. A temporal adapter whose per-frame tower is time-symmetric overrides it
        to reuse `feats`."""
        return self.encode_video(pixels.flip(1))

    def encode_score_context(self, feats: VideoFeatures) -> torch.Tensor:
        """The score context [B, *score_context_shape] of encoded clips; called only when the shape is set. When the
        reversed clip's tokens are the tokens flipped (`tokens_symmetric`), it must not depend on the frames' order:
        extraction then stores no reversed one."""
        raise NotImplementedError(f"{type(self).__name__} sets score_context_shape without encode_score_context")

    def scorer_state(self) -> dict | None:
        """What `paxion.scoring` needs besides the cache's arrays to score as the backbone does, saved beside the
        manifest (a dict of tensors and plain values for `torch.load(weights_only=True)`, with a "kind"); default
        None: a cosine score."""
        return None

    @abc.abstractmethod
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """Embed texts into the joint space: [n, d], not normalised."""

    def truncated(self, texts: list[str]) -> list[bool]:
        """Per text, whether `encode_text` cuts it to fit the text encoder's context; default: never."""
        return [False] * len(texts)
