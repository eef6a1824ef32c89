"""Saliency flags (Appendix C) you can set and see: thresholds on `extract`, a second model (BLIP) computing them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from fakes import FakeBackbone, make_bench

from paxion import cli as cli_module
from paxion.cache.manifest import read_manifest
from paxion.cache.reader import Cache
from paxion.extract.backbones import load_backbone
from paxion.extract.pipeline import extract
from paxion.extract.saliency import state_change
from paxion.extract.video import read_frames
from paxion.report.tables import cache_summary

TEXT = {"vocab_size": 60, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "max_position_embeddings": 24, "encoder_hidden_size": 32, "bos_token_id": 2, "sep_token_id": 3,
        "eos_token_id": 3, "pad_token_id": 0}
VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
          "image_size": 32, "patch_size": 8}


@pytest.fixture(scope="module")
def blip_spec(tmp_path_factory):
    """A tiny random BLIP retrieval model with a WordPiece vocabulary of single letters, saved offline."""
    from transformers import BertTokenizer, BlipConfig, BlipForImageTextRetrieval

    path = tmp_path_factory.mktemp("m") / "blip"
    torch.manual_seed(0)
    BlipForImageTextRetrieval(BlipConfig(text_config=TEXT, vision_config=VISION, image_text_hidden_size=20,
                                         initializer_range=0.5)).save_pretrained(path)
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    (path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters,
                                               *(f"##{c}" for c in letters)]) + "\n")
    BertTokenizer(str(path / "vocab.txt")).save_pretrained(path)
    return f"hf-blip:{path}"


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return make_bench(tmp_path_factory.mktemp("world"), {"validation": 3})


def test_blip_embeds_like_its_itc_head(blip_spec):
    from transformers import BlipForImageTextRetrieval

    blip = load_backbone(blip_spec)
    assert (blip.temporal, blip.embed_dim, blip.token_dim, blip.tokens_per_frame) == (False, 20, 32, 17)
    frames = np.random.default_rng(0).integers(0, 256, (1, 3, 40, 40, 3), dtype=np.uint8)
    pixels = blip.preprocess(frames)
    out = blip.encode_video(pixels)
    assert out.tokens.shape == (1, 3, 17, 32) and out.frames.shape == (1, 3, 20)
    torch.testing.assert_close(out.pooled, out.frames.mean(1))
    texts = ["pushing a box", "pulling a box"]
    sim = torch.nn.functional.normalize(out.frames[0], dim=-1) @ torch.nn.functional.normalize(
        blip.encode_text(texts), dim=-1).T
    # transformers' own contrastive forward gives the cosine of image and text features
    model = BlipForImageTextRetrieval.from_pretrained(blip_spec.split(":", 1)[1]).eval()
    tokens = blip.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        reference = model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"],
                          pixel_values=pixels[0], use_itm_head=False)[0]
    torch.testing.assert_close(sim, reference, rtol=1e-5, atol=1e-5)
    assert blip.truncated(["ab", "a" * 22, "a" * 23]) == [False, False, True]  # [CLS] + letters + [SEP] <= 24


def test_a_second_backbone_sets_the_flags(blip_spec, bench, tmp_path):
    blip, main = load_backbone(blip_spec), FakeBackbone()
    thresholds = {"delta_vt": 1e-4, "theta_vv": 0.999}
    extract(*bench, tmp_path / "c", main, frames=4, workers=0, saliency_backbone=blip, **thresholds)
    got = Cache(tmp_path / "c").read_split("validation", ["delta_vt", "theta_vv", "salient"])
    rows = [json.loads(line) for line in (bench[0] / "validation.jsonl").read_text().splitlines()]
    clips = np.stack([read_frames(bench[1] / r["video"], num_frames=4, size=main.image_size) for r in rows])
    with torch.no_grad():
        frames = blip.encode_video(blip.preprocess(clips)).frames
        delta, theta, keep = state_change(frames, blip.encode_text([r["caption"] for r in rows]), **thresholds)
    np.testing.assert_allclose(got["delta_vt"], delta.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got["theta_vv"], theta.numpy(), rtol=1e-5, atol=1e-6)
    assert got["salient"].tolist() == keep.tolist()
    manifest = read_manifest(tmp_path / "c")
    assert manifest["saliency"] == thresholds | {"backbone": {"name": blip.name, "config_hash": blip.config_hash()}}
    own = extract(*bench, tmp_path / "own", main, frames=4, workers=0, **thresholds)
    assert own.complete
    # the tiny random BLIP's frames are nearly alike (theta ~0.99999), so compare exactly: another model made them
    assert not np.array_equal(Cache(tmp_path / "own").read_split("validation", ["theta_vv"])["theta_vv"], got["theta_vv"])


@pytest.mark.parametrize(("delta_vt", "theta_vv", "salient"), [(-1.0, 2.0, 3), (-1.0, -2.0, 0)])
def test_thresholds_are_options_and_the_salient_fraction_is_shown(bench, tmp_path, delta_vt, theta_vv, salient):
    # every |delta| > -1 and every cosine < 2: all salient; no cosine is < -2: none
    runner, cache = CliRunner(), str(tmp_path / "c")
    out = runner.invoke(cli_module.cli, [
        "extract", "--bench", str(bench[0]), "--videos", str(bench[1]), "--out", cache, "--backbone", "toy",
        "--frames", "4", "--workers", "0", "--device", "cpu", "--saliency-delta-vt", str(delta_vt),
        "--saliency-theta-vv", str(theta_vv)])
    assert out.exit_code == 0, out.output
    assert f"salient: {salient} of 3 clips ({100 * salient / 3:.1f}%)" in out.output
    info = cache_summary(read_manifest(cache))
    assert info["saliency"] == {"delta_vt": delta_vt, "theta_vv": theta_vv, "backbone": None}
    assert info["splits"]["validation"]["salient_fraction"] == salient / 3
    shown = runner.invoke(cli_module.cli, ["cache", "info", cache]).output
    assert f"salient: delta_vt > {delta_vt:g} and theta_vv < {theta_vv:g}" in shown
    row = next(line for line in shown.splitlines() if "validation" in line)
    assert row.split()[-2] == f"{100 * salient / 3:.1f}"


def test_the_cli_takes_a_saliency_backbone(blip_spec, bench, tmp_path):
    out = CliRunner().invoke(cli_module.cli, [
        "extract", "--bench", str(bench[0]), "--videos", str(bench[1]), "--out", str(tmp_path / "c"),
        "--backbone", "toy", "--frames", "4", "--workers", "0", "--device", "cpu", "--saliency-backbone", blip_spec])
    assert out.exit_code == 0, out.output
    assert read_manifest(tmp_path / "c")["saliency"]["backbone"]["name"] == blip_spec
    shown = CliRunner().invoke(cli_module.cli, ["cache", "info", str(tmp_path / "c")]).output
    assert f"from {blip_spec}'s embeddings" in "".join(shown.split("\n"))
