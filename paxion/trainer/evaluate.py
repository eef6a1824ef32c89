"""ActionBench evaluation: Action Antonym (AA), Video Reversal (VR) and Object Replacement (OR) accuracies."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from paxion.errors import PaxionError
from paxion.scoring import Scorer, check_split, clip_scores, iter_batches
from paxion.stats import TIE_TOLERANCE, wilson_interval

TASKS = ("aa", "vr", "or")
VR_SETS = ("all", "aa")  # Video Reversal on every clip, or on the clips with an AA caption (the paper's set)


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
    clips: np.ndarray | None = None,
    vr_set: str = "all",
    batch_size: int = 256,
    device="cpu",
    progress: Callable[[int], None] | None = None,
    records: bool = False,
) -> dict | tuple[dict, dict]:
    """AA, VR and OR accuracy of a scorer on a cache split; progress(k) after each k clips.

    AA / OR: clips with an antonym / object-replaced caption, score(clip, caption) vs score(clip, negative).
    VR: score(clip, caption) vs score(reversed clip, caption) on every clip (vr_set "all", the default) or on
    the clips with an AA caption (vr_set "aa", the paper's set); the result's "vr" names it as "set".
    Ties count 0.5. clips: bool mask [n] of the split's clips to score (default None = all). AA / OR pairs whose
    negative embeds like the caption (the cache's `aa_same` / `or_same`: the text encoder cut both to the same
    tokens) are left out, not scored as ties; the task's "left_out" counts them.
    records: also return the per-clip arrays of the scored clips (default False), as the keyword arguments of
    `paxion.analysis.items.actionbench_records` less `texts`: ids, caption_idx, template_idx, negative_idx
    {"aa", "or"}, own, reversed_own, negative_scores {"aa", "or"} (NaN where the clip has no scored negative).
    """
    if vr_set not in VR_SETS:
        raise PaxionError(f"unknown VR clip set {vr_set!r}; choose one of {', '.join(VR_SETS)}")
    chosen = np.ones(check_split(cache, split), dtype=bool) if clips is None else np.asarray(clips, dtype=bool)
    start = 0
    texts = scorer.encode_text(torch.as_tensor(np.asarray(cache.text_emb)).to(device))
    video_fields = (*scorer.video_fields(), *scorer.video_fields(reverse=True))
    fields = tuple(dict.fromkeys((*video_fields, "caption_idx", "aa_idx", "or_idx", "aa_same", "or_same")))
    credits = {task: [] for task in TASKS}
    left_out = {"aa": 0, "or": 0}
    arrays = {key: [] for key in ("caption_idx", "aa_idx", "or_idx", "own", "reversed_own", "aa", "or")}
    with torch.no_grad():
        for batch in iter_batches(cache, split, fields, batch_size=batch_size, device=device):
            video = scorer.encode_video(batch)
            keep = torch.from_numpy(chosen[start : start + len(video)]).to(video.device)
            start += len(video)
            # caption, AA and OR negative of each clip scored together (a conditioned scorer reads the clip once)
            ids = torch.stack([batch[name].long().clamp(min=0) for name in ("caption_idx", "aa_idx", "or_idx")], 1)
            scores = clip_scores(scorer, batch, video, texts[ids])
            own = scores[:, 0]
            reversed_video = scorer.encode_video(batch, reverse=True)
            reversed_own = clip_scores(scorer, batch, reversed_video, texts[ids[:, :1]], reverse=True)[:, 0]
            reversal = pair_credit(own, reversed_own)
            credits["vr"].append(reversal[keep & (batch["aa_idx"] >= 0) if vr_set == "aa" else keep])
            for column, task in enumerate(("aa", "or"), start=1):
                negative_idx = batch[f"{task}_idx"].long()
                has = (negative_idx >= 0) & keep
                same = has & batch[f"{task}_same"].bool()
                left_out[task] += int(same.sum())
                has &= ~same
                negative = scores[has, column]
                credits[task].append(pair_credit(own[has], negative))
                if records:
                    full = torch.full_like(own, float("nan"))
                    full[has] = negative
                    arrays[task].append(full[keep])
            if records:
                for key, value in (("caption_idx", batch["caption_idx"]), ("aa_idx", batch["aa_idx"]),
                                   ("or_idx", batch["or_idx"]), ("own", own), ("reversed_own", reversed_own)):
                    arrays[key].append(value[keep])
            if progress is not None:
                progress(len(video))
    result = {task: summarise(torch.cat(credits[task] or [torch.zeros(0)]).cpu().numpy()) for task in TASKS}
    result["vr"]["set"] = vr_set
    for task, n in left_out.items():
        result[task]["left_out"] = n
    if not records:
        return result
    per_clip = {key: torch.cat(parts).cpu().numpy() for key, parts in arrays.items()}
    meta = cache.read_split(split, ["id", "template_idx"])
    return result, {
        "ids": [str(i) for i in np.asarray(meta["id"])[chosen]],
        "caption_idx": per_clip["caption_idx"],
        "template_idx": np.asarray(meta["template_idx"])[chosen],
        "negative_idx": {"aa": per_clip["aa_idx"], "or": per_clip["or_idx"]},
        "own": per_clip["own"],
        "reversed_own": per_clip["reversed_own"],
        "negative_scores": {"aa": per_clip["aa"], "or": per_clip["or"]},
    }
