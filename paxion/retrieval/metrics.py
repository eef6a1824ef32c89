"""Retrieval metrics from exact search: recall at k and median rank of the first correct item."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from paxion.retrieval.index import BLOCK_SCORES, ExactIndex
from paxion.stats import TIE_TOLERANCE, wilson_interval


def first_hit_ranks(
    index: ExactIndex,
    queries: np.ndarray,
    query_keys: np.ndarray,
    item_keys: np.ndarray,
    *,
    depth: int,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """1-based rank of each query's first positive (an item whose key equals the query's key) in the top `depth`.

    Ranks follow ExactIndex's order (equal scores by ascending item id); inf where no positive is in the top depth.
    Queries go in chunks small enough that their top-depth lists stay within BLOCK_SCORES entries.
    """
    ranks = np.empty(len(queries), dtype=np.float64)
    chunk = max(1, BLOCK_SCORES // depth)
    for start in range(0, len(queries), chunk):
        rows = slice(start, start + chunk)
        _, ids = index.search(queries[rows], depth, progress=progress)
        hits = np.asarray(item_keys)[ids] == np.asarray(query_keys)[rows, None]
        ranks[rows] = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1.0, np.inf)
    return ranks


def retrieval_metrics(
    index: ExactIndex,
    queries: np.ndarray,
    query_keys: np.ndarray,
    item_keys: np.ndarray,
    *,
    ks: tuple[int, ...] = (1, 5, 10),
    progress: Callable[[int], None] | None = None,
) -> dict[str, float]:
    """{"r1": .., "r5": .., "medr": .., "n": ..}: recall in percent at each k, median rank, number of queries.

    The search first goes max(ks) deep; queries whose first positive lies deeper are searched again, four times
    deeper each round, until the median rank is known (all items at worst), never as one dense score matrix.
    progress(j) after each j queries of the first round.
    """
    if len(queries) == 0:
        raise ValueError("no queries to evaluate")
    depth = min(max(ks), index.n)
    ranks = first_hit_ranks(index, queries, query_keys, item_keys, depth=depth, progress=progress)
    while not np.isfinite(np.median(ranks)) and depth < index.n:
        depth = min(index.n, depth * 4)
        deeper = np.flatnonzero(~np.isfinite(ranks))
        ranks[deeper] = first_hit_ranks(index, queries[deeper], query_keys[deeper], item_keys, depth=depth)
    return rank_summary(ranks, ks)


def dense_first_hit_ranks(scores: np.ndarray, query_keys: np.ndarray, item_keys: np.ndarray) -> np.ndarray:
    """1-based rank of each query's first positive in a full score matrix [queries, items], in ExactIndex's order
    (descending score, equal scores by ascending item id); inf where a query has no positive."""
    positive = np.asarray(item_keys)[None, :] == np.asarray(query_keys)[:, None]
    best = np.where(positive, scores, -np.inf).max(axis=1, keepdims=True)
    first = np.argmax(positive & (scores == best), axis=1)[:, None]  # the lowest id among the best positives
    ids = np.arange(scores.shape[1])[None, :]
    ranks = 1.0 + (scores > best).sum(axis=1) + ((scores == best) & (ids < first)).sum(axis=1)
    return np.where(positive.any(axis=1), ranks, np.inf)


def rank_summary(ranks: np.ndarray, ks: tuple[int, ...]) -> dict[str, float]:
    """{"r<k>": recall in percent, "medr": median rank, "n": number of queries} of first-positive ranks [n]."""
    out = {f"r{k}": 100.0 * float(np.mean(ranks <= k)) for k in ks}
    out["medr"] = float(np.median(ranks))
    out["n"] = len(ranks)
    return out


def choice_accuracy(scores: np.ndarray, answers: np.ndarray, *, tolerance: float = TIE_TOLERANCE) -> dict:
    """{"accuracy": percent, "n", "ci95": [lo, hi]} of picking the top-scoring candidate [n, K] vs answers [n].

    Ties get split credit: a question whose top score (within `tolerance`, default the project's TIE_TOLERANCE)
    is shared by m candidates, the answer among them, counts 1/m, what a uniform pick among them scores on
    average. An answer outside [0, K) counts 0. ci95 is the Wilson 95% interval in percent of the summed credit.
    """
    if len(scores) == 0:
        raise ValueError("no questions to evaluate")
    scores, answers = np.asarray(scores, dtype=np.float64), np.asarray(answers, dtype=np.int64)
    top = scores >= scores.max(axis=1, keepdims=True) - tolerance
    valid = (answers >= 0) & (answers < scores.shape[1])
    hit = np.take_along_axis(top, np.where(valid, answers, 0)[:, None], axis=1)[:, 0] & valid
    correct = float(np.sum(hit / top.sum(axis=1)))
    n = len(scores)
    return {"accuracy": 100.0 * correct / n, "n": n, "ci95": wilson_interval(correct, n)}


def softmax(scores: np.ndarray, scale: float) -> np.ndarray:
    """Row-wise softmax of scores [n, K] multiplied by an inverse temperature."""
    logits = scores * scale
    logits = logits - logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


def ensemble_probabilities(scores: np.ndarray, scale: float, other_scores: np.ndarray, other_scale: float) -> np.ndarray:
    """Backbone ensemble (paper App. A): the sum of two models' softmax probabilities over the same candidates."""
    return softmax(scores, scale) + softmax(other_scores, other_scale)
