"""Recall, median rank, multiple-choice accuracy and the backbone ensemble on examples worked out by hand."""

import io
import itertools
import math

import numpy as np
import pytest
from rich.console import Console

from paxion.report.tables import retrieval_table
from paxion.retrieval.index import ExactIndex, exact_scores
from paxion.retrieval.metrics import (
    choice_accuracy,
    dense_first_hits,
    ensemble_probabilities,
    expected_ranks,
    first_hits,
    rank_summary,
    recall_credit,
    retrieval_metrics,
)
from paxion.trainer.evaluate import wilson_interval

# Four items in 2-D with keys a=0, b=1, b=1, c=2.
ITEMS = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]], dtype=np.float32)
ITEM_KEYS = np.array([0, 1, 1, 2])
# Scores by hand and the resulting ranking (equal scores by ascending item id):
#   q0 (1, 0)      key 1: 1, .8, 0, -1       -> 0 1 2 3   first key-1 item (1) at rank 2
#   q1 (0, 1)      key 2: 0, .6, 1, 0        -> 2 1 0 3   item 3 ties item 0 at 0, comes after it: rank 4
#   q2 (-1, 0)     key 1: -1, -.8, 0, 1      -> 3 2 1 0   item 2 at rank 2
#   q3 (.6, .8)    key 0: .6, .96, .8, -.6   -> 1 2 0 3   item 0 at rank 3
#   q4 (.8, .6)    key 1: .8, 1, .6, -.8     -> 1 0 2 3   item 1 at rank 1
QUERIES = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.6, 0.8], [0.8, 0.6]], dtype=np.float32)
QUERY_KEYS = np.array([1, 2, 1, 0, 1])


def test_first_hits_by_hand():
    ranks, ties = first_hits(ExactIndex(ITEMS), QUERIES, QUERY_KEYS, ITEM_KEYS, depth=4)
    np.testing.assert_array_equal(ranks, [2, 4, 2, 3, 1])
    # (above, tied negatives, tied positives): q1's item 3 ties item 0 at 0 below items 2 and 1
    np.testing.assert_array_equal(ties, [[1, 0, 1], [2, 1, 1], [1, 0, 1], [2, 0, 1], [0, 0, 1]])
    shallow, shallow_ties = first_hits(ExactIndex(ITEMS), QUERIES, QUERY_KEYS, ITEM_KEYS, depth=2)
    np.testing.assert_array_equal(shallow, [2, math.inf, 2, math.inf, 1])
    np.testing.assert_array_equal(shallow_ties[[1, 3]], 0)


@pytest.mark.parametrize("ks", [(1, 2, 3), (1,)])
def test_recall_and_median_rank_by_hand(ks):
    # ranks 2 4 2 3 1: R@1 = 1/5, R@2 = 3/5, median 2 (also when only the top 1 is searched first); at k = 3 q1's
    # positive shares places 3-4 with item 0: half a hit, R@3 = (4 + 1/2) / 5
    out = retrieval_metrics(ExactIndex(ITEMS), QUERIES, QUERY_KEYS, ITEM_KEYS, ks=ks)
    expected = {"r1": 20.0, "r2": 60.0, "r3": 90.0}
    assert out == pytest.approx({**{f"r{k}": expected[f"r{k}"] for k in ks}, "medr": 2.0, "n": 5})


def test_median_rank_of_an_even_number_of_queries_averages_the_middle_two():
    out = retrieval_metrics(ExactIndex(ITEMS), QUERIES[:4], QUERY_KEYS[:4], ITEM_KEYS, ks=(1,))
    assert out["medr"] == 2.5  # ranks 2 4 2 3


def test_multi_vector_item_counts_its_best_vector():
    # item 0 gets a second vector equal to q1; every other item's second vector is (1, 0)
    items = np.stack([ITEMS, ITEMS[[0, 0, 0, 0]]], axis=1)
    items[0, 1] = [0.0, 1.0]
    ranks, _ = first_hits(ExactIndex(items), QUERIES[1:2], np.array([0]), ITEM_KEYS, depth=4)
    # q1 scores: item 0 max(0, 1) = 1, item 1 max(.6, 0) = .6, item 2 max(1, 0) = 1, item 3 max(0, 0) = 0
    # ranking 0 2 1 3 (0 before 2 on the tie at 1): key 0 at rank 1 (rank 3 on the first vectors alone)
    np.testing.assert_array_equal(ranks, [1])


def test_recall_splits_credit_over_a_tie_at_the_boundary_by_hand():
    # One query (1, 0) against six unit items; scores 1, .6, .6, .6, .6, -1 (items 1-4 are the same vector).
    items = np.array([[1, 0], [0.6, 0.8], [0.6, 0.8], [0.6, 0.8], [0.6, 0.8], [-1, 0]], dtype=np.float32)
    query = np.array([[1.0, 0.0]], dtype=np.float32)
    index = ExactIndex(items)
    # Positive item 3 (key 1): item 0 above, tied with 3 negatives (1, 2, 4): its place is 2, 3, 4 or 5, each 1/4.
    # R@1 = 0, R@2 = 1/4, R@3 = 2/4, R@4 = 3/4, R@5 = 1 (by the lower id it would be 0, 0, 0, 1, 1: rank 4).
    keys = np.array([0, 0, 0, 1, 0, 0])
    out = retrieval_metrics(index, query, np.array([1]), keys, ks=(1, 2, 3, 4, 5))
    # median rank: the mean of places 2-5, 3.5 (by the lower id 4)
    assert out == pytest.approx({"r1": 0.0, "r2": 25.0, "r3": 50.0, "r4": 75.0, "r5": 100.0, "medr": 3.5, "n": 1})
    # Two positives (items 2 and 4) among the four tied: the first positive is within the top j of the group unless
    # those j are both negatives: R@2 (j = 1) = 1 - 2/4 = 1/2, R@3 (j = 2) = 1 - (2/4)(1/3) = 5/6, R@4 = 1.
    keys = np.array([0, 0, 1, 0, 1, 0])
    ranks, ties = first_hits(index, query, np.array([1]), keys, depth=2)  # the group runs past the top 2: deeper
    np.testing.assert_array_equal(ranks, [3])
    np.testing.assert_array_equal(ties, [[1, 2, 2]])
    assert [recall_credit(ranks, ties, k)[0] for k in (1, 2, 3, 4)] == pytest.approx([0, 1 / 2, 5 / 6, 1])
    # the first positive's place in the group: 1 with chance 1/2, 2 with 1/3 (N P), 3 with 1/6 (N N P): 5/3 after
    # item 0: 8/3 (by the lower id 3)
    assert rank_summary(ranks, ties, (1,))["medr"] == pytest.approx(8 / 3)
    # the dense path (the backbone ensemble's) agrees
    dense_ranks, dense_ties = dense_first_hits((items.astype(np.float64) @ query[0].astype(np.float64))[None],
                                               np.array([1]), keys)
    np.testing.assert_array_equal(dense_ranks, ranks)
    np.testing.assert_array_equal(dense_ties, ties)


def test_median_rank_of_all_tied_scores_is_the_middle_whatever_the_item_ids():
    # A degenerate model: every item the same vector, so every score ties. Seven items, one positive per query: its
    # expected rank is (7 + 1) / 2 = 4 wherever its id is (by id the positives 0, 0, 1 would give ranks 1, 1, 2).
    items = np.tile(np.array([[0.6, 0.8]], dtype=np.float32), (7, 1))
    queries = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    query_keys, item_keys = np.array([0, 0, 1]), np.array([0, 1, 2, 3, 4, 5, 6])
    for ks in ((1,), (1, 7)):  # searched 1 deep first (the group runs past it) and all at once
        out = retrieval_metrics(ExactIndex(items), queries, query_keys, item_keys, ks=ks)
        assert out["medr"] == 4.0 and out["r1"] == pytest.approx(100 / 7)
    dense = np.full((3, 7), 0.5)
    assert rank_summary(*dense_first_hits(dense, query_keys, item_keys), (1,))["medr"] == 4.0
    # two positives among the seven (item keys 0 0 1 2 3 4 5): first of them at (7 + 1) / (2 + 1) = 8/3 on average
    item_keys = np.array([0, 0, 1, 2, 3, 4, 5])
    out = retrieval_metrics(ExactIndex(items), queries[:1], query_keys[:1], item_keys, ks=(1,))
    assert out["medr"] == pytest.approx(8 / 3) and out["r1"] == pytest.approx(100 * 2 / 7)


def test_median_rank_of_a_four_way_tie_at_the_top():
    # Query (1, 0); items score .6 (four copies), then .0 and -1. Positive item 2 ties three negatives at the top:
    # its place is 1-4 with chance 1/4 each, expected rank 2.5 (by the lower id: 3).
    items = np.array([[0.6, 0.8]] * 4 + [[0.0, 1.0], [-1.0, 0.0]], dtype=np.float32)
    keys = np.array([0, 0, 1, 0, 0, 0])
    out = retrieval_metrics(ExactIndex(items), np.array([[1.0, 0.0]], np.float32), np.array([1]), keys, ks=(1, 2))
    assert out == pytest.approx({"r1": 25.0, "r2": 50.0, "medr": 2.5, "n": 1})


def test_expected_rank_of_the_first_positive_matches_every_order_of_the_tie_group():
    # (above, tied negatives, tied positives) against the mean place of the first positive over all orders of the
    # tied items, counted independently of the formula above + (t + 1) / (c + 1)
    groups = [(0, 0, 1), (3, 0, 1), (0, 3, 1), (2, 4, 1), (0, 2, 2), (5, 3, 3), (1, 1, 4)]
    for above, negatives, positives in groups:
        places = [above + 1 + order.index(1) for order in
                  itertools.permutations([0] * negatives + [1] * positives)]
        got = expected_ranks(np.array([1.0]), np.array([[above, negatives, positives]]))
        assert got[0] == pytest.approx(np.mean(places))
    assert expected_ranks(np.array([math.inf]), np.zeros((1, 3)))[0] == math.inf
    with pytest.raises(ValueError, match="tie group"):
        expected_ranks(np.array([2.0]), np.array([[1, 0, 0]]))


def test_retrieval_table_prints_a_fractional_median_rank():
    result = {d: {"r1": 25.0, "medr": m, "n": 3} for d, m in (("v2t", 8 / 3), ("t2v", 4.0))}
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(retrieval_table(result, title="ties", ks=(1,)))
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in console.export_text().splitlines()]
    assert [row[1:] for row in cells if len(row) == 4 and row[1] == "25.0"] == [["25.0", "2.67", "3"],
                                                                                ["25.0", "4", "3"]]


def test_searched_ties_agree_with_the_dense_ones():
    """Many tied groups (items repeated 1-6 times, several keys each): the index search, from a shallow start,
    finds the same ranks and tie groups as the full score matrix."""
    rng = np.random.default_rng(4)
    base = rng.normal(size=(12, 6))
    items = (base / np.linalg.norm(base, axis=1, keepdims=True))[rng.integers(0, 12, size=40)].astype(np.float32)
    queries = np.concatenate([items[:10], rng.normal(size=(20, 6)).astype(np.float32)])
    query_keys, item_keys = rng.integers(0, 5, size=30), rng.integers(0, 5, size=40)
    dense = exact_scores(queries[:, None, None], items[None, :, None])
    expected_ranks, expected_ties = dense_first_hits(dense, query_keys, item_keys)
    assert (expected_ties[:, 1] > 0).sum() >= 5  # the case is about ties
    ranks, ties = first_hits(ExactIndex(items), queries, query_keys, item_keys, depth=40)
    np.testing.assert_array_equal(ranks, expected_ranks)
    np.testing.assert_array_equal(ties, expected_ties)
    ks = (1, 2, 3, 5)
    assert retrieval_metrics(ExactIndex(items), queries, query_keys, item_keys, ks=ks) == pytest.approx(
        rank_summary(expected_ranks, expected_ties, ks))


def test_choice_accuracy_splits_credit_among_tied_top_candidates():
    scores = np.array([[0.1, 0.5, 0.5], [0.9, 0.2, 0.1], [0.3, 0.3, 0.3], [0.2, 0.7, 0.7], [0.4, 0.4 + 5e-7, 0.1]])
    answers = np.array([1, 0, 2, 0, 0])
    # credits: 1/2 (answer in a two-way tie), 1, 1/3 (three-way tie), 0 (answer below the tie), 1/2 (within 1e-6)
    out = choice_accuracy(scores, answers)
    correct = 0.5 + 1 + 1 / 3 + 0 + 0.5
    assert out["n"] == 5
    assert out["accuracy"] == pytest.approx(100 * correct / 5)
    assert out["ci95"] == pytest.approx(wilson_interval(correct, 5))


def test_choice_accuracy_of_all_ties_is_chance_whatever_the_answer_order():
    scores = np.zeros((8, 4))
    for answers in (np.zeros(8, dtype=int), np.arange(8) % 4):
        assert choice_accuracy(scores, answers)["accuracy"] == pytest.approx(25.0)


def test_choice_accuracy_gives_nothing_for_an_answer_outside_the_candidates():
    assert choice_accuracy(np.array([[0.5, 0.5], [0.5, 0.1]]), np.array([-1, 2]))["accuracy"] == 0.0


def test_backbone_ensemble_adds_softmax_probabilities():
    model = np.array([[0.30, 0.31]])  # x 10: logits 3, 3.1 -> p = 1 / (1 + e^0.1) = 0.47502, 0.52498
    backbone = np.array([[0.25, 0.20]])  # x 100: logits 25, 20 -> p = 1 / (1 + e^-5) = 0.99331, 0.00669
    summed = ensemble_probabilities(model, 10.0, backbone, 100.0)
    np.testing.assert_allclose(summed, [[0.47502 + 0.99331, 0.52498 + 0.00669]], atol=1e-5)
    # the model alone picks candidate 1, the ensemble picks 0
    assert choice_accuracy(model, np.array([0]))["accuracy"] == 0.0
    assert choice_accuracy(summed, np.array([0]))["accuracy"] == 100.0
