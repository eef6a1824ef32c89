"""Ego4D narrations: EgoClip tables, the paper's EgoClip-style ActionBench JSONL, and Ego4D's narration.json.

- EgoClip (`egoclip.csv`, tab-separated despite its name; or CSV / JSONL): `video_uid`, `narration_source`
  (`narration_pass_1` / `_2`), `narration_ind` (restarts per pass), `clip_start`, `clip_end` (seconds in the
  full video, starts can be negative), `clip_text` ("#C C picks up ..."). Clip id
  `{video_uid}_{narration_source}_{narration_ind}`, unique across both passes; video `{video_uid}.mp4`.
- The paper's release (EgoClip rows plus `clip_uid`, `clip_relative_start`, `clip_relative_end`,
  `action_antonym_clip_text`, `object_shuffled_clip_text`): the video is the clip `{clip_uid}.mp4` and the
  times are relative to it; the shipped negatives are used.
- Ego4D `narration.json`: `{video_uid: {"narration_pass_1": {"narrations": [{"timestamp_sec",
  "narration_text", ...}]}, "narration_pass_2": ...}}`; each narration becomes a clip of `window` seconds
  centred on its timestamp, id `{video_uid}_{pass}_{k}` (k = its position in the pass).

Negative start times are clamped to 0. Captions lose their `#C`-style tags.
"""

from __future__ import annotations

import re
from pathlib import Path

from paxion.bench import files
from paxion.bench.files import Row
from paxion.bench.records import Annotations, ClipRecord
from paxion.bench.videos import VideoIndex
from paxion.errors import AnnotationError

WINDOW = 1.0  # seconds: EgoClip's mean clip length (Lin et al., EgoVLP, 2022)
EGO4D_EXTS: tuple[str, ...] = (".csv", ".tsv", ".jsonl", ".json")
_TAG = re.compile(r"#\w+")
_PREFER = (".mp4", ".webm")


def clean_narration(text: str) -> str:
    """An Ego4D narration without its `#C`-style tags: "#C C picks up the knife" -> "C picks up the knife"."""
    return " ".join(_TAG.sub(" ", text).split())


def _caption(text: str, path: Path, line: int | None) -> str:
    caption = clean_narration(text)
    if not caption:
        raise AnnotationError(path, "narration is empty once its tags are removed", line=line)
    return caption


def _given(row: Row, key: str, path: Path, line: int) -> str | None:
    text = files.optional_text(row, key, path, line)
    return None if text is None else clean_narration(text) or None


def _from_row(row: Row, split: str, path: Path, line: int, name: VideoIndex) -> ClipRecord:
    caption = _caption(files.text(row, ("clip_text", "narration", "text"), path, line), path, line)
    video = files.text(row, ("video_uid", "video"), path, line)
    if "id" in row:
        clip = files.text(row, ("id",), path, line)
    elif "narration_source" in row:
        clip = f"{video}_{files.text(row, ('narration_source',), path, line)}_{files.text(row, ('narration_ind',), path, line)}"
    else:
        clip = f"{video}_{row.get('narration_ind', line)}"
    if row.get("clip_uid") is not None and "clip_relative_start" in row:
        video = files.text(row, ("clip_uid",), path, line)
        start = files.seconds(row, ("clip_relative_start",), path, line)
        end = files.seconds(row, ("clip_relative_end",), path, line)
    else:
        start = files.seconds(row, ("clip_start", "start"), path, line)
        end = files.seconds(row, ("clip_end", "end"), path, line)
    return ClipRecord(
        clip, split, name.name(video, _PREFER), caption,
        None if start is None else max(start, 0.0), end,
        aa_given=_given(row, "action_antonym_clip_text", path, line),
        or_given=_given(row, "object_shuffled_clip_text", path, line),
        origin=f"{path}:{line}",
    )


def _from_narration_json(path: Path, split: str, name: VideoIndex, window: float) -> list[ClipRecord]:
    data = files.load_json(path)
    if not isinstance(data, dict):
        raise AnnotationError(path, "expected Ego4D's narration.json: an object keyed by video uid")
    out = []
    for video, entry in data.items():
        passes = {k: v for k, v in entry.items() if k.startswith("narration_pass")} if isinstance(entry, dict) else {}
        for source, narrated in sorted(passes.items()):
            narrations = narrated.get("narrations") if isinstance(narrated, dict) else None
            if not isinstance(narrations, list):
                raise AnnotationError(path, f"video {video}: {source} has no 'narrations' list")
            for k, item in enumerate(narrations):
                where = f"video {video}, {source} narration {k}"
                time, text = (item.get("timestamp_sec"), item.get("narration_text")) if isinstance(item, dict) else (None, None)
                if isinstance(time, bool) or not isinstance(time, (int, float)) or not isinstance(text, str):
                    raise AnnotationError(path, f"{where}: needs a numeric 'timestamp_sec' and a 'narration_text'")
                caption = clean_narration(text)
                if not caption:
                    raise AnnotationError(path, f"{where}: narration is empty once its tags are removed")
                out.append(ClipRecord(
                    f"{video}_{source}_{k}", split, name.name(video, _PREFER), caption,
                    max(time - window / 2, 0.0), time + window / 2, origin=f"{path} ({where})",
                ))
    return out


def read_ego4d(path: Path, *, videos: Path | None = None, window: float = WINDOW) -> Annotations:
    """Read Ego4D narrations: EgoClip CSV/TSV/JSONL tables or narration.json (one file, or a folder of them).

    `window`: seconds of video around each narration.json timestamp (default 1.0, EgoClip's mean clip length).
    """
    if window <= 0:
        raise ValueError(f"window must be positive, got {window}")
    name = VideoIndex(videos)
    out = Annotations("ego4d")
    for split, file in files.split_files(Path(path), EGO4D_EXTS):
        if file.suffix == ".json":
            out.records += _from_narration_json(file, split, name, window)
        else:
            out.records += [_from_row(row, split, file, line, name) for line, row in files.table_rows(file)]
    return out
