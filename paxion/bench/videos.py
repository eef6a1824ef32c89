"""Finding a clip's video file by its id, whatever common container it was saved in."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

VIDEO_EXTS: tuple[str, ...] = (".webm", ".mp4", ".mkv", ".avi", ".mov")


class VideoIndex:
    """The video files under a folder (searched recursively), by stem; empty when there is no folder.

    `name(stem, prefer)` gives the path, relative to the folder, of the video named `stem` (the first
    extension of `prefer`, then of VIDEO_EXTS, that exists), else `stem + prefer[0]`.
    """

    def __init__(self, folder: Path | None) -> None:
        self.paths: dict[str, dict[str, str]] = {}
        if folder is None or not folder.is_dir():
            return
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            rel = PurePosixPath(Path(root).relative_to(folder).as_posix())
            for file in sorted(files):
                stem, ext = os.path.splitext(file)
                if ext.lower() in VIDEO_EXTS:
                    self.paths.setdefault(stem, {}).setdefault(ext.lower(), str(rel / file))

    def name(self, stem: str, prefer: tuple[str, ...]) -> str:
        found = self.paths.get(stem, {})
        return next((found[e] for e in (*prefer, *VIDEO_EXTS) if e in found), stem + prefer[0])


def find_video(videos_dir: str | Path, clip: dict) -> Path | None:
    """The video of a bench clip: `videos_dir/clip["video"]` if it exists, else the same name or the clip's
    id with any extension of VIDEO_EXTS (in that order, lower then upper case) beside it; None when none."""
    videos_dir = Path(videos_dir)
    given = videos_dir / clip["video"]
    if given.is_file():
        return given
    stems = [given.with_suffix(""), given.parent / str(clip["id"]), videos_dir / str(clip["id"])]
    for stem in dict.fromkeys(stems):
        for ext in (*VIDEO_EXTS, *(e.upper() for e in VIDEO_EXTS)):
            path = stem.with_name(stem.name + ext)
            if path.is_file():
                return path
    return None
