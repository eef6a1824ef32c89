"""The frozen backbone interface every adapter implements, and its shared preprocessing."""

from __future__ import annotations

import abc
import hashlib
import json
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

    def preprocess(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Resize uint8 frames [B, T, H, W, 3] to the model's input and normalise: float [B, T, 3, S, S]."""
        return resize_normalise(frames, size=self.image_size, mean=self.mean, std=self.std, device=self.device)

    @abc.abstractmethod
    def encode_video(self, pixels: torch.Tensor) -> VideoFeatures:
        """Encode preprocessed pixels [B, T, 3, S, S] into tokens, per-frame and pooled embeddings."""

    @abc.abstractmethod
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """Embed texts into the joint space: [n, d], not normalised."""

    def truncated(self, texts: list[str]) -> list[bool]:
        """Per text, whether `encode_text` cuts it to fit the text encoder's context; default: never."""
        return [False] * len(texts)
