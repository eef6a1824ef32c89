"""The trainable layers: Knowledge Patcher (Perceiver or Transformer), Knowledge Fuser and Side-Tuning (paper §3, DESIGN.md §5)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class CrossAttention(nn.Module):
    """Multi-head attention of queries over a context; keys and values come from the context only.

    Args (keyword-only):
        dim: width of the queries and of the output.
        context_dim: width of the context tokens (default None = dim).
        heads: number of attention heads (default 8).
        dim_head: width of each head (default 64).
    """

    def __init__(self, *, dim: int, context_dim: int | None = None, heads: int = 8, dim_head: int = 64) -> None:
        super().__init__()
        context_dim = dim if context_dim is None else context_dim
        inner = heads * dim_head
        self.heads = heads
        self.norm_queries = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(context_dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(context_dim, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, queries: Tensor, context: Tensor) -> Tensor:
        """Attend `queries` [B, L, dim] over `context` [B, M, context_dim]; returns [B, L, dim]."""
        q = self.to_q(self.norm_queries(queries))
        k, v = self.to_kv(self.norm_context(context)).chunk(2, dim=-1)
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).flatten(2))


class FeedForward(nn.Module):
    """LayerNorm, Linear(dim, mult*dim), GELU, Linear(mult*dim, dim).

    Args (keyword-only):
        dim: input and output width.
        mult: hidden width as a multiple of dim (default 2).
    """

    def __init__(self, *, dim: int, mult: int = 2) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, mult * dim), nn.GELU(), nn.Linear(mult * dim, dim)
        )

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block to x [..., dim]."""
        return self.net(x)


class FusionBlock(nn.Module):
    """Cross-attention (+residual), feed-forward (+residual), final LayerNorm: the Perceiver block.

    Args (keyword-only):
        dim: width of the queries and of the output.
        context_dim: width of the context tokens (default None = dim).
        heads: attention heads (default 8).
        dim_head: width of each head (default 64).
        ff_mult: feed-forward hidden width multiple (default 2).
    """

    def __init__(
        self, *, dim: int, context_dim: int | None = None, heads: int = 8, dim_head: int = 64, ff_mult: int = 2
    ) -> None:
        super().__init__()
        self.attend = CrossAttention(dim=dim, context_dim=context_dim, heads=heads, dim_head=dim_head)
        self.feed_forward = FeedForward(dim=dim, mult=ff_mult)
        self.norm = nn.LayerNorm(dim)

    def forward(self, queries: Tensor, context: Tensor) -> Tensor:
        """Update `queries` [B, L, dim] from `context` [B, M, context_dim]."""
        x = queries + self.attend(queries, context)
        x = x + self.feed_forward(x)
        return self.norm(x)


def _embedding(*shape: int, std: float = 0.02) -> nn.Parameter:
    """A learned embedding table initialised with normal random values of the given std."""
    return nn.Parameter(torch.randn(*shape) * std)


class TimePosition(nn.Module):
    """A learned embedding per frame, added to every token of that frame, with dropout on the embedding.

    Args (keyword-only):
        frames: frames T per clip.
        token_dim: width D of the tokens.
        std: initial std of the embedding.
        dropout: probability of zeroing an embedding entry while training (the official code: 0.1).
        enabled: False makes this the identity (no parameters).
    """

    def __init__(self, *, frames: int, token_dim: int, std: float, dropout: float, enabled: bool) -> None:
        super().__init__()
        self.time_pos_emb = _embedding(frames, 1, token_dim, std=std) if enabled else None
        # No dropout module at rate 0: runs without dropout draw exactly the random numbers they drew before.
        self.dropout = nn.Dropout(dropout) if enabled and dropout > 0 else None

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens [B, T, N, D] plus the (dropped-out) frame embedding [T, 1, D]."""
        if self.time_pos_emb is None:
            return tokens
        embedding = self.time_pos_emb if self.dropout is None else self.dropout(self.time_pos_emb)
        return tokens + embedding


class KPPerceiver(nn.Module):
    """Knowledge Patcher: learned latents cross-attend over the frozen backbone's visual tokens.

    Args (keyword-only):
        token_dim: width D of the backbone's visual tokens.
        dim: width d of the latents (the backbone's joint video-text space).
        frames: frames T per clip.
        tokens_per_frame: tokens N per frame.
        num_latents: number of learned latents L (default 16).
        heads: attention heads (default 8).
        dim_head: width of each head (default 64).
        ff_mult: feed-forward hidden width multiple (default 2).
        time_pos_emb: add a learned embedding per frame to its tokens (default True).
        token_pos_emb: add a learned embedding per token position within a frame (default False; the official code
            has none); frozen tokens of a backbone trained through a pooled output carry little position, which
            motion actions need.
        embedding_std: initial std of the position embeddings (default 0.02).
        time_pos_dropout: dropout on the per-frame embedding while training (default 0.0; the official code 0.1).
    """

    def __init__(
        self,
        *,
        token_dim: int,
        dim: int,
        frames: int,
        tokens_per_frame: int,
        num_latents: int = 16,
        heads: int = 8,
        dim_head: int = 64,
        ff_mult: int = 2,
        time_pos_emb: bool = True,
        token_pos_emb: bool = False,
        embedding_std: float = 0.02,
        time_pos_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.time_pos = TimePosition(frames=frames, token_dim=token_dim, std=embedding_std, dropout=time_pos_dropout,
                                     enabled=time_pos_emb)
        self.token_pos_emb = _embedding(tokens_per_frame, token_dim, std=embedding_std) if token_pos_emb else None
        self.latents = _embedding(num_latents, dim)
        self.block = FusionBlock(dim=dim, context_dim=token_dim, heads=heads, dim_head=dim_head, ff_mult=ff_mult)

    def forward(self, tokens: Tensor) -> Tensor:
        """Map visual tokens [B, T, N, D] to latents [B, L, d] (not normalised)."""
        tokens = self.time_pos(tokens)
        if self.token_pos_emb is not None:
            tokens = tokens + self.token_pos_emb
        latents = self.latents.expand(tokens.shape[0], -1, -1)
        return self.block(latents, tokens.flatten(1, 2))


class KPTransformer(nn.Module):
    """Knowledge Patcher variant: one transformer encoder layer over all tokens, mean-pooled, projected to d.

    Args (keyword-only):
        token_dim: width D of the backbone's visual tokens (must be divisible by heads).
        dim: output width d (the backbone's joint video-text space).
        frames: frames T per clip.
        tokens_per_frame: tokens N per frame.
        heads: self-attention heads (default 4).
        ff_mult: feed-forward hidden width as a multiple of D (default 2).
        time_pos_emb: add a learned embedding per frame to its tokens (default True).
        embedding_std: initial std of the per-frame embedding (default 0.02).
        time_pos_dropout: dropout on the per-frame embedding while training (default 0.0; the official code 0.1).
    """

    def __init__(
        self,
        *,
        token_dim: int,
        dim: int,
        frames: int,
        tokens_per_frame: int,
        heads: int = 4,
        ff_mult: int = 2,
        time_pos_emb: bool = True,
        embedding_std: float = 0.02,
        time_pos_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.time_pos = TimePosition(frames=frames, token_dim=token_dim, std=embedding_std, dropout=time_pos_dropout,
                                     enabled=time_pos_emb)
        self.encoder = nn.TransformerEncoderLayer(
            d_model=token_dim, nhead=heads, dim_feedforward=ff_mult * token_dim, dropout=0.0, batch_first=True
        )
        self.project = nn.Linear(token_dim, dim)

    def forward(self, tokens: Tensor) -> Tensor:
        """Map visual tokens [B, T, N, D] to one vector [B, 1, d] (not normalised)."""
        encoded = self.encoder(self.time_pos(tokens).flatten(1, 2))
        return self.project(encoded.mean(dim=1, keepdim=True))


class KnowledgeFuser(nn.Module):
    """Knowledge Fuser: the backbone's pooled video embedding cross-attends over the patcher's latents.

    Args (keyword-only):
        dim: width d of the joint space (pooled embedding and latents).
        heads: attention heads (default 8).
        dim_head: width of each head (default 64).
        ff_mult: feed-forward hidden width multiple (default 2).
    """

    def __init__(self, *, dim: int, heads: int = 8, dim_head: int = 64, ff_mult: int = 2) -> None:
        super().__init__()
        self.block = FusionBlock(dim=dim, heads=heads, dim_head=dim_head, ff_mult=ff_mult)

    def forward(self, pooled: Tensor, latents: Tensor) -> Tensor:
        """Fuse pooled [B, d] with latents [B, L, d] into [B, 1, d] (not normalised)."""
        return self.block(pooled[:, None], latents)


class SideTuning(nn.Module):
    """Side-Tuning: alpha-blend of the normalised backbone embedding and the normalised mean latent.

    Args (keyword-only):
        init: initial value of the blend logit a, alpha = sigmoid(a) (default 0.0, alpha = 0.5).
    """

    def __init__(self, *, init: float = 0.0) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(float(init)))

    @property
    def alpha(self) -> Tensor:
        """The weight of the backbone embedding, sigmoid(a)."""
        return torch.sigmoid(self.a)

    def forward(self, pooled: Tensor, latents: Tensor) -> Tensor:
        """Blend pooled [B, d] with latents [B, L, d] into [B, 1, d] (not normalised)."""
        side = F.normalize(latents.mean(dim=1), dim=-1)
        fused = self.alpha * F.normalize(pooled, dim=-1) + (1 - self.alpha) * side
        return fused[:, None]
