"""Downstream tasks on any cache and scorer: video-text retrieval, temporal subset, multiple choice, zero-shot."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from paxion.errors import CacheError, PaxionError
from paxion.retrieval.index import RESCORE_ELEMENTS, ExactIndex, exact_scores
from paxion.retrieval.metrics import (
    choice_accuracy,
    dense_first_hit_ranks,
    ensemble_probabilities,
    rank_summary,
    retrieval_metrics,
    softmax,
)
from paxion.scoring import encode_split

RETRIEVAL_TASKS = ("label", "template", "temporal")
CHOICE_TASKS = ("mc", "zeroshot")
TASKS = RETRIEVAL_TASKS + CHOICE_TASKS

# The ensemble's dense score matrices hold at most this many entries each (float64: 512 MiB).
ENSEMBLE_MAX_SCORES = 1 << 26

# progress(stage, advance, total): `advance` more units of `total` done in the stage named `stage`.
Progress = Callable[[str, int, int], None]


def _stage(progress: Progress | None, name: str, total: int) -> Callable[[int], None] | None:
    return None if progress is None else (lambda advance: progress(name, advance, total))


def _read_fields(cache, split: str, task: str, fields: list[str]) -> dict[str, np.ndarray]:
    try:
        return cache.read_split(split, fields)
    except CacheError as exc:
        raise CacheError(f"task {task!r} needs the fields {', '.join(fields)}: {exc}") from None


def _encode_texts(cache, scorer, text_ids: np.ndarray, *, device, batch_size: int) -> np.ndarray:
    """Rows `text_ids` of the cache's text table as the scorer's normalised text vectors [n, d] float32."""
    out = []
    with torch.no_grad():
        for start in range(0, len(text_ids), batch_size):
            emb = torch.from_numpy(np.asarray(cache.text_emb[text_ids[start : start + batch_size]], np.float32))
            out.append(scorer.encode_text(emb.to(device)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, cache.text_emb.shape[1]), np.float32)


def _class_text_ids(cache, classes: list[str], what: str, *, hint: str = "") -> np.ndarray:
    """Indices in the cache's text table of class captions; PaxionError naming the first missing one."""
    lookup = {text: i for i, text in enumerate(cache.texts)}
    missing = [c for c in classes if c not in lookup]
    if missing:
        raise PaxionError(f"{what} {missing[0]!r} is not in the cache's text table ({len(missing)} missing){hint}")
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


def _clip_keys(cache, split: str, task: str, classes: list[str] | None, clips: np.ndarray | None) -> np.ndarray:
    """Per clip, the text-table index of its positive text for a retrieval task, -1 = left out."""
    field = "caption_idx" if task == "label" else "template_idx"
    keys = _read_fields(cache, split, task, [field])[field].astype(np.int64)
    if task == "temporal":
        wanted = _class_text_ids(cache, classes or _bench_classes(cache, "temporal_classes", task), "class")
        keys = np.where(np.isin(keys, wanted), keys, -1)
    if clips is not None:
        keys = np.where(clips, keys, -1)
    if not (keys >= 0).any():
        raise PaxionError(f"task {task!r}: no clip of split {split!r} has a {field.removesuffix('_idx')} in the set")
    return keys


def _encode(cache, scorer, split: str, text_ids: np.ndarray, *, device, batch_size: int, progress,
            stage_name: str) -> tuple[np.ndarray, np.ndarray]:
    """The split's clips [n, L, d] and the texts `text_ids` (any shape S) [*S, d] as the scorer's vectors."""
    stage = _stage(progress, stage_name, cache.num_clips(split))
    videos = encode_split(cache, scorer, split, batch_size=batch_size, device=device, progress=stage)
    flat, inverse = np.unique(text_ids, return_inverse=True)
    vectors = _encode_texts(cache, scorer, flat, device=device, batch_size=batch_size)
    return videos, vectors[inverse.reshape(-1)].reshape(*np.shape(text_ids), -1)


def _choice_scores(videos: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Scores [n, K] of clips [n, L, d] against their candidates [n, K, d], or [K, d] shared by all clips; computed
    a block of clips at a time so that the float64 products stay within RESCORE_ELEMENTS."""
    shared = candidates.ndim == 2
    n, per_clip = len(videos), candidates.shape[-2] * videos.shape[1] * videos.shape[2]
    rows = max(1, RESCORE_ELEMENTS // max(per_clip, 1))
    scores = np.empty((n, candidates.shape[-2]), dtype=np.float64)
    for start in range(0, n, rows):
        block = slice(start, start + rows)
        items = candidates[None, :, None] if shared else candidates[block][:, :, None]
        scores[block] = exact_scores(videos[block][:, None], items)
    return scores


def ensemble_retrieval(
    encoded: list[tuple[np.ndarray, np.ndarray, float]],
    video_keys: np.ndarray,
    text_keys: np.ndarray,
    *,
    ks: tuple[int, ...] = (1, 5, 10),
) -> dict[str, dict[str, float]]:
    """{"v2t": metrics, "t2v": metrics} ranked by the sum over models of softmax probabilities (paper App. A; the
    official code offers it on every retrieval task): over texts per video (v2t), over videos per text (t2v).

    encoded: per model (videos [n, L, d], texts [m, d], scale, the linear inverse temperature). Holds dense [n, m] score matrices: raises
    PaxionError above ENSEMBLE_MAX_SCORES entries (restrict the clips, e.g. with an id list).
    """
    n, m = len(video_keys), len(text_keys)
    if n * m > ENSEMBLE_MAX_SCORES:
        raise PaxionError(f"the ensemble scores {n} clips x {m} texts densely, over {ENSEMBLE_MAX_SCORES:,}: "
                          "restrict the clips (--ids)")
    scores = [(_choice_scores(videos, texts), scale) for videos, texts, scale in encoded]
    v2t = sum(softmax(s, scale) for s, scale in scores)
    t2v = sum(softmax(s.T, scale) for s, scale in scores)
    return {"v2t": rank_summary(dense_first_hit_ranks(v2t, video_keys, text_keys), ks),
            "t2v": rank_summary(dense_first_hit_ranks(t2v, text_keys, video_keys), ks)}


def zeroshot_candidates(cache, split: str, classes: list[str] | None) -> list[str]:
    """The class names zero-shot chooses among: `classes`, else the split's distinct class texts, sorted."""
    if classes:
        return list(dict.fromkeys(classes))
    class_idx = _read_fields(cache, split, "zeroshot", ["class_idx"])["class_idx"]
    names = sorted({cache.texts[i] for i in np.unique(class_idx) if i >= 0})
    if not names:
        raise PaxionError(f"task 'zeroshot': no clip of split {split!r} has a class (Ego4D and NExT-QA carry none)")
    return names


def prompted(names: list[str], prompt: str | None) -> list[str]:
    """Class names wrapped in a prompt whose "{}" stands for the name ("a video of {}"); None = the names."""
    if prompt is None:
        return list(names)
    if "{}" not in prompt:
        raise PaxionError(f"the prompt {prompt!r} has no {{}} for the class name")
    return [prompt.replace("{}", name) for name in names]


def zeroshot_texts(cache, split: str, classes: list[str] | None, prompt: str | None) -> list[str]:
    """The candidate texts zero-shot scores against (`prompted(zeroshot_candidates(...), prompt)`)."""
    return prompted(zeroshot_candidates(cache, split, classes), prompt)


def zeroshot_answers(cache, split: str, names: list[str]) -> np.ndarray:
    """Per clip of the split, the position in `names` of its class text (compared as text), -1 = not listed."""
    class_idx = _read_fields(cache, split, "zeroshot", ["class_idx"])["class_idx"]
    position = {name: k for k, name in enumerate(names)}
    distinct, inverse = np.unique(class_idx, return_inverse=True)
    table = np.array([position.get(cache.texts[i], -1) if i >= 0 else -1 for i in distinct], dtype=np.int64)
    return table[inverse.reshape(-1)]


def run_task(
    cache,
    scorer,
    task: str,
    *,
    split: str = "validation",
    ks: tuple[int, ...] = (1, 5, 10),
    classes: list[str] | None = None,
    prompt: str | None = None,
    clips: np.ndarray | None = None,
    ensemble_with=None,
    device: str | torch.device = "cpu",
    batch_size: int = 256,
    progress: Progress | None = None,
) -> dict:
    """Evaluate `scorer` on a downstream task of a cache split.

    task: "label" (captions), "template" (object-hidden templates), "temporal" (templates restricted to
        `classes`, default the cache's bench temporal_classes), "mc" (multiple choice: mc_idx, mc_answer) or
        "zeroshot" (classify into the class names `classes`, default the split's distinct class texts; a clip
        counts when its class text, compared by name, is one of them, and n says how many did).
    Retrieval tasks return {"v2t": {"r<k>": %, "medr", "n"}, "t2v": {...}}; their texts are the distinct captions
    (templates) of the split's clips, several clips per text allowed. mc and zeroshot return {"accuracy": %, "n",
    "ci95"}, predicting the highest-scoring candidate (m tied top candidates: 1/m credit if one is right).
    ks: recall cut-offs (default 1, 5, 10). prompt: zeroshot candidates are `prompted(classes, prompt)` (default
    None = the names); every one must be in the text table (`paxion.extract.texts.add_texts`). clips: bool mask [n]
    of the split's clips to score (default None = all; `paxion.retrieval.subsets.clip_mask`). ensemble_with: a
    second scorer (the backbone) whose softmax probabilities are added to the model's, on every task (default
    None). batch_size: clips encoded together (default 256). progress(stage, advance, total) reports long stages.
    """
    if task not in TASKS:
        raise PaxionError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if not ks or min(ks) < 1:
        raise PaxionError(f"recall cut-offs must be at least 1, got {list(ks)}")
    scorers = [(scorer, "encoding clips")] + ([(ensemble_with, "encoding clips (backbone)")] if ensemble_with else [])
    options = {"device": device, "batch_size": batch_size, "progress": progress}
    if task in RETRIEVAL_TASKS:
        keys = _clip_keys(cache, split, task, classes, clips)
        kept = keys >= 0
        text_ids = np.unique(keys[kept])
        encoded = [(*_encode(cache, s, split, text_ids, stage_name=name, **options), s.scale)
                   for s, name in scorers]
        if ensemble_with is not None:
            kept_encoded = [(videos[kept], texts, scale) for videos, texts, scale in encoded]
            return ensemble_retrieval(kept_encoded, keys[kept], text_ids, ks=tuple(ks))
        videos, texts, _ = encoded[0]
        return retrieval_both_ways(videos[kept], texts, keys[kept], text_ids, ks=tuple(ks), progress=progress,
                                   device=device)
    if task == "mc":
        fields = _read_fields(cache, split, task, ["mc_idx", "mc_answer"])
        text_ids, answers = fields["mc_idx"].astype(np.int64), fields["mc_answer"]
        kept = np.ones(len(answers), dtype=bool)
    else:
        names = zeroshot_candidates(cache, split, classes)
        text_ids = _class_text_ids(cache, prompted(names, prompt), "class text",
                                   hint="; `paxion cache add-texts CACHE FILE` encodes new ones")
        answers = zeroshot_answers(cache, split, names)
        kept = answers >= 0
    kept = kept if clips is None else kept & clips
    if not kept.any():
        raise PaxionError(f"task {task!r}: no clip of split {split!r} to score (none listed, or none of a listed class)")
    scored = []
    for s, name in scorers:
        videos, candidates = _encode(cache, s, split, text_ids, stage_name=name, **options)
        scored.append((_choice_scores(videos[kept], candidates[kept] if candidates.ndim == 3 else candidates),
                              s.scale))
    if ensemble_with is not None:
        (scores, scale), (other, other_scale) = scored
        return choice_accuracy(ensemble_probabilities(scores, scale, other, other_scale), answers[kept])
    return choice_accuracy(scored[0][0], answers[kept])
