"""The report's figures as PNG bytes (matplotlib, Agg): per-class bars, learning curves, frame strips."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

STRIP_GAP = 2  # pixels of white between the frames of a strip


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes; the figure is closed."""
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def frame_strip(frames: np.ndarray) -> bytes:
    """uint8 frames [T, H, W, 3] side by side, left to right in time, as PNG bytes."""
    frames = np.asarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [T, H, W, 3], got {frames.shape}")
    t, h, w, _ = frames.shape
    strip = np.full((h, t * w + (t - 1) * STRIP_GAP, 3), 255, dtype=np.uint8)
    for k, frame in enumerate(frames):
        strip[:, k * (w + STRIP_GAP): k * (w + STRIP_GAP) + w] = frame
    buffer = io.BytesIO()
    _pyplot().imsave(buffer, strip, format="png")
    return buffer.getvalue()


def per_class_bars(per_model: dict[str, dict[str, dict[str, dict]]], task: str, *, order: Sequence[str]) -> bytes:
    """Horizontal bars of one task's accuracy per class (rows in `order`, top = first) for each model.

    per_model: {model: per_class result of `paxion.analysis.items.per_class`}. Chance (50%) is marked.
    """
    plt = _pyplot()
    models = list(per_model)
    height = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.32 * len(order) * max(1, len(models) / 2)), dpi=100)
    ys = np.arange(len(order))[::-1]
    for m, model in enumerate(models):
        values = [(per_model[model].get(name, {}).get(task) or {}).get("accuracy") or 0.0 for name in order]
        ax.barh(ys + (len(models) - 1 - 2 * m) * height / 2, values, height, label=model)
    ax.axvline(50, color="black", linestyle="--", linewidth=1)
    ax.set_yticks(ys, list(order), fontsize=7)
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"{task.upper()} accuracy (%); dashed: chance")
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(models), frameon=False)
    fig.tight_layout()
    return figure_png(fig)


def curves_figure(curves: dict[str, list[dict]], *, metrics: Sequence[str] = ("aa", "vr"),
                  ylabel: str = "accuracy (%)", chance: float | None = 50.0) -> bytes:
    """One panel per metric: its value per epoch for each model (curves as in report.json["curves"]).

    ylabel: the y axis (default accuracy in percent, drawn from 0 to 102). chance: a dashed line at that value
    (default 50); None: no line and the y axis fits the data (e.g. a loss).
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.4), dpi=100, squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for model, points in curves.items():
            ax.plot([p["epoch"] for p in points], [p[metric] for p in points], marker="o", markersize=3, label=model)
        if chance is not None:
            ax.axhline(chance, color="black", linestyle="--", linewidth=1)
            ax.set_ylim(0, 102)
        ax.set_title(metric.upper())
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return figure_png(fig)


def difference_bars(labels: Sequence[str], values: Sequence[float], *, xlabel: str) -> bytes:
    """Horizontal bars of signed differences (points), one per label, zero marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 1 + 0.3 * len(labels)), dpi=100)
    ys = np.arange(len(labels))[::-1]
    ax.barh(ys, values, color=["tab:green" if v >= 0 else "tab:red" for v in values])
    ax.axvline(0, color="black", linewidth=1)
    ax.set_yticks(ys, list(labels), fontsize=7)
    ax.set_xlabel(xlabel)
    fig.tight_layout()
    return figure_png(fig)
