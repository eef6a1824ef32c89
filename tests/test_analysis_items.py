"""Per-item predictions agree with ActionBench's aggregate; per-class counts; McNemar; name-preserving tables."""

import json

import numpy as np
import pytest
import torch
from rich.console import Console

from paxion.analysis.items import (
    actionbench_records,
    pair_records,
    per_class,
    prediction_records,
    ranking_records,
    read_predictions,
    recall_summary,
    summarise_records,
    write_predictions,
)
from paxion.analysis.paired import compare_models, mcnemar_exact, paired_comparison
from paxion.analysis.tables import paired_tables, per_class_tables
from paxion.errors import PaxionError
from paxion.report.tables import model_tables, study_actionbench_table, study_mc_table, study_retrieval_table
from paxion.retrieval.index import ExactIndex
from paxion.retrieval.metrics import choice_accuracy, first_hits, retrieval_metrics
from paxion.trainer.evaluate import pair_credit, summarise


def _random_pairs(n=200, seed=0):
    rng = np.random.default_rng(seed)
    positive = rng.normal(size=n).astype(np.float32)
    negative = rng.normal(size=n).astype(np.float32)
    negative[::7] = positive[::7]  # exact ties
    negative[3::11] = positive[3::11] + np.float32(5e-7)  # ties within the tolerance
    classes = [f"class {i % 5}" for i in range(n)]
    return positive, negative, classes


def _records(task, positive, negative, classes):
    ids = [f"c{i}" for i in range(len(positive))]
    return pair_records(ids, task, positive, negative, positive_labels=[f"true {i}" for i in ids],
                        negative_labels=[{"text": f"neg {i}", "video": "reversed"} for i in ids], classes=classes)


def test_predictions_file_agrees_with_actionbench_aggregate(tmp_path):
    positive, negative, classes = _random_pairs()
    records = _records("aa", positive, negative, classes)
    path = write_predictions(tmp_path / "p.jsonl", records)
    back = read_predictions(path)
    assert back == json.loads(json.dumps(records))
    expected = summarise(pair_credit(torch.from_numpy(positive), torch.from_numpy(negative)).numpy())
    assert summarise_records(back) == {"aa": expected}
    outcomes = [r["outcome"] for r in back]
    assert outcomes.count("tie") == int(np.sum(np.abs(positive - negative) <= 1e-6)) > 0
    assert back[1]["candidates"][1] == {"text": "neg c1", "video": "reversed", "score": float(negative[1]),
                                        "rank": 1 if negative[1] > positive[1] else 2}


def test_ranks_and_ties_among_several_candidates():
    scores = np.array([[0.1, 0.5, 0.3], [0.7, 0.7, 0.2], [0.9, 0.2, 0.4]], dtype=np.float32)
    records = prediction_records(["a", "b", "c"], "mc", [["x", "y", "z"]] * 3, scores, [2, 0, 0])
    assert [c["rank"] for c in records[0]["candidates"]] == [3, 1, 2]
    assert [c["rank"] for c in records[1]["candidates"]] == [1, 2, 3]  # equal scores: lower index first
    assert [(r["outcome"], r["credit"]) for r in records] == [("wrong", 0.0), ("tie", 0.5), ("correct", 1.0)]
    with pytest.raises(ValueError):
        prediction_records(["a"], "mc", [["x", "y"]], scores[:1], [0])


def test_per_class_counts_add_up_and_sort_worst_first():
    positive, negative, classes = _random_pairs()
    records = _records("aa", positive, negative, classes) + _records("vr", positive[:100], negative[:100], classes[:100])
    table = per_class(records)
    totals = summarise_records(records)
    for task in ("aa", "vr"):
        assert sum(row[task]["n"] for row in table.values() if task in row) == totals[task]["n"]
        assert sum(row[task]["accuracy"] * row[task]["n"] for row in table.values()) == pytest.approx(
            totals[task]["accuracy"] * totals[task]["n"])
    means = [np.mean([s["accuracy"] for s in row.values()]) for row in table.values()]
    assert means == sorted(means)
    assert set(table) == set(classes)


def test_mcnemar_hand_worked():
    # b=1, c=9: 2 * (C(10,0) + C(10,1)) / 2^10 = 22 / 1024
    assert mcnemar_exact(1, 9) == pytest.approx(22 / 1024, abs=1e-15)
    assert mcnemar_exact(9, 1) == mcnemar_exact(1, 9)
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == 1.0  # capped
    assert mcnemar_exact(0, 3) == pytest.approx(2 / 8)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def _pair(task, clip, outcome):
    credit = {"correct": 1.0, "tie": 0.5, "wrong": 0.0}[outcome]
    return {"clip": clip, "task": task, "class": None, "candidates": [], "answer": 0, "outcome": outcome,
            "credit": credit}


def test_paired_comparison_hand_worked():
    # 10 clips: A right / B wrong on 1, both right on 1, A wrong / B right on 8.
    a_out = ["correct", "correct"] + ["wrong"] * 8
    b_out = ["wrong", "correct"] + ["correct"] * 8
    a = [_pair("vr", f"c{i}", o) for i, o in enumerate(a_out)]
    b = [_pair("vr", f"c{i}", o) for i, o in reversed(list(enumerate(b_out)))]  # matched by clip, not order
    result = paired_comparison(a, b)["vr"]
    assert (result["n"], result["a_only"], result["b_only"], result["ties_a"]) == (10, 1, 8, 0)
    assert result["p_value"] == pytest.approx(2 * (1 + 9) / 2**9)  # b=1, c=8
    assert result["difference"] == pytest.approx(20.0 - 90.0)
    assert list(compare_models({"x": a, "y": b})) == ["y vs x"]
    with pytest.raises(PaxionError, match="same items"):
        paired_comparison(a, b[:-1])


def test_paired_comparison_resolves_ties_as_reproducible_guesses():
    # B ties everywhere (the frame-wise backbone on VR): for the test about half its ties are right.
    n = 2000
    a = [_pair("vr", f"c{i}", "correct" if i % 10 < 6 else "wrong") for i in range(n)]
    b = [_pair("vr", f"c{i}", "tie") for i in range(n)]
    result = paired_comparison(a, b, names=("patched", "backbone"))["vr"]
    assert result["ties_b"] == n and result["difference"] == pytest.approx(10.0)
    # of the 1200 clips A gets right about half are B's lucky guesses, of A's 800 wrong about half too
    assert 600 - 90 < result["a_only"] < 600 + 90 and 400 - 75 < result["b_only"] < 400 + 75
    assert result["p_value"] == mcnemar_exact(result["a_only"], result["b_only"]) < 1e-3
    assert paired_comparison(a, b, names=("patched", "backbone")) == {"vr": result}
    other = paired_comparison(a, b, names=("patched", "other"))["vr"]
    assert other["a_only"] != result["a_only"]  # each model's ties are its own guesses


def test_tables_keep_full_names_at_80_columns():
    names = ["kp-perceiver[vtc+dvdm]-with-a-very-long-suffix-x", "side-tuning[vtc+dvdm]", "backbone"]
    columns = [(f"template v2t R{k}", [f"{10 * k + i:.1f}" for i in range(3)]) for k in range(9)]
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    tables = model_tables(title="wide", names=names, columns=columns, width=80)
    assert len(tables) > 1
    for table in tables:
        console.print(table)
    text = console.export_text()
    assert all(len(line) <= 80 for line in text.splitlines())
    for name in names:
        assert sum(name in line for line in text.splitlines()) == len(tables)
    for _, cells in columns:
        for cell in cells:
            assert any(f" {cell} " in line for line in text.splitlines())


def test_per_class_and_paired_tables_render_names():
    positive, negative, classes = _random_pairs(60)
    classes = [f"Pushing [something] from left to right variant {i % 3}" for i in range(60)]
    records = _records("aa", positive, negative, classes)
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    for table in per_class_tables(per_class(records), title="per class", width=80):
        console.print(table)
    flipped = _records("aa", negative, positive, classes)
    for table in paired_tables(compare_models({"backbone": flipped, "kp-perceiver[vtc+dvdm]": records}),
                               title="paired", width=80):
        console.print(table)
    text = console.export_text()
    for name in set(classes) | {"kp-perceiver[vtc+dvdm] vs backbone AA"}:
        assert name in text


def test_choice_records_agree_with_choice_accuracy():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(50, 5)).astype(np.float32)
    scores[::4, 1] = scores[::4].max(axis=1) + 1  # exact two-way ties at the top: half credit each way
    scores[::4, 3] = scores[::4, 1]
    answers = rng.integers(0, 5, size=50)
    answers[::8] = 3  # tied with candidate 1
    answers[4::8] = 1  # tied with candidate 3
    records = prediction_records([str(i) for i in range(50)], "mc", [list("abcde")] * 50, scores, answers,
                                 ties="share")
    assert summarise_records(records)["mc"] == choice_accuracy(scores, answers)
    assert {(r["outcome"], r["credit"]) for r in records[::4]} == {("tie", 0.5)}


def test_ranking_records_agree_with_retrieval_metrics():
    rng = np.random.default_rng(2)
    texts = rng.normal(size=(30, 8)).astype(np.float32)
    keys = rng.integers(0, 30, size=40)
    videos = (texts[keys] + 1.5 * rng.normal(size=(40, 8))).astype(np.float32)
    index = ExactIndex(texts)
    expected = retrieval_metrics(index, videos, keys, np.arange(30), ks=(1, 5))
    scores, ids = index.search(videos, 5)
    ranks, ties = first_hits(index, videos, keys, np.arange(30), depth=30)
    names = [f"text {j}" for j in range(30)]
    records = ranking_records([f"v{i}" for i in range(40)], "label", [[names[j] for j in row] for row in ids],
                              scores, [names[k] for k in keys], ranks, ties)
    assert recall_summary(records, ks=(1, 5)) == expected
    assert summarise_records(records)["label"]["accuracy"] == pytest.approx(expected["r1"])
    deep = next(r for r in records if r["answer_rank"] > 5)
    assert deep["answer"] is None and deep["outcome"] == "wrong"
    hit = next(r for r in records if r["answer_rank"] <= 5)
    assert hit["candidates"][hit["answer"]]["text"] == hit["answer_text"]


def test_ranking_records_split_a_tie_at_the_top():
    # v0: its text ties one other text at the top (rank 2 by id): credit 1/2 at k = 1, full at k = 2, expected rank
    # 1.5; the median of 1.5, 1 and inf is 1.5.
    # v1: alone at the top. v2: deeper than searched.
    records = ranking_records(["v0", "v1", "v2"], "label", [["b", "a"], ["c", "a"], ["a", "b"]],
                              np.array([[0.5, 0.5], [0.9, 0.1], [0.8, 0.7]]), ["a", "c", "z"],
                              np.array([2, 1, np.inf]), np.array([[0, 1, 1], [0, 0, 1], [0, 0, 0]]))
    assert [(r["outcome"], r["credit"]) for r in records] == [("tie", 0.5), ("correct", 1.0), ("wrong", 0.0)]
    assert records[0]["answer_ties"] == [0, 1, 1] and records[2]["answer_ties"] is None
    assert recall_summary(records, ks=(1, 2)) == {"r1": 50.0, "r2": pytest.approx(200 / 3), "medr": 1.5, "n": 3}


def test_actionbench_records_from_per_clip_arrays():
    texts = ["push ball", "pull ball", "push cup", "Pushing something"]
    own = np.array([0.9, 0.2, 0.5], dtype=np.float32)
    rev = np.array([0.1, 0.2, 0.7], dtype=np.float32)
    records = actionbench_records(
        ids=np.array(["a", "b", "c"], dtype=object), texts=texts, caption_idx=np.array([0, 0, 2]),
        template_idx=np.array([3, 3, -1]), negative_idx={"aa": np.array([1, -1, 1]), "or": np.array([2, 2, -1])},
        own=own, reversed_own=rev,
        negative_scores={"aa": np.array([0.3, 9.0, 0.8], np.float32), "or": np.array([0.95, 0.1, 9.0], np.float32)})
    got = [(r["task"], r["clip"], r["outcome"], r["class"]) for r in records]
    assert got == [("aa", "a", "correct", "Pushing something"), ("aa", "c", "wrong", None),
                   ("vr", "a", "correct", "Pushing something"), ("vr", "b", "tie", "Pushing something"),
                   ("vr", "c", "wrong", None), ("or", "a", "wrong", "Pushing something"),
                   ("or", "b", "correct", "Pushing something")]
    assert records[1]["candidates"] == [{"text": "push cup", "score": 0.5, "rank": 2},
                                        {"text": "pull ball", "score": pytest.approx(0.8), "rank": 1}]
    assert records[3]["candidates"][1]["video"] == "reversed"
    assert summarise_records(records)["vr"]["accuracy"] == pytest.approx(100 * 1.5 / 3)


def test_demo_tables_fit_the_console_and_keep_names():
    names = ["backbone", "kp-perceiver[vtc+dvdm]", "side-tuning[vtc+dvdm]-with-a-longer-name"]
    s = {"accuracy": 83.3, "n": 6, "ci95": [43.6, 97.0]}
    hit = {"v2t": {"r1": 40.0, "r5": 80.0}, "t2v": {"r1": 40.0, "r5": 80.0}}
    report = {"actionbench": {n: {"aa": s, "vr": s, "or": s} for n in names},
              "retrieval": {n: {t: hit for t in ("label", "template", "temporal")} for n in names},
              "mc": {names[0]: s, names[2]: s},
              "parameters": {"backbone": 1000, names[1]: 10, names[2]: 123456}}
    for width in (80, 200):
        console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
        console.print(study_actionbench_table(report))
        console.print(study_retrieval_table(report))
        console.print(study_mc_table(report))
        lines = console.export_text().splitlines()
        assert all(len(line) <= width for line in lines)
        for name in names:
            assert any(f"│ {name} " in line for line in lines)
        text = "\n".join(lines)
        assert text.count("83.3 [43.6-97.0]") == 9 + 2  # 3 models x 3 tasks, 2 in Table 3, never folded
        assert text.count("123.5K (12345.6%)") == 3  # Tables 1, 2 and 3
        assert "n = 6 questions, 5 candidate answers each; chance 20" in text
