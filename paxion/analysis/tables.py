"""The analysis tables (per-class results, paired comparisons), built on `paxion.report.tables.model_tables`."""

from __future__ import annotations

from rich.table import Table

from paxion.report.tables import model_tables


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _ci(summary: dict) -> str:
    return "" if summary["ci95"] is None else f"{summary['ci95'][0]:.0f}-{summary['ci95'][1]:.0f}"


def per_class_tables(per_class: dict[str, dict[str, dict]], *, title: str, width: int) -> list[Table]:
    """Per-class accuracy (from `paxion.analysis.items.per_class`, worst class first): n, % and 95% CI per task."""
    tasks = list(dict.fromkeys(task for row in per_class.values() for task in row))
    empty = {"accuracy": None, "n": 0, "ci95": None}
    columns = []
    for task in tasks:
        rows = [per_class[name].get(task, empty) for name in per_class]
        columns += [(f"{task.upper()} n", [str(s["n"]) for s in rows]),
                    (f"{task.upper()} %", [_pct(s["accuracy"]) for s in rows]),
                    (f"{task.upper()} 95% CI", [_ci(s) for s in rows])]
    return model_tables(title=title, names=list(per_class), columns=columns, width=width, name_header="class")


def paired_tables(comparisons: dict[str, dict[str, dict]], *, title: str, width: int) -> list[Table]:
    """One row per (comparison "A vs B", task) of `paired_comparison` results: accuracies, difference, discordant
    counts and the exact McNemar p-value."""
    names, rows = [], []
    for pair, tasks in comparisons.items():
        for task, s in tasks.items():
            names.append(f"{pair} {task.upper()}")
            rows.append(s)
    columns = [
        ("n", [str(s["n"]) for s in rows]),
        ("A %", [_pct(s["accuracy_a"]) for s in rows]),
        ("B %", [_pct(s["accuracy_b"]) for s in rows]),
        ("A - B", [f"{s['difference']:+.1f}" for s in rows]),
        ("only A right", [str(s["a_only"]) for s in rows]),
        ("only B right", [str(s["b_only"]) for s in rows]),
        ("McNemar p", [f"{s['p_value']:.3g}" for s in rows]),
    ]
    return model_tables(title=title, names=names, columns=columns, width=width, name_header="comparison")
