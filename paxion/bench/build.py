"""ActionBench construction: per clip, its Action Antonym and Object Replacement negatives, written as
`{split}.jsonl` plus `meta.json` (docs/architecture.md §2)."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from paxion.atomic import atomic_path, ensure_dir, write_json
from paxion.bench.antonyms import AntonymResult, action_antonym
from paxion.bench.files import saliency_flags
from paxion.bench.objects import ObjectResult, clip_objects, replace_objects
from paxion.bench.records import Annotations, ClipRecord
from paxion.bench.ssv2 import hide_objects
from paxion.errors import AnnotationError
from paxion.synth.actions import ACTIONS, TEMPORAL_TEMPLATES, template_caption

NO_VERB = "(no verb found)"
PROGRESS_EVERY = 1000  # clips between progress calls: a progress bar per clip costs more than a clip over millions


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


def answer_antonym(record: ClipRecord, *, objects: tuple[str, ...] | None = None) -> AntonymResult:
    """The AA negative of a clip: for a question + answer caption (NExT-QA), the question verbatim followed by
    the antonym of the answer (the paper's construction rewrites the answer choices), else the caption's.

    objects: the clip's objects, never touched (default: `clip_objects(record)`).
    """
    objects = clip_objects(record) if objects is None else objects
    if record.question is None:
        return action_antonym(record.caption, objects=objects)
    return _question_answer_antonym(record, record.caption, objects)


def _question_answer_antonym(record: ClipRecord, text: str, objects: tuple[str, ...]) -> AntonymResult:
    """The antonym of a "question answer" text made on the answer only: the question stays verbatim."""
    answer = action_antonym(text.removeprefix(record.question).strip(), objects=objects)
    return answer if answer.text is None else AntonymResult(f"{record.question} {answer.text}", None, answer.word)


def candidate_antonyms(record: ClipRecord) -> list[str | None]:
    """The action antonym of each multiple-choice candidate (None where its answer has none), made on the answer
    only, never on the question: the extra hard negatives of the mc+vac objective (paper App. D.3)."""
    objects = clip_objects(record)
    return [_question_answer_antonym(record, text, objects).text for text in record.candidates]


def negatives(record: ClipRecord, vocabulary: list[str], *, seed: int) -> tuple[AntonymResult, ObjectResult]:
    """The clip's AA and OR negatives: those given with the annotations, else made."""
    objects = clip_objects(record) if record.aa_given is None or record.or_given is None else ()
    aa = AntonymResult(record.aa_given, None) if record.aa_given is not None else answer_antonym(record, objects=objects)
    if record.or_given is not None:
        return aa, ObjectResult(record.or_given, None)
    return aa, replace_objects(record.caption, objects, vocabulary, seed=seed, clip_id=record.id)


def _duplicate(records: Iterable[ClipRecord], record: ClipRecord) -> AnnotationError:
    first = next(r for r in records if r.id == record.id)
    return AnnotationError(record.origin or record.split, f"duplicate clip id {record.id!r} (first at {first.origin})")


def survey(records: Iterable[ClipRecord]) -> tuple[list[str], int]:
    """One pass over the clips: the sorted object vocabulary (`object_vocabulary`) and the number of clips.

    Holds the ids (a set) and the vocabulary only. Raises AnnotationError at the second clip with an id already
    seen (records are then read once more to name the first).
    """
    seen: set[str] = set()
    vocabulary: set[str] = set()
    for record in records:
        if record.id in seen:
            raise _duplicate(records, record)
        seen.add(record.id)
        vocabulary.update(obj.lower() for obj in clip_objects(record))
    return sorted(vocabulary), len(seen)


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
    """Write `out/{split}.jsonl` and `out/meta.json`; `progress(done, total)` is called every PROGRESS_EVERY
    clips and at the last.

    Two passes over `annotations.records` (a list or streamed `Clips`): the first collects the object
    vocabulary and checks ids, the second writes each clip's line as it is made, so memory holds the ids and
    the vocabulary, not the clips. flags: a state-change filtering file (`{clip id: {"if_keep": bool}}`, the
    paper's release) whose flags replace the ones extraction computes, for the clips it names. Raises
    AnnotationError on duplicate clip ids.
    """
    vocabulary, total = survey(annotations.records)
    given = saliency_flags(Path(flags)) if flags is not None else {}
    out = ensure_dir(out)
    summary = BenchSummary()
    with ExitStack() as stack:
        writers: dict[str, TextIO] = {}
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
            if record.split not in writers:
                tmp = stack.enter_context(atomic_path(out / f"{record.split}.jsonl"))
                writers[record.split] = stack.enter_context(tmp.open("w", encoding="utf-8"))
            writers[record.split].write(json.dumps(bench_row(record, aa, replaced), ensure_ascii=False) + "\n")
            if progress is not None and (done % PROGRESS_EVERY == 0 or done == total):
                progress(done, total)
    write_json(out / "meta.json", bench_meta(annotations, {name: s.clips for name, s in summary.splits.items()}))
    return summary
