"""A tiny built-in world read back through the SSv2 reader and the video decoder."""

from __future__ import annotations

import json

import numpy as np

from paxion.bench.readers import read_ssv2
from paxion.extract.video import read_frames
from paxion.synth.actions import ACTION_INDEX, template_caption
from paxion.synth.world import write_world


def test_synth_world_reads_back_as_ssv2(tmp_path):
    root = tmp_path / "world"
    write_world(root, train=6, val=3, seed=2, workers=1)
    annotations = read_ssv2(root / "annotations", videos=root / "videos")
    raw = {
        item["id"]: item
        for split in ("train", "validation")
        for item in json.loads((root / "annotations" / f"{split}.json").read_text())
    }
    assert sorted(r.id for r in annotations.records) == sorted(raw)
    assert [r.split for r in annotations.records].count("validation") == 3
    for record in annotations.records:
        item = raw[record.id]
        assert record.caption == item["label"]
        assert record.label == ACTION_INDEX[item["template"]]
        assert record.template == template_caption(item["template"])
        assert list(record.objects) == item["placeholders"]
        frames = read_frames(root / "videos" / record.video, num_frames=8, size=32)
        assert frames.shape == (8, 32, 32, 3) and frames.dtype == np.uint8
        assert frames.std() > 5  # real pictures, not blank frames
