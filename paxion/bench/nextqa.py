"""NExT-QA multiple choice (and NExT-GQA, which gives the answer as text).

CSV columns `video, frame_count, width, height, question, answer, qid, type, a0..a4`; `answer` is the index
of the correct choice (NExT-GQA: its text). Videos sit in nested folders: `map_vid_vidorID.json` gives
each video id its `"folder/id"` (the video is `{folder}/{id}.mp4`); without the map the videos folder is
searched recursively by id. Caption = question + correct answer; the candidates are question + each choice.
"""

from __future__ import annotations

from pathlib import Path

from paxion.bench import files
from paxion.bench.records import Annotations, ClipRecord
from paxion.bench.videos import VideoIndex
from paxion.errors import AnnotationError

CHOICES = 5


def _video_map(path: Path) -> dict[str, str]:
    data = files.load_json(path)
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise AnnotationError(path, 'expected an object {video id: "folder/video id"}')
    return {str(k): v for k, v in data.items()}


def _answer(answer: str, choices: list[str], path: Path, line: int) -> int:
    if answer in {str(k) for k in range(CHOICES)}:
        return int(answer)
    if answer in choices:
        return choices.index(answer)
    raise AnnotationError(path, f"'answer' must be 0-{CHOICES - 1} or the text of a choice, got {answer!r}", line=line)


def read_nextqa(path: Path, *, videos: Path | None = None, video_map: Path | None = None) -> Annotations:
    """Read NExT-QA / NExT-GQA CSVs (one file or a folder of them); `video_map`: map_vid_vidorID.json."""
    folders = _video_map(Path(video_map)) if video_map is not None else None
    found = VideoIndex(videos if folders is None else None)
    out = Annotations("nextqa")
    for split, file in files.split_files(Path(path), (".csv",)):
        for line, row in files.csv_rows(file):
            video = files.text(row, ("video",), file, line)
            question = files.text(row, ("question",), file, line)
            choices = [files.text(row, (f"a{k}",), file, line) for k in range(CHOICES)]
            files.text(row, ("type",), file, line)
            answer = _answer(files.text(row, ("answer",), file, line), choices, file, line)
            if folders is None:
                name = found.name(video, (".mp4", ".webm"))
            elif video in folders:
                name = f"{folders[video]}.mp4"
            else:
                raise AnnotationError(file, f"video {video} is not in {video_map}", line=line)
            candidates = tuple(f"{question} {c}" for c in choices)
            out.records.append(ClipRecord(
                f"{video}_{files.text(row, ('qid',), file, line)}", split, name, candidates[answer],
                candidates=candidates, answer=answer, question=question, origin=f"{file}:{line}",
            ))
    return out
