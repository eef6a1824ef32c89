"""The human baseline of ActionBench (paper Table 1's Human row, App. B): sample items, write clips and a sheet, score.

As in the paper, `n` items are drawn for Action Antonym and Object Replacement together and another `n` for Video
Reversal. An AA / OR item shows one clip and two texts (the caption and its negative, in random order); a VR item
shows one text and two clips, the clip as recorded and played backwards (in random order). The person fills the
"answer" column of the sheet with A or B; the key stays in a separate file of the folder.

Folder written by `write_human_eval`:
- `clips/{item}.mp4` (AA / OR) and `clips/{item}-A.mp4`, `clips/{item}-B.mp4` (VR), H.264;
- `sheet.csv`: item, task, clip, text, option A, option B, answer (empty);
- `key.json`: {"seed", "bench", "items": [{"item", "task", "clip", "answer": "A" | "B"}]};
- `README.txt`: how to fill the sheet.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from paxion.analysis.items import read_jsonl
from paxion.atomic import write_json, write_text
from paxion.errors import PaxionError
from paxion.extract.video import read_frames
from paxion.synth.encode import write_video
from paxion.trainer.evaluate import summarise

SHEET_COLUMNS = ("item", "task", "clip", "text", "option A", "option B", "answer")
CHOICES = ("A", "B")
INSTRUCTIONS = """Human baseline of ActionBench: fill the "answer" column of sheet.csv with A or B for every item.

Tasks aa and or: watch the clip (column "clip") and choose the text, option A or option B, that describes it.
Task vr: read the text (column "text"), watch clip A and clip B (one of them is played backwards) and choose
the clip that the text describes.

Do not open key.json. Score the filled sheet with `paxion bench human-score THIS_FOLDER FILLED_SHEET`.
"""


def sample_items(records: list[dict], *, n: int = 50, seed: int = 0) -> list[dict]:
    """Draw up to n AA/OR items and up to n VR items from bench records, the same for the same seed.

    Each item: {"item": "001", "task": "aa" | "or" | "vr", "record": bench record, "swap": bool}; swap says
    whether option A is the negative (AA / OR: the negative text; VR: the reversed clip).
    """
    rng = np.random.default_rng(seed)
    pairs = [(r, task) for r in records for task in ("aa", "or") if r.get(f"{task}_caption")]
    text_rows = rng.choice(len(pairs), size=min(n, len(pairs)), replace=False) if pairs else []
    vr_rows = rng.choice(len(records), size=min(n, len(records)), replace=False) if records else []
    chosen = [pairs[i] for i in text_rows] + [(records[i], "vr") for i in vr_rows]
    swaps = rng.random(len(chosen)) < 0.5
    return [{"item": f"{k + 1:03d}", "task": task, "record": record, "swap": bool(swap)}
            for k, ((record, task), swap) in enumerate(zip(chosen, swaps))]


def _even(frames: np.ndarray) -> np.ndarray:
    """Crop to even height and width (H.264 encoders want them)."""
    return frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]


def write_human_eval(
    bench: str | Path,
    videos: str | Path,
    out: str | Path,
    *,
    n: int = 50,
    seed: int = 0,
    frames: int = 16,
    fps: int = 8,
) -> list[dict]:
    """Sample items of a bench JSONL (`sample_items`), write their clips, the sheet and the key into `out`.

    videos: the folder the bench's "video" names are relative to. frames: frames sampled from each clip (default
    16, by `paxion.extract.video.read_frames`, honouring start / end), written at `fps` (default 8).
    Returns the key's items. Raises PaxionError for an unreadable bench or video (VideoDecodeError).
    """
    records = read_jsonl(bench)
    if not records:
        raise PaxionError(f"{bench}: no clips to sample")
    out = Path(out)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    rows, key = [], []
    for item in sample_items(records, n=n, seed=seed):
        r, task, name = item["record"], item["task"], item["item"]
        clip = _even(read_frames(Path(videos) / r["video"], num_frames=frames, start=r.get("start"), end=r.get("end")))
        if task == "vr":
            forward, backward = f"clips/{name}-A.mp4", f"clips/{name}-B.mp4"
            if item["swap"]:
                forward, backward = backward, forward
            write_video(out / forward, clip, fps=fps)
            write_video(out / backward, clip[::-1].copy(), fps=fps)
            row = [name, task, f"clips/{name}-A.mp4 | clips/{name}-B.mp4", r["caption"], "clip A", "clip B"]
        else:
            write_video(out / f"clips/{name}.mp4", clip, fps=fps)
            options = [r["caption"], r[f"{task}_caption"]]
            if item["swap"]:
                options.reverse()
            row = [name, task, f"clips/{name}.mp4", "", *options]
        rows.append([*row, ""])
        key.append({"item": name, "task": task, "clip": str(r["id"]), "answer": CHOICES[int(item["swap"])]})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SHEET_COLUMNS)
    writer.writerows(rows)
    write_text(out / "sheet.csv", buffer.getvalue())
    write_json(out / "key.json", {"seed": seed, "bench": str(bench), "items": key})
    write_text(out / "README.txt", INSTRUCTIONS)
    return key


def score_sheet(folder: str | Path, sheet: str | Path) -> dict[str, dict]:
    """{task: {"accuracy": %, "n", "ci95"}} of a filled sheet against `folder`/key.json (intervals as the models').

    Answers are A or B (any case, spaces ignored). Raises PaxionError naming the sheet and item when an item is
    missing, unknown, repeated or not answered A / B, or when the key cannot be read.
    """
    key_path = Path(folder) / "key.json"
    try:
        key = {k["item"]: k for k in json.loads(key_path.read_text(encoding="utf-8"))["items"]}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise PaxionError(f"{key_path}: cannot read the answer key ({exc})") from None
    try:
        with open(sheet, encoding="utf-8-sig", newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PaxionError(f"{sheet}: cannot read the answer sheet ({exc})") from None
    if rows and not {"item", "answer"} <= rows[0].keys():
        raise PaxionError(f"{sheet}: needs the columns 'item' and 'answer'")
    answers: dict[str, str] = {}
    for line, row in enumerate(rows, start=2):
        item, answer = (row["item"] or "").strip(), (row["answer"] or "").strip().upper()
        if item not in key:
            raise PaxionError(f"{sheet}:{line}: item {item!r} is not in the key")
        if item in answers:
            raise PaxionError(f"{sheet}:{line}: item {item!r} answered twice")
        if answer not in CHOICES:
            raise PaxionError(f"{sheet}:{line}: item {item!r} needs the answer A or B, got {row['answer']!r}")
        answers[item] = answer
    missing = [item for item in key if item not in answers]
    if missing:
        raise PaxionError(f"{sheet}: {len(missing)} items not answered, e.g. {missing[0]!r}")
    tasks = dict.fromkeys(k["task"] for k in key.values())
    return {task: summarise(np.array([float(answers[i] == k["answer"]) for i, k in key.items() if k["task"] == task]))
            for task in tasks}
