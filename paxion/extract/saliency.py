"""State-change saliency of a clip (paper Appendix C): does its first half differ from its second?"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

DELTA_VT = 0.003  # keep a clip only if its frame-text similarity changes by more than this ...
THETA_VV = 0.95  # ... and its two halves are less similar than this


def state_change(
    frames: torch.Tensor, text: torch.Tensor, *, delta_vt: float = DELTA_VT, theta_vv: float = THETA_VV
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per clip (delta_vt, theta_vv, keep) from per-frame embeddings [B, T, d] and caption embeddings [B, d].

    delta_vt = |mean_{first half} S(v_i, t) - mean_{second half} S(v_j, t)|, theta_vv = S(mean of first-half
    frames, mean of second-half frames), S = cosine; keep iff delta_vt > `delta_vt` and theta_vv < `theta_vv`.
    """
    half = frames.shape[1] // 2
    frames, text = frames.float(), text.float()
    sim = F.cosine_similarity(frames, text[:, None, :], dim=-1)
    delta = (sim[:, :half].mean(dim=1) - sim[:, half:].mean(dim=1)).abs()
    theta = F.cosine_similarity(frames[:, :half].mean(dim=1), frames[:, half:].mean(dim=1), dim=-1)
    return delta, theta, (delta > delta_vt) & (theta < theta_vv)


@torch.inference_mode()
def second_model_embeddings(backbone: torch.nn.Module, frames: np.ndarray, captions: list[str]
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame embeddings [B, T, d] and caption embeddings [B, d] of decoded clips (uint8 [B, T, H, W, 3]) by a
    second backbone, for `state_change` (the paper computes the flags with BLIP, Appendix C)."""
    frame_emb = backbone.encode_video(backbone.preprocess(frames)).frames
    return frame_emb.float().cpu(), backbone.encode_text(captions).float().cpu()
