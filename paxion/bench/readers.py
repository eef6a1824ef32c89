"""Dataset readers: SSv2, EgoClip/Ego4D narrations, NExT-QA and a generic JSONL, all to `ClipRecord`s.

For SSv2 the path is the annotations folder (`train.json`, `validation.json`, `labels.json`). For the
others it is one file (its name without extension is the split: `val.csv` -> split "val") or a folder
with one file per split. Every malformed row raises `AnnotationError` naming the file and line.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from paxion.bench.records import Annotations, ClipRecord
from paxion.errors import AnnotationError

SSV2_SPLITS: tuple[str, ...] = ("train", "validation")
_PLACEHOLDER = re.compile(r"\[([^\]]*)\]")
_TAG = re.compile(r"#\w+")
_TABLE_EXTS = (".csv", ".tsv", ".jsonl")

Row = dict[str, object]


def hide_objects(template: str) -> str:
    """The object-hidden caption of an SSv2 template: "[something]" -> "something", first letter capital."""
    text = _PLACEHOLDER.sub(r"\1", template)
    return text[:1].upper() + text[1:]


def clean_narration(text: str) -> str:
    """An Ego4D narration without its `#C`-style tags: "#C C picks up the knife" -> "C picks up the knife"."""
    return " ".join(_TAG.sub(" ", text).split())


def _json_array(path: Path) -> Iterator[tuple[int, object]]:
    """The items of a JSON array file with the line each starts on."""
    text = _read_text(path)
    decoder = json.JSONDecoder()
    pos = _skip_space(text, 0)
    if not text.startswith("[", pos):
        raise AnnotationError(path, "expected a JSON array", line=text.count("\n", 0, pos) + 1)
    pos = _skip_space(text, pos + 1)
    while not text.startswith("]", pos):
        line = text.count("\n", 0, pos) + 1
        try:
            item, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise AnnotationError(path, f"bad JSON: {exc.msg}", line=exc.lineno) from None
        yield line, item
        pos = _skip_space(text, pos)
        if text.startswith(",", pos):
            pos = _skip_space(text, pos + 1)
        elif not text.startswith("]", pos):
            raise AnnotationError(path, "bad JSON: expected ',' or ']'", line=text.count("\n", 0, pos) + 1)


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _read_text(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except FileNotFoundError:
        raise AnnotationError(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError(path, f"cannot read: {exc}") from None


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Row]]:
    for line, raw in enumerate(_read_text(path).splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise AnnotationError(path, f"bad JSON: {exc.msg}", line=line) from None
        if not isinstance(row, dict):
            raise AnnotationError(path, "expected a JSON object", line=line)
        yield line, row


def _csv_rows(path: Path) -> Iterator[tuple[int, Row]]:
    lines = _read_text(path).splitlines()
    delimiter = "\t" if lines and "\t" in lines[0] else ","
    reader = csv.DictReader(lines, delimiter=delimiter)
    for row in reader:
        if None in row or None in row.values():
            raise AnnotationError(path, "wrong number of columns", line=reader.line_num)
        yield reader.line_num, dict(row)


def _rows(path: Path) -> Iterator[tuple[int, Row]]:
    return _jsonl_rows(path) if path.suffix == ".jsonl" else _csv_rows(path)


def _split_files(path: Path, exts: tuple[str, ...]) -> list[tuple[str, Path]]:
    """(split, file) pairs: the file itself, or every file with one of `exts` in the folder."""
    if path.is_file():
        return [(path.stem, path)]
    if not path.is_dir():
        raise AnnotationError(path, "no such file or folder")
    files = sorted(p for p in path.iterdir() if p.suffix in exts)
    if not files:
        raise AnnotationError(path, f"no annotation files ({', '.join(exts)}) in this folder")
    return [(p.stem, p) for p in files]


def _field(row: Row, names: tuple[str, ...], path: Path, line: int) -> object:
    for name in names:
        if name in row:
            return row[name]
    raise AnnotationError(path, f"missing column '{names[0]}'", line=line)


def _text(row: Row, names: tuple[str, ...], path: Path, line: int) -> str:
    value = _field(row, names, path, line)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise AnnotationError(path, f"'{names[0]}' must be a non-empty string", line=line)
    return value.strip()


def _seconds(row: Row, names: tuple[str, ...], path: Path, line: int) -> float | None:
    value = next((row[n] for n in names if n in row), None)
    if value is None or value == "":
        return None
    bad = AnnotationError(path, f"'{names[0]}' must be a number of seconds, got {value!r}", line=line)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise bad
    try:
        return float(value)
    except ValueError:
        raise bad from None


class _Videos:
    """Names video files: the `{stem}.{ext}` that exists in the videos folder, else the first extension."""

    def __init__(self, folder: Path | None, exts: tuple[str, ...]) -> None:
        self.names = {p.name for p in folder.iterdir()} if folder is not None and folder.is_dir() else set()
        self.exts = exts

    def __call__(self, stem: str) -> str:
        return next((stem + e for e in self.exts if stem + e in self.names), stem + self.exts[0])


def _ssv2_labels(folder: Path) -> dict[str, int]:
    path = folder / "labels.json"
    try:
        labels = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise AnnotationError(path, f"bad JSON: {exc.msg}", line=exc.lineno) from None
    if not isinstance(labels, dict):
        raise AnnotationError(path, "expected an object mapping templates to class indices")
    try:
        return {template: int(index) for template, index in labels.items()}
    except (TypeError, ValueError):
        raise AnnotationError(path, "class indices must be integers") from None


def read_ssv2(folder: Path, *, videos: Path | None = None) -> Annotations:
    """Read an SSv2 annotations folder (also what `paxion synth` writes); test.json, unlabelled, is skipped."""
    folder = Path(folder)
    labels = _ssv2_labels(folder)
    index = {hide_objects(t): i for t, i in labels.items()}
    files = [(s, folder / f"{s}.json") for s in SSV2_SPLITS if (folder / f"{s}.json").is_file()]
    if not files:
        raise AnnotationError(folder, "no train.json or validation.json in this folder")
    name = _Videos(videos, (".webm", ".mp4"))
    out = Annotations("ssv2", templates=sorted(labels, key=labels.__getitem__))
    for split, path in files:
        for line, item in _json_array(path):
            if not isinstance(item, dict):
                raise AnnotationError(path, "expected a JSON object", line=line)
            template = _text(item, ("template",), path, line)
            objects = item.get("placeholders", [])
            if not isinstance(objects, list) or not all(isinstance(o, str) for o in objects):
                raise AnnotationError(path, "'placeholders' must be a list of strings", line=line)
            hidden = hide_objects(template)
            if hidden not in index:
                raise AnnotationError(path, f"template {template!r} is not in labels.json", line=line)
            clip = _text(item, ("id",), path, line)
            out.records.append(
                ClipRecord(
                    clip,
                    split,
                    name(clip),
                    _text(item, ("label",), path, line),
                    template=hidden,
                    label=index[hidden],
                    objects=tuple(objects),
                )
            )
    return out


def read_ego4d(path: Path, *, videos: Path | None = None) -> Annotations:
    """Read EgoClip/Ego4D narrations (CSV, TSV or JSONL: video_uid, clip_start, clip_end, clip_text)."""
    name = _Videos(videos, (".mp4", ".webm"))
    out = Annotations("ego4d")
    for split, file in _split_files(Path(path), _TABLE_EXTS):
        for line, row in _rows(file):
            video = _text(row, ("video_uid", "video"), file, line)
            caption = clean_narration(_text(row, ("clip_text", "narration", "text"), file, line))
            if not caption:
                raise AnnotationError(file, "narration is empty once its tags are removed", line=line)
            suffix = row.get("narration_ind", line)
            clip = str(row["id"]) if "id" in row else f"{video}_{suffix}"
            start = _seconds(row, ("clip_start", "start"), file, line)
            end = _seconds(row, ("clip_end", "end"), file, line)
            out.records.append(ClipRecord(clip, split, name(video), caption, start, end))
    return out


def read_nextqa(path: Path, *, videos: Path | None = None) -> Annotations:
    """Read NExT-QA multiple choice (CSV: video, question, a0..a4, answer, qid, type)."""
    name = _Videos(videos, (".mp4", ".webm"))
    out = Annotations("nextqa")
    for split, file in _split_files(Path(path), (".csv",)):
        for line, row in _csv_rows(file):
            video = _text(row, ("video",), file, line)
            question = _text(row, ("question",), file, line)
            choices = [_text(row, (f"a{k}",), file, line) for k in range(5)]
            _text(row, ("type",), file, line)
            answer = _text(row, ("answer",), file, line)
            if answer not in {"0", "1", "2", "3", "4"}:
                raise AnnotationError(file, f"'answer' must be 0-4, got {answer!r}", line=line)
            candidates = tuple(f"{question} {c}" for c in choices)
            clip = f"{video}_{_text(row, ('qid',), file, line)}"
            out.records.append(
                ClipRecord(clip, split, name(video), candidates[int(answer)], candidates=candidates, answer=int(answer))
            )
    return out


def read_jsonl(path: Path, *, videos: Path | None = None) -> Annotations:
    """Read generic JSONL clips (video, caption, optional start, end, id; id defaults to split-line)."""
    out = Annotations("jsonl")
    for split, file in _split_files(Path(path), (".jsonl",)):
        for line, row in _jsonl_rows(file):
            clip = _text(row, ("id",), file, line) if "id" in row else f"{split}-{line}"
            video = _text(row, ("video",), file, line)
            caption = _text(row, ("caption",), file, line)
            start = _seconds(row, ("start",), file, line)
            end = _seconds(row, ("end",), file, line)
            out.records.append(ClipRecord(clip, split, video, caption, start, end))
    return out


READERS: dict[str, Callable[..., Annotations]] = {
    "ssv2": read_ssv2,
    "ego4d": read_ego4d,
    "nextqa": read_nextqa,
    "jsonl": read_jsonl,
}


def read_dataset(dataset: str, path: str | Path, *, videos: str | Path | None = None) -> Annotations:
    """Read annotations of a dataset named in READERS."""
    if dataset not in READERS:
        raise AnnotationError(path, f"unknown dataset {dataset!r}; choose from {', '.join(READERS)}")
    return READERS[dataset](Path(path), videos=None if videos is None else Path(videos))
