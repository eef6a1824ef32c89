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

EgoClip's `tag_noun` ("[192, 115, 12]") holds indices into Ego4D's `narration_noun_taxonomy.csv` (`label,group`,
`group` a list literal of synonyms such as "['bag', 'grocery_bag']"; row k is index k), which EgoClip does not
ship: given that file (`noun_taxonomy=`), a clip's tagged nouns (each synonym, its head word and plural) become
its `nouns`, the only heads object replacement takes; without it the indices are ignored. Names instead of
indices ("['knife']") are used as they are.

Negative start times are clamped to 0. Captions lose their `#C`-style tags.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from paxion.bench import files
from paxion.bench.files import Row
from paxion.bench.inflect import noun_plural
from paxion.bench.records import Annotations, ClipRecord, Clips
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


Taxonomy = list[tuple[str, ...]]


def _noun_forms(names: list[str]) -> tuple[str, ...]:
    """Lowercase names ("_" read as a space), the head word of each and its plural."""
    forms: dict[str, None] = {}
    for raw in names:
        noun = " ".join(raw.replace("_", " ").lower().split())
        head = noun.rsplit(" ", 1)[-1]
        forms.update(dict.fromkeys(filter(None, (noun, head, noun_plural(head)))))
    return tuple(forms)


@lru_cache(maxsize=1 << 16)
def _literal(text: str) -> tuple | None:
    """A list literal's items, None when the text is none; cached, as EgoClip's tag lists repeat."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return tuple(value) if isinstance(value, (list, tuple)) else None


def _literal_list(text: str, path: Path, line: int | None, what: str) -> list:
    value = _literal(text)
    if value is None:
        raise AnnotationError(path, f"{what} must be a list like \"[12, 40]\", got {text[:40]!r}", line=line)
    return list(value)


def read_noun_taxonomy(path: Path) -> Taxonomy:
    """Ego4D's narration_noun_taxonomy.csv: per noun index (row order), its synonyms' forms (`_noun_forms`)."""
    taxonomy = []
    for line, row in files.csv_rows(Path(path)):
        group = _literal_list(files.text(row, ("group",), path, line), path, line, "'group'")
        if not all(isinstance(word, str) for word in group):
            raise AnnotationError(path, "'group' must list nouns as strings", line=line)
        taxonomy.append(_noun_forms(group))
    if not taxonomy:
        raise AnnotationError(path, "no nouns: expected Ego4D's narration_noun_taxonomy.csv (label,group)")
    return taxonomy


def _tag_nouns(row: Row, taxonomy: Taxonomy | None, path: Path, line: int) -> tuple[str, ...]:
    """The clip's `tag_noun` as noun forms: indices named through the taxonomy (ignored without one), or names."""
    text = row.get("tag_noun")
    if text is None or text == "":
        return ()
    tags = text if isinstance(text, list) else _literal_list(str(text), path, line, "'tag_noun'")
    forms = list(_noun_forms([t for t in tags if isinstance(t, str)]))
    if taxonomy is not None:
        for index in (t for t in tags if isinstance(t, int) and not isinstance(t, bool)):
            if not 0 <= index < len(taxonomy):
                raise AnnotationError(path, f"'tag_noun' index {index} is not in the noun taxonomy "
                                            f"({len(taxonomy)} nouns)", line=line)
            forms += taxonomy[index]
    return tuple(dict.fromkeys(forms))


def _from_row(row: Row, split: str, path: Path, line: int, name: VideoIndex, taxonomy: Taxonomy | None) -> ClipRecord:
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
        nouns=_tag_nouns(row, taxonomy, path, line),
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


def read_ego4d(
    path: Path,
    *,
    videos: Path | None = None,
    window: float = WINDOW,
    noun_taxonomy: Path | None = None,
    stream: bool = False,
) -> Annotations:
    """Read Ego4D narrations: EgoClip CSV/TSV/JSONL tables or narration.json (one file, or a folder of them).

    `window`: seconds of video around each narration.json timestamp (default 1.0, EgoClip's mean clip length).
    `noun_taxonomy`: Ego4D's narration_noun_taxonomy.csv, to name EgoClip's `tag_noun` indices (default None:
    indices ignored). `stream`: records as `Clips` re-read from the files at each pass (CSV/TSV tables are
    then never held whole; for EgoClip's millions of rows), else a list.
    """
    if window <= 0:
        raise ValueError(f"window must be positive, got {window}")
    name = VideoIndex(videos)
    taxonomy = None if noun_taxonomy is None else read_noun_taxonomy(Path(noun_taxonomy))
    split_files = files.split_files(Path(path), EGO4D_EXTS)

    def clips() -> Iterator[ClipRecord]:
        for split, file in split_files:
            if file.suffix == ".json":
                yield from _from_narration_json(file, split, name, window)
            else:
                yield from (_from_row(row, split, file, line, name, taxonomy) for line, row in files.table_rows(file))

    return Annotations("ego4d", Clips(clips) if stream else list(clips()))
