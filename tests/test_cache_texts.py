"""`paxion cache add-texts`: new texts are appended with the backbone's text tower; nothing else changes."""

import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from fakes import FakeBackbone
from tiny_cache import DIM, make_cache

from paxion import cli as cli_module
from paxion.cache.manifest import file_hash, read_json, write_manifest
from paxion.cache.reader import Cache
from paxion.cache.verify import verify_cache
from paxion.errors import CacheError
from paxion.extract import backbones
from paxion.extract.texts import add_texts


@pytest.fixture
def made_by_fake(tmp_path):
    """A tiny cache whose manifest names FakeBackbone(embed_dim=DIM) as its backbone."""
    root = make_cache(tmp_path / "cache", clips={"validation": 20}, shard_size=8)
    backbone = FakeBackbone(embed_dim=DIM)
    manifest = read_json(root / "manifest.json")
    manifest["backbone"] |= {"name": backbone.name, "config_hash": backbone.config_hash()}
    write_manifest(root, manifest)
    return root, backbone


def test_add_texts_appends_and_leaves_every_existing_tensor_unchanged(made_by_fake):
    root, backbone = made_by_fake
    before = Cache(root)
    shards = {path.name: file_hash(path) for path in root.glob("validation-*.h5")}
    fields = before.read_split("validation")
    manifest = read_json(root / "manifest.json")
    new = ["a video of template 0", "Juggling something"]
    assert add_texts(root, [before.texts[3], *new, new[0]], backbone=backbone) == new
    after = Cache(root, verify=True)
    assert after.texts == before.texts + new
    assert np.array_equal(after.text_emb[: len(before.texts)], before.text_emb)
    np.testing.assert_array_equal(after.text_emb[len(before.texts):], backbone.encode_text(new).numpy())
    assert {path.name: file_hash(path) for path in root.glob("validation-*.h5")} == shards
    for name, values in after.read_split("validation").items():
        assert np.array_equal(values, fields[name]), name
    updated = read_json(root / "manifest.json")
    assert updated["texts"]["count"] == len(before.texts) + 2
    assert {k: v for k, v in updated.items() if k not in ("texts", "xxh3_128")} == {
        k: v for k, v in manifest.items() if k not in ("texts", "xxh3_128")}
    assert verify_cache(root) == []
    assert add_texts(root, new, backbone=backbone) == []  # nothing new: nothing written
    assert read_json(root / "manifest.json") == updated


def test_add_texts_refuses_another_backbone_and_says_what_to_run(made_by_fake, monkeypatch, capsys, tmp_path):
    root, _ = made_by_fake
    with pytest.raises(CacheError, match="config"):
        add_texts(root, ["new text"], backbone=FakeBackbone(embed_dim=DIM, seed=1))
    assert Cache(root).texts[-1] != "new text"
    names = tmp_path / "names.txt"
    names.write_text("new text\n")
    # the manifest's backbone "fake-framewise" is no loadable spec: one line telling the user what to run
    monkeypatch.setattr(sys, "argv", ["paxion", "cache", "add-texts", str(root), str(names), "--device", "cpu"])
    with pytest.raises(SystemExit) as exit_info:
        cli_module.main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and "cannot be loaded" in err and "add-texts" in err and "Traceback" not in err


def test_retrieve_encodes_missing_prompted_classes_into_the_cache(made_by_fake, monkeypatch, tmp_path):
    root, backbone = made_by_fake
    loaded = []
    monkeypatch.setattr(backbones, "load_backbone", lambda spec, device: loaded.append(spec) or backbone)
    out = tmp_path / "z.json"
    args = ["retrieve", "--cache", str(root), "--task", "zeroshot", "--prompt", "a video of {}", "--device", "cpu",
            "--json", str(out)]
    result = CliRunner().invoke(cli_module.cli, args)
    assert result.exit_code == 0, result.output
    assert "encoded 4 new class texts" in result.output and loaded == [backbone.name]
    assert Cache(root).texts[-4:] == [f"a video of template {a}" for a in range(4)]
    assert json.loads(out.read_text())["n"] == 20
    assert CliRunner().invoke(cli_module.cli, args).exit_code == 0 and loaded == [backbone.name]  # now cached
