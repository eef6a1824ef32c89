"""Reading annotation files as people save them: UTF-8 with or without a byte-order mark, JSON, JSON Lines,
CSV or TSV, and typed fields of their rows. Every problem raises `AnnotationError` naming the file and line.

JSON Lines records are separated by "\\n" only (the JSON Lines spec), so U+2028 / U+0085 inside a JSON string
stay part of the caption; CSV rows likewise split only on "\\n", "\\r\\n" or "\\r".
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from paxion.errors import AnnotationError

Row = dict[str, object]


def read_text(path: Path) -> str:
    """The file's text, decoded as UTF-8; a leading byte-order mark is dropped."""
    try:
        return path.read_text("utf-8-sig")
    except FileNotFoundError:
        raise AnnotationError(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError(path, f"cannot read: {exc}") from None


def load_json(path: Path) -> object:
    """The whole file as one JSON value."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise AnnotationError(path, f"bad JSON: {exc.msg}", line=exc.lineno) from None


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def json_array(path: Path) -> Iterator[tuple[int, object]]:
    """The items of a JSON array file with the line each starts on."""
    text = read_text(path)
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


def jsonl_rows(path: Path) -> Iterator[tuple[int, Row]]:
    """The objects of a JSON Lines file with their line numbers, read as a stream; blank lines are skipped."""
    line = 0
    try:
        with path.open("rb") as f:
            for line, data in enumerate(f, start=1):  # binary lines end at b"\n" only
                raw = data.decode("utf-8").removeprefix("\ufeff" if line == 1 else "")
                if not raw.strip():
                    continue
                try:
                    row = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise AnnotationError(path, f"bad JSON: {exc.msg}", line=line) from None
                if not isinstance(row, dict):
                    raise AnnotationError(path, "expected a JSON object", line=line)
                yield line, row
    except FileNotFoundError:
        raise AnnotationError(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError(path, f"cannot read: {exc}", line=line or None) from None


def csv_rows(path: Path, *, header: bool = True) -> Iterator[tuple[int, Row]]:
    """The rows of a CSV file (a TSV when its first line has a tab) as dicts by header name, read as a stream
    (a multi-gigabyte EgoClip table is never held whole).

    Without a header, the keys are the column positions "0", "1", ...
    """
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            delimiter = "\t" if "\t" in f.readline() else ","
            f.seek(0)
            reader = csv.reader(f, delimiter=delimiter)
            names = next(reader, None) if header else None
            for cells in reader:
                if not any(c.strip() for c in cells):
                    continue
                if names is None:
                    yield reader.line_num, {str(i): c for i, c in enumerate(cells)}
                    continue
                if len(cells) != len(names):
                    raise AnnotationError(path, "wrong number of columns", line=reader.line_num)
                yield reader.line_num, dict(zip(names, cells))
    except FileNotFoundError:
        raise AnnotationError(path, "file not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise AnnotationError(path, f"cannot read: {exc}") from None


def table_rows(path: Path) -> Iterator[tuple[int, Row]]:
    """Rows of a .jsonl file, else of a CSV/TSV file."""
    return jsonl_rows(path) if path.suffix == ".jsonl" else csv_rows(path)


def split_files(path: Path, exts: tuple[str, ...], *, expected: str | None = None) -> list[tuple[str, Path]]:
    """(split, file) pairs: the file itself, or every file with one of `exts` in the folder; split = file stem.

    With `expected` (the format in words, e.g. "a Kinetics CSV"), a file given by itself must end in one of
    `exts` too, else AnnotationError names it and the expected format.
    """
    if path.is_file():
        if expected is not None and path.suffix.lower() not in exts:
            raise AnnotationError(path, f"expected {expected} ({', '.join(exts)}), not a '{path.suffix}' file")
        return [(path.stem, path)]
    if not path.is_dir():
        raise AnnotationError(path, "no such file or folder")
    files = sorted(p for p in path.iterdir() if p.suffix in exts)
    if not files:
        raise AnnotationError(path, f"no annotation files ({', '.join(exts)}) in this folder")
    return [(p.stem, p) for p in files]


def field(row: Row, names: tuple[str, ...], path: Path, line: int) -> object:
    """The value of the first of `names` the row has."""
    for name in names:
        if name in row:
            return row[name]
    raise AnnotationError(path, f"missing column '{names[0]}'", line=line)


def text(row: Row, names: tuple[str, ...], path: Path, line: int) -> str:
    """A non-empty string field (numbers are taken as their text), stripped."""
    value = field(row, names, path, line)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise AnnotationError(path, f"'{names[0]}' must be a non-empty string", line=line)
    return value.strip()


def optional_text(row: Row, name: str, path: Path, line: int) -> str | None:
    """A string field that may be absent or null (None), else non-empty."""
    return None if row.get(name) is None else text(row, (name,), path, line)


def seconds(row: Row, names: tuple[str, ...], path: Path, line: int) -> float | None:
    """A time in seconds, None when absent or empty."""
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


def saliency_flags(path: Path) -> dict[str, bool]:
    """The state-change filtering file of the paper's release: `{clip id: {"if_keep": bool}}` -> {id: keep}."""
    data = load_json(path)
    if not isinstance(data, dict):
        raise AnnotationError(path, 'expected an object {clip id: {"if_keep": true|false}}')
    flags = {}
    for clip, entry in data.items():
        keep = entry.get("if_keep") if isinstance(entry, dict) else None
        if not isinstance(keep, bool):
            raise AnnotationError(path, f"clip {clip!r}: 'if_keep' must be true or false")
        flags[str(clip)] = keep
    return flags


def _check_bench_row(row: Row) -> str | None:
    """Why a bench record (docs/architecture.md §2) is malformed, or None."""
    missing = [k for k in ("id", "video", "caption") if not isinstance(row.get(k), str)]
    if missing:
        return f"missing or not a string: {', '.join(missing)}"
    for key in ("start", "end"):
        value = row.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return f"'{key}' must be a number of seconds or null, got {value!r}"
    return None


def read_bench(bench_dir: str | Path, splits: list[str] | None = None) -> tuple[dict, dict[str, list[dict]]]:
    """The bench's meta.json and, per split (default: every split meta.json lists), its JSONL records.

    The format is fixed in docs/architecture.md §2. Raises AnnotationError naming the file and line of a missing
    split, a malformed record or a duplicate id.
    """
    bench_dir = Path(bench_dir)
    meta_path = bench_dir / "meta.json"
    meta = load_json(meta_path)
    if not isinstance(meta, dict):
        raise AnnotationError(meta_path, "expected a JSON object")
    records: dict[str, list[dict]] = {}
    for split in splits or list(meta.get("splits", {})):
        path = bench_dir / f"{split}.jsonl"
        if not path.is_file():
            raise AnnotationError(path, f"no such split file (bench has {', '.join(meta.get('splits', {}))})")
        rows, seen = [], set()
        for line, row in jsonl_rows(path):
            reason = _check_bench_row(row) or (f"duplicate id {row['id']!r}" if row["id"] in seen else None)
            if reason:
                raise AnnotationError(path, reason, line=line)
            seen.add(row["id"])
            rows.append(row)
        records[split] = rows
    if not records:
        raise AnnotationError(meta_path, "no splits to extract")
    return meta, records
