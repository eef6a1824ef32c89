"""Reading back the bench files `paxion bench build` writes: BENCH/meta.json and BENCH/{split}.jsonl.

Their format is fixed in docs/architecture.md, section 2.
"""

from __future__ import annotations

import json
from pathlib import Path

from paxion.errors import AnnotationError


def read_bench(bench_dir: str | Path, splits: list[str] | None = None) -> tuple[dict, dict[str, list[dict]]]:
    """The bench's meta.json and, per split (default: every split meta.json lists), its JSONL records."""
    bench_dir = Path(bench_dir)
    meta_path = bench_dir / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise AnnotationError(meta_path, f"cannot read bench meta ({exc})") from None
    records: dict[str, list[dict]] = {}
    for split in splits or list(meta.get("splits", {})):
        path = bench_dir / f"{split}.jsonl"
        if not path.is_file():
            raise AnnotationError(path, f"no such split file (bench has {', '.join(meta.get('splits', {}))})")
        rows, seen = [], set()
        for line_no, line in enumerate(path.read_text("utf-8").split("\n"), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise AnnotationError(path, f"not JSON ({exc})", line=line_no) from None
            missing = [k for k in ("id", "video", "caption") if not isinstance(row.get(k), str)]
            if missing or row["id"] in seen:
                reason = f"missing {', '.join(missing)}" if missing else f"duplicate id {row['id']!r}"
                raise AnnotationError(path, reason, line=line_no)
            seen.add(row["id"])
            rows.append(row)
        records[split] = rows
    if not records:
        raise AnnotationError(meta_path, "no splits to extract")
    return meta, records
