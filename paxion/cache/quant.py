"""int8 visual tokens with a per-clip channel scale and a per-token scale, and their dequantisation in torch.

A clip's tokens x [T, N, D] are stored as int8 q with x ~= q * scale[t, n] * channel_scale[d]:
`channel_scale` (field `{name}_channel_scale`, [D] fp16) is each channel's mean |x| over the clip's T x N tokens
divided by the median of those means, so the few very large channels of a ViT residual stream get their own
range; `scale` (field `{name}_scale`, [T, N] fp16) is the token's absmax of x / channel_scale over 127.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

SCALE, CHANNEL_SCALE = "_scale", "_channel_scale"  # suffixes of a quantised field's two scale fields


def quantize_int8(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantise clips of float tokens [B, ..., D] to (int8 q [B, ..., D], fp16 scale [B, ...], fp16 channel_scale
    [B, D]); both scales are rounded to fp16 before q is computed, so dequantisation uses exactly them."""
    x = np.asarray(x, np.float32)
    magnitude = np.abs(x).mean(axis=tuple(range(1, x.ndim - 1)))  # [B, D]
    median = np.median(magnitude, axis=-1, keepdims=True)
    channel = np.clip(magnitude / np.where(median > 0, median, 1), 2.0**-14, 2.0**15).astype(np.float16)
    y = x / _per_clip(channel.astype(np.float32), x.ndim)
    scale = (np.abs(y).max(axis=-1) / 127).astype(np.float16)
    q = np.rint(y / np.where(scale > 0, scale.astype(np.float32), 1)[..., None])
    return np.clip(q, -127, 127).astype(np.int8), scale, channel


def _per_clip(channel, ndim: int):
    """A [B, D] channel scale shaped to broadcast against tokens [B, ..., D] of `ndim` dimensions."""
    return channel.reshape(channel.shape[0], *[1] * (ndim - 2), channel.shape[-1])


def dequantize(q: torch.Tensor, scale: torch.Tensor, channel_scale: torch.Tensor,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """int8 tokens [B, ..., D] with their scales [B, ...] and [B, D] back to floats of `dtype`, on q's device:
    q * scale * channel_scale computed in float32, then cast."""
    step = scale.float().unsqueeze(-1) * _per_clip(channel_scale.float(), q.ndim)
    return (q * step).to(dtype)  # int8 * float32 promotes to float32 without a float copy of q


def with_scales(fields: Iterable[str], stored: Callable[[str], bool]) -> list[str]:
    """`fields`, each int8 one followed by its two scale fields; `stored(name)`: whether a `{field}_scale` exists."""
    return [m for n in fields for m in (n, n + SCALE, n + CHANNEL_SCALE) if m == n or stored(n + SCALE)]


def as_float32(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A batch (dict of tensors, first axis the clip) for the math: int8 fields dequantised with their scale
    fields, which are dropped; float fields (float16 or float32) as float32; other fields unchanged."""
    out = {}
    for name, t in batch.items():
        if f"{name}{SCALE}" in batch:
            out[name] = dequantize(t, batch[f"{name}{SCALE}"], batch[f"{name}{CHANNEL_SCALE}"])
        elif not name.endswith(SCALE):
            out[name] = t.float() if t.is_floating_point() else t
    return out
