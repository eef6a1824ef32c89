"""Hugging Face SigLIP (and the fixed-resolution SigLIP 2 checkpoints, which are SigLIP models) frame-wise.

SigLIP scores an (image, text) pair with sigmoid(logit_scale * cos + logit_bias) (Zhai et al. 2023, the
`SiglipModel.forward` logits): for a fixed logit_scale > 0 that is increasing in the cosine, so rankings by the
cosine are SigLIP's rankings; the backbone scorer uses the cosine with the recorded `logit_scale` as the softmax
inverse temperature.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from transformers import SiglipModel

from paxion.extract.backbones.base import VideoFeatures, time_mean
from paxion.extract.backbones.hf_common import HFBackbone


class HFSiglipBackbone(HFBackbone):
    """SigLIP image tower per frame: tokens = last hidden state (patches, no class token), frames = the attention-
    pooled image features, pooled = their time-mean."""

    kind = "hf-siglip"
    model_class = SiglipModel
    temporal = False
    class_tokens = 0
    text_padding = "max_length"  # SigLIP's text tower was trained on texts padded to its full length
    # SiglipImageProcessor's defaults: squashed to the square input, bicubic, mean and std 0.5
    processor_defaults: ClassVar[dict] = {"do_center_crop": False, "resample": 3, "image_mean": (0.5, 0.5, 0.5),
                          "image_std": (0.5, 0.5, 0.5)}

    @torch.inference_mode()
    def encode_video(self, pixels: torch.Tensor) -> VideoFeatures:
        """Tokens [B, T, P, D], image features [B, T, d], their time-mean [B, d]."""
        b, t = pixels.shape[:2]
        out = self.model.vision_model(pixel_values=pixels.to(self.device).flatten(0, 1))
        frames = out.pooler_output.view(b, t, -1)
        tokens = out.last_hidden_state.view(b, t, *out.last_hidden_state.shape[1:])
        return VideoFeatures(tokens, frames, time_mean(frames))
