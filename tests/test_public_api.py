"""The public API of `paxion/__init__.py`: every name resolves to its module's object, and the documented
notebook flow runs end to end on a tiny built-in world with the toy backbone."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import paxion
from paxion.extract.pipeline import extract


@pytest.mark.parametrize("name", paxion.__all__)
def test_every_public_name_is_its_modules_object(name):
    assert getattr(paxion, name) is getattr(importlib.import_module(paxion._API[name]), name)


def test_import_paxion_stays_light():
    code = "import sys, paxion; print(any(m in sys.modules for m in ('torch', 'h5py', 'faiss')))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        paxion.nothing  # noqa: B018


def test_the_documented_notebook_flow(tmp_path):
    paxion.write_world(tmp_path / "world", train=16, val=8, seed=3, workers=1)
    annotations = paxion.read_dataset("ssv2", tmp_path / "world" / "annotations", videos=tmp_path / "world" / "videos")
    paxion.build_bench(annotations, tmp_path / "bench")
    result = extract(tmp_path / "bench", tmp_path / "world" / "videos", tmp_path / "cache",
                            paxion.load_backbone("toy"), workers=0, shard_size=8)
    assert result.clips == 24 and not result.failed
    cache = paxion.Cache(tmp_path / "cache")
    frozen = paxion.actionbench(cache, paxion.load_scorer(cache, None))
    assert frozen["vr"]["n"] == 8 and frozen["vr"]["accuracy"] == 50.0  # mean-pooled frames: every VR pair ties
    paxion.train(tmp_path / "cache", tmp_path / "runs" / "kp", options={"epochs": 1, "batch_size": 8}, device="cpu")
    patched = paxion.load_scorer(cache, tmp_path / "runs" / "kp")
    assert paxion.actionbench(cache, patched)["vr"]["n"] == 8
    retrieval = paxion.run_task(cache, patched, "template")
    assert retrieval["v2t"]["n"] == 8
