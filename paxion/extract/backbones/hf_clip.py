"""Hugging Face CLIP as a frame-wise video backbone: each frame is an image, the video is their mean."""

from __future__ import annotations

from typing import ClassVar

import torch
from transformers import CLIPModel

from paxion.extract.backbones.base import VideoFeatures, time_mean
from paxion.extract.backbones.hf_common import HFBackbone


class HFClipBackbone(HFBackbone):
    """CLIP image tower per frame: tokens = last hidden state (CLS + patches), frames = image features."""

    kind = "hf-clip"
    model_class = CLIPModel
    # CLIPImageProcessor's defaults (OpenAI CLIP's statistics, bicubic, shorter side then centre crop)
    processor_defaults: ClassVar[dict] = {"do_center_crop": True, "resample": 3, "image_mean": (0.48145466, 0.4578275, 0.40821073),
                          "image_std": (0.26862954, 0.26130258, 0.27577711)}
    temporal = False

    @torch.inference_mode()
    def encode_video(self, pixels: torch.Tensor) -> VideoFeatures:
        """Tokens [B, T, 1+P, D], projected frame embeddings [B, T, d], their time-mean [B, d]."""
        b, t = pixels.shape[:2]
        out = self.model.vision_model(pixel_values=pixels.to(self.device).flatten(0, 1))
        frames = self.model.visual_projection(out.pooler_output).view(b, t, -1)
        tokens = out.last_hidden_state.view(b, t, *out.last_hidden_state.shape[1:])
        return VideoFeatures(tokens, frames, time_mean(frames))
