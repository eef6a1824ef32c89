"""Symmetric per-token int8 quantisation of visual tokens (scale = max|x| / 127, stored as fp16)."""

from __future__ import annotations

import numpy as np


def quantize_int8(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantise float tokens [..., D] to int8 values [..., D] and one fp16 scale per token [...]."""
    scale = (np.abs(x).max(axis=-1) / 127.0).astype(np.float16)
    # Divide by the fp16-rounded scale so that dequantisation uses exactly the scale that quantised.
    safe = np.where(scale > 0, scale.astype(np.float32), 1.0)[..., None]
    q = np.clip(np.rint(x / safe), -127, 127).astype(np.int8)
    return q, scale


def dequantize_int8(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Turn int8 tokens [..., D] and their fp16 scales [...] back into float32 tokens."""
    out = q.astype(np.float32)
    out *= scale.astype(np.float32)[..., None]  # in place: no second full-size temporary
    return out
