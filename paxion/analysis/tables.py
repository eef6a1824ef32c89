"""Rich tables that never cut a model (or class) name, whatever the terminal width, and the analysis tables."""

from __future__ import annotations

from collections.abc import Sequence

from rich.markup import escape
from rich.table import Table

CELL_PADDING = 3  # a rich cell's two spaces of padding and its border


def _words_width(text: str) -> int:
    return max((len(word) for word in text.split()), default=0)


def model_tables(
    *,
    title: str,
    names: Sequence[str],
    columns: Sequence[tuple[str, Sequence[str]]],
    width: int,
    name_header: str = "model",
    caption: str | None = None,
) -> list[Table]:
    """Tables of one row per name and the value `columns` ((header, cells), cells in the order of `names`).

    The name column is never wrapped or cut; when the columns do not fit `width` characters they are split over
    several tables, each repeating the name column, so no value is folded either (a header may wrap at spaces).
    Every column gets a fixed width: what its longest cell and header word need, plus what is left of `width`
    for the rest of its header. Names, headers and cells are printed literally (rich markup escaped); titles after
    the first get "(cont.)". A name longer than `width` still overflows the terminal. Raises ValueError when a
    column's cells do not match the names.
    """
    for header, cells in columns:
        if len(cells) != len(names):
            raise ValueError(f"column {header!r} has {len(cells)} cells for {len(names)} names")
    name_width = max([len(name_header), *map(len, names)])
    needs = [max([_words_width(header), *map(len, cells)]) for header, cells in columns]
    naturals = [max([len(header), *map(len, cells)]) for header, cells in columns]
    groups: list[list[int]] = [[]]
    used = 1 + name_width + CELL_PADDING  # the left border, the name column
    for j, need in enumerate(needs):
        if groups[-1] and used + need + CELL_PADDING > width:
            groups.append([])
            used = 1 + name_width + CELL_PADDING
        groups[-1].append(j)
        used += need + CELL_PADDING
    tables = []
    for g, group in enumerate(groups):
        table = Table(title=title if g == 0 else f"{title} (cont.)", caption=caption if g == len(groups) - 1 else None)
        table.add_column(escape(name_header), no_wrap=True, width=name_width)
        left = width - 1 - name_width - CELL_PADDING - sum(needs[j] + CELL_PADDING for j in group)
        for j in group:
            extra = max(0, min(naturals[j] - needs[j], left))
            left -= extra
            table.add_column(escape(columns[j][0]), justify="right", width=needs[j] + extra)
        for i, name in enumerate(names):
            table.add_row(escape(name), *(escape(columns[j][1][i]) for j in group))
        tables.append(table)
    return tables


class ModelTables:
    """A rich renderable: `model_tables(**options)` at the width it is printed at (console.print(ModelTables(...)))."""

    def __init__(self, **options) -> None:
        self.options = options

    def __rich_console__(self, console, options):
        yield from model_tables(**self.options, width=options.max_width)


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
