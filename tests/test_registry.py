"""The backbone registry: built-in names, plug-ins through the `paxion.backbones` entry points, one-way layers."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from fakes import FakeBackbone, make_bench
from rich.console import Console

import paxion
from paxion import cli as cli_module
from paxion.cache.reader import Cache
from paxion.cli import cli
from paxion.errors import BackboneError
from paxion.extract.backbones import backbone_entries, load_backbone
from paxion.extract.backbones.registry import parse_spec

PACKAGE = Path(paxion.__file__).parent
BACKBONES = PACKAGE / "extract" / "backbones"

PLUGIN = '''
from fakes import FakeBackbone

calls = []


def load(args, *, device):
    calls.append((args, str(device)))
    return FakeBackbone(temporal=args == "temporal").to(device)


def not_a_backbone(args, *, device):
    return "a string"
'''
ENTRY_POINTS = """[paxion.backbones]
fake = paxion_test_plugin:load
toy = paxion_test_plugin:load
wrong = paxion_test_plugin:not_a_backbone
gone = paxion_test_plugin:no_such_factory
"""


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A distribution `paxion-test-plugin 1.2` on sys.path registering four backbones; yields its module."""
    (tmp_path / "paxion_test_plugin.py").write_text(PLUGIN)
    info = tmp_path / "paxion_test_plugin-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: paxion-test-plugin\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    import paxion_test_plugin

    yield paxion_test_plugin
    sys.modules.pop("paxion_test_plugin", None)


def _imports(path: Path) -> set[str]:
    """The modules a source file imports (absolute names), at any depth of the file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_layers_point_one_way():
    registry = "paxion.extract.backbones.registry"
    adapters = {"hf_common", "hf_clip", "hf_xclip", "toy", "toy_text", "toy_train", "base"}
    for name in adapters:
        imported = _imports(BACKBONES / f"{name}.py")
        assert registry not in imported and "paxion.extract.backbones" not in imported, name
    assert not _imports(BACKBONES / "hf_common.py") & {"paxion.extract.backbones.hf_clip",
                                                        "paxion.extract.backbones.hf_xclip"}
    assert "paxion.extract.backbones.hf_xclip" not in _imports(BACKBONES / "hf_clip.py")
    assert "paxion.extract.backbones.hf_clip" not in _imports(BACKBONES / "hf_xclip.py")
    assert {"paxion.extract.backbones.toy"} <= _imports(BACKBONES / "registry.py")
    # bench files are read by bench; extract reads them through it, and bench never imports extract
    assert "paxion.bench.files" in _imports(PACKAGE / "extract" / "pipeline.py")
    for path in (PACKAGE / "bench").glob("*.py"):
        assert not any(name.startswith("paxion.extract") for name in _imports(path)), path.name


def test_spec_is_split_at_the_first_colon():
    assert parse_spec("toy") == ("toy", None)
    assert parse_spec("hf-clip:") == ("hf-clip", "")
    assert parse_spec(r"hf-clip:C:\models\clip") == ("hf-clip", r"C:\models\clip")


def test_built_ins_are_listed_with_what_they_are():
    entries = {entry.name: entry for entry in backbone_entries()}
    assert [(e.usage, e.source, e.temporal) for e in list(entries.values())[:5]] == [
        ("toy", "built-in", False), ("hf-clip:NAME_OR_PATH", "built-in", False),
        ("hf-xclip:NAME_OR_PATH", "built-in", True), ("hf-blip:NAME_OR_PATH", "built-in", False),
        ("hf-siglip:NAME_OR_PATH", "built-in", False)]
    assert entries["toy"].target == "paxion.extract.backbones.toy:ToyBackbone"


def test_a_plug_in_is_found_through_its_entry_point(plugin):
    backbone = load_backbone("fake:temporal", device="cpu")
    assert isinstance(backbone, FakeBackbone) and backbone.temporal
    assert not load_backbone("fake", device="cpu").temporal
    assert plugin.calls == [("temporal", "cpu"), (None, "cpu")]
    entries = [e for e in backbone_entries() if e.source == "paxion-test-plugin 1.2"]
    assert [(e.name, e.target, e.temporal, e.shadowed) for e in entries] == [
        ("fake", "paxion_test_plugin:load", None, False), ("toy", "paxion_test_plugin:load", None, True),
        ("wrong", "paxion_test_plugin:not_a_backbone", None, False),
        ("gone", "paxion_test_plugin:no_such_factory", None, False)]


def test_a_built_in_name_wins_over_a_plug_in(plugin):
    assert load_backbone("toy").name == "toy" and plugin.calls == []


def test_broken_plug_ins_are_one_line_backbone_errors(plugin):
    with pytest.raises(BackboneError, match=r"backbone gone \(paxion-test-plugin 1.2\): cannot import "
                                            r"paxion_test_plugin:no_such_factory \(AttributeError"):
        load_backbone("gone")
    with pytest.raises(BackboneError, match="paxion_test_plugin:not_a_backbone returned a str, not a paxion Backbone"):
        load_backbone("wrong:x")
    with pytest.raises(BackboneError, match=r"unknown backbone 'nope'; known: toy, .*, fake\[:ARGS\], wrong\[:ARGS\]"):
        load_backbone("nope")


def test_cli_lists_and_extracts_with_a_plug_in(plugin, tmp_path, monkeypatch):
    monkeypatch.setattr(cli_module, "console", Console(width=200))  # one table row per line
    listing = CliRunner().invoke(cli, ["backbones"])
    assert listing.exit_code == 0, listing.output
    rows = {line.split("│")[1].strip(): line for line in listing.output.splitlines() if line.count("│") == 5}
    assert set(rows) == {"toy", "hf-clip:NAME_OR_PATH", "hf-xclip:NAME_OR_PATH", "hf-blip:NAME_OR_PATH",
                         "hf-siglip:NAME_OR_PATH", "fake[:ARGS]", "toy[:ARGS]", "wrong[:ARGS]", "gone[:ARGS]"}
    assert "yes" in rows["hf-xclip:NAME_OR_PATH"] and "paxion-test-plugin 1.2" in rows["fake[:ARGS]"]
    assert "unused: name taken" in rows["toy[:ARGS]"] and "unused" not in rows["toy"]
    bench, videos = make_bench(tmp_path, {"train": 2})
    done = CliRunner().invoke(cli, ["extract", "--bench", str(bench), "--videos", str(videos), "--out", str(tmp_path / "c"),
                                    "--backbone", "fake:temporal", "--frames", "4", "--workers", "0",
                                    "--device", "cpu"])
    assert done.exit_code == 0, done.output
    assert "2 clips cached, 0 failed" in done.output and plugin.calls == [("temporal", "cpu")]
    # the plug-in's cache evaluates like any other: AA on both clips, VR from the stored reversed clips
    scored = CliRunner().invoke(cli, ["eval", "--cache", str(tmp_path / "c"), "--backbone-only", "--split", "train",
                                      "--device", "cpu", "--json", str(tmp_path / "eval.json")])
    assert scored.exit_code == 0, scored.output
    result = json.loads((tmp_path / "eval.json").read_text())
    cache = Cache(tmp_path / "c")
    clips = cache.read_split("train", ["pooled", "pooled_rev", "caption_idx", "aa_idx"])
    emb = cache.text_emb / np.linalg.norm(cache.text_emb, axis=-1, keepdims=True)
    video, reverse = (clips[k] / np.linalg.norm(clips[k], axis=-1, keepdims=True) for k in ("pooled", "pooled_rev"))
    own = (video * emb[clips["caption_idx"]]).sum(-1)
    aa = 100 * ((own > (video * emb[clips["aa_idx"]]).sum(-1)).mean())
    vr = 100 * ((own > (reverse * emb[clips["caption_idx"]]).sum(-1)).mean())
    assert (result["aa"]["n"], result["vr"]["n"], result["or"]["n"]) == (2, 2, 0)
    assert result["aa"]["accuracy"] == pytest.approx(aa) and result["vr"]["accuracy"] == pytest.approx(vr)
