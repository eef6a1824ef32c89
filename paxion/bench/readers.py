"""Dataset readers, all to `ClipRecord`s: SSv2 (and the paper's release), Ego4D (EgoClip, narration.json),
NExT-QA, Kinetics, Moments in Time and a generic JSONL; one module per format, registered here.

For SSv2 the path is the annotations folder (`train.json`, `validation.json`, `labels.json`). For the
others it is one file (its name without extension is the split: `val.csv` -> split "val") or a folder
with one file per split. Every malformed row raises `AnnotationError` naming the file and line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from paxion.bench import files
from paxion.bench.classes import read_kinetics, read_mit, with_class_indices
from paxion.bench.ego4d import WINDOW, clean_narration, read_ego4d
from paxion.bench.nextqa import read_nextqa
from paxion.bench.records import Annotations, ClipRecord
from paxion.bench.ssv2 import hide_objects, read_ssv2
from paxion.errors import AnnotationError

__all__ = ["READERS", "clean_narration", "hide_objects", "read_dataset", "read_ego4d", "read_jsonl",
           "read_kinetics", "read_mit", "read_nextqa", "read_ssv2"]


def read_jsonl(path: Path, *, videos: Path | None = None) -> Annotations:
    """Read generic JSONL clips: `video`, `caption`; optional `id` (default split-line), `start`, `end` (seconds),
    `label` (a class name), `aa_caption` / `or_caption` (negatives to use instead of making them).

    `videos` is not needed: each row names its video.
    """
    records = []
    for split, file in files.split_files(Path(path), (".jsonl",)):
        for line, row in files.jsonl_rows(file):
            records.append(ClipRecord(
                files.text(row, ("id",), file, line) if "id" in row else f"{split}-{line}",
                split,
                files.text(row, ("video",), file, line),
                files.text(row, ("caption",), file, line),
                files.seconds(row, ("start",), file, line),
                files.seconds(row, ("end",), file, line),
                class_name=files.optional_text(row, "label", file, line),
                aa_given=files.optional_text(row, "aa_caption", file, line),
                or_given=files.optional_text(row, "or_caption", file, line),
                origin=f"{file}:{line}",
            ))
    return with_class_indices("jsonl", records)


READERS: dict[str, Callable[..., Annotations]] = {
    "ssv2": read_ssv2,
    "ego4d": read_ego4d,
    "nextqa": read_nextqa,
    "kinetics": read_kinetics,
    "mit": read_mit,
    "jsonl": read_jsonl,
}
_EXTRA_OPTIONS = {"ego4d": ("window", "noun_taxonomy", "stream"), "nextqa": ("video_map",)}


def read_dataset(
    dataset: str,
    path: str | Path,
    *,
    videos: str | Path | None = None,
    video_map: str | Path | None = None,
    window: float = WINDOW,
    noun_taxonomy: str | Path | None = None,
    stream: bool = False,
) -> Annotations:
    """Read annotations of a dataset named in READERS; raises AnnotationError when they hold no clip.

    video_map: NExT-QA's map_vid_vidorID.json (nextqa only). window: seconds around each Ego4D
    narration.json timestamp (ego4d only, default 1.0). noun_taxonomy: Ego4D's narration_noun_taxonomy.csv,
    naming EgoClip's `tag_noun` indices (ego4d only). stream: records re-read from the files at each pass
    instead of a list, where the reader can (ego4d; the others always give a list).
    """
    if dataset not in READERS:
        raise AnnotationError(path, f"unknown dataset {dataset!r}; choose from {', '.join(READERS)}")
    if video_map is not None and dataset != "nextqa":
        raise AnnotationError(video_map, f"a video map is read for nextqa only, not {dataset}")
    if noun_taxonomy is not None and dataset != "ego4d":
        raise AnnotationError(noun_taxonomy, f"a noun taxonomy is read for ego4d only, not {dataset}")
    given = {"video_map": None if video_map is None else Path(video_map), "window": window,
             "noun_taxonomy": None if noun_taxonomy is None else Path(noun_taxonomy), "stream": stream}
    extra = {k: given[k] for k in _EXTRA_OPTIONS.get(dataset, ())}
    annotations = READERS[dataset](Path(path), videos=None if videos is None else Path(videos), **extra)
    if not annotations.records:
        raise AnnotationError(path, f"no clips found: is this {dataset} annotation data?")
    return annotations
