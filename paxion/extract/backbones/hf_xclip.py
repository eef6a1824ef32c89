"""Hugging Face X-CLIP as a temporal video backbone: its frames exchange messages, so order matters."""

from __future__ import annotations

from typing import ClassVar

import torch
from transformers import XCLIPModel

from paxion.errors import BackboneError
from paxion.extract.backbones.base import VideoFeatures
from paxion.extract.backbones.hf_common import HFBackbone


class HFXClipBackbone(HFBackbone):
    """X-CLIP: tokens from the cross-frame vision encoder, frames = projected CLS, pooled = its video embedding.

    Text features are the plain projected text embeddings; X-CLIP conditions them on each clip with its prompt
    generator, which reads the clip's `score_context` (`encode_score_context`) and the weights of `scorer_state`.
    """

    # Cross-frame attention has no temporal position, so a reversed clip's tokens are the tokens flipped; checked on
    # the first clip batch within this relative tolerance (fp16 autocast on a GPU differs by ~1e-3).
    symmetry_rtol = 1e-2
    tokens_symmetric: bool | None = None  # None until the first reversed batch was checked

    kind = "hf-xclip"
    model_class = XCLIPModel
    # X-CLIP's training statistics (ImageNet's, microsoft/VideoX X-CLIP img_norm_cfg 123.675/58.395 ... over 255),
    # bilinear, shorter side then centre crop, as its hub checkpoints' VideoMAE preprocessor configs; not CLIP's,
    # which transformers falls back to without a config.
    processor_defaults: ClassVar[dict] = {"do_center_crop": True, "resample": 2, "image_mean": (0.485, 0.456, 0.406),
                          "image_std": (0.229, 0.224, 0.225)}
    temporal = True

    @torch.inference_mode()
    def encode_video(self, pixels: torch.Tensor) -> VideoFeatures:
        """Tokens [B, T, 1+P, D], projected frame CLS [B, T, d], the multi-frame integrated video [B, d]."""
        b, t = pixels.shape[:2]
        expected = self.model.config.vision_config.num_frames
        if t != expected:
            raise BackboneError(f"{self.name} was built for {expected} frames per clip, got {t}")
        out = self.model.vision_model(pixel_values=pixels.to(self.device).flatten(0, 1))
        frames = self.model.visual_projection(out.pooler_output).view(b, t, -1)
        pooled = self.model.mit(frames).pooler_output
        tokens = out.last_hidden_state.view(b, t, *out.last_hidden_state.shape[1:])
        return VideoFeatures(tokens, frames, pooled)

    @torch.inference_mode()
    def encode_reversed(self, pixels: torch.Tensor, feats: VideoFeatures) -> VideoFeatures:
        """The reversed clip: tokens and frames flipped, pooled = the integration transformer on the flipped frames.

        The first call also runs the vision tower on the flipped pixels and keeps doing so for every call if the
        tokens differ from the flipped tokens by more than `symmetry_rtol` of their largest magnitude."""
        if self.tokens_symmetric is None:
            full = self.encode_video(pixels.flip(1))
            scale = feats.tokens.abs().amax().item()
            self.tokens_symmetric = bool(
                (full.tokens - feats.tokens.flip(1)).abs().amax().item() <= self.symmetry_rtol * scale
            )
            return full
        if not self.tokens_symmetric:
            return self.encode_video(pixels.flip(1))
        frames = feats.frames.flip(1)
        return VideoFeatures(feats.tokens.flip(1), frames, self.model.mit(frames).pooler_output)

    @property
    def score_context_shape(self) -> tuple[int, int]:
        """(P, d): one context vector per patch position."""
        return self.tokens_per_frame - self.class_tokens, self.embed_dim

    def encode_score_context(self, feats: VideoFeatures) -> torch.Tensor:
        """X-CLIP's `img_features` [B, P, d]: every patch token layer-normed and projected, averaged over frames
        (`XCLIPModel.forward`), so the same for the reversed clip when its tokens are the tokens flipped."""
        patches = feats.tokens[:, :, self.class_tokens:]
        return (self.model.prompts_visual_layernorm(patches) @ self.model.prompts_visual_projection).mean(1)

    def scorer_state(self) -> dict:
        """The prompt generator's settings and float32 weights (`paxion.models.prompt.PromptGenerator`)."""
        config = self.model.config
        settings = {"dim": config.projection_dim, "layers": config.prompt_layers,
                    "heads": config.prompt_num_attention_heads, "text_eps": config.text_config.layer_norm_eps,
                    "vision_eps": config.vision_config.layer_norm_eps, "act": config.prompt_hidden_act}
        weights = {k: v.detach().float().cpu().clone() for k, v in self.model.prompts_generator.state_dict().items()}
        return {"kind": "xclip-prompt", "config": settings, "weights": weights}
