"""Write a CSV table atomically, as the datasets' annotation files are: a header line, `\\n` line ends."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

from paxion.atomic import write_text


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Write `columns` then `rows` to `path` (UTF-8, minimal quoting), replacing the file atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    write_text(path, buffer.getvalue())
