"""`paxion report`: a self-contained, well-formed HTML page with every section, built from a tiny study folder."""

import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from tiny_cache import make_cache

from paxion.analysis.html import SECTIONS, curves_sentence, render_report, write_report
from paxion.analysis.items import pair_records, summarise_records, write_predictions
from paxion.analysis.saliency import saliency_summary
from paxion.cache.reader import Cache
from paxion.errors import PaxionError
from paxion.synth.encode import write_video

CLIPS = 6
MODELS = ("backbone", "kp-perceiver[vtc]", "kp-perceiver[vtc+dvdm]")


def _frames(clip: int) -> np.ndarray:
    """16 frames of 32x32: a square moving right (even clips) or left (odd clips) over a tinted background."""
    frames = np.full((16, 32, 32, 3), 40 * clip, dtype=np.uint8)
    for t in range(16):
        x = 2 + t if clip % 2 == 0 else 17 - t
        frames[t, 12:20, x:x + 8] = (255, 200, 0)
    return frames


def make_study(root, *, parts=True):
    """A demo-shaped folder: world videos, bench JSONL, three models' predictions and a report.json."""
    (root / "world" / "videos").mkdir(parents=True)
    (root / "bench").mkdir()
    bench = []
    for i in range(CLIPS):
        write_video(root / "world" / "videos" / f"{i}.mp4", _frames(i))
        direction = "left to right" if i % 2 == 0 else "right to left"
        bench.append({"id": str(i), "video": f"{i}.mp4", "start": None, "end": None,
                      "caption": f"Pushing <ball> {i} from {direction}",
                      "template": f"Pushing something from {direction}", "label": i % 2,
                      "aa_caption": f"Pulling <ball> {i} from {direction}",
                      "or_caption": f"Pushing <cube> {i} from {direction}"})
    (root / "bench" / "validation.jsonl").write_text("".join(json.dumps(b) + "\n" for b in bench))
    rng = np.random.default_rng(0)
    ids = [b["id"] for b in bench]
    classes = [b["template"] for b in bench]
    predictions, actionbench = {}, {}
    for m, model in enumerate(MODELS):
        records = []
        for task in ("aa", "vr", "or"):
            positive = rng.normal(size=CLIPS).astype(np.float32) + m
            negative = rng.normal(size=CLIPS).astype(np.float32)
            if task == "vr":
                negatives = [{"text": b["caption"], "video": "reversed"} for b in bench]
                positives = [{"text": b["caption"], "video": "forward"} for b in bench]
            else:
                negatives = [b[f"{task}_caption"] for b in bench]
                positives = [b["caption"] for b in bench]
            records += pair_records(ids, task, positive, negative, positive_labels=positives,
                                    negative_labels=negatives, classes=classes)
        rel = f"predictions/{m}.jsonl"
        (root / "predictions").mkdir(exist_ok=True)
        write_predictions(root / rel, records)
        predictions[model] = rel
        actionbench[model] = summarise_records(records)
    r1 = {"r1": 40.0, "r5": 80.0, "medr": 2.0, "n": CLIPS}
    retrieval = {model: {t: {"v2t": dict(r1, r1=40.0 + 10 * m), "t2v": r1} for t in ("label", "template", "temporal")}
                 for m, model in enumerate(MODELS)}
    summary = {"accuracy": 50.0, "n": 10, "ci95": [23.7, 76.3]}
    report = {
        "plan": {"quick": True, "train_clips": 12, "val_clips": CLIPS},
        "actionbench": actionbench,
        "retrieval": retrieval,
        "parameters": {"backbone": 1000, MODELS[1]: 10, MODELS[2]: 10},
        "timings_s": {"synth": 1.0, "train/x": 2.5},
    }
    if parts:
        report.update({
            "predictions": predictions,
            "mc": {model: summary for model in MODELS},
            "zeroshot": {model: {"moments": dict(summary, accuracy=50.0 - m)} for m, model in enumerate(MODELS)},
            "ablations": [{"name": "KP[VTC]+KF <i>", "model": MODELS[1], "reference": MODELS[2]}],
            "curves": {MODELS[1]: [{"epoch": e, "aa": 50 + e, "vr": 50 + 4 * e} for e in range(1, 6)],
                       MODELS[2]: [{"epoch": e, "aa": 60 + e, "vr": 70 + 2 * e} for e in range(1, 6)]},
            "saliency": {"split": "validation", "kept": 4, "total": CLIPS,
                         "thresholds": {"delta_vt": 0.003, "theta_vv": 0.95},
                         "examples": {"kept": [{"clip": "0", "delta_vt": 0.01, "theta_vv": 0.9}],
                                      "skipped": [{"clip": "1", "delta_vt": 0.0, "theta_vv": 0.99}]}},
        })
    (root / "report.json").write_text(json.dumps(report))
    return root


class _Page(HTMLParser):
    """Collects headings, image sources, links and checks that every opened element is closed."""

    VOID = frozenset({"meta", "img", "br", "hr", "link", "input"})

    def __init__(self):
        super().__init__()
        self.stack, self.headings, self.images, self.urls, self.scripts = [], [], [], [], 0
        self._in_heading = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        self.urls += [v for k, v in attrs.items() if k in ("href", "src") and v]
        self.scripts += tag == "script"
        if tag not in self.VOID:
            self.stack.append(tag)
        if tag in ("h2", "h3"):
            self._in_heading = True
            self.headings.append("")

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()
        self._in_heading = False if tag in ("h2", "h3") else self._in_heading

    def handle_data(self, data):
        if self._in_heading:
            self.headings[-1] += data


def _parse(html):
    page = _Page()
    page.feed(html)
    page.close()
    assert page.stack == []
    return page


def test_report_is_self_contained_and_has_every_section(tmp_path):
    folder = make_study(tmp_path / "study")
    out = write_report(folder, tmp_path / "report.html")
    html = out.read_text(encoding="utf-8")
    page = _parse(html)
    assert [h for h in page.headings if h in dict(SECTIONS).values()] == [name for _, name in SECTIONS]
    assert page.scripts == 0
    assert not re.search(r"https?://", html)
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    assert all(url.startswith(("#", "data:image/png;base64,")) for url in page.urls)
    # figures: actionbench, ablation bars, 3 per-class bars, curves, 2 saliency strips, example strips
    assert len(page.images) >= 1 + 1 + 3 + 1 + 2 + 1
    assert 'class="missing"' not in html  # every part was present
    assert "&lt;ball&gt;" in html and "<ball>" not in html and "KP[VTC]+KF &lt;i&gt;" in html
    assert "kp-perceiver[vtc+dvdm] vs backbone" in html
    assert "failure of kp-perceiver[vtc+dvdm]" in html and "kp-perceiver[vtc+dvdm] right, backbone not" in html
    assert "clip A" not in html and "Video Reversal" in html


def test_report_names_missing_parts(tmp_path):
    folder = make_study(tmp_path / "study", parts=False)
    html = render_report(folder)
    page = _parse(html)
    names = dict(SECTIONS)
    shown = ["overview", "actionbench", "retrieval", "cost"]
    assert [h for h in page.headings if h in names.values()] == [names[k] for k in shown]
    items = re.findall(r"<li>(.*?): (.*?)</li>", html.replace("&quot;", '"'))
    assert [name for name, _ in items] == [name for key, name in SECTIONS if key not in shown]  # one line each
    assert ("Learning curves", 'report.json has no "curves" ({model: [{epoch, aa, vr}]}, recorded by the demo).') in items
    assert all(f'href="#{key}"' in html for key in shown) and 'href="#curves"' not in html
    given = render_report(tmp_path, report=json.loads((folder / "report.json").read_text()), title="x")
    assert given == render_report(folder, title="x")  # a report dict instead of the folder's file


def test_report_errors_name_the_file(tmp_path):
    with pytest.raises(PaxionError, match="report.json"):
        render_report(tmp_path)
    (tmp_path / "report.json").write_text("{not json")
    with pytest.raises(PaxionError, match="not JSON"):
        render_report(tmp_path)


def test_curves_sentence_reports_the_gap():
    curves = {"a": [{"epoch": 1, "aa": 50, "vr": 50}, {"epoch": 2, "aa": 60, "vr": 90}],
              "b": [{"epoch": 1, "aa": 70, "vr": 80}, {"epoch": 2, "aa": 70, "vr": 92}]}
    text = curves_sentence(curves)
    assert "+30.0 points at epoch 1" in text and "+2.0 at epoch 2" in text and "narrows" in text


def test_saliency_summary_from_a_cache(tmp_path):
    cache = Cache(make_cache(tmp_path / "cache"))
    s = saliency_summary(cache, "validation", examples=2)
    salient = cache.read_split("validation", ["salient"])["salient"]
    assert (s["kept"], s["total"]) == (int(salient.sum()), 96)
    ids = list(cache.read_split("validation", ["id"])["id"])
    assert all(salient[ids.index(e["clip"])] for e in s["examples"]["kept"])
    assert not any(salient[ids.index(e["clip"])] for e in s["examples"]["skipped"])
    assert len(s["examples"]["kept"]) == 2 and s["thresholds"] == {"delta_vt": 0.003, "theta_vv": 0.95}
    assert saliency_summary(cache, "validation", examples=2) == s
