"""ActionBench evaluation: Action Antonym (AA), Video Reversal (VR) and Object Replacement (OR) accuracies."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from paxion.scoring import Scorer, check_split, iter_batches, pair_scores
from paxion.stats import wilson_interval

TASKS = ("aa", "vr", "or")
TIE_TOLERANCE = 1e-6


def pair_credit(positive: Tensor, negative: Tensor, *, tolerance: float = TIE_TOLERANCE) -> Tensor:
    """Per pair: 1 when the positive scores higher, 0.5 for a tie (|difference| <= tolerance), else 0."""
    diff = positive - negative
    return torch.where(diff.abs() <= tolerance, 0.5, (diff > 0).float())


def summarise(credit: np.ndarray) -> dict:
    """{"accuracy": percent, "n", "ci95": [lo, hi]} of per-pair credits; accuracy and ci95 None when n = 0."""
    n = len(credit)
    if n == 0:
        return {"accuracy": None, "n": 0, "ci95": None}
    correct = float(credit.sum())
    return {"accuracy": 100 * correct / n, "n": n, "ci95": wilson_interval(correct, n)}


def actionbench(
    cache,
    scorer: Scorer,
    split: str = "validation",
    *,
    batch_size: int = 256,
    device="cpu",
    progress: Callable[[int], None] | None = None,
) -> dict:
    """AA, VR and OR accuracy of a scorer on a cache split; progress(k) after each k clips.

    AA / OR: clips with an antonym / object-replaced caption, score(clip, caption) vs score(clip, negative).
    VR: every clip, score(clip, caption) vs score(reversed clip, caption). Ties count 0.5.
    """
    check_split(cache, split)
    texts = scorer.encode_text(torch.as_tensor(np.asarray(cache.text_emb)).to(device))
    video_fields = (*scorer.video_fields(), *scorer.video_fields(reverse=True))
    fields = tuple(dict.fromkeys((*video_fields, "caption_idx", "aa_idx", "or_idx")))
    credits = {task: [] for task in TASKS}
    with torch.no_grad():
        for batch in iter_batches(cache, split, fields, batch_size=batch_size, device=device):
            video = scorer.encode_video(batch)
            caption = texts[batch["caption_idx"].long()]
            own = pair_scores(video, caption)
            credits["vr"].append(pair_credit(own, pair_scores(scorer.encode_video(batch, reverse=True), caption)))
            for task in ("aa", "or"):
                negative_idx = batch[f"{task}_idx"].long()
                has = negative_idx >= 0
                negative = pair_scores(video[has], texts[negative_idx[has]])
                credits[task].append(pair_credit(own[has], negative))
            if progress is not None:
                progress(len(video))
    return {task: summarise(torch.cat(credits[task] or [torch.zeros(0)]).cpu().numpy()) for task in TASKS}
