"""Every table the command line prints, built from what the library returns; one builder per kind of result.

`actionbench_table` serves both `paxion eval` (one model) and the demo's report (the paper's Table 1 analog).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from rich.markup import escape
from rich.table import Table

from paxion.models.patched import format_parameters
from paxion.synth.nextqa import CHOICES

TASK_NAMES = {"aa": "Action Antonym", "vr": "Video Reversal", "or": "Object Replacement"}
STUDY_RETRIEVAL_COLUMNS = (("label", "v2t"), ("label", "t2v"), ("template", "v2t"), ("temporal", "v2t"))
DIRECTIONS = {"v2t": "video to text", "t2v": "text to video"}


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


def _table(title: str | None, columns: Iterable[str], *, left: int = 1) -> Table:
    """A table titled `title` (plain text, no markup) whose first `left` columns are left-aligned, the rest right."""
    table = Table(title=None if title is None else escape(title))
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i < left else "right")
    return table


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _rank(value: float) -> str:
    """A median rank with at most two decimals: "4", "3.5", "2.67" (tied scores make expected ranks fractional)."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _accuracy(score: dict) -> str:
    """`{"accuracy", "n", "ci95"}` as "93.3 [90.1-95.4]" (percent, 95% Wilson interval), "-" without pairs."""
    if score["accuracy"] is None:
        return "-"
    lo, hi = score["ci95"]
    return f"{score['accuracy']:.1f} [{lo:.1f}-{hi:.1f}]"


def _share(count: int, total: int) -> str:
    return f"{count} ({count / total:.0%})" if total else str(count)


def world_table(summary) -> Table:
    """Clips per action of a world written by `paxion.synth.world.write_world` (its WorldSummary)."""
    table = _table(f"world written to {summary.root}", ["action", "clips"])
    for template, count in summary.class_counts.items():
        table.add_row(escape(template), str(count))
    return table


def bench_table(summary, *, title: str) -> Table:
    """Clips and Action Antonym / Object Replacement negatives per split of a `build_bench` BenchSummary; "given"
    counts the negatives shipped with the annotations (the rest were made)."""
    table = _table(title, ["split", "clips", "AA negatives", "AA given", "OR negatives", "OR given"])
    for name, split in summary.splits.items():
        table.add_row(escape(name), str(split.clips), _share(split.aa, split.clips), str(split.aa_given),
                      _share(split.or_, split.clips), str(split.or_given))
    return table


def backbone_table(backbone) -> Table:
    """A loaded backbone's shapes, size and config hash."""
    table = _table(f"backbone {backbone.name}", ["field", "value"])
    for field, value in [("temporal", backbone.temporal), ("image size", backbone.image_size),
                         ("joint dim d", backbone.embed_dim), ("token dim D", backbone.token_dim),
                         ("tokens per frame N", backbone.tokens_per_frame),
                         ("parameters", f"{sum(p.numel() for p in backbone.parameters()):,}"),
                         ("config hash", backbone.config_hash())]:
        table.add_row(field, str(value))
    return table


def backbones_table(entries: Sequence) -> Table:
    """The installed backbones (`registry.backbone_entries()`): spec, temporal, where each comes from."""
    table = _table("backbones", ["spec", "temporal", "from", "adapter / factory"], left=4)
    for column in table.columns:
        column.overflow = "fold"  # a spec or module path cut short with an ellipsis is useless
    for entry in entries:
        temporal = "?" if entry.temporal is None else "yes" if entry.temporal else "no"
        source = f"{entry.source} (unused: name taken)" if entry.shadowed else entry.source
        table.add_row(escape(entry.usage), temporal, escape(source), escape(entry.target))
    return table


def cache_summary(manifest: dict) -> dict:
    """What `paxion cache info` shows: backbone, token dtype, saliency settings, per split clips/shards/bytes, the
    salient fraction and the clips whose caption the text encoder cut / whose AA or OR negative embeds like the
    caption, failures by reason."""
    splits = {}
    for name, info in manifest["splits"].items():
        size, clips = sum(s["bytes"] for s in info["shards"]), info["clips"]
        splits[name] = {"clips": clips, "shards": len(info["shards"]), "bytes": size,
                        "bytes_per_clip": size / clips if clips else 0.0,
                        "salient_fraction": info["salient"] / clips if clips else 0.0,
                        } | {key: info[key] for key in ("captions_cut", "aa_same", "or_same")}
    return {**{key: manifest[key] for key in ("backbone", "frames", "token_dtype", "saliency")},
            "texts": manifest["texts"]["count"], "splits": splits, "failed": len(manifest["failed"]),
            "failed_reasons": dict(Counter(f["reason"] for f in manifest["failed"]))}


def cache_table(info: dict) -> Table:
    """Clips, shards, bytes and the salient fraction per split of a cache (`cache_summary`)."""
    table = _table(None, ["split", "clips", "shards", "MB", "KB per clip", "salient %"])
    for name, split in info["splits"].items():
        table.add_row(escape(name), str(split["clips"]), str(split["shards"]), f"{split['bytes'] / 1e6:.1f}",
                      f"{split['bytes_per_clip'] / 1e3:.1f}", f"{100 * split['salient_fraction']:.1f}")
    return table


def actionbench_table(scores: dict[str, dict], *, title: str, params: dict[str, str] | None = None) -> ModelTables:
    """ActionBench accuracy, one row per model: `scores[model][task]` = {"accuracy", "n", "ci95"} (percent).

    `params`: each model's trainable-parameter text, shown as a column when given. Model names are never cut.
    """
    names = list(scores)
    columns = [("trainable params", [params[name] for name in names])] if params else []
    columns += [(f"{name} % [95% CI]", [_accuracy(scores[model][key]) for model in names])
                for key, name in TASK_NAMES.items()]
    first = next(iter(scores.values()))
    caption = f"n = {' / '.join(str(first[k]['n']) for k in TASK_NAMES)} pairs (AA / VR / OR); chance 50"
    left_out = [first[k].get("left_out", 0) for k in ("aa", "or")]  # results saved before the count existed lack it
    if any(left_out):
        caption += (f"; left out: {left_out[0]} AA / {left_out[1]} OR pairs whose negative embeds like the caption "
                    "(text encoder context: truncated to the same tokens)")
    return ModelTables(title=title, names=names, columns=columns, caption=caption)


def retrieval_table(result: dict, *, title: str, ks: Sequence[int]) -> Table:
    """A `paxion.retrieval.tasks.run_task` result: accuracy (mc, zeroshot) or R@k and median rank both ways."""
    if "accuracy" in result:
        lo, hi = result["ci95"]
        table = _table(title, ["accuracy %", "n", "95% CI"], left=0)
        table.add_row(f"{result['accuracy']:.1f}", str(result["n"]), f"{lo:.1f}-{hi:.1f}")
        return table
    table = _table(title, ["direction", *(f"R@{k} %" for k in ks), "median rank", "queries"])
    for key, name in DIRECTIONS.items():
        row = result[key]
        table.add_row(name, *(f"{row[f'r{k}']:.1f}" for k in ks), _rank(row["medr"]), str(row["n"]))
    return table


def _study_params(report: dict) -> dict[str, str]:
    backbone = report["parameters"].get("backbone")
    return {name: "-" if name == "backbone" else format_parameters(report["parameters"][name], backbone)
            for name in report["parameters"]}


def study_actionbench_table(report: dict) -> ModelTables:
    """The demo's Table 1 analog: ActionBench per model of `paxion.demo.study.run_study`'s report."""
    return actionbench_table(report["actionbench"], params=_study_params(report),
                             title="ActionBench on the built-in world (validation; Table 1 analog)")


def study_retrieval_table(report: dict) -> ModelTables:
    """The demo's Table 2 analog: label retrieval both ways, video-to-action (template) and the temporal subset."""
    params = _study_params(report)
    names = list(report["retrieval"])
    columns = [("trainable params", [params[name] for name in names])]
    columns += [(f"{task} {direction} {k.upper()}", [_pct(report["retrieval"][name][task][direction].get(k))
                                                    for name in names])
                for task, direction in STUDY_RETRIEVAL_COLUMNS for k in ("r1", "r5")]
    return ModelTables(title="Retrieval on the built-in world (validation; Table 2 analog)", names=names,
                       columns=columns)


def study_mc_table(report: dict) -> ModelTables:
    """The demo's Table 3 analog: multiple-choice accuracy on the NExT-QA layout of the world (`report["mc"]`)."""
    params = _study_params(report)
    names = list(report["mc"])
    columns = [("trainable params", [params.get(name, "-") for name in names]),
               ("accuracy % [95% CI]", [_accuracy(report["mc"][name]) for name in names])]
    n = next(iter(report["mc"].values()))["n"]
    return ModelTables(title="Multiple-choice QA on the NExT-QA layout of the world (val; Table 3 analog)", names=names,
                       columns=columns, caption=f"n = {n} questions, {CHOICES} candidate answers each; chance {100 / CHOICES:g}")


def timings_table(report: dict) -> Table:
    """Seconds spent per stage of the demo."""
    table = _table("Time per stage", ["stage", "seconds"])
    for name, seconds in report["timings_s"].items():
        table.add_row(escape(name), f"{seconds:.1f}")
    table.add_row("total", f"{sum(report['timings_s'].values()):.1f}")
    return table
