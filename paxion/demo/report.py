"""The study's ActionBench figure (its tables are built in `paxion.report.tables`)."""

from __future__ import annotations

from pathlib import Path

from paxion.report.tables import TASK_NAMES


def plot_actionbench(report: dict, path: str | Path) -> Path:
    """Draw ActionBench accuracy per model and task (bars with 95% intervals, chance marked) into a PNG; titled
    report["figure_title"] where given (a set of runs), else as the demo's built-in world."""
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
    ax.set_title(report.get("figure_title", "ActionBench on the built-in world: does the model understand actions?"))
    ax.legend(fontsize=8, loc="lower left", framealpha=0.9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
