"""Exact top-k search with FAISS over items of one or more L2-normalised vectors each, in a fixed tie order."""

from __future__ import annotations

from collections.abc import Callable

import faiss
import numpy as np

# The largest k a FAISS GPU index returns; deeper searches fall back to blocked NumPy.
GPU_MAX_K = 2048
# Float32 scores held at once by the NumPy fallback (64 MiB).
BLOCK_SCORES = 1 << 24
# Float64 multiply-adds held at once while re-scoring candidates exactly (32 MiB).
RESCORE_ELEMENTS = 1 << 22


def exact_scores(queries: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Scores [..] of query vectors [.., Lq, d] and item vectors [.., Li, d] (broadcast): max over Lq x Li dots.

    Computed in float64 by one fixed reduction per pair, so identical vectors always get identical scores.
    """
    q = np.asarray(queries, dtype=np.float64)[..., :, None, :]
    x = np.asarray(items, dtype=np.float64)[..., None, :, :]
    return np.einsum("...d,...d->...", q, x).max(axis=(-2, -1))


def blocked_topk(queries: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k float32 inner products (scores, ids) [m, k] of queries [m, d] against vectors [N, d], blockwise.

    Never holds more than BLOCK_SCORES scores; ties come in no particular order.
    """
    n = len(vectors)
    k = min(k, n)
    rows = max(1, BLOCK_SCORES // max(n, 1))
    scores = np.empty((len(queries), k), dtype=np.float32)
    ids = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), rows):
        block = queries[start : start + rows] @ vectors.T
        top = np.argpartition(-block, k - 1, axis=1)[:, :k] if k < n else np.broadcast_to(np.arange(n), block.shape)
        top_scores = np.take_along_axis(block, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        scores[start : start + rows] = np.take_along_axis(top_scores, order, axis=1)
        ids[start : start + rows] = np.take_along_axis(top, order, axis=1)
    return scores, ids


def _flat_index(dim: int, *, use_gpu: bool) -> tuple[faiss.Index, bool]:
    """An exact inner-product index: on the GPU when asked for and faiss sees one (faiss-gpu), else on the CPU."""
    if use_gpu and faiss.get_num_gpus() > 0:
        resources = faiss.StandardGpuResources()
        index = faiss.GpuIndexFlatIP(resources, dim)
        index.resources = resources  # the index must not outlive its GPU resources
        return index, True
    return faiss.IndexFlatIP(dim), False


class ExactIndex:
    """Exact search over items [n, L, d] (L2-normalised float32); a query [Lq, d] scores max over Lq x L dots.

    All n*L item vectors go into a FAISS IndexFlatIP (on the GPU only when `device` is CUDA and faiss sees one). A query's vectors each fetch
    their top latents, the items they belong to are re-scored exactly (`exact_scores`, float64), and the
    search widens until no item outside the candidates can reach the k-th score (FAISS's float32 error
    bounded by `tolerance`). Results are ordered by descending score, equal scores by ascending item id,
    identical to a brute-force NumPy ranking, whatever order FAISS returns ties in.

    Args:
        items: [n, L, d] or [n, d] (L = 1) vectors.
        margin: extra items fetched beyond k per query vector (default 16), so that few searches must widen.
        query_batch: queries searched together (default 1024), bounding memory.
        device: the caller's torch device or its name (default "cpu"); FAISS uses a GPU only for "cuda[:N]",
            so `--device cpu` keeps the search on the CPU.
    """

    def __init__(self, items: np.ndarray, *, margin: int = 16, query_batch: int = 1024, device: object = "cpu") -> None:
        items = np.asarray(items, dtype=np.float32)
        self.items = items[:, None] if items.ndim == 2 else items
        self.n, self.per_item, self.dim = self.items.shape
        self.margin = margin
        self.query_batch = query_batch
        self.index, self.on_gpu = _flat_index(self.dim, use_gpu=str(device).startswith("cuda"))
        self._flat = np.ascontiguousarray(self.items.reshape(-1, self.dim))
        self.index.add(self._flat)
        self._item_norm = float(np.linalg.norm(self._flat, axis=1).max(initial=0.0))

    def _latent_search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.on_gpu and k > GPU_MAX_K:
            return blocked_topk(vectors, self._flat, k)
        return self.index.search(np.ascontiguousarray(vectors, dtype=np.float32), k)

    def tolerance(self, queries: np.ndarray) -> float:
        """An upper bound on |float32 FAISS score - exact score| for these queries."""
        query_norm = float(np.linalg.norm(queries, axis=-1).max(initial=0.0))
        relative = 4.0 * self.dim * 2.0**-24  # float32 accumulation over d terms, with slack
        if self.on_gpu:
            relative += 2.0**-10  # a GPU GEMM may round its inputs to TF32 (10-bit mantissa)
        return relative * query_norm * self._item_norm + 1e-7

    def search(
        self, queries: np.ndarray, k: int, *, progress: Callable[[int], None] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores float64, item ids int64) [m, min(k, n)] of queries [m, Lq, d] or [m, d].

        Order: descending score, equal scores by ascending item id. progress(j) after each j queries.
        """
        queries = np.asarray(queries, dtype=np.float32)
        queries = queries[:, None] if queries.ndim == 2 else queries
        k = min(k, self.n)
        scores = np.empty((len(queries), k), dtype=np.float64)
        ids = np.empty((len(queries), k), dtype=np.int64)
        # Deep searches go in smaller batches so that a batch's FAISS results stay within BLOCK_SCORES.
        batch = max(1, min(self.query_batch, BLOCK_SCORES // (queries.shape[1] * (k + self.margin) * self.per_item)))
        for start in range(0, len(queries), batch):
            rows = slice(start, start + batch)
            scores[rows], ids[rows] = self._search_batch(queries[rows], k)
            if progress is not None:
                progress(len(queries[rows]))
        return scores, ids

    def _search_batch(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        total = self.n * self.per_item
        depth = min(total, (k + self.margin) * self.per_item)
        tolerance = self.tolerance(queries)
        scores = np.empty((len(queries), k), dtype=np.float64)
        ids = np.empty((len(queries), k), dtype=np.int64)
        pending = np.arange(len(queries))
        while len(pending):
            found, latents = self._latent_search(queries[pending].reshape(-1, self.dim), depth)
            m, per_query = len(pending), queries.shape[1]
            cand_scores, cand_ids = self._rescore(queries[pending], latents.reshape(m, -1) // self.per_item)
            # No item outside the candidates scores above its best float32 latent score plus the tolerance.
            outside = found.reshape(m, per_query, -1)[:, :, -1].max(axis=1) + tolerance
            done = np.ones(m, dtype=bool) if depth == total else cand_scores[:, k - 1] > outside
            scores[pending[done]], ids[pending[done]] = cand_scores[done, :k], cand_ids[done, :k]
            pending = pending[~done]
            depth = min(total, depth * 4)
        return scores, ids

    def _rescore(self, queries: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Candidates [m, C] (with repeats, -1 = none) re-scored exactly and sorted by (-score, id)."""
        candidates = np.sort(candidates, axis=1)
        repeated = np.zeros_like(candidates, dtype=bool)
        repeated[:, 1:] = candidates[:, 1:] == candidates[:, :-1]
        invalid = repeated | (candidates < 0)
        safe = np.where(invalid, 0, candidates)
        per_row = candidates.shape[1] * queries.shape[1] * self.per_item * self.dim
        rows = max(1, RESCORE_ELEMENTS // per_row)
        scores = np.empty(candidates.shape, dtype=np.float64)
        for start in range(0, len(queries), rows):
            part = slice(start, start + rows)
            scores[part] = exact_scores(queries[part][:, None], self.items[safe[part]])
        scores[invalid] = -np.inf
        order = np.argsort(-scores, axis=1, kind="stable")  # candidates are sorted by id: ties keep id order
        ordered_ids = np.take_along_axis(np.where(invalid, np.iinfo(np.int64).max, candidates), order, axis=1)
        return np.take_along_axis(scores, order, axis=1), ordered_ids
