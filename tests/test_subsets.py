"""Class lists (files or shipped names) and clip-id pools."""

import numpy as np
import pytest
from tiny_cache import make_cache

from paxion.cache.reader import Cache
from paxion.errors import PaxionError
from paxion.retrieval import subsets


def test_class_lists_from_a_file_or_a_shipped_name(tmp_path, monkeypatch):
    listed = tmp_path / "classes.txt"
    listed.write_text("\ufeffOpening something\n\n  Closing something \nOpening something\n", encoding="utf-8")
    assert subsets.read_classes(listed) == ["Opening something", "Closing something"]
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "pair.txt").write_text("Approaching something\nMoving away from something\n")
    monkeypatch.setattr(subsets, "CLASS_LISTS", shipped)
    assert subsets.read_classes("pair") == ["Approaching something", "Moving away from something"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pair").write_text("Own list\n")
    assert subsets.read_classes("pair") == ["Own list"]  # an existing file wins over a shipped name
    with pytest.raises(PaxionError, match=r"not a shipped list name \(shipped: pair\)"):
        subsets.read_classes("nothing")
    (tmp_path / "blank.txt").write_text("\n \n")
    with pytest.raises(PaxionError, match="empty"):
        subsets.read_classes(tmp_path / "blank.txt")


def test_the_shipped_temporal_kinetics_list():
    # The 32 classes of Sevilla-Lara et al. 2021 (source: paxion/bench/data/classes/README.md), as Kinetics-400 names.
    assert "temporal-kinetics" in subsets.known_class_lists()
    classes = subsets.read_classes("temporal-kinetics")
    assert len(classes) == 32 and classes == sorted(classes)  # distinct (read_classes drops repeats), in K400 order
    assert {"cartwheeling", "somersaulting", "skiing (not slalom or crosscountry)", "wrestling"} <= set(classes)
    assert all(name == name.strip().lower() for name in classes)


def test_clip_mask_counts_listed_ids_the_split_lacks(tmp_path):
    cache = Cache(make_cache(tmp_path / "c", clips={"train": 6, "validation": 5}, shard_size=2))
    mask, missing = subsets.clip_mask(cache, "validation", ["validation4", "validation1", "train0", "gone"])
    assert mask.tolist() == [False, True, False, False, True] and missing == 2
    with pytest.raises(PaxionError, match="none of the 2 listed clip ids"):
        subsets.clip_mask(cache, "validation", ["train0", "train1"])
    ids = tmp_path / "ids.txt"
    ids.write_text("validation0\n\nvalidation2\n")
    assert np.flatnonzero(subsets.clip_mask(cache, "validation", subsets.read_ids(ids))[0]).tolist() == [0, 2]
