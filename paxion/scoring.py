"""Scoring: turn cached clips and texts into normalised joint-space vectors (trained heads or the backbone)."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from paxion.cache.quant import as_float32
from paxion.errors import CacheError, PaxionError
from paxion.models.patched import PatchedModel, load_model
from paxion.models.prompt import load_prompt_generator

# The frozen backbone's inverse temperature for softmax ensembles (CLIP's trained value, at its clamp).
BACKBONE_SCALE = 100.0


class Scorer(Protocol):
    """What evaluation and retrieval score with: normalised video and text vectors and a linear inverse temperature.

    `scale` multiplies similarities into softmax logits (the backbone ensemble, DESIGN.md §5). A scorer whose
    text vectors depend on the clip they are scored with (X-CLIP's prompts) also sets `conditioned = True` and has
    `condition`; its scores come from `clip_scores`, never from text vectors alone (so no FAISS index over them).
    """

    scale: float

    def video_fields(self, *, reverse: bool = False) -> tuple[str, ...]:
        """The cache fields encode_video reads."""
        ...

    def encode_video(self, batch: dict[str, Tensor], *, reverse: bool = False) -> Tensor:
        """Clips of a batch as L2-normalised vectors [B, L, d]."""
        ...

    def encode_text(self, text_emb: Tensor) -> Tensor:
        """Backbone text embeddings [n, d] as L2-normalised vectors [n, d] (raw for a conditioned scorer)."""
        ...


def conditioned(scorer: Scorer) -> bool:
    """Whether a scorer's text vectors depend on the clip (its `conditioned` attribute; default False)."""
    return bool(getattr(scorer, "conditioned", False))


class BackboneScorer:
    """The frozen backbone itself: its pooled video embedding and text embeddings, compared by cosine.

    Args (keyword-only):
        temporal: whether the cache's backbone is temporal (reversed clips read `pooled_rev`).
        scale: the backbone's inverse temperature (the manifest's `logit_scale`; default CLIP's). SigLIP's sigmoid
            score is increasing in the cosine, so cosine rankings are its rankings.
    """

    def __init__(self, *, temporal: bool, scale: float = BACKBONE_SCALE) -> None:
        self.temporal = temporal
        self.scale = scale

    def video_fields(self, *, reverse: bool = False) -> tuple[str, ...]:
        """The cache fields encode_video reads."""
        return ("pooled_rev",) if reverse and self.temporal else ("pooled",)

    def encode_video(self, batch: dict[str, Tensor], *, reverse: bool = False) -> Tensor:
        """Pooled video embeddings [B, 1, d] L2-normalised; a frame-wise backbone's reversed clip is the same."""
        return F.normalize(batch[self.video_fields(reverse=reverse)[0]].float(), dim=-1)[:, None]

    def encode_text(self, text_emb: Tensor) -> Tensor:
        """Backbone text embeddings [n, d] L2-normalised."""
        return F.normalize(text_emb.float(), dim=-1)


class PromptScorer(BackboneScorer):
    """X-CLIP scored as X-CLIP: each text conditioned on the clip by its prompt generator, compared with the pooled
    video embedding (`XCLIPModel.forward`'s logits_per_video = scale * these scores).

    Args:
        generator: the prompt generator (`paxion.models.prompt.load_prompt_generator`), on the scoring device.
        temporal, scale: as BackboneScorer. The clip's context is the cache field `score_context` (for the
            reversed clip of a temporal backbone `score_context_rev`, which the reader shares when not stored).
    """

    conditioned = True

    def __init__(self, generator: torch.nn.Module, *, temporal: bool, scale: float = BACKBONE_SCALE) -> None:
        super().__init__(temporal=temporal, scale=scale)
        self.generator = generator

    def video_fields(self, *, reverse: bool = False) -> tuple[str, ...]:
        """The pooled embedding and the prompt generator's visual context."""
        return (*super().video_fields(reverse=reverse), "score_context_rev" if reverse and self.temporal else
                "score_context")

    def encode_text(self, text_emb: Tensor) -> Tensor:
        """The raw text embeddings [n, d] as float: the prompt generator reads them unnormalised."""
        return text_emb.float()

    @torch.no_grad()
    def condition(self, texts: Tensor, batch: dict[str, Tensor], *, reverse: bool = False) -> Tensor:
        """encode_text's vectors [B, K, d], row b conditioned on clip b of the batch (its context [P, d]) and
        L2-normalised: [B, K, d]."""
        return self.generator(texts, batch[self.video_fields(reverse=reverse)[-1]].float())


class ModelScorer:
    """A trained PatchedModel used for scoring: eval mode, no gradients, its inverse temperature as a float.

    Args:
        model: the trained model (already on its device).
    """

    def __init__(self, model: PatchedModel) -> None:
        self.model = model.eval()
        self.kind = model.kind
        self.scale = model.scale.item()

    def video_fields(self, *, reverse: bool = False) -> tuple[str, ...]:
        """The cache fields encode_video reads."""
        return self.model.video_fields(reverse=reverse)

    @torch.no_grad()
    def encode_video(self, batch: dict[str, Tensor], *, reverse: bool = False) -> Tensor:
        """Clips as L2-normalised vectors [B, L, d]."""
        return self.model.encode_video(batch, reverse=reverse)

    @torch.no_grad()
    def encode_text(self, text_emb: Tensor) -> Tensor:
        """Backbone text embeddings [n, d] L2-normalised."""
        return self.model.encode_text(text_emb)


def load_scorer(cache, run_dir: str | Path | None, *, device: str | torch.device = "cpu") -> Scorer:
    """The backbone scorer (run_dir None) or a run's trained model, checked against the cache's backbone."""
    if run_dir is None:
        record = cache.manifest["backbone"]
        options = {"temporal": bool(record["temporal"]), "scale": record.get("logit_scale", BACKBONE_SCALE)}
        if not record.get("score_context"):
            return BackboneScorer(**options)
        path = cache.extra_file("scorer")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, pickle.UnpicklingError) as exc:
            raise CacheError(f"{path}: unreadable scorer file ({str(exc).splitlines()[0]})") from None
        kind = state.get("kind") if isinstance(state, dict) else type(state).__name__
        if kind != "xclip-prompt":
            raise CacheError(f"{path}: not a scorer this paxion knows (kind {kind!r})")
        return PromptScorer(load_prompt_generator(state, device=device), **options)
    model, _ = load_model(Path(run_dir) / "model.pt", map_location=device)
    trained_on = model.backbone.get("config_hash")
    cache_hash = cache.manifest["backbone"]["config_hash"]
    if trained_on != cache_hash:
        raise CacheError(
            f"{run_dir} was trained on backbone features {trained_on}, but the cache holds {cache_hash}"
        )
    if model.frames != cache.manifest["frames"]:
        raise CacheError(f"{run_dir} was trained on {model.frames} frames per clip, but the cache holds "
                         f"{cache.manifest['frames']}; extract it with --frames {model.frames}")
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
    read at a time; int8 tokens travel as stored and are dequantised on `device`."""
    if batch_size < 1:
        raise PaxionError(f"batch size must be at least 1, got {batch_size}")
    check_split(cache, split)
    for k in range(cache.num_shards(split)):
        shard = cache.read_shard(split, k, list(fields))
        n = len(shard[fields[0]])
        for start in range(0, n, batch_size):
            rows = slice(start, start + batch_size)
            yield as_float32({f: torch.from_numpy(np.ascontiguousarray(a[rows])).to(device) for f, a in shard.items()})


def encode_split(
    cache,
    scorer: Scorer,
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
            chunks.append(scorer.encode_video(batch, reverse=reverse).float().cpu().numpy())
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


# (clip, text) pairs a conditioned scorer conditions at once (its MLP holds 4 d floats per pair).
PAIR_BLOCK = 4096


def clip_scores(scorer: Scorer, batch: dict[str, Tensor], videos: Tensor, texts: Tensor, *,
                reverse: bool = False) -> Tensor:
    """Scores [B, K] of the batch's clips (videos = scorer.encode_video(batch, reverse=reverse) [B, L, d]) against
    encode_text's vectors shared by all clips [K, d] or per clip [B, K, d]: the maximum over L of the dot products
    with the texts as the scorer compares them with each clip (a conditioned scorer's `condition`, given at most
    PAIR_BLOCK pairs at a time: a block of clips with all their texts, or one clip with a block of texts)."""
    if not conditioned(scorer):
        if texts.ndim == 2:
            return similarity(videos, texts)
        return (videos[:, :, None] * texts[:, None]).sum(dim=-1).amax(dim=1)
    b, k = len(videos), texts.shape[-2]
    texts = texts.expand(b, k, texts.shape[-1])
    rows = max(1, PAIR_BLOCK // max(k, 1))
    step = k if rows > 1 else PAIR_BLOCK
    out = videos.new_empty(b, k)
    for i in range(0, b, rows):
        part = {name: value[i : i + rows] for name, value in batch.items()}
        for j in range(0, k, step):
            vectors = scorer.condition(texts[i : i + rows, j : j + step], part, reverse=reverse)
            out[i : i + rows, j : j + step] = torch.einsum("bld,bkd->blk", videos[i : i + rows], vectors).amax(dim=1)
    return out
