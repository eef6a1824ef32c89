"""ExactIndex against a brute-force NumPy ranking: ties, several vectors per item, deep k, the GPU path."""

import faiss
import numpy as np
import pytest

from paxion.retrieval import index as index_module
from paxion.retrieval.index import ExactIndex, blocked_topk, exact_scores


def _grid(rng, shape):
    """Vectors of small multiples of 1/8: every dot product is exact in float32, so ties are real ties."""
    return (rng.integers(-2, 3, size=shape) / 8).astype(np.float32)


def _normalised_with_duplicates(rng, n, d, copies):
    x = rng.normal(size=(n, d)).astype(np.float32)
    x[rng.integers(0, n, copies)] = x[rng.integers(0, n, copies)]
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _reference(queries, items, k):
    """Dense scores (max over both vector sets), ranked by descending score, then ascending item id."""
    q = queries if queries.ndim == 3 else queries[:, None]
    x = items if items.ndim == 3 else items[:, None]
    dense = np.einsum("qad,nbd->qnab", q.astype(np.float64), x.astype(np.float64)).max(axis=(2, 3))
    ids = np.arange(dense.shape[1])
    order = np.array([np.lexsort((ids, -row)) for row in dense])[:, :k]
    return np.take_along_axis(dense, order, axis=1), order


@pytest.mark.parametrize("margin", [0, 16])
@pytest.mark.parametrize(
    "query_shape,item_shape",
    [((40, 6), (300, 6)), ((30, 6), (80, 4, 6)), ((30, 3, 6), (120, 6))],
    ids=["single", "text-to-video", "video-to-text"],
)
def test_matches_reference_with_exact_ties(margin, query_shape, item_shape):
    rng = np.random.default_rng(0)
    queries, items = _grid(rng, query_shape), _grid(rng, item_shape)
    index = ExactIndex(items, margin=margin, query_batch=7)
    for k in (1, 5, 33, len(items)):
        scores, ids = index.search(queries, k)
        ref_scores, ref_ids = _reference(queries, items, k)
        np.testing.assert_array_equal(ids, ref_ids)
        np.testing.assert_allclose(scores, ref_scores, atol=1e-12)
    # the grid data really has ties at the cut-off, so the tie order was exercised
    assert (ref_scores[:, :-1] == ref_scores[:, 1:]).any()


@pytest.mark.parametrize("item_latents,query_latents", [(1, 1), (4, 1), (1, 4)])
def test_matches_reference_on_normalised_data_with_duplicates(item_latents, query_latents):
    rng = np.random.default_rng(1)
    items = _normalised_with_duplicates(rng, 200 * item_latents, 16, 40).reshape(200, item_latents, 16)
    queries = _normalised_with_duplicates(rng, 50 * query_latents, 16, 10).reshape(50, query_latents, 16)
    items[10] = items[3]  # whole duplicated items: equal scores, ordered by id
    scores, ids = ExactIndex(items, margin=2).search(queries, 10)
    ref_scores, ref_ids = _reference(queries, items, 10)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-12)


def test_identical_vectors_score_identically_wherever_they_sit():
    rng = np.random.default_rng(2)
    q, x = rng.normal(size=(3, 37)), rng.normal(size=(5, 2, 37))
    x[4] = x[1]
    batched = exact_scores(q[None], x)
    assert batched.shape == (5,) and batched[4] == batched[1]
    np.testing.assert_array_equal(batched, [exact_scores(q, x[i]) for i in range(5)])
    np.testing.assert_array_equal(exact_scores(q[None, None], x[None, [4, 2, 1]]), batched[None, [4, 2, 1]])


def test_k_larger_than_number_of_items_returns_every_item():
    rng = np.random.default_rng(3)
    items = _grid(rng, (9, 2, 4))
    scores, ids = ExactIndex(items).search(_grid(rng, (5, 4)), 50)
    assert ids.shape == (5, 9)
    assert all(sorted(row) == list(range(9)) for row in ids)
    assert (np.diff(scores, axis=1) <= 0).all()


def test_blocked_topk_matches_full_sort(monkeypatch):
    monkeypatch.setattr(index_module, "BLOCK_SCORES", 100)  # several blocks of a few queries
    rng = np.random.default_rng(4)
    queries, vectors = rng.normal(size=(23, 8)).astype(np.float32), rng.normal(size=(40, 8)).astype(np.float32)
    scores, ids = blocked_topk(queries, vectors, 7)
    dense = queries @ vectors.T
    np.testing.assert_array_equal(ids, np.argsort(-dense, axis=1)[:, :7])
    np.testing.assert_allclose(scores, -np.sort(-dense, axis=1)[:, :7], rtol=1e-6)


class _FakeGpuIndex:
    """A CPU flat index that, like a FAISS GPU index, refuses k above 2048."""

    created = 0

    def __init__(self, resources, dim):
        type(self).created += 1
        self.inner = faiss.IndexFlatIP(dim)

    def add(self, x):
        self.inner.add(x)

    def search(self, x, k):
        assert k <= index_module.GPU_MAX_K, "a GPU index cannot return more than 2048 results"
        return self.inner.search(x, k)


@pytest.mark.parametrize(("gpus", "device", "on_gpu"), [
    (0, "cuda", False), (1, "cuda", True), (1, "cuda:1", True), (1, "cpu", False), (1, "auto", False),
])
def test_gpu_index_only_for_a_cuda_device_faiss_can_use_and_deep_k_falls_back(monkeypatch, gpus, device, on_gpu):
    _FakeGpuIndex.created = 0
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: gpus)
    monkeypatch.setattr(faiss, "StandardGpuResources", object, raising=False)
    monkeypatch.setattr(faiss, "GpuIndexFlatIP", _FakeGpuIndex, raising=False)
    rng = np.random.default_rng(5)
    items, queries = _grid(rng, (2600, 3)), _grid(rng, (4, 3))
    index = ExactIndex(items, device=device)
    assert index.on_gpu == on_gpu
    assert _FakeGpuIndex.created == int(on_gpu)
    for k in (10, 2500):  # 2500 + margin is deeper than a GPU index returns
        _, ids = index.search(queries, k)
        np.testing.assert_array_equal(ids, _reference(queries, items, k)[1])
