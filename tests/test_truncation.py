"""Captions longer than the text encoder's context: counted at extraction, their tied negatives left out of AA/OR.

A tiny random HF CLIP built here has a 16-position text encoder and a byte-level tokenizer (one token a character,
plus start and end), so a caption is cut after 14 non-space characters.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from fakes import FakeBackbone, make_bench
from test_hf_backbones import TEXT, VISION, _save

from paxion import cli as cli_module
from paxion.cache.manifest import read_manifest
from paxion.cache.reader import Cache
from paxion.extract.backbones import load_backbone
from paxion.extract.pipeline import extract
from paxion.extract.texts import same_as_caption
from paxion.scoring import BackboneScorer
from paxion.trainer.evaluate import actionbench

SHORT = "C opens a box"  # C o p e n s a b o x: 10 tokens + start + end = 12 <= 16
LONG = "Late at night in the small kitchen, C opens the door"  # the verb is past the 14th character


@pytest.fixture(scope="module")
def clip_spec(tmp_path_factory):
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig(text_config=TEXT, vision_config=VISION, projection_dim=24))
    return "hf-clip:" + _save(model, tmp_path_factory.mktemp("m") / "clip")


@pytest.fixture
def bench(tmp_path):
    bench_dir, videos = make_bench(tmp_path / "world", {"validation": 2})
    path = bench_dir / "validation.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row, caption in zip(rows, (SHORT, LONG)):
        row |= {"caption": caption, "aa_caption": caption.replace("opens", "closes"),
                "or_caption": caption.replace("box", "jar").replace("door", "lid")}
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return bench_dir, videos


def test_the_adapter_says_which_texts_it_cuts(clip_spec):
    backbone = load_backbone(clip_spec)
    assert backbone.truncated([SHORT, LONG, "x" * 14, "x" * 15]) == [False, True, False, True]
    assert backbone.truncated([]) == []
    assert FakeBackbone().truncated([SHORT, LONG]) == [False, False]  # the base class default: never cut
    emb = backbone.encode_text([LONG, LONG.replace("opens", "closes"), SHORT, SHORT.replace("opens", "closes")])
    cosine = torch.nn.functional.cosine_similarity(emb[[0, 2]], emb[[1, 3]]).tolist()
    assert cosine[0] == pytest.approx(1.0, abs=1e-6) and cosine[1] < 0.9999


def test_same_as_caption_compares_raw_embeddings_by_cosine():
    emb = np.array([[1, 0], [2, 0], [1, 1e-2], [0, 1]], dtype=np.float32)
    # caption 0 vs 1 (same direction), vs 2 (cosine 0.99995), vs none, vs 3 (orthogonal)
    same = same_as_caption(emb, np.array([0, 0, 0, 0]), np.array([1, 2, -1, 3]))
    assert same.tolist() == [True, False, False, False]


def test_extraction_counts_cut_captions_and_evaluation_leaves_their_pairs_out(clip_spec, bench, tmp_path):
    result = extract(*bench, tmp_path / "c", load_backbone(clip_spec), frames=4, workers=0)
    cache = Cache(tmp_path / "c")
    fields = cache.read_split("validation", ["aa_same", "or_same", "salient"])
    assert fields["aa_same"].tolist() == [False, True] and fields["or_same"].tolist() == [False, True]
    counts = {"captions_cut": 1, "aa_same": 1, "or_same": 1, "salient": int(fields["salient"].sum())}
    assert result.counts == counts
    split = read_manifest(tmp_path / "c")["splits"]["validation"]
    assert {name: split[name] for name in counts} == counts
    scores = actionbench(cache, BackboneScorer(temporal=False), "validation")
    assert (scores["aa"]["n"], scores["aa"]["left_out"], scores["or"]["n"], scores["or"]["left_out"]) == (1, 1, 1, 1)
    assert scores["vr"]["n"] == 2


def test_the_cli_says_so_at_extract_info_and_eval(clip_spec, bench, tmp_path):
    runner, cache = CliRunner(), str(tmp_path / "c")
    out = runner.invoke(cli_module.cli, ["extract", "--bench", str(bench[0]), "--videos", str(bench[1]), "--out",
                                         cache, "--backbone", clip_spec, "--frames", "4", "--workers", "0",
                                         "--device", "cpu"])
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())
    assert "captions truncated to the text encoder's context: 1; 1 AA and 1 OR negatives" in text
    info = runner.invoke(cli_module.cli, ["cache", "info", cache])
    assert info.exit_code == 0, info.output
    assert ("validation: captions truncated to the text encoder's context: 1; 1 AA and 1 OR negatives embed like "
            "their caption (left out of AA / OR)") in " ".join(info.output.split())
    scores = runner.invoke(cli_module.cli, ["eval", "--cache", cache, "--backbone-only", "--split", "validation",
                                            "--device", "cpu"])
    assert scores.exit_code == 0, scores.output
    assert "left out: 1 AA / 1 OR pairs" in " ".join(scores.output.split())
