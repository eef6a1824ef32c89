"""The built-in world: exact reversal pairs, large motions, reproducibility, SSv2 files and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner

from paxion.cli import cli
from paxion.extract.video import read_frames
from paxion.synth.actions import ACTION_INDEX, ACTIONS, OBJECTS, fill_template
from paxion.synth.draw import COLOUR_RGB
from paxion.synth.encode import write_video
from paxion.synth.render import BUILT_IN, SHIFTED, render_clip, sample_params
from paxion.synth.world import sample_world, video_path, write_world

FORWARD = [a for a in ACTIONS if a.partner is not None and not a.reversed]


def _object_mask(frames: np.ndarray, colour: str) -> np.ndarray:
    """Pixels close to an object colour, per frame [F, H, W]."""
    target = np.asarray(COLOUR_RGB[colour], dtype=np.float32)
    return np.abs(frames.astype(np.float32) - target).max(axis=-1) < 40


@pytest.mark.parametrize("domain", [BUILT_IN, SHIFTED], ids=lambda d: d.name)
@pytest.mark.parametrize("action", FORWARD, ids=lambda a: a.motion)
def test_partner_is_exactly_the_clip_played_backwards(action, domain):
    rng = np.random.default_rng(ACTION_INDEX[action.template])
    for _ in range(3):
        params = sample_params(rng, action, domain=domain)
        forward = render_clip(action.template, params)
        backward = render_clip(action.partner, params)
        assert forward.shape == (16, 64, 64, 3) and forward.dtype == np.uint8
        assert np.array_equal(backward, forward[::-1])
        assert not np.array_equal(forward[0], forward[-1])  # something changes, so the two really differ


@pytest.mark.parametrize("action", FORWARD, ids=lambda a: a.motion)
def test_decoded_partner_matches_the_reversed_clip(action, tmp_path):
    params = sample_params(np.random.default_rng(7), action)
    forward_path, backward_path = tmp_path / "f.mp4", tmp_path / "b.mp4"
    write_video(forward_path, render_clip(action.template, params))
    write_video(backward_path, render_clip(action.partner, params))
    for num_frames in (16, 8):
        forward = read_frames(forward_path, num_frames=num_frames).astype(int)
        backward = read_frames(backward_path, num_frames=num_frames).astype(int)
        assert np.abs(backward - forward[::-1]).max() <= 4  # only RGB<->YUV rounding
        assert np.abs(backward - forward).max() > 40


@pytest.mark.parametrize("domain", [BUILT_IN, SHIFTED], ids=lambda d: d.name)
@pytest.mark.parametrize("motion, axis", [("slide", 1), ("fall", 0)])
def test_motions_travel_several_patches(motion, axis, domain):
    action = next(a for a in FORWARD if a.motion == motion)
    rng = np.random.default_rng(1)
    for _ in range(5):
        params = sample_params(rng, action, domain=domain)
        frames = render_clip(action.template, params)
        mask = _object_mask(frames, params.objects[0].split()[0])
        coords = np.argwhere(mask[0])[:, axis].mean(), np.argwhere(mask[-1])[:, axis].mean()
        assert abs(coords[1] - coords[0]) >= 12  # 1.5 patches of 8 pixels, far beyond the 2-pixel camera jitter


def test_converging_objects_close_a_wide_gap():
    action = next(a for a in FORWARD if a.motion == "converge")
    rng = np.random.default_rng(4)
    for _ in range(5):
        params = sample_params(rng, action)
        frames = render_clip(action.template, params)
        mask = np.logical_or(*(_object_mask(frames, name.split()[0]) for name in params.objects))
        spans = [np.ptp(np.argwhere(m)[:, 1]) for m in (mask[0], mask[-1])]
        assert spans[0] - spans[1] >= 24  # each object travels 1.5 patches or more towards the middle


def test_approach_grows_the_object():
    action = next(a for a in FORWARD if a.motion == "approach")
    rng = np.random.default_rng(2)
    for _ in range(5):
        params = sample_params(rng, action)
        mask = _object_mask(render_clip(action.template, params), params.objects[0].split()[0])
        assert mask[-1].sum() >= 3.5 * mask[0].sum()


def test_backgrounds_differ_between_clips():
    action = ACTIONS[0]
    rng = np.random.default_rng(3)
    first = [render_clip(action.template, sample_params(rng, action))[0] for _ in range(4)]
    assert all(np.abs(a.astype(int) - b).mean() > 5 for i, a in enumerate(first) for b in first[i + 1 :])


def test_action_and_object_sampling():
    clips = sample_world(train=3000, val=0, seed=5)
    counts = Counter(c.template for c in clips)
    assert set(counts) == {a.template for a in ACTIONS}
    no_change = sum(counts[a.template] for a in ACTIONS if not a.salient) / len(clips)
    assert 0.015 < no_change < 0.05  # 2 x 0.25 of 16.5 weights ~ 3%
    for clip in clips:
        objects = clip.params.objects
        assert len(objects) == ACTIONS[ACTION_INDEX[clip.template]].n_objects == len(set(objects))
    assert len({o for c in clips for o in c.params.objects}) == len(OBJECTS)


def _world_bytes(root):
    annotations = {p.name: p.read_bytes() for p in sorted((root / "annotations").iterdir())}
    videos = {p.name: read_frames(p, num_frames=4) for p in sorted((root / "videos").iterdir())}
    return annotations, videos


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world") / "w"
    summary = write_world(root, train=8, val=4, seed=11, workers=1)
    return root, summary


def test_same_seed_same_world_for_any_worker_count(world, tmp_path):
    root, _ = world
    again = tmp_path / "again"
    write_world(again, train=8, val=4, seed=11, workers=2)
    (ann_a, vid_a), (ann_b, vid_b) = _world_bytes(root), _world_bytes(again)
    assert ann_a == ann_b and vid_a.keys() == vid_b.keys()
    assert all(np.array_equal(vid_a[k], vid_b[k]) for k in vid_a)
    other = tmp_path / "other"
    write_world(other, train=8, val=4, seed=12, workers=1)
    ann_c, vid_c = _world_bytes(other)
    assert ann_c["train.json"] != ann_a["train.json"]
    assert not np.array_equal(vid_c["1.mp4"], vid_a["1.mp4"])


def test_annotations_are_ssv2_shaped(world):
    root, summary = world
    folder = root / "annotations"
    labels = json.loads((folder / "labels.json").read_text())
    assert labels == {a.template: str(i) for i, a in enumerate(ACTIONS)}
    train = json.loads((folder / "train.json").read_text())
    validation = json.loads((folder / "validation.json").read_text())
    assert len(train) == 8 and len(validation) == 4
    ids = [item["id"] for item in train + validation]
    assert len(set(ids)) == len(ids)
    for item in train + validation:
        assert set(item) == {"id", "label", "template", "placeholders"}
        assert item["template"] in labels
        assert len(item["placeholders"]) == item["template"].count("[something]")
        assert item["label"] == fill_template(item["template"], item["placeholders"])
        assert video_path(root, item["id"]).stat().st_size > 0
    assert summary.clips == {"train": 8, "validation": 4}
    assert sum(summary.class_counts.values()) == 12
    assert summary.video_bytes == sum(p.stat().st_size for p in (root / "videos").iterdir())


def test_cli_writes_a_world(tmp_path):
    result = CliRunner().invoke(cli, ["synth", "--out", str(tmp_path / "w"), "--train", "2", "--val", "1",
                                      "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "w" / "videos").glob("*.mp4"))) == 3
    assert "2 train + 1 validation clips" in result.output


@pytest.mark.parametrize(
    "args, out_is_file",
    [(["--train", "0"], False), (["--val", "-1"], False), (["--workers", "0"], False), (["--train", "two"], False),
     ([], True)],
)
def test_cli_bad_input_is_one_line_error(args, out_is_file, tmp_path):
    existing = tmp_path / "file.txt"
    existing.write_text("x")
    out = existing if out_is_file else tmp_path / "w"
    run = subprocess.run([sys.executable, "-m", "paxion", "synth", "--out", str(out), *args],
                         check=False, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert not (tmp_path / "w").exists() and existing.read_text() == "x"
