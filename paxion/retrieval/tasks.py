"""Downstream tasks on any cache and scorer: video-text retrieval, temporal subset, multiple choice, zero-shot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from paxion.errors import CacheError, PaxionError
from paxion.retrieval.index import ExactIndex, exact_scores
from paxion.retrieval.metrics import choice_accuracy, ensemble_probabilities, retrieval_metrics
from paxion.trainer.scoring import encode_split

RETRIEVAL_TASKS = ("label", "template", "temporal")
CHOICE_TASKS = ("mc", "zeroshot")
TASKS = RETRIEVAL_TASKS + CHOICE_TASKS

# progress(stage, advance, total): `advance` more units of `total` done in the stage named `stage`.
Progress = Callable[[str, int, int], None]


def read_classes(path: str | Path) -> list[str]:
    """Class captions from a text file, one per line (blank lines skipped)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PaxionError(f"{path}: cannot read the class list ({exc})") from None
    classes = [line.strip() for line in lines if line.strip()]
    if not classes:
        raise PaxionError(f"{path}: the class list is empty")
    return classes


def _stage(progress: Progress | None, name: str, total: int) -> Callable[[int], None] | None:
    return None if progress is None else (lambda advance: progress(name, advance, total))


def _read_fields(cache, split: str, task: str, fields: list[str]) -> dict[str, np.ndarray]:
    try:
        return cache.read_split(split, fields)
    except CacheError as exc:
        raise CacheError(f"task {task!r} needs the fields {', '.join(fields)}: {exc}") from None


def _encode_texts(scorer, cache, text_ids: np.ndarray, *, device, batch_size: int) -> np.ndarray:
    """Rows `text_ids` of the cache's text table as the scorer's normalised text vectors [n, d] float32."""
    out = []
    with torch.no_grad():
        for start in range(0, len(text_ids), batch_size):
            emb = torch.from_numpy(np.asarray(cache.text_emb[text_ids[start : start + batch_size]], np.float32))
            out.append(scorer.encode_texts(emb.to(device)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, cache.text_emb.shape[1]), np.float32)


def _class_text_ids(cache, classes: list[str], what: str) -> np.ndarray:
    """Indices in the cache's text table of class captions; PaxionError naming the first missing one."""
    lookup = {text: i for i, text in enumerate(cache.texts)}
    missing = [c for c in classes if c not in lookup]
    if missing:
        raise PaxionError(f"{what} {missing[0]!r} is not in the cache's text table ({len(missing)} missing)")
    return np.array([lookup[c] for c in classes], dtype=np.int64)


def _bench_classes(cache, key: str, task: str) -> list[str]:
    classes = cache.manifest.get("bench", {}).get(key)
    if not classes:
        raise PaxionError(f"task {task!r} needs class names: the cache's bench metadata has no {key!r}")
    return list(classes)


def retrieval_both_ways(
    videos: np.ndarray,
    texts: np.ndarray,
    video_keys: np.ndarray,
    text_keys: np.ndarray,
    *,
    ks: tuple[int, ...] = (1, 5, 10),
    progress: Progress | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, dict[str, float]]:
    """{"v2t": metrics, "t2v": metrics} of videos [n, L, d] and texts [m, d]; a pair matches when keys are equal.
    FAISS searches on the GPU only when `device` is CUDA."""
    text_index = ExactIndex(texts, device=device)
    v2t = retrieval_metrics(
        text_index, videos, video_keys, text_keys, ks=ks, progress=_stage(progress, "video to text", len(videos))
    )
    video_index = ExactIndex(videos, device=device)
    t2v = retrieval_metrics(
        video_index, texts, text_keys, video_keys, ks=ks, progress=_stage(progress, "text to video", len(texts))
    )
    return {"v2t": v2t, "t2v": t2v}


def _clip_keys(cache, split: str, task: str, classes: list[str] | None) -> np.ndarray:
    """Per clip, the text-table index of its positive text for a retrieval task, -1 = left out."""
    field = "caption_idx" if task == "label" else "template_idx"
    keys = _read_fields(cache, split, task, [field])[field].astype(np.int64)
    if task == "temporal":
        wanted = _class_text_ids(cache, classes or _bench_classes(cache, "temporal_classes", task), "class")
        keys = np.where(np.isin(keys, wanted), keys, -1)
    if not (keys >= 0).any():
        raise PaxionError(f"task {task!r}: no clip of split {split!r} has a {field.removesuffix('_idx')} in the set")
    return keys


def _choice_scores(
    scorer, cache, split: str, text_ids: np.ndarray, *, device, batch_size: int, progress, stage_name: str
) -> np.ndarray:
    """Scores [n, K] of each clip against its candidate texts (text_ids [n, K], or [K] shared by all clips)."""
    stage = _stage(progress, stage_name, cache.num_clips(split))
    videos = encode_split(scorer, cache, split, batch_size=batch_size, device=device, progress=stage)
    flat = np.unique(text_ids, return_inverse=True)
    vectors = _encode_texts(scorer, cache, flat[0], device=device, batch_size=batch_size)[flat[1]]
    candidates = vectors.reshape(*text_ids.shape, -1)
    if text_ids.ndim == 1:
        return exact_scores(videos[:, None], candidates[None, :, None])
    return exact_scores(videos[:, None], candidates[:, :, None])


def run_task(
    cache,
    scorer,
    task: str,
    *,
    split: str = "validation",
    ks: tuple[int, ...] = (1, 5, 10),
    classes: list[str] | None = None,
    ensemble_with=None,
    device: str | torch.device = "cpu",
    batch_size: int = 256,
    progress: Progress | None = None,
) -> dict:
    """Evaluate `scorer` on a downstream task of a cache split.

    task: "label" (captions), "template" (object-hidden templates), "temporal" (templates restricted to
        `classes`, default the cache's bench temporal_classes), "mc" (multiple choice: mc_idx, mc_answer) or
        "zeroshot" (classify into `classes`, default the bench classes, in label order; accuracy against `label`).
    Retrieval tasks return {"v2t": {"r<k>": %, "medr", "n"}, "t2v": {...}}; their texts are the distinct captions
    (templates) of the split's clips, several clips per text allowed. mc and zeroshot return {"accuracy": %, "n",
    "ci95"}, predicting the highest-scoring candidate (m tied top candidates: 1/m credit if one is right).
    ks: recall cut-offs (default 1, 5, 10). ensemble_with: a second scorer (the backbone) whose softmax
    probabilities are added to the model's (mc and zeroshot only; default None). batch_size: clips encoded
    together (default 256). progress(stage, advance, total) reports long stages.
    """
    if task not in TASKS:
        raise PaxionError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if not ks or min(ks) < 1:
        raise PaxionError(f"recall cut-offs must be at least 1, got {list(ks)}")
    if ensemble_with is not None and task not in CHOICE_TASKS:
        raise PaxionError(f"the backbone ensemble applies to {' and '.join(CHOICE_TASKS)}, not to {task!r}")
    if task in RETRIEVAL_TASKS:
        keys = _clip_keys(cache, split, task, classes)
        stage = _stage(progress, "encoding clips", cache.num_clips(split))
        videos = encode_split(scorer, cache, split, batch_size=batch_size, device=device, progress=stage)
        kept = keys >= 0
        text_ids = np.unique(keys[kept])
        texts = _encode_texts(scorer, cache, text_ids, device=device, batch_size=batch_size)
        return retrieval_both_ways(videos[kept], texts, keys[kept], text_ids, ks=tuple(ks), progress=progress,
                                   device=device)
    if task == "mc":
        fields = _read_fields(cache, split, task, ["mc_idx", "mc_answer"])
        text_ids, answers, kept = fields["mc_idx"].astype(np.int64), fields["mc_answer"], slice(None)
    else:
        text_ids = _class_text_ids(cache, classes or _bench_classes(cache, "classes", task), "class")
        answers = _read_fields(cache, split, task, ["label"])["label"]
        kept = answers >= 0
        if not kept.any():
            raise PaxionError(f"task 'zeroshot': no clip of split {split!r} has a class label")
    options = {"device": device, "batch_size": batch_size, "progress": progress}
    scores = _choice_scores(scorer, cache, split, text_ids, stage_name="encoding clips", **options)
    if ensemble_with is not None:
        other = _choice_scores(ensemble_with, cache, split, text_ids, stage_name="encoding clips (backbone)", **options)
        scores = ensemble_probabilities(scores, scorer.logit_scale, other, ensemble_with.logit_scale)
    return choice_accuracy(scores[kept], answers[kept])
