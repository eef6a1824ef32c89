"""X-CLIP's video-specific prompt generator: each text embedding attends to one clip's visual context.

Source: Ni et al., "Expanding Language-Image Pretrained Models for General Video Recognition" (ECCV 2022), §3.3
(the official `VideoSpecificPrompt`); Hugging Face transformers' `XCLIPPromptGenerator`, whose state-dict keys
this module uses, so that `XCLIPModel.prompts_generator.state_dict()` loads as it is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paxion.errors import PaxionError


class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x): CLIP's and X-CLIP's approximation of GELU."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(1.702 * x)


ACTIVATIONS = {"quick_gelu": QuickGELU, "gelu": nn.GELU}


class _CrossAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        self.proj = nn.Linear(dim, dim)

    def forward(self, queries: Tensor, visual: Tensor) -> Tensor:
        def split(x: Tensor) -> Tensor:  # [B, L, d] -> [B, heads, L, d / heads]
            return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(self.q_proj(queries)), split(self.k_proj(visual)),
                                             split(self.v_proj(visual)))
        return self.proj(out.transpose(1, 2).flatten(2))


class _Layer(nn.Module):
    def __init__(self, dim: int, heads: int, eps: float, act: str) -> None:
        super().__init__()
        self.cross_attn = _CrossAttention(dim, heads)
        self.norm1, self.norm3 = nn.LayerNorm(dim, eps=eps), nn.LayerNorm(dim, eps=eps)
        # index 2 is the (inactive) dropout of the original, so that the weights keep their keys mlp.0 and mlp.3
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), ACTIVATIONS[act](), nn.Identity(), nn.Linear(4 * dim, dim))

    def forward(self, text: Tensor, visual: Tensor) -> Tensor:
        text = text + self.cross_attn(self.norm1(text), visual)
        return text + self.mlp(self.norm3(text))


class PromptGenerator(nn.Module):
    """Video-conditioned text embeddings: text + alpha * decoder(text, LayerNorm(visual)).

    Args (keyword-only):
        dim: the joint space d (X-CLIP's projection_dim).
        layers: decoder layers (prompt_layers). heads: cross-attention heads (prompt_num_attention_heads).
        text_eps / vision_eps: LayerNorm epsilons of the decoder layers (text config) and of the visual context
            (vision config).
        act: the MLP's activation, "quick_gelu" (X-CLIP's) or "gelu"; PaxionError for another.
    """

    def __init__(self, *, dim: int, layers: int, heads: int, text_eps: float, vision_eps: float, act: str) -> None:
        super().__init__()
        if act not in ACTIVATIONS:
            raise PaxionError(f"X-CLIP prompt generator activation {act!r} is not one of {', '.join(ACTIVATIONS)}")
        if dim % heads:
            raise PaxionError(f"X-CLIP prompt generator: {heads} heads do not divide the width {dim}")
        self.layernorm = nn.LayerNorm(dim, eps=vision_eps)
        self.decoder = nn.ModuleList(_Layer(dim, heads, text_eps, act) for _ in range(layers))
        self.alpha = nn.Parameter(torch.zeros(dim))

    def forward(self, text: Tensor, visual: Tensor) -> Tensor:
        """Conditioned, normalised texts [B, K, d] from raw text embeddings [B, K, d] and each clip's visual
        context [B, P, d] (X-CLIP's `img_features`: LayerNorm + projection of every patch token, averaged over
        frames)."""
        visual = self.layernorm(visual)
        prompt = text
        for layer in self.decoder:
            prompt = layer(prompt, visual)
        return F.normalize(text + self.alpha * prompt, dim=-1)


def load_prompt_generator(state: dict, *, device: str | torch.device = "cpu") -> PromptGenerator:
    """A frozen PromptGenerator in eval mode from {"config": its keyword arguments, "weights": its state dict} (what
    `hf-xclip`'s `scorer_state` saves); PaxionError when its weights do not fit."""
    try:
        generator = PromptGenerator(**state["config"])
        generator.load_state_dict(state["weights"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise PaxionError(f"X-CLIP prompt generator state does not fit: {str(exc).splitlines()[0]}") from None
    return generator.to(device).eval().requires_grad_(False)
