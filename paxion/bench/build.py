"""ActionBench construction: per clip, its Action Antonym and Object Replacement negatives, written as
`{split}.jsonl` plus `meta.json` (docs/architecture.md §2)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from paxion.bench.antonyms import AntonymResult, action_antonym
from paxion.bench.objects import ObjectResult, clip_objects, object_vocabulary, replace_objects
from paxion.bench.readers import hide_objects
from paxion.bench.records import Annotations, ClipRecord
from paxion.synth.actions import ACTIONS, TEMPORAL_TEMPLATES, template_caption

NO_VERB = "(no verb found)"


@dataclass
class SplitSummary:
    """How many clips a split has and how many got an AA and an OR negative."""

    clips: int = 0
    aa: int = 0
    or_: int = 0


@dataclass
class BenchSummary:
    """What `build_bench` wrote: per-split counts and the verbs most often left without an antonym."""

    splits: dict[str, SplitSummary] = field(default_factory=dict)
    missing_verbs: Counter[str] = field(default_factory=Counter)


def bench_row(record: ClipRecord, aa: AntonymResult, replaced: ObjectResult) -> dict[str, object]:
    """The bench JSONL object of one clip with its negatives (docs/architecture.md §2)."""
    row: dict[str, object] = {
        "id": record.id,
        "video": record.video,
        "start": record.start,
        "end": record.end,
        "caption": record.caption,
        "template": record.template,
        "label": record.label,
        "aa_caption": aa.text,
        "aa_reason": aa.reason,
        "or_caption": replaced.text,
        "or_reason": replaced.reason,
    }
    if record.candidates is not None:
        row["candidates"] = list(record.candidates)
        row["answer"] = record.answer
    return row


def bench_meta(annotations: Annotations, splits: dict[str, int]) -> dict[str, object]:
    """The bench meta.json: dataset, clips per split, class captions and the built-in world's temporal classes."""
    classes = [hide_objects(t) for t in annotations.templates] if annotations.templates else None
    world = {template_caption(a.template) for a in ACTIONS}
    builtin = classes is not None and set(classes) == world
    return {
        "dataset": annotations.dataset,
        "splits": splits,
        "classes": classes,
        "temporal_classes": [template_caption(t) for t in TEMPORAL_TEMPLATES] if builtin else None,
        "builtin_world": builtin,
    }


def build_bench(
    annotations: Annotations,
    out: str | Path,
    *,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> BenchSummary:
    """Write `out/{split}.jsonl` and `out/meta.json`; `progress(done, total)` is called per clip."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    vocabulary = object_vocabulary(annotations.records)
    summary = BenchSummary()
    rows: dict[str, list[str]] = {}
    total = len(annotations.records)
    for done, record in enumerate(annotations.records, start=1):
        objects = clip_objects(record)
        aa = action_antonym(record.caption, objects=objects)
        replaced = replace_objects(record.caption, objects, vocabulary, seed=seed, clip_id=record.id)
        split = summary.splits.setdefault(record.split, SplitSummary())
        split.clips += 1
        split.aa += aa.text is not None
        split.or_ += replaced.text is not None
        if aa.text is None:
            summary.missing_verbs[aa.word or NO_VERB] += 1
        rows.setdefault(record.split, []).append(json.dumps(bench_row(record, aa, replaced), ensure_ascii=False))
        if progress is not None:
            progress(done, total)
    for split, lines in rows.items():
        (out / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    meta = bench_meta(annotations, {name: s.clips for name, s in summary.splits.items()})
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return summary
