"""Hugging Face BLIP (image-text retrieval model) as a frame-wise backbone, in its contrastive (ITC) space.

The paper computes the state-change saliency flags with BLIP (Appendix C); `paxion extract --saliency-backbone
hf-blip:PATH` uses it for that alone, though it works as an extracting backbone too. Embeddings follow
`transformers.BlipForImageTextRetrieval.forward(..., use_itm_head=False)`: the vision model's first output token
through `vision_proj`, the text encoder's first token (no cross-attention) through `text_proj`.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from transformers import BlipForImageTextRetrieval

from paxion.extract.backbones.base import VideoFeatures, time_mean
from paxion.extract.backbones.hf_common import HFBackbone


class HFBlipBackbone(HFBackbone):
    """BLIP image tower per frame: tokens = last hidden state (CLS + patches), frames = projected CLS token."""

    kind = "hf-blip"
    model_class = BlipForImageTextRetrieval
    # BlipImageProcessor: a bicubic resize straight to the square input (no crop), CLIP's statistics
    processor_defaults: ClassVar[dict] = {"do_center_crop": False, "resample": 3,
                                          "image_mean": (0.48145466, 0.4578275, 0.40821073),
                                          "image_std": (0.26862954, 0.26130258, 0.27577711)}
    temporal = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.embed_dim = self.model.config.image_text_hidden_size  # the ITC space, not projection_dim

    @torch.inference_mode()
    def encode_video(self, pixels: torch.Tensor) -> VideoFeatures:
        """Tokens [B, T, 1+P, D], ITC frame embeddings [B, T, d], their time-mean [B, d]."""
        b, t = pixels.shape[:2]
        hidden = self.model.vision_model(pixel_values=pixels.to(self.device).flatten(0, 1)).last_hidden_state
        frames = self.model.vision_proj(hidden[:, 0]).view(b, t, -1)
        return VideoFeatures(hidden.view(b, t, *hidden.shape[1:]), frames, time_mean(frames))

    def _text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """ITC text embeddings [n, d]: the text encoder's first token through `text_proj`."""
        hidden = self.model.text_encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.model.text_proj(hidden[:, 0])
