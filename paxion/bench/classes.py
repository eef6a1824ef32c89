"""Action-classification datasets whose caption is the class name: Kinetics and Moments in Time.

- Kinetics (annotation CSV `label, youtube_id, time_start, time_end, split`): clips saved as
  `{youtube_id}_{time_start:06d}_{time_end:06d}.mp4` (the usual downloaders' naming), id the same; when only
  the full `{youtube_id}` video is in the videos folder, the clip is its `time_start..time_end` seconds.
  The split is the `split` column, else the file name.
- Moments in Time (`trainingSet.csv`, `validationSet.csv`: rows of a video path and its class, no header):
  id = the path without its extension; splits "train" / "validation" from those file names.

Class indices (`label`) follow the sorted class names of all the files read; `class_name` keeps the name.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path, PurePosixPath

from paxion.bench import files
from paxion.bench.records import Annotations, ClipRecord
from paxion.bench.videos import VideoIndex
from paxion.errors import AnnotationError

MIT_SPLITS = {"trainingSet": "train", "validationSet": "validation"}
_MIT_HEADERS = {"video", "path", "filename", "file", "video_path"}
_KINETICS_FORMAT = "a Kinetics annotation CSV of label,youtube_id,time_start,time_end,split rows"
_MIT_FORMAT = "a Moments in Time CSV (trainingSet.csv / validationSet.csv) of path/to/video.mp4,label rows"


def with_class_indices(dataset: str, records: list[ClipRecord]) -> Annotations:
    """Annotations whose `label` is each record's index among the sorted class names (its `templates`)."""
    names = sorted({r.class_name for r in records if r.class_name is not None})
    index = {name: i for i, name in enumerate(names)}
    labelled = [r if r.class_name is None else dataclasses.replace(r, label=index[r.class_name]) for r in records]
    return Annotations(dataset, labelled, templates=names or None)


def _whole_seconds(row: files.Row, name: str, path: Path, line: int) -> int:
    value = files.seconds(row, (name,), path, line)
    if value is None or value < 0 or value != int(value):
        raise AnnotationError(path, f"'{name}' must be whole seconds, got {row.get(name)!r}", line=line)
    return int(value)


def read_kinetics(path: Path, *, videos: Path | None = None) -> Annotations:
    """Read Kinetics annotation CSVs (one file or a folder of them)."""
    found = VideoIndex(videos)
    records = []
    for stem, file in files.split_files(Path(path), (".csv",), expected=_KINETICS_FORMAT):
        for line, row in files.csv_rows(file):
            name = files.text(row, ("label",), file, line)
            youtube = files.text(row, ("youtube_id",), file, line)
            start, end = _whole_seconds(row, "time_start", file, line), _whole_seconds(row, "time_end", file, line)
            clip = f"{youtube}_{start:06d}_{end:06d}"
            whole = clip not in found.paths and youtube in found.paths
            records.append(ClipRecord(
                clip, files.text(row, ("split",), file, line) if "split" in row else stem,
                found.name(youtube if whole else clip, (".mp4", ".webm")), name,
                float(start) if whole else None, float(end) if whole else None,
                class_name=name, origin=f"{file}:{line}",
            ))
    return with_class_indices("kinetics", records)


def read_mit(path: Path, *, videos: Path | None = None) -> Annotations:
    """Read Moments in Time CSVs (`trainingSet.csv`, `validationSet.csv`, or any file / folder of them).

    The CSV gives each video's path, so `videos` is not needed to name it.
    """
    records = []
    for stem, file in files.split_files(Path(path), (".csv",), expected=_MIT_FORMAT):
        for line, row in files.csv_rows(file, header=False):
            video = files.text(row, ("0",), file, line)
            if line == 1 and video.lower() in _MIT_HEADERS:
                continue
            try:
                name = files.text(row, ("1",), file, line)
            except AnnotationError:
                raise AnnotationError(file, "expected a video path and its class", line=line) from None
            records.append(ClipRecord(
                str(PurePosixPath(video).with_suffix("")), MIT_SPLITS.get(stem, stem), video, name,
                class_name=name, origin=f"{file}:{line}",
            ))
    return with_class_indices("mit", records)
