"""Downstream tasks on any cache and scorer: video-text retrieval, temporal subset, multiple choice, zero-shot."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from paxion.errors import CacheError, PaxionError
from paxion.retrieval.index import RESCORE_ELEMENTS, ExactIndex, exact_scores
from paxion.retrieval.metrics import (
    choice_accuracy,
    dense_first_hits,
    ensemble_probabilities,
    rank_summary,
    retrieval_metrics,
    softmax,
)
from paxion.scoring import clip_scores, conditioned, encode_split, iter_batches
from paxion.stats import TIE_TOLERANCE

RETRIEVAL_TASKS = ("label", "template", "temporal")
CHOICE_TASKS = ("mc", "zeroshot")
TASKS = RETRIEVAL_TASKS + CHOICE_TASKS

# Dense retrieval score matrices (a backbone ensemble's, a conditioned scorer's) hold at most this many entries
# each (float64: 512 MiB); `check_dense_retrieval` refuses more.
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


def _encode(cache, scorer, split: str, text_ids: np.ndarray, *, device, batch_size: int,
            progress: Callable[[int], None] | None) -> tuple[np.ndarray, np.ndarray]:
    """The split's clips [n, L, d] and the texts `text_ids` (any shape S) [*S, d] as the scorer's vectors;
    progress(k) after each k clips."""
    videos = encode_split(cache, scorer, split, batch_size=batch_size, device=device, progress=progress)
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


def _conditioned_scores(cache, scorer, split: str, text_ids: np.ndarray, rows: np.ndarray | None, *, device,
                        batch_size: int, progress) -> np.ndarray:
    """Scores [n, m] (text_ids [m], shared) or [n, K] (text_ids [n, K], per clip) of a conditioned scorer, a batch
    of clips at a time (`paxion.scoring.clip_scores`); rows: bool mask [n] of the clips to score (None = all)."""
    emb, start, out = np.asarray(cache.text_emb, np.float32), 0, []
    shared = text_ids.ndim == 1
    with torch.no_grad():
        texts = scorer.encode_text(torch.from_numpy(emb[text_ids]).to(device)) if shared else None
        for batch in iter_batches(cache, split, scorer.video_fields(), batch_size=batch_size, device=device):
            n = len(next(iter(batch.values())))
            keep = np.ones(n, dtype=bool) if rows is None else np.asarray(rows[start : start + n], dtype=bool)
            if keep.any():
                mask = torch.from_numpy(keep).to(device)
                batch = {name: value[mask] for name, value in batch.items()}
                own = texts if shared else scorer.encode_text(
                    torch.from_numpy(emb[text_ids[start : start + n][keep]]).to(device))
                out.append(clip_scores(scorer, batch, scorer.encode_video(batch), own).double().cpu().numpy())
            start += n
            if progress is not None:
                progress(n)
    return np.concatenate(out) if out else np.zeros((0, text_ids.shape[-1]))


def score_matrix(cache, scorer, split: str, text_ids: np.ndarray, *, rows: np.ndarray | None = None, device="cpu",
                 batch_size: int = 256, progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Dense float64 scores of the split's clips (rows: bool mask [n], default None = all) against texts of the
    cache's text table: text_ids [m] shared by every clip -> [rows, m], or [n, K] per clip -> [rows, K].

    A plain scorer's vectors are compared exactly in float64 (`_choice_scores`); a conditioned one (X-CLIP's
    backbone) conditions every (clip, text) pair, costing one prompt-generator pass per pair.
    """
    text_ids = np.asarray(text_ids, dtype=np.int64)
    if conditioned(scorer):
        return _conditioned_scores(cache, scorer, split, text_ids, rows, device=device, batch_size=batch_size,
                                   progress=progress)
    videos, candidates = _encode(cache, scorer, split, text_ids, device=device, batch_size=batch_size,
                                 progress=progress)
    rows = slice(None) if rows is None else rows
    return _choice_scores(videos[rows], candidates[rows] if candidates.ndim == 3 else candidates)


def check_dense_retrieval(task: str, clips: int, texts: int) -> None:
    """Refuse a retrieval task's dense score matrix (a backbone ensemble, or X-CLIP's clip-conditioned texts) of
    `clips` x `texts` entries over ENSEMBLE_MAX_SCORES: PaxionError saying to restrict the clips (--ids)."""
    if clips * texts > ENSEMBLE_MAX_SCORES:
        raise PaxionError(f"task {task!r} scores {clips} clips x {texts} texts densely (a backbone ensemble, or "
                          f"X-CLIP's clip-conditioned texts), over {ENSEMBLE_MAX_SCORES:,}: restrict the clips (--ids)")


def dense_retrieval(
    scored: list[tuple[np.ndarray, float]],
    video_keys: np.ndarray,
    text_keys: np.ndarray,
    *,
    ks: tuple[int, ...] = (1, 5, 10),
) -> dict[str, dict[str, float]]:
    """{"v2t": metrics, "t2v": metrics} from dense score matrices [n, m], one per model with its scale (the linear
    inverse temperature). One model: ranked by its scores. Several (the backbone ensemble, paper App. A; the
    official code offers it on every retrieval task): by the sum over models of softmax probabilities, over texts
    per video (v2t) and over videos per text (t2v).
    """
    if len(scored) == 1:  # one model: its own scores, ties within the project's tolerance
        v2t, t2v, tolerance = scored[0][0], scored[0][0].T, TIE_TOLERANCE
    else:  # ties are equal probabilities: an absolute tolerance would join the many near-zero ones
        v2t = sum(softmax(s, scale) for s, scale in scored)
        t2v = sum(softmax(s.T, scale) for s, scale in scored)
        tolerance = 0.0
    return {"v2t": rank_summary(*dense_first_hits(v2t, video_keys, text_keys, tolerance=tolerance), ks),
            "t2v": rank_summary(*dense_first_hits(t2v, text_keys, video_keys, tolerance=tolerance), ks)}


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


def zeroshot_cache(cache, *, split: str = "validation", classes: list[str] | None = None, prompt: str | None = None,
                   device: str | torch.device = "cpu", backbone=None) -> tuple[object, list[str]]:
    """(cache, added): the cache with every zero-shot candidate text (`zeroshot_texts`) in its text table, and the
    texts this call encoded into it with the cache's backbone (`paxion.extract.texts.add_texts`; backbone: the loaded
    Backbone to use, default None = load the manifest's spec on `device`). The cache itself when none was missing,
    else reopened from disk (same verify). Raises PaxionError (one line, saying to run `paxion cache add-texts`
    where the backbone can be loaded) when texts are missing and the backbone cannot be loaded.
    """
    from paxion.cache.reader import Cache
    from paxion.extract.texts import add_texts

    texts, known = zeroshot_texts(cache, split, classes, prompt), set(cache.texts)
    if all(text in known for text in texts):
        return cache, []
    added = add_texts(cache.root, texts, backbone=backbone, device=device)
    return Cache(cache.root, verify=cache.verify), added


def choice_candidates(cache, split: str, task: str, *, classes: list[str] | None = None, prompt: str | None = None,
                      clips: np.ndarray | None = None, device: str | torch.device = "cpu"):
    """(cache, text_ids, answers, kept, names) of a choice task ("mc" or "zeroshot") on a split: the candidates'
    rows in the text table (mc: per clip [n, K]; zeroshot: shared [m], class texts the table lacks encoded first,
    so the cache may be reopened), each clip's right candidate int64 [n], the bool mask [n] of the clips to score
    (listed in `clips`; zeroshot: of a class in `classes`) and the zeroshot class names (None for mc).
    Raises PaxionError when no clip is left to score."""
    names = None
    if task == "mc":
        fields = _read_fields(cache, split, task, ["mc_idx", "mc_answer"])
        text_ids, answers = fields["mc_idx"].astype(np.int64), np.asarray(fields["mc_answer"], np.int64)
        kept = np.ones(len(answers), dtype=bool)
    else:
        cache, _ = zeroshot_cache(cache, split=split, classes=classes, prompt=prompt, device=device)
        names = zeroshot_candidates(cache, split, classes)
        text_ids = _class_text_ids(cache, prompted(names, prompt), "class text")
        answers = zeroshot_answers(cache, split, names)
        kept = answers >= 0
    kept = kept if clips is None else kept & clips
    if not kept.any():
        raise PaxionError(f"task {task!r}: no clip of split {split!r} to score (none listed, or none of a listed class)")
    return cache, text_ids, answers, kept, names


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
    None = the names); those not in the text table are encoded into it first (`zeroshot_cache`). clips: bool mask [n]
    of the split's clips to score (default None = all; `paxion.retrieval.subsets.clip_mask`). ensemble_with: a
    second scorer (the backbone) whose softmax probabilities are added to the model's, on every task (default
    None). batch_size: clips encoded together (default 256). progress(stage, advance, total) reports long stages.
    """
    if task not in TASKS:
        raise PaxionError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if not ks or min(ks) < 1:
        raise PaxionError(f"recall cut-offs must be at least 1, got {list(ks)}")
    scorers = [(scorer, "encoding clips")] + ([(ensemble_with, "encoding clips (backbone)")] if ensemble_with else [])
    if task in RETRIEVAL_TASKS:
        keys = _clip_keys(cache, split, task, classes, clips)
        kept = keys >= 0
        text_ids = np.unique(keys[kept])
        if ensemble_with is None and not conditioned(scorer):
            videos, texts = _encode(cache, scorer, split, text_ids, device=device, batch_size=batch_size,
                                    progress=_stage(progress, "encoding clips", cache.num_clips(split)))
            return retrieval_both_ways(videos[kept], texts, keys[kept], text_ids, ks=tuple(ks), progress=progress,
                                       device=device)
        check_dense_retrieval(task, int(kept.sum()), len(text_ids))  # an ensemble, or clip-conditioned texts
        scored = [(score_matrix(cache, s, split, text_ids, rows=kept, device=device, batch_size=batch_size,
                                progress=_stage(progress, name, cache.num_clips(split))), s.scale)
                  for s, name in scorers]
        return dense_retrieval(scored, keys[kept], text_ids, ks=tuple(ks))
    cache, text_ids, answers, kept, _ = choice_candidates(cache, split, task, classes=classes, prompt=prompt,
                                                          clips=clips, device=device)
    scored = [(score_matrix(cache, s, split, text_ids, rows=kept, device=device, batch_size=batch_size,
                            progress=_stage(progress, name, cache.num_clips(split))), s.scale) for s, name in scorers]
    if ensemble_with is not None:
        (scores, scale), (other, other_scale) = scored
        return choice_accuracy(ensemble_probabilities(scores, scale, other, other_scale), answers[kept])
    return choice_accuracy(scored[0][0], answers[kept])
