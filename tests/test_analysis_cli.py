"""The analysis on the command line: eval / retrieve --predictions, per-class, paired runs, report, human baseline."""

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner
from test_analysis_human import _bench
from tiny_cache import make_cache

from paxion.analysis.items import read_predictions, recall_summary, summarise_records
from paxion.cli import cli
from paxion.trainer.train import train

FAST = {"batch_size": 32, "lr": 1e-2, "num_latents": 4, "heads": 2, "dim_head": 16, "eval_split": None}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("analysis-cli")
    cache = make_cache(root / "cache", clips={"train": 64, "validation": 24}, shard_size=10)
    train(cache, root / "run", options=dict(FAST, epochs=3), device="cpu")
    return cache, root / "run"


def _invoke(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def test_eval_predictions_and_per_class_agree_with_the_aggregate(trained, tmp_path):
    cache, run = trained
    out, predictions = tmp_path / "eval.json", tmp_path / "eval.jsonl"
    result = _invoke("eval", "--cache", cache, "--run", run, "--json", out, "--predictions", predictions,
                     "--device", "cpu", "--batch-size", 7, "--per-class")
    written = json.loads(out.read_text())
    records = read_predictions(predictions)
    summary = summarise_records(records)
    for task in ("aa", "vr", "or"):
        assert summary[task]["accuracy"] == pytest.approx(written[task]["accuracy"])
        assert summary[task]["n"] == written[task]["n"] == 24
        assert sum(row[task]["n"] for row in written["per_class"]) == 24  # counts add up over classes
    means = [np.mean([row[t]["accuracy"] for t in ("aa", "vr", "or")]) for row in written["per_class"]]
    assert means == sorted(means)  # worst class first
    assert {row["class"] for row in written["per_class"]} == {r["class"] for r in records}
    assert "per class" in result.output
    first = records[0]
    assert first["task"] == "aa" and first["answer"] == 0 and len(first["candidates"]) == 2
    assert {c["rank"] for c in first["candidates"]} == {1, 2}


def test_eval_two_models_prints_a_mcnemar_row(trained, tmp_path):
    cache, run = trained
    out = tmp_path / "both.json"
    result = _invoke("eval", "--cache", cache, "--backbone-only", "--run", run, "--json", out, "--device", "cpu")
    written = json.loads(out.read_text())
    assert set(written["models"]) == {"backbone", str(run)}
    pair = written["paired"][f"{run} vs backbone"]
    assert set(pair) == {"aa", "vr", "or"}
    vr = pair["vr"]
    assert vr["difference"] == pytest.approx(written["models"][str(run)]["vr"]["accuracy"] - 50.0)  # backbone ties
    assert "McNemar" in result.output and f"{run} vs backbone VR" in result.output.replace("\n", "")


def test_retrieve_predictions_agree_with_the_aggregate(trained, tmp_path):
    cache, run = trained
    out, predictions = tmp_path / "r.json", tmp_path / "r.jsonl"
    _invoke("retrieve", "--cache", cache, "--run", run, "--task", "template", "--json", out, "--predictions",
            predictions, "--device", "cpu")
    written = json.loads(out.read_text())
    records = read_predictions(predictions)
    assert recall_summary(records) == written["v2t"]
    assert all(r["answer_text"] == r["class"] for r in records)


def test_report_command_writes_html(tmp_path):
    (tmp_path / "report.json").write_text(json.dumps({"actionbench": {"backbone": {
        t: {"accuracy": 50.0, "n": 4, "ci95": [15.0, 85.0]} for t in ("aa", "vr", "or")}}}))
    _invoke("report", tmp_path, "--out", tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "backbone" in html


def test_human_eval_round_trip_on_the_command_line(tmp_path):
    bench, videos, _ = _bench(tmp_path)
    out = tmp_path / "human"
    _invoke("bench", "human-eval", "--bench", bench, "--videos", videos, "--out", out, "--n", 3, "--seed", 2)
    key = {k["item"]: k["answer"] for k in json.loads((out / "key.json").read_text())["items"]}
    with open(out / "sheet.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    wrong = rows[0]["item"]
    for row in rows:
        row["answer"] = key[row["item"]] if row["item"] != wrong else {"A": "B", "B": "A"}[key[row["item"]]]
    with open(tmp_path / "filled.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    scores = tmp_path / "scores.json"
    result = _invoke("bench", "human-score", out, tmp_path / "filled.csv", "--json", scores)
    written = json.loads(scores.read_text())
    first_task = rows[0]["task"]
    n = written[first_task]["n"]
    assert written[first_task]["accuracy"] == pytest.approx(100 * (n - 1) / n)
    assert sum(s["n"] for s in written.values()) == len(rows) and "human" in result.output
