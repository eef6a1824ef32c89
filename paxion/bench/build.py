"""ActionBench construction: per clip, its Action Antonym and Object Replacement negatives, written as
`{split}.jsonl` plus `meta.json` (docs/architecture.md §2)."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from paxion.atomic import write_json, write_text
from paxion.bench.antonyms import AntonymResult, action_antonym
from paxion.bench.files import saliency_flags
from paxion.bench.objects import ObjectResult, clip_objects, object_vocabulary, replace_objects
from paxion.bench.records import Annotations, ClipRecord
from paxion.bench.ssv2 import hide_objects
from paxion.errors import AnnotationError
from paxion.synth.actions import ACTIONS, TEMPORAL_TEMPLATES, template_caption

NO_VERB = "(no verb found)"


@dataclass
class SplitSummary:
    """How many clips a split has, how many got an AA and an OR negative, and how many of those were given
    with the annotations (the rest were made)."""

    clips: int = 0
    aa: int = 0
    or_: int = 0
    aa_given: int = 0
    or_given: int = 0


@dataclass
class BenchSummary:
    """What `build_bench` wrote: per-split counts and the verbs most often left without an antonym."""

    splits: dict[str, SplitSummary] = field(default_factory=dict)
    missing_verbs: Counter[str] = field(default_factory=Counter)


def answer_antonym(record: ClipRecord) -> AntonymResult:
    """The AA negative of a clip: for a question + answer caption (NExT-QA), the question verbatim followed by
    the antonym of the answer (the paper's construction rewrites the answer choices), else the caption's."""
    if record.question is None:
        return action_antonym(record.caption, objects=clip_objects(record))
    return _question_answer_antonym(record, record.caption)


def _question_answer_antonym(record: ClipRecord, text: str) -> AntonymResult:
    """The antonym of a "question answer" text made on the answer only: the question stays verbatim."""
    answer = action_antonym(text.removeprefix(record.question).strip(), objects=clip_objects(record))
    return answer if answer.text is None else AntonymResult(f"{record.question} {answer.text}", None, answer.word)


def candidate_antonyms(record: ClipRecord) -> list[str | None]:
    """The action antonym of each multiple-choice candidate (None where its answer has none), made on the answer
    only, never on the question: the extra hard negatives of the mc+vac objective (paper App. D.3)."""
    return [_question_answer_antonym(record, text).text for text in record.candidates]


def negatives(record: ClipRecord, vocabulary: list[str], *, seed: int) -> tuple[AntonymResult, ObjectResult]:
    """The clip's AA and OR negatives: those given with the annotations, else made."""
    aa = AntonymResult(record.aa_given, None) if record.aa_given is not None else answer_antonym(record)
    if record.or_given is not None:
        return aa, ObjectResult(record.or_given, None)
    return aa, replace_objects(record.caption, clip_objects(record), vocabulary, seed=seed, clip_id=record.id)


def check_unique_ids(records: list[ClipRecord]) -> None:
    """Raise AnnotationError at the second clip with an id already seen."""
    first: dict[str, ClipRecord] = {}
    for record in records:
        seen = first.setdefault(record.id, record)
        if seen is not record:
            raise AnnotationError(record.origin or record.split, f"duplicate clip id {record.id!r} (first at {seen.origin})")


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
        "aa_given": record.aa_given is not None,
        "or_given": record.or_given is not None,
    }
    if record.class_name is not None:
        row["class_name"] = record.class_name
    if record.salient is not None:
        row["salient"] = record.salient
    if record.candidates is not None:
        row["candidates"] = list(record.candidates)
        row["answer"] = record.answer
        if record.question is not None:
            row["candidates_aa"] = candidate_antonyms(record)
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
    flags: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BenchSummary:
    """Write `out/{split}.jsonl` and `out/meta.json`; `progress(done, total)` is called per clip.

    flags: a state-change filtering file (`{clip id: {"if_keep": bool}}`, the paper's release) whose flags
    replace the ones extraction computes, for the clips it names. Raises AnnotationError on duplicate clip ids.
    """
    check_unique_ids(annotations.records)
    given = saliency_flags(Path(flags)) if flags is not None else {}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    vocabulary = object_vocabulary(annotations.records)
    summary = BenchSummary()
    rows: dict[str, list[str]] = {}
    total = len(annotations.records)
    for done, record in enumerate(annotations.records, start=1):
        if record.id in given:
            record = dataclasses.replace(record, salient=given[record.id])
        aa, replaced = negatives(record, vocabulary, seed=seed)
        split = summary.splits.setdefault(record.split, SplitSummary())
        split.clips += 1
        split.aa += aa.text is not None
        split.or_ += replaced.text is not None
        split.aa_given += record.aa_given is not None
        split.or_given += record.or_given is not None
        if aa.text is None:
            summary.missing_verbs[aa.word or NO_VERB] += 1
        rows.setdefault(record.split, []).append(json.dumps(bench_row(record, aa, replaced), ensure_ascii=False))
        if progress is not None:
            progress(done, total)
    for split, lines in rows.items():
        write_text(out / f"{split}.jsonl", "\n".join(lines) + "\n")
    write_json(out / "meta.json", bench_meta(annotations, {name: s.clips for name, s in summary.splits.items()}))
    return summary
