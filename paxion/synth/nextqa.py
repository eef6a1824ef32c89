"""Write a world's clips a second time as NExT-QA ships: multiple-choice CSVs, nested video folders, a map.

Layout (as in the NExT-QA repository's `dataset/nextqa/`): `nextqa/train.csv` and `nextqa/val.csv` with
columns `video,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4` (`answer` is the index
0-4 of the correct choice), `nextqa/map_vid_vidorID.json` (`{video id: "folder/video id"}`) and the clips
at `nextqa/videos/{folder}/{video id}.mp4`, hard links to the SSv2 layout's `videos/{id}.mp4`.

One question a clip: "what happened to the red ball", answered by five lowercase captions of the clip's
objects: the clip's action, its time reversal (the partner action, when it has one) and other actions.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from paxion.atomic import atomic_path, write_text
from paxion.synth.actions import ACTION_INDEX, ACTIONS, fill_template
from paxion.synth.tables import write_csv

if TYPE_CHECKING:
    from paxion.synth.world import WorldClip

COLUMNS: tuple[str, ...] = ("video", "frame_count", "width", "height", "question", "answer", "qid", "type",
                            "a0", "a1", "a2", "a3", "a4")
SPLIT_FILES: dict[str, str] = {"train": "train.csv", "validation": "val.csv"}  # world split -> file
CHOICES = 5
ID_BASE = 5_000_000_000  # video ids are numeric strings of ten digits, like NExT-QA's
CLIPS_PER_FOLDER = 100
QUESTION_TYPE = "TC"  # NExT-QA's "temporal, current" type ("what is the woman doing")
_CANDIDATE_STREAM = 2  # keeps the candidates' random draws apart from every clip's own generator


def video_id(clip: WorldClip) -> str:
    """The NExT-QA video id of a clip: a ten-digit numeric string."""
    return str(ID_BASE + int(clip.id))


def video_key(clip: WorldClip) -> str:
    """The clip's `folder/video id` entry of the map file; folders are four-digit numbers, as NExT-QA's."""
    return f"{int(clip.id) // CLIPS_PER_FOLDER:04d}/{video_id(clip)}"


def nextqa_video_path(root: Path, clip: WorldClip) -> Path:
    """Where the NExT-QA copy of the clip lives in a world written to `root`."""
    return Path(root) / "nextqa" / "videos" / f"{video_key(clip)}.mp4"


def question(clip: WorldClip) -> str:
    """The clip's question, in NExT-QA's lowercase style: "what happened to the red ball"."""
    return "what happened to " + " and ".join(f"the {obj}" for obj in clip.params.objects)


def candidates(clip: WorldClip, *, seed: int, pool: tuple[str, ...]) -> tuple[list[str], int]:
    """The five answer texts of the clip's question, shuffled, and the index of the correct one.

    The choices are the clip's action, its reversal partner (when it has one) and other actions drawn at
    random, each a lowercase caption of the clip's objects; an action needing more objects than the clip
    has gets extra ones from `pool`. Deterministic for a seed and clip id.
    """
    rng = np.random.default_rng([seed, int(clip.id), _CANDIDATE_STREAM])
    partner = ACTIONS[ACTION_INDEX[clip.template]].partner
    chosen = [clip.template] + ([partner] if partner else [])
    others = [a.template for a in ACTIONS if a.template not in chosen]
    chosen += [others[int(k)] for k in rng.choice(len(others), size=CHOICES - len(chosen), replace=False)]
    own = list(clip.params.objects)
    spare = [o for o in pool if o not in own]
    texts = []
    for template in chosen:
        need = template.count("[something]")
        extra = [spare[int(k)] for k in rng.choice(len(spare), size=max(0, need - len(own)), replace=False)]
        texts.append(fill_template(template, (own + extra)[:need]).lower())
    order = rng.permutation(CHOICES)
    return [texts[int(k)] for k in order], int(np.flatnonzero(order == 0)[0])


def _row(clip: WorldClip, *, seed: int, pool: tuple[str, ...]) -> list[object]:
    texts, answer = candidates(clip, seed=seed, pool=pool)
    p = clip.params
    return [video_id(clip), p.frames, p.size, p.size, question(clip), answer, 0, QUESTION_TYPE, *texts]


def _link(source: Path, target: Path) -> None:
    """Hard-link `source` at `target` (a copy where the file system has no hard links), replacing it atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)


def write_nextqa(root: Path, clips: list[WorldClip], *, sources: list[Path], seed: int, pool: tuple[str, ...]) -> None:
    """Write `root/nextqa/` for `clips`, whose videos are already written at `sources` (one path per clip)."""
    folder = Path(root) / "nextqa"
    for clip, source in zip(clips, sources, strict=True):
        _link(source, nextqa_video_path(root, clip))
    for split, name in SPLIT_FILES.items():
        write_csv(folder / name, COLUMNS, (_row(clip, seed=seed, pool=pool) for clip in clips if clip.split == split))
    write_text(folder / "map_vid_vidorID.json", json.dumps({video_id(c): video_key(c) for c in clips}))
