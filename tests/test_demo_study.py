"""The demo's analysis parts on a tiny study: learning curves, prediction records, saliency, ablations, zero-shot,
multiple choice on the NExT-QA layout."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_demo import TINY, _Quiet

from paxion.analysis.items import read_predictions, summarise_records
from paxion.bench.files import read_bench
from paxion.cache.reader import Cache
from paxion.demo.study import ABLATIONS, CURVES, run_study


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return root, run_study(root, plan=TINY, device="cpu", reporter=_Quiet())


def test_curves_predictions_and_saliency(study):
    root, report = study
    assert list(report["curves"]) == list(CURVES)
    for name, curve in report["curves"].items():
        assert [m["epoch"] for m in curve] == list(range(1, TINY.patch_epochs + 1))
        assert {"aa", "vr", "or"} <= curve[-1].keys()
        assert curve[-1]["aa"] == pytest.approx(report["actionbench"][name]["aa"]["accuracy"])  # the final model
    assert list(report["predictions"]) == list(report["actionbench"])  # backbone and every patcher
    for name, path in report["predictions"].items():
        summary = summarise_records(read_predictions(root / path))
        for task in ("aa", "vr", "or"):
            assert summary[task]["accuracy"] == pytest.approx(report["actionbench"][name][task]["accuracy"])
            assert summary[task]["n"] == report["actionbench"][name][task]["n"]
    assert report["saliency"]["total"] == TINY.val_clips


def test_ablations_and_zeroshot(study):
    root, report = study
    assert [(a["name"], a["model"], a["reference"]) for a in report["ablations"]] == list(ABLATIONS)
    assert all(a["model"] in report["retrieval"] and a["reference"] in report["retrieval"] for a in report["ablations"])
    assert list(report["zeroshot"]) == ["backbone", "kp-perceiver-ft[vtc]", "side-tuning[vtc+dvdm]", "paxion[vtc+dvdm]",
                                        "paxion[vtc+dvdm] without fuser", "paxion[vtc+dvdm] + backbone ensemble"]
    for per in report["zeroshot"].values():
        assert per["shifted world"]["n"] == TINY.shift_clips  # every shifted clip has a class among the candidates
    assert json.loads((root / "report.json").read_text())["zeroshot"] == report["zeroshot"]
    html = (root / "report.html").read_text()
    assert "KP[VTC]+KF" in html and "without fuser" in html
    for section in ("curves", "saliency", "zeroshot", "ablations", "per-class"):  # none says what it lacks
        assert 'class="missing"' not in html.split(f'id="{section}"')[1].split("</section>")[0], section


def test_multiple_choice_on_the_nextqa_layout(study):
    root, report = study
    assert list(report["mc"]) == ["backbone", "paxion[mc]"]  # TINY, like QUICK, trains no mc+vac run
    meta, questions = read_bench(root / "nextqa" / "bench")
    assert meta["dataset"] == "nextqa" and len(questions["val"]) == TINY.val_clips  # one question per clip
    for result in report["mc"].values():
        assert result["n"] == TINY.val_clips
        assert result["ci95"][0] <= result["accuracy"] <= result["ci95"][1]
    # The backbone's answer, computed here from the cache: the candidate whose text is nearest the pooled clip.
    cache = Cache(root / "nextqa" / "cache")
    val = cache.read_split("val", ["pooled", "mc_idx", "mc_answer"])
    clips = val["pooled"] / np.linalg.norm(val["pooled"], axis=-1, keepdims=True)
    texts = cache.text_emb[val["mc_idx"]]
    texts = texts / np.linalg.norm(texts, axis=-1, keepdims=True)
    chosen = np.einsum("nd,nkd->nk", clips, texts).argmax(-1)
    assert report["mc"]["backbone"]["accuracy"] == pytest.approx(100 * np.mean(chosen == val["mc_answer"]))
    assert report["parameters"]["paxion[mc]"] == report["parameters"]["paxion[vtc+dvdm]"]  # same model kind
    assert json.loads((root / "report.json").read_text())["mc"] == report["mc"]
    html = (root / "report.html").read_text().split('id="mc"')[1].split("</section>")[0]
    assert 'class="missing"' not in html and "paxion[mc]" in html and f"<td>{TINY.val_clips}</td>" in html
