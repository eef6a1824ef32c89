"""Symmetric per-token int8 quantisation of visual tokens (scale = max|x| / 127, stored as fp16)."""

from __future__ import annotations

import numpy as np
import torch

# float16 bit patterns 0x6400..0x67FF are the integers 1024..2047, so int16(q) + 0x6480 is 1152 + q as a float16.
_FP16_BIAS_BITS, _FP16_BIAS = np.int16(0x6480), 1152


def quantize_int8(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantise float tokens [..., D] to int8 values [..., D] and one fp16 scale per token [...]."""
    scale = (np.abs(x).max(axis=-1) / 127.0).astype(np.float16)
    # Divide by the fp16-rounded scale so that dequantisation uses exactly the scale that quantised.
    safe = np.where(scale > 0, scale.astype(np.float32), 1.0)[..., None]
    q = np.clip(np.rint(x / safe), -127, 127).astype(np.int8)
    return q, scale


def dequantize_int8(q: np.ndarray, scale: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
    """Turn int8 tokens [..., D] and their fp16 scales [...] back into float16 tokens, written to `out` if given.

    Each value is q * scale rounded once to float16 (the same as computing in float32 and rounding).
    """
    out = np.empty(q.shape, np.float16) if out is None else out
    # numpy's float16 arithmetic and torch's int8 -> float16 cast are slow; an integer add makes the float16 bits.
    np.add(q, _FP16_BIAS_BITS, out=out.view(np.int16))
    values = torch.from_numpy(out)
    values.sub_(_FP16_BIAS)  # exact: integers below 2048 are float16 numbers
    values.mul_(torch.from_numpy(np.asarray(scale, np.float16)).unsqueeze(-1))
    return out
