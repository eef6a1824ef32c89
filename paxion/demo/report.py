"""The study's report: the paper's Table 1 and Table 2 analogs as rich tables, and the ActionBench figure."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.table import Table

from paxion.analysis.tables import ModelTables
from paxion.trainer.models import format_parameters

TASK_NAMES = {"aa": "Action Antonym", "vr": "Video Reversal", "or": "Object Replacement"}
RETRIEVAL_COLUMNS = (("label", "v2t"), ("label", "t2v"), ("template", "v2t"), ("temporal", "v2t"))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _params(report: dict, name: str) -> str:
    if name == "backbone":
        return "-"
    return format_parameters(report["parameters"][name], report["parameters"].get("backbone"))


def actionbench_table(report: dict) -> ModelTables:
    """Table 1 analog: ActionBench accuracy (%) with the 95% interval, per model (split to fit, names never cut)."""
    bench = report["actionbench"]
    names = list(bench)
    columns = [("trainable params", [_params(report, name) for name in names])]
    for key in TASK_NAMES:
        cells = []
        for name in names:
            s = bench[name][key]
            ci = "" if s["accuracy"] is None else f" [{s['ci95'][0]:.0f}-{s['ci95'][1]:.0f}]"
            cells.append(f"{_pct(s['accuracy'])}{ci}")
        columns.append((f"{key.upper()} % [95% CI]", cells))
    first = next(iter(bench.values()))
    caption = "clips: " + ", ".join(f"{k.upper()} n={first[k]['n']}" for k in TASK_NAMES) + "; chance = 50"
    return ModelTables(title="ActionBench on the built-in world (validation; Table 1 analog)", names=names,
                       columns=columns, caption=caption)


def retrieval_table(report: dict) -> ModelTables:
    """Table 2 analog: label retrieval both ways, video-to-action (template) and the temporal subset."""
    names = list(report["retrieval"])
    columns = [("trainable params", [_params(report, name) for name in names])]
    for task, direction in RETRIEVAL_COLUMNS:
        for k in ("r1", "r5"):
            columns.append((f"{task} {direction} {k.upper()}",
                            [_pct(report["retrieval"][name][task][direction].get(k)) for name in names]))
    return ModelTables(title="Retrieval on the built-in world (validation; Table 2 analog)", names=names,
                       columns=columns)


def plot_actionbench(report: dict, path: str | Path) -> Path:
    """Draw ActionBench accuracy per model and task (bars with 95% intervals, chance marked) into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(report["actionbench"])
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    for m, name in enumerate(models):
        scores = [report["actionbench"][name][key] for key in TASK_NAMES]
        values = [s["accuracy"] or 0.0 for s in scores]
        # clamped at 0: at 0% or 100% the Wilson bound can miss the estimate by a rounding error (1e-14)
        errors = [[max(0.0, v - (s["ci95"][0] if s["ci95"] else v)) for v, s in zip(values, scores)],
                  [max(0.0, (s["ci95"][1] if s["ci95"] else v) - v) for v, s in zip(values, scores)]]
        xs = [t + (m - (len(models) - 1) / 2) * width for t in range(len(TASK_NAMES))]
        bars = ax.bar(xs, values, width, yerr=errors, capsize=3, label=name)
        ax.bar_label(bars, labels=[f"{v:.0f}" for v in values], fontsize=7, padding=2)
    ax.axhline(50, color="black", linestyle="--", linewidth=1)
    ax.text(len(TASK_NAMES) - 0.5, 51, "chance (50%)", ha="right", va="bottom", fontsize=8)
    ax.set_xticks(range(len(TASK_NAMES)), list(TASK_NAMES.values()))
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 109)
    ax.set_title("ActionBench on the built-in world: does the model understand actions?")
    ax.legend(fontsize=8, loc="lower left", framealpha=0.9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def timings_table(report: dict) -> Table:
    """Seconds spent per stage of the study."""
    table = Table(title="Time per stage")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for name, seconds in report["timings_s"].items():
        table.add_row(escape(name), f"{seconds:.1f}")
    table.add_row("total", f"{sum(report['timings_s'].values()):.1f}")
    return table
