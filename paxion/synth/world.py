"""Sample the built-in world and write it as Something-Something v2 ships: JSON annotations plus video files.

The same clips can also be written as NExT-QA multiple choice (`nextqa.py`), and a world can be written as
Kinetics ships instead (`kinetics.py`), as the domain-shifted world of `paxion synth --shift` is.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from paxion.atomic import ensure_dir, write_text
from paxion.errors import PaxionError
from paxion.synth.actions import ACTIONS, fill_template
from paxion.synth.encode import CODEC, write_video
from paxion.synth.kinetics import kinetics_video_path, write_kinetics
from paxion.synth.nextqa import write_nextqa
from paxion.synth.render import BUILT_IN, ClipParams, Domain, render_clip, sample_params

SPLITS: tuple[str, ...] = ("train", "validation")
LAYOUTS: tuple[str, ...] = ("ssv2", "kinetics")
NO_CHANGE_WEIGHT = 0.25  # Holding / Shaking relative to each other action: no state change, so keep them rare
ACTION_WEIGHTS = np.array([1.0 if a.salient else NO_CHANGE_WEIGHT for a in ACTIONS])
ACTION_PROBS = ACTION_WEIGHTS / ACTION_WEIGHTS.sum()


@dataclass(frozen=True)
class WorldClip:
    """One clip of the world: its SSv2 id, split, action template and render parameters."""

    id: str
    split: str
    template: str
    params: ClipParams

    def annotation(self) -> dict:
        """The SSv2 annotation entry of this clip."""
        objects = list(self.params.objects)
        return {"id": self.id, "label": fill_template(self.template, objects), "template": self.template,
                "placeholders": objects}


@dataclass(frozen=True)
class WorldSummary:
    """What `write_world` wrote."""

    root: Path
    clips: dict[str, int]  # split -> clips
    class_counts: dict[str, int]  # template -> clips, in the order of ACTIONS
    video_bytes: int
    seconds: float
    codec: str
    layouts: tuple[str, ...] = ("ssv2",)  # what root holds: ssv2 (annotations/, videos/), nextqa/, kinetics/


def clip_rng(seed: int, split: str, index: int, *, domain: Domain = BUILT_IN) -> np.random.Generator:
    """The random generator of clip `index` of `split`: independent of how many clips or workers there are."""
    return np.random.default_rng([seed, SPLITS.index(split), index, *domain.stream])


def sample_world(*, train: int, val: int, seed: int, domain: Domain = BUILT_IN) -> list[WorldClip]:
    """Draw every clip's action and parameters; ids run 1..train+val across the splits."""
    clips = []
    for split, count in zip(SPLITS, (train, val)):
        for index in range(count):
            rng = clip_rng(seed, split, index, domain=domain)
            action = ACTIONS[int(rng.choice(len(ACTIONS), p=ACTION_PROBS))]
            params = sample_params(rng, action, domain=domain)
            clips.append(WorldClip(str(len(clips) + 1), split, action.template, params))
    return clips


def video_path(root: Path, clip_id: str) -> Path:
    """Where the video of clip `clip_id` lives in a world written to `root`."""
    return Path(root) / "videos" / f"{clip_id}.mp4"


def _write_clip(job: tuple[Path, WorldClip]) -> int:
    path, clip = job
    return write_video(path, render_clip(clip.template, clip.params))


def _write_json(path: Path, data: object) -> None:
    # keys in SSv2's own order (id, label, template, placeholders), so not atomic.write_json's sorted keys
    write_text(path, json.dumps(data, indent=1) + "\n")


def write_annotations(root: Path, clips: list[WorldClip]) -> None:
    """Write annotations/train.json, validation.json and labels.json (template -> class index as a string)."""
    folder = ensure_dir(Path(root) / "annotations")
    for split in SPLITS:
        _write_json(folder / f"{split}.json", [c.annotation() for c in clips if c.split == split])
    _write_json(folder / "labels.json", {a.template: str(i) for i, a in enumerate(ACTIONS)})


def write_world(
    out: Path,
    *,
    train: int,
    val: int,
    seed: int,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    domain: Domain = BUILT_IN,
    layout: str = "ssv2",
    nextqa: bool = False,
) -> WorldSummary:
    """Render and encode a world of train + val clips under `out`.

    domain: the world's look (`render.BUILT_IN`, or `render.SHIFTED`: other colours, shapes, backgrounds).
    layout: "ssv2" writes videos/{id}.mp4 and annotations/ (Something-Something v2); "kinetics" writes
        kinetics/{train,val}.csv and kinetics/videos/ (see `kinetics.py`) instead.
    nextqa: with the ssv2 layout, also write nextqa/ (see `nextqa.py`), its videos hard links to videos/.
    workers: processes that render and encode (None = all CPU cores); the output does not depend on it.
    progress: called with the number of clips just finished.
    Raises PaxionError for bad counts, an unknown layout, nextqa without the ssv2 layout, or an unusable `out`.
    """
    if layout not in LAYOUTS:
        raise PaxionError(f"unknown world layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if nextqa and layout != "ssv2":
        raise PaxionError("the NExT-QA files link the SSv2 layout's videos: --nextqa needs the ssv2 layout")
    if train < 1 or val < 0:
        raise PaxionError(f"a world needs at least 1 training clip and 0 or more validation clips, got {train}/{val}")
    if workers is not None and workers < 1:
        raise PaxionError(f"workers must be at least 1, got {workers}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PaxionError(f"{out}: exists and is not a directory")
    start = time.perf_counter()
    clips = sample_world(train=train, val=val, seed=seed, domain=domain)
    if layout == "ssv2":
        paths = [video_path(out, c.id) for c in clips]
    else:
        paths = [kinetics_video_path(out, c, seed=seed) for c in clips]
    ensure_dir(paths[0].parent)
    jobs = list(zip(paths, clips))
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    total_bytes = 0
    if workers == 1:
        sizes = map(_write_clip, jobs)
        for size in sizes:
            total_bytes += size
            if progress:
                progress(1)
    else:
        # forkserver: forking a parent that runs threads (rich's live display, torch) can deadlock the children
        with multiprocessing.get_context("forkserver").Pool(workers) as pool:
            chunk = max(1, min(16, len(jobs) // (4 * workers)))
            for size in pool.imap_unordered(_write_clip, jobs, chunksize=chunk):
                total_bytes += size
                if progress:
                    progress(1)
    if layout == "ssv2":
        write_annotations(out, clips)
    else:
        write_kinetics(out, clips, seed=seed)
    if nextqa:
        write_nextqa(out, clips, sources=paths, seed=seed, pool=domain.objects)
    counts = Counter(c.template for c in clips)
    return WorldSummary(
        root=out,
        clips={split: sum(c.split == split for c in clips) for split in SPLITS},
        class_counts={a.template: counts[a.template] for a in ACTIONS},
        video_bytes=total_bytes,
        seconds=time.perf_counter() - start,
        codec=CODEC,
        layouts=(layout, "nextqa") if nextqa else (layout,),
    )
