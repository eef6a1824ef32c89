"""The world's other layouts and domain: NExT-QA multiple choice, Kinetics CSVs, the domain-shifted world."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
import subprocess
import sys
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from paxion.cli import cli
from paxion.errors import PaxionError
from paxion.extract.video import read_frames
from paxion.synth.actions import (
    ACTION_INDEX,
    ACTIONS,
    COLOURS,
    OBJECTS,
    SHAPES,
    SHIFT_COLOURS,
    SHIFT_OBJECTS,
    SHIFT_SHAPES,
    fill_template,
    template_caption,
)
from paxion.synth.draw import coverage, shape_distance
from paxion.synth.kinetics import youtube_id
from paxion.synth.nextqa import candidates
from paxion.synth.render import SHIFTED, render_clip, sample_params
from paxion.synth.world import sample_world, write_world

# The formats as their datasets ship them (NExT-QA's dataset/nextqa/*.csv, Kinetics-400's annotation CSVs).
NEXTQA_COLUMNS = ["video", "frame_count", "width", "height", "question", "answer", "qid", "type",
                  "a0", "a1", "a2", "a3", "a4"]
KINETICS_COLUMNS = ["label", "youtube_id", "time_start", "time_end", "split"]


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def qa_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("qa") / "w"
    write_world(root, train=8, val=4, seed=11, workers=1, nextqa=True)
    return root


def test_default_world_is_unchanged():
    # Hashes taken from the world sampler before the shifted domain existed: the same seed draws the same clips.
    clips = sample_world(train=8, val=4, seed=11)
    fields = repr([(c.id, c.split, c.template, astuple(c.params)[:11]) for c in clips])
    assert hashlib.sha256(fields.encode()).hexdigest() == (
        "491d6d0df7ecfdeefdfef9ced1fc2a801765d5f099f4cdf08dd3256c5fa23f18")
    assert all(c.params.scene == "clutter" and set(c.params.objects) <= set(OBJECTS) for c in clips)


def test_nextqa_leaves_the_ssv2_files_as_they_are(qa_world, tmp_path):
    plain = tmp_path / "plain"
    write_world(plain, train=8, val=4, seed=11, workers=1)
    with_qa = {k: v for k, v in _tree(qa_world).items() if not k.startswith("nextqa")}
    assert with_qa == _tree(plain)


def test_nextqa_csvs_have_the_dataset_columns_and_questions(qa_world):
    folder = qa_world / "nextqa"
    train = json.loads((qa_world / "annotations" / "train.json").read_text())
    validation = json.loads((qa_world / "annotations" / "validation.json").read_text())
    for name, items in (("train.csv", train), ("val.csv", validation)):
        columns, rows = _rows(folder / name)
        assert columns == NEXTQA_COLUMNS
        assert len(rows) == len(items)
        for row, item in zip(rows, items):
            assert row["video"] == str(5_000_000_000 + int(item["id"]))
            assert (row["frame_count"], row["width"], row["height"], row["qid"], row["type"]) == ("16", "64", "64",
                                                                                                "0", "TC")
            assert row["question"] == "what happened to " + " and ".join(f"the {o}" for o in item["placeholders"])
            choices = [row[f"a{k}"] for k in range(5)]
            assert len(set(choices)) == 5 and all(c == c.lower() for c in choices)
            assert row["answer"] in {"0", "1", "2", "3", "4"}
            assert choices[int(row["answer"])] == item["label"].lower()
            partner = ACTIONS[ACTION_INDEX[item["template"]]].partner
            if partner is not None:
                assert fill_template(partner, item["placeholders"]).lower() in choices


def test_nextqa_map_resolves_every_video_to_a_nested_link(qa_world):
    folder = qa_world / "nextqa"
    mapping = json.loads((folder / "map_vid_vidorID.json").read_text())
    rows = _rows(folder / "train.csv")[1] + _rows(folder / "val.csv")[1]
    assert sorted(mapping) == sorted(r["video"] for r in rows)
    for row in rows:
        entry = mapping[row["video"]]
        assert re.fullmatch(r"\d{4}/" + row["video"], entry)
        copy = folder / "videos" / f"{entry}.mp4"
        original = qa_world / "videos" / f"{int(row['video']) - 5_000_000_000}.mp4"
        assert copy.read_bytes() == original.read_bytes()
        assert copy.stat().st_ino == original.stat().st_ino  # a hard link, not a second copy
    assert sorted(p.name for p in (folder / "videos").rglob("*.mp4")) == sorted(f"{v}.mp4" for v in mapping)


def test_nextqa_candidates_are_deterministic_and_shuffled():
    clips = sample_world(train=400, val=0, seed=3)
    first = [candidates(c, seed=3, pool=OBJECTS) for c in clips]
    assert first == [candidates(c, seed=3, pool=OBJECTS) for c in clips]
    assert first != [candidates(c, seed=4, pool=OBJECTS) for c in clips]
    positions = np.bincount([answer for _, answer in first], minlength=5)
    assert positions.min() > 400 / 5 * 0.6  # every position holds the answer about a fifth of the time
    for clip, (texts, answer) in zip(clips, first):
        assert texts[answer] == fill_template(clip.template, clip.params.objects).lower()


def test_two_object_distractor_gets_an_extra_object_from_the_pool():
    clip = next(c for c in sample_world(train=200, val=0, seed=8) if len(c.params.objects) == 1
                and any(t.startswith("moving") and " and " in t for t in candidates(c, seed=8, pool=OBJECTS)[0]))
    texts, _ = candidates(clip, seed=8, pool=OBJECTS)
    two = next(t for t in texts if " and " in t)
    own = clip.params.objects[0]
    assert two.startswith(f"moving {own} and ")
    extra = two[len(f"moving {own} and "):].split(" closer")[0].split(" away")[0]
    assert extra in OBJECTS and extra != own


@pytest.fixture(scope="module")
def shifted_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("shift") / "w"
    summary = write_world(root, train=6, val=3, seed=4, workers=1, domain=SHIFTED, layout="kinetics")
    return root, summary


def test_shifted_world_is_written_as_kinetics(shifted_world):
    root, summary = shifted_world
    assert summary.layouts == ("kinetics",)
    assert sorted(p.name for p in root.iterdir()) == ["kinetics"]  # no SSv2 files
    clips = sample_world(train=6, val=3, seed=4, domain=SHIFTED)
    listed = []
    for split, world_split, count in (("train", "train", 6), ("val", "validation", 3)):
        columns, rows = _rows(root / "kinetics" / f"{split}.csv")
        assert columns == KINETICS_COLUMNS and len(rows) == count
        expected = [c for c in clips if c.split == world_split]
        assert [r["label"] for r in rows] == [template_caption(c.template).lower() for c in expected]
        assert [r["youtube_id"] for r in rows] == [youtube_id(c, seed=4) for c in expected]
        for row in rows:
            assert row["split"] == split
            assert re.fullmatch(r"[A-Za-z0-9_-]{11}", row["youtube_id"])
            start, end = int(row["time_start"]), int(row["time_end"])
            assert (start, end) == (0, 2)  # 16 frames at 8 fps
            path = root / "kinetics" / "videos" / f"{row['youtube_id']}_{start:06d}_{end:06d}.mp4"
            assert read_frames(path, num_frames=16).shape == (16, 64, 64, 3)
            listed.append(path.name)
    assert sorted(listed) == sorted(p.name for p in (root / "kinetics" / "videos").iterdir())
    assert len(set(listed)) == 9


def test_shifted_world_is_deterministic(shifted_world, tmp_path):
    root, _ = shifted_world
    again = tmp_path / "again"
    write_world(again, train=6, val=3, seed=4, workers=2, domain=SHIFTED, layout="kinetics")
    first, second = _tree(root / "kinetics"), _tree(again / "kinetics")
    assert first.keys() == second.keys()
    for name in first:
        if name.endswith(".csv"):
            assert first[name] == second[name]
        else:
            assert np.array_equal(read_frames(root / "kinetics" / name, num_frames=4),
                                  read_frames(again / "kinetics" / name, num_frames=4))


def test_shifted_domain_uses_only_new_colours_and_shapes():
    assert not set(SHIFT_COLOURS) & set(COLOURS) and not set(SHIFT_SHAPES) & set(SHAPES)
    clips = sample_world(train=600, val=0, seed=2, domain=SHIFTED)
    assert {o for c in clips for o in c.params.objects} == set(SHIFT_OBJECTS)
    assert all(c.params.scene == "tiles" for c in clips)
    assert {c.template for c in clips} == {a.template for a in ACTIONS}
    built_in = sample_world(train=600, val=0, seed=2)
    assert [c.template for c in clips] != [c.template for c in built_in]  # its own random streams


@pytest.mark.parametrize("shape", SHIFT_SHAPES)
def test_shifted_shapes_cover_about_a_disc(shape):
    r = 8.0
    area = coverage(shape_distance(shape, 64, 32.0, 32.0, r)).sum()
    assert 0.75 * math.pi * r * r < area < 1.1 * math.pi * r * r


def test_shifted_objects_stand_out_from_their_backgrounds():
    action = next(a for a in ACTIONS if a.motion == "hold")
    rng = np.random.default_rng(5)
    for _ in range(20):
        params = sample_params(rng, action, domain=SHIFTED)
        frame = render_clip(action.template, params)[0].astype(float)
        x, y = params.paths[0][:2]  # the first frame has no camera offset; the hand wobbles by 1 pixel at most
        inside = coverage(shape_distance(params.objects[0].split()[1], 64, x, y, params.radius) + 1.5) > 0.99
        ys, xs = np.mgrid[0:64, 0:64]
        distance = np.hypot(xs - x, ys - y)
        ring = (distance > 2.2 * params.radius) & (distance < 3.5 * params.radius)
        contrast = np.abs(frame[inside].mean(axis=0) - frame[ring].mean(axis=0)).max()
        assert contrast > 40, params.objects


def test_youtube_ids_are_unique_and_fixed_by_the_seed():
    clips = sample_world(train=5000, val=0, seed=0)
    ids = [youtube_id(c, seed=0) for c in clips]
    assert len(set(ids)) == len(ids)
    assert ids[:50] != [youtube_id(c, seed=1) for c in clips[:50]]


def test_nextqa_needs_the_ssv2_layout(tmp_path):
    with pytest.raises(PaxionError, match="ssv2"):
        write_world(tmp_path / "w", train=2, val=1, seed=0, workers=1, layout="kinetics", nextqa=True)
    with pytest.raises(PaxionError, match="layout"):
        write_world(tmp_path / "w", train=2, val=1, seed=0, workers=1, layout="webm")
    assert not (tmp_path / "w").exists()


def test_cli_writes_the_nextqa_and_shifted_layouts(tmp_path):
    result = CliRunner().invoke(cli, ["synth", "--out", str(tmp_path / "qa"), "--train", "2", "--val", "1",
                                      "--workers", "1", "--nextqa"])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "qa" / "nextqa" / "videos").rglob("*.mp4"))) == 3
    assert "layouts: ssv2, nextqa" in result.output
    result = CliRunner().invoke(cli, ["synth", "--out", str(tmp_path / "shift"), "--train", "2", "--val", "1",
                                      "--workers", "1", "--shift"])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "shift" / "kinetics" / "videos").glob("*.mp4"))) == 3
    run = subprocess.run([sys.executable, "-m", "paxion", "synth", "--out", str(tmp_path / "both"), "--shift",
                          "--nextqa", "--train", "2"], check=False, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and "Traceback" not in run.stderr and "--nextqa" in run.stderr
    assert not (tmp_path / "both").exists()
