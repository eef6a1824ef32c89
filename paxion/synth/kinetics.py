"""Write a world as Kinetics ships: one CSV per split naming YouTube-style clips, and the clip files.

Layout: `kinetics/train.csv` and `kinetics/val.csv` with columns `label,youtube_id,time_start,time_end,split`
(Kinetics-400's annotation CSVs) and the clips at `kinetics/videos/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4`,
the name the common Kinetics downloaders give a clip. The label is the action's class name, its template
caption with "something" for each object, lowercase like Kinetics' ("pushing something from left to right").
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from paxion.synth.actions import template_caption
from paxion.synth.encode import FPS
from paxion.synth.tables import write_csv

if TYPE_CHECKING:
    from paxion.synth.world import WorldClip

COLUMNS: tuple[str, ...] = ("label", "youtube_id", "time_start", "time_end", "split")
SPLIT_NAMES: dict[str, str] = {"train": "train", "validation": "val"}  # world split -> file and `split` value
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"  # YouTube's id characters
_ID_BITS = 66  # 11 characters of 6 bits
_ID_MULTIPLIER = 0x9E3779B97F4A7C15  # odd, so multiplying modulo 2**66 maps distinct clip ids to distinct ids
_ID_STREAM = 3  # keeps the ids' random offset apart from every clip's own generator


def class_name(template: str) -> str:
    """The Kinetics-style class name of an action template."""
    return template_caption(template).lower()


def youtube_id(clip: WorldClip, *, seed: int) -> str:
    """An 11-character YouTube-style id, distinct for distinct clip ids of a world and fixed by the seed."""
    offset = int.from_bytes(np.random.default_rng([seed, _ID_STREAM]).bytes(9), "big")
    number = (int(clip.id) * _ID_MULTIPLIER + offset) % (1 << _ID_BITS)
    return "".join(_ALPHABET[(number >> shift) & 63] for shift in range(_ID_BITS - 6, -1, -6))


def clip_times(clip: WorldClip) -> tuple[int, int]:
    """The clip's `time_start` and `time_end` in whole seconds (the clip starts its video)."""
    return 0, math.ceil(clip.params.frames / FPS)


def kinetics_video_path(root: Path, clip: WorldClip, *, seed: int) -> Path:
    """Where the clip lives in the Kinetics layout of a world written to `root`."""
    start, end = clip_times(clip)
    return Path(root) / "kinetics" / "videos" / f"{youtube_id(clip, seed=seed)}_{start:06d}_{end:06d}.mp4"


def write_kinetics(root: Path, clips: list[WorldClip], *, seed: int) -> None:
    """Write `root/kinetics/{train,val}.csv` for `clips`, whose videos are at `kinetics_video_path`."""
    for split, name in SPLIT_NAMES.items():
        rows = [[class_name(c.template), youtube_id(c, seed=seed), *clip_times(c), name]
                for c in clips if c.split == split]
        write_csv(Path(root) / "kinetics" / f"{name}.csv", COLUMNS, rows)
