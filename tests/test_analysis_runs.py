"""`paxion report` on a set of runs: two tiny trained runs -> one well-formed, self-contained page whose numbers are
those of `paxion eval --json` on the same runs."""

import json
import re
import sys
from html import unescape

import numpy as np
import pytest
from click.testing import CliRunner
from test_analysis_report import _parse
from tiny_cache import make_cache

from paxion.analysis.html import SECTIONS, write_inputs_report
from paxion.analysis.runs import collect
from paxion.cache.reader import Cache
from paxion.cli import cli, main
from paxion.errors import PaxionError
from paxion.synth.encode import write_video
from paxion.trainer.train import train

FAST = {"batch_size": 32, "lr": 1e-2, "num_latents": 4, "heads": 2, "dim_head": 16, "epochs": 3,
        "eval_split": "validation"}
NAMES = dict(SECTIONS)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A cache, a folder with two runs (a: ActionBench after every epoch; b: another learning rate), and the
    validation split's bench JSONL and videos (one tiny clip per cache clip)."""
    root = tmp_path_factory.mktemp("runs-report")
    cache = make_cache(root / "cache", clips={"train": 64, "validation": 24}, shard_size=10)
    train(cache, root / "runs" / "a", options=dict(FAST, eval_every_epoch=True), device="cpu")
    train(cache, root / "runs" / "b", options=dict(FAST, lr=3e-3), device="cpu")
    (root / "videos").mkdir()
    ids = Cache(cache).read_split("validation", ["id"])["id"]
    lines = []
    for k, clip in enumerate(ids):
        write_video(root / "videos" / f"{clip}.mp4", np.full((8, 16, 16, 3), 10 * k, dtype=np.uint8))
        lines.append(json.dumps({"id": str(clip), "video": f"{clip}.mp4", "start": None, "end": None}) + "\n")
    (root / "validation.jsonl").write_text("".join(lines))
    return root


def _invoke(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def _cell(s: dict) -> str:
    """An ActionBench cell of the page, as html.py writes it."""
    return f"{s['accuracy']:.1f} [{s['ci95'][0]:.1f}-{s['ci95'][1]:.1f}] n={s['n']}"


def _text(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", "|", html))


def test_runs_report_agrees_with_eval(runs, tmp_path):
    out = tmp_path / "report.html"
    _invoke("report", runs / "runs", "--cache", runs / "cache", "--bench", runs / "validation.jsonl",
            "--videos", runs / "videos", "--device", "cpu", "--out", out)
    html = out.read_text(encoding="utf-8")
    page = _parse(html)
    shown = ["overview", "actionbench", "paired", "per-class", "curves", "saliency", "examples", "cost"]
    assert [h for h in page.headings if h in NAMES.values()] == [NAMES[k] for k in shown]
    assert not re.search(r"https?://", html) and page.scripts == 0
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    # actionbench, 3 per-class bars, curves + loss, saliency strips, example strips
    assert len(page.images) >= 1 + 3 + 2 + 2 + 1
    assert "frames not shown" not in html
    text = _text(html)
    omitted = dict(re.findall(r"<li>(.*?): (.*?)</li>", html))
    assert set(omitted) == {NAMES[k] for k in ("retrieval", "mc", "zeroshot", "ablations")}
    assert "ActionBench only" in omitted[NAMES["retrieval"]]

    evaluated = tmp_path / "eval.json"
    _invoke("eval", "--cache", runs / "cache", "--backbone-only", "--run", runs / "runs" / "a", "--run",
            runs / "runs" / "b", "--json", evaluated, "--device", "cpu")
    written = json.loads(evaluated.read_text())
    for name, model in (("backbone", "backbone"), ("a", str(runs / "runs" / "a")), ("b", str(runs / "runs" / "b"))):
        result = written["models"][model]
        assert f"|{name}||" + "||".join(_cell(result[t]) for t in ("aa", "vr", "or")) + "|" in text
    for pair, key in (("b vs a", f"{runs / 'runs' / 'b'} vs {runs / 'runs' / 'a'}"),
                      ("a vs backbone", f"{runs / 'runs' / 'a'} vs backbone")):
        for task, s in written["paired"][key].items():
            row = (f"|{pair}||{task.upper()}||{s['n']}||{s['accuracy_a']:.1f}||{s['accuracy_b']:.1f}||"
                   f"{s['difference']:+.1f}||{s['a_only']}||{s['b_only']}||{s['p_value']:.3g}|")
            assert row in text
    # the settings that differ (lr, eval_every_epoch) and not those that do not (epochs)
    assert re.search(r"\|model\|\|eval_every_epoch\|\|lr\|", text) and "|epochs|" not in text
    a_curve = [json.loads(line) for line in (runs / "runs" / "a" / "metrics.jsonl").read_text().splitlines()]
    last = [m for m in a_curve if "aa" in m and "epoch" in m][-1]
    assert f"a ends at {last['vr']:.1f}% VR after epoch 3" in text


def test_saved_results_without_a_cache(runs, tmp_path):
    """Runs alone: the runs' end-of-training eval (metrics.jsonl); the per-clip sections say what they need."""
    report, records = collect([runs / "runs" / "a", runs / "runs" / "b"])
    assert records == {} and list(report["actionbench"]) == ["a", "b"]
    final = [json.loads(line) for line in (runs / "runs" / "b" / "metrics.jsonl").read_text().splitlines()][-1]
    assert report["actionbench"]["b"]["vr"] == final["vr"] and final["eval"] == "validation"
    assert [p["epoch"] for p in report["losses"]["b"]] == [1, 2, 3] and "b" not in report["curves"]
    out = write_inputs_report([runs / "runs" / "a", runs / "runs" / "b"], tmp_path / "r.html")
    html = out.read_text(encoding="utf-8")
    page = _parse(html)
    assert NAMES["paired"] not in page.headings and NAMES["curves"] in page.headings
    omitted = dict(re.findall(r"<li>(.*?): (.*?)</li>", html))
    assert "give --cache CACHE" in omitted[NAMES["paired"]] and set(omitted) >= {NAMES["per-class"], NAMES["examples"]}


def test_eval_outputs_as_inputs(runs, tmp_path):
    """`paxion eval --run A --run B --predictions P --json J`: the page of P agrees with J."""
    predictions, evaluated = tmp_path / "p.jsonl", tmp_path / "e.json"
    _invoke("eval", "--cache", runs / "cache", "--run", runs / "runs" / "a", "--run", runs / "runs" / "b",
            "--predictions", predictions, "--json", evaluated, "--device", "cpu")
    written = json.loads(evaluated.read_text())
    from_records, records = collect([predictions])
    from_json, _ = collect([evaluated])
    assert set(records) == set(written["models"])
    for model, result in written["models"].items():
        for t in ("aa", "vr", "or"):
            assert from_records["actionbench"][model][t]["accuracy"] == pytest.approx(result[t]["accuracy"])
            assert from_json["actionbench"][model][t] == result[t]
    out = write_inputs_report([predictions], tmp_path / "p.html")
    assert NAMES["paired"] in _parse(out.read_text(encoding="utf-8")).headings


def test_inputs_that_are_not_runs_fail_in_one_line(runs, tmp_path, monkeypatch, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(PaxionError, match="neither a demo folder"):
        collect([tmp_path / "empty"])
    with pytest.raises(PaxionError, match="name the HTML file"):
        write_inputs_report([runs / "runs" / "a", runs / "runs" / "b"])
    with pytest.raises(PaxionError, match="given twice"):
        collect([runs / "runs" / "a", runs / "runs" / "a"])
    monkeypatch.setattr(sys, "argv", ["paxion", "report", str(tmp_path / "empty")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and err.count("\n") == 1 and "empty: neither a demo folder" in err
