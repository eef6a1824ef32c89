"""Score a model and keep one prediction record per item: ActionBench (`paxion eval`) and the downstream tasks
(`paxion retrieve`). The records' format is `paxion.analysis.items`; summarised they give the aggregates back."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from paxion.analysis.items import actionbench_records, prediction_records, ranking_records
from paxion.errors import PaxionError
from paxion.retrieval.index import ExactIndex
from paxion.retrieval.metrics import dense_first_hits, ensemble_probabilities, first_hits
from paxion.retrieval.tasks import (
    RETRIEVAL_TASKS,
    TASKS,
    _clip_keys,
    _encode,
    check_dense_retrieval,
    choice_candidates,
    score_matrix,
)
from paxion.scoring import conditioned
from paxion.trainer.evaluate import actionbench


def actionbench_predictions(cache, scorer, split: str = "validation", *, clips: np.ndarray | None = None,
                            vr_set: str = "all", batch_size: int = 256, device="cpu",
                            progress: Callable[[int], None] | None = None) -> tuple[dict, list[dict]]:
    """(`paxion.trainer.evaluate.actionbench` result, its AA / VR / OR records) of a scorer on a cache split.

    With vr_set "aa" the VR records are those of clips with an AA caption, as the aggregate's.
    """
    result, arrays = actionbench(cache, scorer, split, clips=clips, vr_set=vr_set, batch_size=batch_size,
                                 device=device, progress=progress, records=True)
    records = actionbench_records(texts=cache.texts, **arrays)
    if vr_set == "aa":
        with_aa = {r["clip"] for r in records if r["task"] == "aa"}
        records = [r for r in records if r["task"] != "vr" or r["clip"] in with_aa]
    return result, records


def task_predictions(cache, scorer, task: str, *, split: str = "validation", classes: list[str] | None = None,
                     prompt: str | None = None, clips: np.ndarray | None = None, ensemble_with=None, depth: int = 10,
                     device="cpu", batch_size: int = 256) -> list[dict]:
    """Records of a downstream task (`paxion.retrieval.tasks.run_task`'s arguments; same clips and candidates).

    Retrieval tasks: one ranking record per query clip (video to text), its top `depth` texts (default 10) and the
    exact rank of its positive; the clip's class is its template. mc / zeroshot: one record per scored clip over
    all its candidates, ties shared (`ties="share"`); zeroshot's class is the clip's class name.
    ensemble_with: a second scorer for mc / zeroshot (probabilities added, as run_task). Raises PaxionError for an
    unknown task, an ensemble on a retrieval task, or a conditioned scorer's (X-CLIP's) dense retrieval scores over
    run_task's limit (`check_dense_retrieval`).
    """
    if task not in TASKS:
        raise PaxionError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    options = {"device": device, "batch_size": batch_size, "progress": None}
    ids = [str(i) for i in cache.read_split(split, ["id"])["id"]]
    if task in RETRIEVAL_TASKS:
        if ensemble_with is not None:
            raise PaxionError("prediction records of an ensemble are kept for mc and zeroshot only")
        keys = _clip_keys(cache, split, task, classes, clips)
        kept = np.flatnonzero(keys >= 0)
        text_ids = np.unique(keys[kept])
        if conditioned(scorer):  # texts conditioned on each clip: a dense score matrix, ranked as ExactIndex does
            check_dense_retrieval(task, len(kept), len(text_ids))
            scores = score_matrix(cache, scorer, split, text_ids, rows=keys >= 0, **options)
            top = np.argsort(-scores, axis=1, kind="stable")[:, :depth]
            top_scores = np.take_along_axis(scores, top, axis=1)
            ranks, ties = dense_first_hits(scores, keys[kept], text_ids)
        else:
            videos, texts = _encode(cache, scorer, split, text_ids, **options)
            index = ExactIndex(texts)
            top_scores, top = index.search(videos[kept], depth)
            ranks, ties = first_hits(index, videos[kept], keys[kept], text_ids, depth=len(text_ids))
        names = [cache.texts[int(t)] for t in text_ids]
        return ranking_records([ids[i] for i in kept], task, [[names[j] for j in row] for row in top], top_scores,
                               [cache.texts[int(k)] for k in keys[kept]], ranks, ties,
                               classes=[cache.texts[int(k)] for k in keys[kept]])
    cache, text_ids, answers, rows, names = choice_candidates(cache, split, task, classes=classes, prompt=prompt,
                                                              clips=clips, device=device)
    labels = ([[cache.texts[int(t)] for t in row] for row in text_ids] if text_ids.ndim == 2
              else [[cache.texts[int(t)] for t in text_ids]] * len(answers))
    kept = np.flatnonzero(rows)
    scored = [(score_matrix(cache, s, split, text_ids, rows=rows, **options), s.scale)
              for s in [scorer] + ([ensemble_with] if ensemble_with is not None else [])]
    scores = scored[0][0] if ensemble_with is None else ensemble_probabilities(*scored[0], *scored[1])
    return prediction_records([ids[i] for i in kept], task, [labels[i] for i in kept], scores, answers[kept],
                              classes=None if names is None else [names[answers[i]] for i in kept], ties="share")
