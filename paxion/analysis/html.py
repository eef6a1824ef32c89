"""`paxion report`: one self-contained HTML page of a study folder (PNG figures as data URIs, inline CSS, no script).

Reads FOLDER/report.json (the demo's: "actionbench", "retrieval", "parameters", "timings_s", "plan") and the
optional parts below where present; a section whose input is missing is left out, and a list at the top of the
page says in one line each what it needs. `write_inputs_report` also takes a set of runs (`paxion.analysis.runs`).

- "mc": {model: {"accuracy", "n", "ci95"}}: multiple-choice QA (Table 3 analog).
- "zeroshot": {model: {dataset: {"accuracy", "n", "ci95"}}}: zero-shot classification (Table 4 analog); the
  difference is relative to the model named "backbone".
- "ablations": [{"name", "model", "reference"}]: Figure 6 analog, retrieval R1 of `model` minus `reference`'s
  (points; both models in "retrieval").
- "predictions": {model: path of a JSONL of prediction records (paxion.analysis.items), relative to FOLDER},
  backbone first, the patched model last: paired tests, per-class results and the qualitative examples.
- "curves": {model: [{"epoch": int, "aa": %, "vr": %}, ...]}: learning curves.
- "saliency": the dict of `paxion.analysis.saliency.saliency_summary`.
- "clips": {"bench": bench JSONL, "videos": folder} relative to FOLDER, default bench/validation.jsonl and
  world/videos (the demo's): where the frames of the examples come from; {"missing": why} when there are none.
- "settings": {model: {setting: value}}: how the models differ (a table in the overview).
- "losses": {model: [{"epoch": int, "loss": float}, ...]}: training loss per epoch, drawn with the curves.
- "omitted": {section key: why}: said instead of the section's own message when that section has no data.
- "figure_title": the ActionBench figure's title (default: the demo's, naming the built-in world).
"""

from __future__ import annotations

import base64
import json
import tempfile
from collections.abc import Callable, Sequence
from html import escape
from pathlib import Path

import numpy as np

from paxion.analysis import figures
from paxion.analysis.items import per_class, read_json_object, read_jsonl, read_predictions, tasks_of
from paxion.analysis.paired import compare_models
from paxion.analysis.runs import collect
from paxion.atomic import write_text
from paxion.demo.report import plot_actionbench  # the demo's own figure, so screen and page agree
from paxion.errors import PaxionError, VideoDecodeError
from paxion.extract.video import read_frames

SECTIONS = (
    ("overview", "Overview"),
    ("actionbench", "ActionBench (Table 1 analog)"),
    ("retrieval", "Retrieval (Table 2 analog)"),
    ("mc", "Multiple-choice QA (Table 3 analog)"),
    ("zeroshot", "Zero-shot classification under domain shift (Table 4 analog)"),
    ("ablations", "Ablations (Figure 6 analog)"),
    ("paired", "Paired comparisons (exact McNemar test)"),
    ("per-class", "Per-class results"),
    ("curves", "Learning curves"),
    ("saliency", "State-change saliency (Figure 7 analog)"),
    ("examples", "Qualitative examples (Figures 5 and 9-11 analogs)"),
    ("cost", "Parameters and time"),
)
TASK_NAMES = {"aa": "Action Antonym", "vr": "Video Reversal", "or": "Object Replacement"}
RETRIEVAL_COLUMNS = (("label", "v2t"), ("label", "t2v"), ("template", "v2t"), ("temporal", "v2t"))
STRIP_FRAMES, STRIP_SIZE = 8, 96
CSS = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:1.5em auto;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
td.text,th.text{text-align:left;white-space:normal}
th{background:#f3f3f3;white-space:normal}.missing{color:#777;font-style:italic}.fig{max-width:100%;height:auto}
.strip{image-rendering:pixelated;max-width:100%;border:1px solid #ccc}
.example{border:1px solid #ddd;border-radius:4px;padding:.5em 1em;margin:1em 0}
.correct{color:#16794c}.wrong{color:#b3261e}.tie{color:#8a6d00}
nav a{margin-right:1em;white-space:nowrap}.wide{overflow-x:auto}
"""


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _ci(summary: dict) -> str:
    return "-" if summary.get("ci95") is None else f"{summary['ci95'][0]:.1f}-{summary['ci95'][1]:.1f}"


def _pct_ci(summary: dict | None) -> str:
    return "-" if not summary or summary.get("accuracy") is None else f"{_pct(summary['accuracy'])} [{_ci(summary)}]"


def _table(headers: list[str], rows: list[list[str]], *, text_columns: tuple[int, ...] = ()) -> str:
    head = "".join(f'<th class="text">{escape(h)}</th>' if j in text_columns else f"<th>{escape(h)}</th>"
                   for j, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f'<td class="text">{escape(c)}</td>' if j in text_columns else f"<td>{escape(c)}</td>"
                         for j, c in enumerate(row)) + "</tr>"
        for row in rows)
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _img(png: bytes, alt: str, css: str = "fig") -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="{css}" alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _p(text: str, css: str | None = None) -> str:
    return f'<p class="{css}">{escape(text)}</p>' if css else f"<p>{escape(text)}</p>"


class _Missing(str):
    """The HTML of a section or part with no data; a section whose whole body is one is left out of the page."""

    why: str


def _missing(text: str) -> str:
    html = _Missing(_p(text, "missing"))
    html.why = text
    return html


class _Folder:
    """The study folder's report.json, prediction records and clip frames, each loaded once."""

    def __init__(self, root: Path, report: dict | None, predictions: dict[str, list[dict]] | None = None) -> None:
        self.root = root
        self.report = read_json_object(root / "report.json", "study report") if report is None else report
        self.predictions = predictions if predictions is not None else {
            model: read_predictions(root / rel) for model, rel in self.report.get("predictions", {}).items()}
        clips = self.report.get("clips", {})
        self.no_frames = clips.get("missing")
        self.bench_path = root / clips.get("bench", "bench/validation.jsonl")
        self.videos = root / clips.get("videos", "world/videos")
        self._bench: dict[str, dict] | None = None

    def frames(self, clip: str) -> tuple[np.ndarray | None, str]:
        """The clip's strip frames, or None and why not."""
        if self.no_frames:
            return None, self.no_frames
        if self._bench is None:
            self._bench = {str(r["id"]): r for r in read_jsonl(self.bench_path)} if self.bench_path.exists() else {}
        record = self._bench.get(clip)
        if record is None:
            return None, f"clip {clip} is not in {self.bench_path.name} (frames not shown)"
        try:
            return read_frames(self.videos / record["video"], num_frames=STRIP_FRAMES, size=STRIP_SIZE,
                               start=record.get("start"), end=record.get("end")), ""
        except VideoDecodeError as exc:
            return None, f"frames not shown: {exc}"


def _overview(f: _Folder) -> str:
    plan = f.report.get("plan")
    parts = [_p("What the models of this study learned: the paper's tables on this folder's data, then where the "
                "aggregate numbers come from (per-class results, paired tests, curves, clips).")]
    if plan:
        parts.append(_table(["setting", "value"], [[k, str(v)] for k, v in plan.items()], text_columns=(1,)))
    else:
        parts.append(_missing("report.json has no \"plan\" (the study's sizes)."))
    settings = f.report.get("settings")
    if settings:
        keys = list(dict.fromkeys(k for row in settings.values() for k in row))
        parts.append(_p("How the models differ (their training configs' values that are not the same for all):"
                        if len(settings) > 1 else "The model's training config:"))
        parts.append(_table(["model", *keys], [[m, *(json.dumps(row.get(k)) for k in keys)]
                                               for m, row in settings.items()]))
    return "".join(parts)


def _actionbench(f: _Folder) -> str:
    bench = f.report.get("actionbench")
    if not bench:
        return _missing("report.json has no \"actionbench\" results.")
    rows = [[model, *(f"{_pct_ci(s[t])} n={s[t]['n']}" for t in TASK_NAMES)]
            for model, s in bench.items()]
    with tempfile.TemporaryDirectory() as tmp:
        png = plot_actionbench(f.report, Path(tmp) / "actionbench.png").read_bytes()
    return (_p("Accuracy (%) with the 95% Wilson interval on the probing tasks; chance is 50. A tie counts half.")
            + _table(["model", *(f"{n} (%)" for n in TASK_NAMES.values())], rows)
            + _img(png, "ActionBench accuracy per model and task"))


def _retrieval(f: _Folder) -> str:
    retrieval = f.report.get("retrieval")
    if not retrieval:
        return _missing("report.json has no \"retrieval\" results.")
    headers = ["model"] + [f"{task} {d} R{k}" for task, d in RETRIEVAL_COLUMNS for k in (1, 5)]
    rows = [[model] + [_pct(tasks.get(task, {}).get(d, {}).get(f"r{k}")) for task, d in RETRIEVAL_COLUMNS
                       for k in (1, 5)] for model, tasks in retrieval.items()]
    return _p("Recall at 1 and 5 (%): label retrieval both ways (object-centric), video-to-action retrieval "
              "with object-hidden templates, and its temporal subset (action-centric).") + _table(headers, rows)


def _mc(f: _Folder) -> str:
    mc = f.report.get("mc")
    if not mc:
        return _missing("report.json has no \"mc\" results (multiple-choice QA, e.g. NExT-QA).")
    rows = [[model, _pct(s["accuracy"]), _ci(s), str(s["n"])] for model, s in mc.items()]
    return _p("Accuracy (%) of choosing the right answer among the candidates.") + _table(
        ["model", "accuracy (%)", "95% CI", "n"], rows)


def _zeroshot(f: _Folder) -> str:
    zs = f.report.get("zeroshot")
    if not zs:
        return _missing("report.json has no \"zeroshot\" results (zero-shot classification on other datasets).")
    datasets = list(dict.fromkeys(d for per in zs.values() for d in per))
    base = zs.get("backbone", {})
    rows = []
    for model, per in zs.items():
        row = [model]
        for d in datasets:
            s, b = per.get(d), base.get(d)
            delta = ("" if s is None or b is None or not b["accuracy"] or model == "backbone"
                     else f" ({100 * (s['accuracy'] - b['accuracy']) / b['accuracy']:+.1f}%)")
            row.append("-" if s is None else f"{_pct(s['accuracy'])}{delta}")
        rows.append(row)
    return _p("Zero-shot accuracy (%); in brackets the relative change against the backbone.") + _table(
        ["model", *datasets], rows)


def _ablations(f: _Folder) -> str:
    ablations, retrieval = f.report.get("ablations"), f.report.get("retrieval", {})
    if not ablations:
        return _missing("report.json has no \"ablations\" ([{name, model, reference}] over its retrieval results).")
    labels, values, rows = [], [], []
    for a in ablations:
        model, ref = retrieval.get(a["model"]), retrieval.get(a["reference"])
        if model is None or ref is None:
            rows.append([a["name"], f"missing retrieval results of {a['model']} or {a['reference']}"])
            continue
        cells = [a["name"]]
        for task, d in RETRIEVAL_COLUMNS:
            x, y = model.get(task, {}).get(d, {}).get("r1"), ref.get(task, {}).get(d, {}).get("r1")
            if x is None or y is None:
                cells.append("-")
                continue
            cells.append(f"{x - y:+.1f}")
            labels.append(f"{a['name']}: {task} {d}")
            values.append(x - y)
        rows.append(cells)
    body = _table(["ablation", *(f"{t} {d} R1" for t, d in RETRIEVAL_COLUMNS)], rows)
    if values:
        body += _img(figures.difference_bars(labels, values, xlabel="R1 of the ablated setting minus the reference "
                                             "(points)"), "ablation differences")
    return _p("Each ablated setting's R1 minus its reference model's, in points: below zero, the removed part helped.") + body


def _paired(f: _Folder) -> str:
    if len(f.predictions) < 2:
        return _missing("Needs prediction files of two or more models (report.json \"predictions\").")
    rows = []
    for pair, tasks in compare_models(f.predictions).items():
        for task, s in tasks.items():
            rows.append([pair, task.upper(), str(s["n"]), _pct(s["accuracy_a"]), _pct(s["accuracy_b"]),
                         f"{s['difference']:+.1f}", str(s["a_only"]), str(s["b_only"]), f"{s['p_value']:.3g}"])
    return (_p("Both models scored on the same clips: the accuracy difference (points, ties count half) and the exact "
               "McNemar p-value over the clips only one of them gets right (for the test a tie is a guess, resolved "
               "the same way on every run).")
            + _table(["comparison (A vs B)", "task", "n", "A (%)", "B (%)", "A - B", "only A right",
                      "only B right", "p"], rows))


def _per_class(f: _Folder) -> str:
    if not f.predictions:
        return _missing("Needs prediction files with each clip's class (report.json \"predictions\").")
    tables = {model: per_class(records) for model, records in f.predictions.items()}
    first, last = next(iter(tables)), list(tables)[-1]
    parts = [_p(f"Accuracy per class (template) and task for each model; classes from {first}'s worst to its best "
                f"(equal ones: {last}'s worst first), so the rows at the top are what {first} misses. n counts the "
                "clips of the class with that task.")]
    for task in tasks_of(next(iter(f.predictions.values()))):
        order = [c for c, row in tables[first].items() if task in row]
        order.sort(key=lambda c: (tables[first][c][task]["accuracy"],
                                  tables[last].get(c, {}).get(task, {}).get("accuracy") or 0.0, c))
        parts.append(f"<h3>{escape(TASK_NAMES.get(task, task))}</h3>")
        parts.append(_img(figures.per_class_bars(tables, task, order=order), f"per-class {task} accuracy"))
        rows = [[c, str(tables[first][c][task]["n"]), *(_pct_ci(tables[m].get(c, {}).get(task)) for m in tables)]
                for c in order]
        parts.append(_table(["class", "n", *(f"{m} (%, 95% CI)" for m in tables)], rows, text_columns=(0,)))
    return "".join(parts)


def curves_sentence(curves: dict[str, list[dict]], *, metric: str = "vr") -> str:
    """What the last two models' curves of `metric` show: their gap where it is largest and at the last epoch."""
    names = list(curves)
    finals = "; ".join(f"{m} ends at {curves[m][-1][metric]:.1f}% {metric.upper()} after epoch {curves[m][-1]['epoch']}"
                       for m in names if curves[m])
    if len(names) < 2:
        return finals + "."
    a, b = names[-2], names[-1]
    pa, pb = {p["epoch"]: p[metric] for p in curves[a]}, {p["epoch"]: p[metric] for p in curves[b]}
    common = sorted(pa.keys() & pb.keys())
    if not common:
        return finals + "."
    gaps = {e: pb[e] - pa[e] for e in common}
    widest = max(common, key=lambda e: abs(gaps[e]))
    last = common[-1]
    trend = ("the gap narrows with more epochs, so at this budget the difference is one of speed as much as of reach"
             if abs(gaps[last]) < abs(gaps[widest]) else "the gap holds to the last epoch")
    return (f"{finals}. {b} minus {a}: {gaps[widest]:+.1f} points at epoch {widest}, the widest, and "
            f"{gaps[last]:+.1f} at epoch {last}; {trend}.")


def _curves(f: _Folder) -> str:
    curves, losses = f.report.get("curves"), f.report.get("losses")
    if not curves and not losses:
        return _missing("report.json has no \"curves\" ({model: [{epoch, aa, vr}]}, recorded by the demo).")
    parts = []
    if curves:
        parts += [_p("ActionBench AA and VR on the validation split after each training epoch."),
                  _img(figures.curves_figure(curves), "learning curves"), _p(curves_sentence(curves))]
    else:
        parts.append(_missing("No model scored ActionBench after each epoch (train with eval_every_epoch)."))
    if losses:
        last = "; ".join(f"{m}: {points[-1]['loss']:.4f} at epoch {points[-1]['epoch']}" for m, points in losses.items())
        parts += [_p("Training loss per epoch (mean over the epoch's steps)."),
                  _img(figures.curves_figure(losses, metrics=("loss",), ylabel="training loss", chance=None),
                       "training loss per epoch"), _p(f"Last epoch's loss: {last}.")]
    return "".join(parts)


def _strip(f: _Folder, clip: str) -> str:
    frames, why = f.frames(clip)
    return _missing(why) if frames is None else _img(figures.frame_strip(frames), f"frames of clip {clip}", "strip")


def _saliency(f: _Folder) -> str:
    s = f.report.get("saliency")
    if not s:
        return _missing("report.json has no \"saliency\" (see paxion.analysis.saliency.saliency_summary).")
    th = s.get("thresholds", {})
    parts = [_p(f"The ATM loss trains only on clips with a salient state change (delta_vt > {th.get('delta_vt')} and "
                f"theta_vv < {th.get('theta_vv')}): {s['kept']} of {s['total']} {s['split']} clips are kept "
                f"({100 * s['kept'] / max(s['total'], 1):.1f}%). Frames run left to right in time.")]
    for kind in ("kept", "skipped"):
        parts.append(f"<h3>{escape(kind.capitalize())} clips</h3>")
        examples = s.get("examples", {}).get(kind, [])
        if not examples:
            parts.append(_missing(f"no {kind} clip in the examples."))
        for e in examples:
            parts.append(_p(f"clip {e['clip']}: delta_vt = {e['delta_vt']:.4f}, theta_vv = {e['theta_vv']:.3f}"))
            parts.append(_strip(f, e["clip"]))
    return "".join(parts)


def _margin(record: dict) -> float:
    """The true candidate's score minus the best other candidate's."""
    scores = [c["score"] for c in record["candidates"]]
    return scores[record["answer"]] - max(s for j, s in enumerate(scores) if j != record["answer"])


def _pick_examples(f: _Folder, per_kind: int) -> list[tuple[str, str, tuple[str, str]]]:
    """(title, task, key) of the clips to show: ones the last model gets right and the first does not (largest
    margin of the last model first), and failures of the last model (most confident first), `per_kind` of each
    per task."""
    models = list(f.predictions)
    first = {(r["task"], r["clip"]): r["outcome"] for r in f.predictions[models[0]]}
    records = f.predictions[models[-1]]
    chosen = []
    for task in tasks_of(records):
        rows = [r for r in records if r["task"] == task]
        learned = [r for r in rows if r["outcome"] == "correct" and first.get((task, r["clip"])) != "correct"]
        failed = sorted((r for r in rows if r["outcome"] == "wrong"), key=_margin)
        learned = sorted(learned, key=_margin, reverse=True) if len(models) > 1 else []
        chosen += [(f"{models[-1]} right, {models[0]} not", task, (task, r["clip"])) for r in learned[:per_kind]]
        chosen += [(f"failure of {models[-1]}", task, (task, r["clip"])) for r in failed[:per_kind]]
    return chosen


def _examples(f: _Folder, per_kind: int) -> str:
    if not f.predictions:
        return _missing("Needs prediction files (report.json \"predictions\").")
    by_model = {m: {(r["task"], r["clip"]): r for r in records} for m, records in f.predictions.items()}
    parts = [_p("Single clips: the frames, the true text (first candidate) and the candidates with each model's "
                "score and rank (1 = its choice). For Video Reversal the candidates are the clip as recorded and "
                "played backwards, with the same text.")]
    picked = _pick_examples(f, per_kind)
    if not picked:
        parts.append(_missing("no clip the last model learned or failed."))
    for title, task, key in picked:
        record = by_model[list(by_model)[-1]][key]
        truth = record["candidates"][record["answer"]]
        header = [f"candidate ({TASK_NAMES.get(task, task)})"] + [f"{m}: score (rank)" for m in by_model]
        rows = []
        for j, cand in enumerate(record["candidates"]):
            label = cand["text"] + (f" [{cand['video']} clip]" if "video" in cand else "")
            cells = []
            for records in by_model.values():
                other = records.get(key)
                c = other["candidates"][j] if other else None
                cells.append("-" if c is None else f"{c['score']:.4f} ({c['rank']})")
            rows.append([("true: " if j == record["answer"] else "") + label, *cells])
        outcomes = ", ".join(f"{m}: {by_model[m][key]['outcome']}" for m in by_model if key in by_model[m])
        parts.append('<div class="example">'
                     + f"<h3>{escape(title)}: clip {escape(key[1])}, {escape(TASK_NAMES.get(task, task))}</h3>"
                     + _p(f"class: {record.get('class') or '-'}; true text: {truth['text']}; {outcomes}")
                     + _strip(f, key[1]) + _table(header, rows, text_columns=(0,)) + "</div>")
    return "".join(parts)


def _cost(f: _Folder) -> str:
    params, timings = f.report.get("parameters"), f.report.get("timings_s")
    parts = []
    if params:
        parts.append(_table(["model", "trainable parameters (backbone: all, frozen)"], [[m, "-" if n is None else f"{n:,}"] for m, n in params.items()]))
    else:
        parts.append(_missing("report.json has no \"parameters\"."))
    if timings:
        rows = [[stage, f"{s:.1f}"] for stage, s in timings.items()] + [["total", f"{sum(timings.values()):.1f}"]]
        parts.append(_table(["stage", "seconds"], rows))
    else:
        parts.append(_missing("report.json has no \"timings_s\"."))
    return _p("Trainable parameters of each model (the backbone's are frozen) and seconds per stage.") + "".join(parts)


def render_report(folder: str | Path, *, report: dict | None = None, predictions: dict[str, list[dict]] | None = None,
                  examples: int = 2, title: str | None = None) -> str:
    """The HTML page of a study folder (see the module docstring for what it reads).

    report: the report dict to use instead of folder/report.json (e.g. assembled from a set of runs; its relative
    paths stay relative to `folder`). predictions: {model: prediction records} to use instead of the files listed
    in report["predictions"] (default None: read those). examples: clips shown per kind (learned, failed) and task
    (default 2). title: default "paxion report: FOLDER NAME". Raises PaxionError when report.json or a listed
    prediction file is missing or malformed.
    """
    f = _Folder(Path(folder), report, predictions)
    builders: dict[str, Callable[[], str]] = {
        "overview": lambda: _overview(f), "actionbench": lambda: _actionbench(f), "retrieval": lambda: _retrieval(f),
        "mc": lambda: _mc(f), "zeroshot": lambda: _zeroshot(f), "ablations": lambda: _ablations(f),
        "paired": lambda: _paired(f), "per-class": lambda: _per_class(f), "curves": lambda: _curves(f),
        "saliency": lambda: _saliency(f), "examples": lambda: _examples(f, examples), "cost": lambda: _cost(f),
    }
    title = title or f"paxion report: {Path(folder).resolve().name}"
    bodies = {key: builders[key]() for key, _ in SECTIONS}
    shown = [(key, name) for key, name in SECTIONS if not isinstance(bodies[key], _Missing)]
    whys = f.report.get("omitted", {})
    left_out = "".join(f"<li>{escape(name)}: {escape(whys.get(key) or bodies[key].why)}</li>"
                       for key, name in SECTIONS if isinstance(bodies[key], _Missing))
    if left_out:
        bodies["overview"] += f'<div class="missing"><p>Not shown, for lack of data:</p><ul>{left_out}</ul></div>'
    nav = "".join(f'<a href="#{key}">{escape(name)}</a> ' for key, name in shown)
    body = "".join(f'<section id="{key}"><h2>{escape(name)}</h2>{bodies[key]}</section>' for key, name in shown)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<style>{CSS}</style></head><body><h1>{escape(title)}</h1><nav>{nav}</nav>{body}</body></html>\n")


def write_report(folder: str | Path, out_html: str | Path, *, report: dict | None = None,
                 predictions: dict[str, list[dict]] | None = None, examples: int = 2, title: str | None = None) -> Path:
    """Write `render_report(folder, ...)` with these arguments to `out_html` atomically; return its path."""
    out_html = Path(out_html)
    write_text(out_html, render_report(folder, report=report, predictions=predictions, examples=examples, title=title))
    return out_html


def write_inputs_report(inputs: Sequence[str | Path], out_html: str | Path | None = None, *, cache=None,
                        examples: int = 2, **collect_options) -> Path:
    """`paxion report`: the page of a demo folder (one input holding report.json), or of a set of runs and
    `paxion eval` outputs gathered by `paxion.analysis.runs.collect(inputs, cache=cache, **collect_options)`.

    out_html: default INPUT/report.html for one folder. cache: a `paxion.cache.reader.Cache` to score the runs on
    (not for a demo folder). Raises PaxionError for no input, several inputs without out_html, a demo folder with a
    cache, and whatever `collect` and `render_report` raise.
    """
    paths = [Path(p) for p in inputs]
    if not paths:
        raise PaxionError("nothing to report on: give a demo folder, run folders or `paxion eval` outputs")
    if out_html is None:
        if len(paths) > 1 or not paths[0].is_dir():
            raise PaxionError(f"{len(paths)} inputs: name the HTML file to write (--out)")
        out_html = paths[0] / "report.html"
    if len(paths) == 1 and (paths[0] / "report.json").is_file():
        if cache is not None or collect_options.get("bench") or collect_options.get("videos"):
            raise PaxionError(f"{paths[0]}: a demo folder is reported from its report.json; --cache, --bench and "
                              "--videos are for runs")
        return write_report(paths[0], out_html, examples=examples)
    report, records = collect(paths, cache=cache, **collect_options)
    names = list(report.get("actionbench") or report.get("settings") or {})
    title = "paxion report: " + (", ".join(names) if len(names) <= 4 else f"{len(names)} models")
    return write_report(Path.cwd(), out_html, report=report, predictions=records, examples=examples, title=title)
