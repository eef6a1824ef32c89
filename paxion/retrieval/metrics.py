"""Retrieval metrics from exact search: recall at k and median rank of the first correct item, ties averaged."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from paxion.retrieval.index import BLOCK_SCORES, ExactIndex, exact_scores
from paxion.stats import TIE_TOLERANCE, wilson_interval


def first_hits(
    index: ExactIndex,
    queries: np.ndarray,
    query_keys: np.ndarray,
    item_keys: np.ndarray,
    *,
    depth: int,
    tolerance: float = TIE_TOLERANCE,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(ranks [n], ties [n, 3]) of each query's first positive (an item whose key equals the query's) in the top `depth`.

    ranks: 1-based, in ExactIndex's order (equal scores by ascending item id); inf where no positive is in the top
    depth. ties: int (above, negatives, positives) around the first positive's score s: the items scoring above
    s + tolerance, and the negatives and positives (itself included) within `tolerance` of s (default the
    project's TIE_TOLERANCE); (0, 0, 0) where the rank is inf. `recall_credit` and `expected_ranks` turn them into
    recall at k and the expected rank under a random order of the tied items. A query whose tie group reaches the
    end of its top-depth list (its positive found or not) is searched deeper until the group ends, so recall at
    k <= depth is exact.
    Queries go in chunks small enough that their top-depth lists stay within BLOCK_SCORES entries; progress(j)
    after each j queries of the first search.
    """
    item_keys, query_keys = np.asarray(item_keys), np.asarray(query_keys)
    ranks = np.full(len(queries), np.inf)
    ties = np.zeros((len(queries), 3), dtype=np.int64)
    pending, depth = np.arange(len(queries)), min(depth, index.n)
    while len(pending):
        chunk, open_groups = max(1, BLOCK_SCORES // depth), []
        for start in range(0, len(pending), chunk):
            rows = pending[start : start + chunk]
            scores, ids = index.search(queries[rows], depth, progress=progress)
            hits = item_keys[ids] == query_keys[rows, None]
            found = hits.any(axis=1)
            first = hits.argmax(axis=1)
            best = scores[np.arange(len(rows)), first]
            best[~found] = _best_positive(index, queries[rows[~found]], query_keys[rows[~found]], item_keys)
            best = best[:, None]
            # the tie group may go on below the list (a positive not found may be in it): search that query deeper
            reaches_end = (np.abs(scores[:, -1] - best[:, 0]) <= tolerance) & (depth < index.n)
            done = found & ~reaches_end
            ranks[rows[found]] = first[found] + 1.0
            ties[rows[done]] = _tie_counts(scores, best, hits, tolerance)[done]
            open_groups.append(rows[reaches_end])
        pending, depth, progress = np.concatenate(open_groups), min(index.n, depth * 4), None
    return ranks, ties


def _tie_counts(scores: np.ndarray, best: np.ndarray, positive: np.ndarray, tolerance: float) -> np.ndarray:
    """Per query, int (above, negatives, positives) around its first positive's score best [n, 1] among scores
    [n, items] (positive: bool [n, items]): the items above best + tolerance, and the negatives and positives within
    `tolerance` of best (the tie convention of `first_hits`)."""
    near = np.abs(scores - best) <= tolerance
    return np.stack([(scores > best + tolerance).sum(axis=1), (near & ~positive).sum(axis=1),
                     (near & positive).sum(axis=1)], axis=1)


def _best_positive(index: ExactIndex, queries: np.ndarray, query_keys: np.ndarray, item_keys: np.ndarray) -> np.ndarray:
    """Per query [m], the exact score of its best positive item (-inf where it has none)."""
    best = np.full(len(queries), -np.inf)
    queries = np.asarray(queries, dtype=np.float32)
    queries = queries[:, None] if queries.ndim == 2 else queries
    for key in np.unique(query_keys):
        rows, positives = np.flatnonzero(query_keys == key), np.flatnonzero(item_keys == key)
        if len(positives):
            best[rows] = exact_scores(queries[rows][:, None], index.items[positives][None]).max(axis=1)
    return best


def recall_credit(ranks: np.ndarray, ties: np.ndarray, k: int) -> np.ndarray:
    """Per query [n], the chance that a positive is in the top k when the items tied with its first positive come
    in a uniformly random order (ties from `first_hits`): 1 or 0 without ties; with `above` items ahead and m
    negatives and p positives tied, 1 - C(m, j) / C(m + p, j) for j = k - above places left (the chance that the
    j tied items placed first are not all negatives); one positive: j / (m + 1), the share of its places within k.
    """
    above, negatives, positives = np.asarray(ties, dtype=np.int64).T
    left = k - above
    found = np.isfinite(np.asarray(ranks, dtype=np.float64))
    credit = (found & (left > negatives)).astype(np.float64)
    for i in np.flatnonzero(found & (left >= 1) & (left <= negatives)):
        all_negative = 1.0
        for t in range(int(left[i])):
            all_negative *= (negatives[i] - t) / (negatives[i] + positives[i] - t)
        credit[i] = 1.0 - all_negative
    return credit


def expected_ranks(ranks: np.ndarray, ties: np.ndarray) -> np.ndarray:
    """Per query [n], the expected rank of its first positive when the items tied with it come in a uniformly random
    order (ties [n, 3] from `first_hits`, the convention of `recall_credit`); inf where the rank is inf.

    With `above` items ahead and t = negatives + positives tied, c = positives of them (c >= 1, itself included):
    above + (t + 1) / (c + 1). The c positives cut the t - c tied negatives into c + 1 runs of equal expected length
    (t - c) / (c + 1) by symmetry; the first positive comes right after the first run. One positive: above + (t + 1)
    / 2, the middle of its t places; no tie (t = c = 1): above + 1, the rank itself. Raises ValueError for a finite
    rank whose tie group holds no positive.
    """
    ranks = np.asarray(ranks, dtype=np.float64)
    above, negatives, positives = np.asarray(ties, dtype=np.int64).reshape(-1, 3).T
    found = np.isfinite(ranks)
    if (positives[found] < 1).any():
        raise ValueError("a found query's tie group must count its positive (ties from first_hits)")
    expected = above + (negatives + positives + 1) / np.maximum(positives + 1, 2)  # 2: not found, replaced by inf
    return np.where(found, expected, np.inf)


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

    Recall and the median rank take a random order of the items tied with a query's first positive: recall splits
    credit (`recall_credit`), the rank is its expected value (`expected_ranks`), so both may be fractional.
    The search first goes max(ks) deep; queries whose first positive lies deeper are searched again, four times
    deeper each round, until the median rank is known (all items at worst), never as one dense score matrix.
    progress(j) after each j queries of the first round.
    """
    if len(queries) == 0:
        raise ValueError("no queries to evaluate")
    depth = min(max(ks), index.n)
    ranks, ties = first_hits(index, queries, query_keys, item_keys, depth=depth, progress=progress)
    # a query left at inf has over `depth` items ahead, so an expected rank beyond every found query's
    while not np.isfinite(np.median(ranks)) and depth < index.n:
        depth = min(index.n, depth * 4)
        deeper = np.flatnonzero(~np.isfinite(ranks))
        ranks[deeper], ties[deeper] = first_hits(index, queries[deeper], np.asarray(query_keys)[deeper], item_keys,
                                                 depth=depth)
    return rank_summary(ranks, ties, ks)


def dense_first_hits(scores: np.ndarray, query_keys: np.ndarray, item_keys: np.ndarray, *,
                     tolerance: float = TIE_TOLERANCE) -> tuple[np.ndarray, np.ndarray]:
    """`first_hits` of a full score matrix [queries, items]: ranks in ExactIndex's order (descending score, equal
    scores by ascending item id; inf where a query has no positive) and ties (above, negatives, positives)."""
    positive = np.asarray(item_keys)[None, :] == np.asarray(query_keys)[:, None]
    best = np.where(positive, scores, -np.inf).max(axis=1, keepdims=True)
    first = np.argmax(positive & (scores == best), axis=1)[:, None]  # the lowest id among the best positives
    ids = np.arange(scores.shape[1])[None, :]
    ranks = 1.0 + (scores > best).sum(axis=1) + ((scores == best) & (ids < first)).sum(axis=1)
    ties = _tie_counts(scores, best, positive, tolerance)
    found = positive.any(axis=1)
    return np.where(found, ranks, np.inf), np.where(found[:, None], ties, 0)


def rank_summary(ranks: np.ndarray, ties: np.ndarray, ks: tuple[int, ...]) -> dict[str, float]:
    """{"r<k>": recall in percent (ties split, `recall_credit`), "medr": median of the expected ranks (ties
    averaged, `expected_ranks`; inf when over half the queries have no positive found), "n": number of queries} of
    first-positive ranks [n] and ties [n, 3] (`first_hits`)."""
    out = {f"r{k}": 100.0 * float(np.mean(recall_credit(ranks, ties, k))) for k in ks}
    out["medr"] = float(np.median(expected_ranks(ranks, ties)))
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
