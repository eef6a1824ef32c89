"""Scorers: turn cached clips and texts into normalised joint-space vectors (trained heads or the backbone)."""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paxion.cache.loader import as_float32
from paxion.errors import CacheError, PaxionError
from paxion.trainer.models import KnowledgeFuser, KPPerceiver, KPTransformer, SideTuning

MODEL_KINDS = ("kp-perceiver", "kp-transformer", "paxion", "side-tuning")
MAX_LOGIT_SCALE = 100.0
BACKBONE_LOGIT_SCALE = 100.0


class PatchedModel(nn.Module):
    """A trainable head on cached backbone features: a Knowledge Patcher, optionally fused with the backbone.

    Args (keyword-only):
        kind: one of MODEL_KINDS ("paxion" = KP-Perceiver + Knowledge Fuser, "side-tuning" = KP-Perceiver +
            Side-Tuning).
        backbone: the cache manifest's backbone entry (token_dim, embed_dim, tokens_per_frame, temporal, ...).
        frames: frames per clip.
        options: keyword options of the patcher class (default None = its defaults).
    """

    def __init__(self, *, kind: str, backbone: dict, frames: int, options: dict | None = None) -> None:
        super().__init__()
        if kind not in MODEL_KINDS:
            raise PaxionError(f"unknown model kind {kind!r}; choose one of {', '.join(MODEL_KINDS)}")
        options = dict(options or {})
        self.kind = kind
        self.config = {"backbone": dict(backbone), "frames": frames, "options": options}
        self.temporal = bool(backbone["temporal"])
        dim = backbone["embed_dim"]
        patcher_class = KPTransformer if kind == "kp-transformer" else KPPerceiver
        self.kp = patcher_class(
            token_dim=backbone["token_dim"],
            dim=dim,
            frames=frames,
            tokens_per_frame=backbone["tokens_per_frame"],
            **options,
        )
        if kind == "paxion":
            self.fuser = KnowledgeFuser(dim=dim)
        elif kind == "side-tuning":
            self.fuser = SideTuning()
        else:
            self.fuser = None
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def patcher(self) -> KPPerceiver | KPTransformer:
        """The Knowledge Patcher part (copied by `--init` from a trained run)."""
        return self.kp

    @property
    def temperature_scale(self) -> Tensor:
        """The inverse temperature exp(logit_scale), clamped at 100."""
        return self.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    def video_fields(self, *, reverse: bool = False) -> tuple[str, ...]:
        """The cache fields encode_videos reads."""
        suffix = "_rev" if reverse and self.temporal else ""
        return (f"tokens{suffix}", f"pooled{suffix}") if self.fuser is not None else (f"tokens{suffix}",)

    def encode_videos(self, batch: dict[str, Tensor], *, reverse: bool = False) -> Tensor:
        """Clips of a batch (reversed in time when asked) as L2-normalised vectors [B, L, d]."""
        if not reverse:
            tokens, pooled = batch["tokens"], batch.get("pooled")
        elif self.temporal:
            tokens, pooled = batch["tokens_rev"], batch.get("pooled_rev")
        else:
            tokens, pooled = batch["tokens"].flip(1), batch.get("pooled")
        out = self.kp(tokens.float())
        if self.fuser is not None:
            out = self.fuser(pooled.float(), out)
        return F.normalize(out, dim=-1)

    def encode_texts(self, text_emb: Tensor) -> Tensor:
        """Backbone text embeddings [n, d] L2-normalised."""
        return F.normalize(text_emb.float(), dim=-1)


def build_model(kind: str, *, backbone: dict, frames: int, **options) -> PatchedModel:
    """A new model of `kind` for a cache's backbone; `options` go to the patcher class."""
    return PatchedModel(kind=kind, backbone=backbone, frames=frames, options=options)


def save_model(model: PatchedModel, path: str | Path) -> None:
    """Write kind, config and weights to `path`."""
    torch.save({"kind": model.kind, "config": model.config, "state_dict": model.state_dict()}, path)


def load_model(path: str | Path, *, map_location: str | torch.device = "cpu") -> PatchedModel:
    """A model written by save_model."""
    path = Path(path)
    if not path.is_file():
        raise PaxionError(f"{path}: no such model file")
    try:
        saved = torch.load(path, map_location=map_location, weights_only=True)
        model = PatchedModel(kind=saved["kind"], **saved["config"])
        model.load_state_dict(saved["state_dict"])
    except (RuntimeError, KeyError, TypeError, EOFError, pickle.UnpicklingError) as exc:
        raise PaxionError(f"{path}: not a paxion model file ({exc})") from exc
    return model.to(map_location)


class BackboneScorer:
    """The frozen backbone itself: its pooled video embedding and text embeddings.

    Args (keyword-only):
        temporal: whether the cache's backbone is temporal (reversed clips read `pooled_rev`).
    """

    logit_scale = BACKBONE_LOGIT_SCALE

    def __init__(self, *, temporal: bool) -> None:
        self.temporal = temporal

    def video_fields(self, *, reverse: bool = False) -> tuple[str, ...]:
        """The cache fields encode_videos reads."""
        return ("pooled_rev",) if reverse and self.temporal else ("pooled",)

    def encode_videos(self, batch: dict[str, Tensor], *, reverse: bool = False) -> Tensor:
        """Pooled video embeddings [B, 1, d] L2-normalised; a frame-wise backbone's reversed clip is the same."""
        return F.normalize(batch[self.video_fields(reverse=reverse)[0]].float(), dim=-1)[:, None]

    def encode_texts(self, text_emb: Tensor) -> Tensor:
        """Backbone text embeddings [n, d] L2-normalised."""
        return F.normalize(text_emb.float(), dim=-1)


class ModelScorer:
    """A trained PatchedModel used for scoring: eval mode, no gradients, logit_scale as a float.

    Args:
        model: the trained model (already on its device).
    """

    def __init__(self, model: PatchedModel) -> None:
        self.model = model.eval()
        self.kind = model.kind
        self.logit_scale = model.temperature_scale.item()

    def video_fields(self, *, reverse: bool = False) -> tuple[str, ...]:
        """The cache fields encode_videos reads."""
        return self.model.video_fields(reverse=reverse)

    @torch.no_grad()
    def encode_videos(self, batch: dict[str, Tensor], *, reverse: bool = False) -> Tensor:
        """Clips as L2-normalised vectors [B, L, d]."""
        return self.model.encode_videos(batch, reverse=reverse)

    @torch.no_grad()
    def encode_texts(self, text_emb: Tensor) -> Tensor:
        """Backbone text embeddings [n, d] L2-normalised."""
        return self.model.encode_texts(text_emb)


# What eval and retrieval score with: normalised video and text vectors and a float logit_scale.
Scorer = BackboneScorer | ModelScorer


def load_scorer(cache, run_dir: str | Path | None, *, device: str | torch.device = "cpu") -> Scorer:
    """The backbone scorer (run_dir None) or a run's trained model, checked against the cache's backbone."""
    if run_dir is None:
        return BackboneScorer(temporal=bool(cache.manifest["backbone"]["temporal"]))
    model = load_model(Path(run_dir) / "model.pt", map_location=device)
    trained_on = model.config["backbone"].get("config_hash")
    cache_hash = cache.manifest["backbone"]["config_hash"]
    if trained_on != cache_hash:
        raise CacheError(
            f"{run_dir} was trained on backbone features {trained_on}, but the cache holds {cache_hash}"
        )
    return ModelScorer(model)


def check_split(cache, split: str) -> int:
    """The number of clips of `split`; CacheError when the cache has no such split."""
    splits = cache.manifest["splits"]
    if split not in splits:
        raise CacheError(f"the cache has no split {split!r} (it has: {', '.join(splits) or 'none'})")
    return int(splits[split]["clips"])


def iter_batches(
    cache, split: str, fields: tuple[str, ...] | list[str], *, batch_size: int = 256, device="cpu"
) -> Iterator[dict[str, Tensor]]:
    """Batches of `fields` of a split in cache order, as tensors on `device` (float fields as float32), one shard
    read at a time."""
    if batch_size < 1:
        raise PaxionError(f"batch size must be at least 1, got {batch_size}")
    check_split(cache, split)
    for k in range(cache.num_shards(split)):
        shard = cache.read_shard(split, k, list(fields))
        n = len(shard[fields[0]])
        for start in range(0, n, batch_size):
            rows = slice(start, start + batch_size)
            yield as_float32({f: torch.from_numpy(np.ascontiguousarray(shard[f][rows])).to(device) for f in fields})


def encode_split(
    scorer: Scorer,
    cache,
    split: str,
    *,
    reverse: bool = False,
    batch_size: int = 256,
    device="cpu",
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Every clip of a split as normalised vectors [n, L, d] float32; progress(k) after each k clips."""
    chunks = []
    with torch.no_grad():
        fields = scorer.video_fields(reverse=reverse)
        for batch in iter_batches(cache, split, fields, batch_size=batch_size, device=device):
            chunks.append(scorer.encode_videos(batch, reverse=reverse).float().cpu().numpy())
            if progress is not None:
                progress(len(chunks[-1]))
    if not chunks:
        raise CacheError(f"split {split!r} of the cache holds no clips")
    return np.concatenate(chunks)


def similarity(videos: Tensor, texts: Tensor) -> Tensor:
    """Scores [B, M] of videos [B, L, d] against texts [M, d]: the maximum over L of the dot products."""
    return torch.einsum("bld,md->blm", videos, texts).amax(dim=1)


def pair_scores(videos: Tensor, texts: Tensor) -> Tensor:
    """Scores [B] of each video [B, L, d] against its own text [B, d]: the maximum over L of the dot products."""
    return (videos * texts[:, None]).sum(dim=-1).amax(dim=1)
