"""The backbone registry and the built-in toy backbone (shipped weights, tokenizer, trainer)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from paxion.errors import BackboneError
from paxion.extract.backbones import load_backbone
from paxion.extract.backbones.toy import WEIGHTS_PATH, ToyBackbone, ToyModel, load_toy, sincos_2d
from paxion.extract.backbones.toy_text import UNK, WordTokenizer, world_vocabulary
from paxion.extract.backbones.toy_train import (
    WorldClips,
    _batch_texts,
    antonym_hinge,
    check_toy,
    contrastive_loss,
    load_world_split,
    train_toy,
    train_toy_model,
)


@pytest.fixture(scope="module")
def toy():
    return load_backbone("toy")


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    from paxion.synth.world import write_world

    root = tmp_path_factory.mktemp("world")
    write_world(root, train=6, val=40, seed=7, workers=1)
    return root


def _frames(seed: int = 0, b: int = 3, t: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (b, t, 64, 64, 3), dtype=np.uint8)


def test_bad_spec_is_a_one_line_backbone_error():
    for spec, message in [("nope", "unknown backbone 'nope'; known: toy, hf-clip:NAME_OR_PATH, hf-xclip:NAME_OR_PATH"),
                          ("clip:foo", "unknown backbone 'clip:foo'"),
                          ("toy:extra", "toy takes no arguments, got 'toy:extra'"),
                          ("hf-clip:", "hf-clip needs a model: hf-clip:NAME_OR_PATH")]:
        with pytest.raises(BackboneError, match=re.escape(message)) as error:
            load_backbone(spec)
        assert "\n" not in str(error.value)


def test_shipped_toy_loads_frozen_with_contract_shapes(toy):
    assert (toy.name, toy.temporal, toy.image_size, toy.embed_dim, toy.token_dim, toy.tokens_per_frame) == (
        "toy", False, 48, 64, 96, 37)
    assert not toy.training and not any(p.requires_grad for p in toy.parameters())
    toy.train()
    assert not toy.training
    pixels = toy.preprocess(_frames())
    assert pixels.shape == (3, 8, 3, 48, 48) and pixels.dtype == torch.float32
    out = toy.encode_video(pixels)
    assert out.tokens.shape == (3, 8, 37, 96) and out.frames.shape == (3, 8, 64) and out.pooled.shape == (3, 64)
    torch.testing.assert_close(out.pooled, out.frames.mean(1))
    assert toy.encode_text(["Pushing red ball from left to right", "Holding blue box"]).shape == (2, 64)
    assert toy.encode_text([]).shape == (0, 64)


def test_toy_is_time_blind(toy):
    pixels = toy.preprocess(_frames(1))
    out, rev = toy.encode_video(pixels), toy.encode_video(pixels.flip(1))
    assert torch.equal(out.pooled, rev.pooled)
    torch.testing.assert_close(rev.tokens, out.tokens.flip(1), rtol=0, atol=1e-5)


def test_shipped_toy_tells_every_caption_from_its_reversal(toy, tiny_world):
    a, b = toy.encode_text(["Pushing red ball from left to right", "Pushing red ball from right to left"])
    assert torch.cosine_similarity(a, b, dim=0) < 0.96  # the hinge's margin is 0.95
    assert check_toy(toy, load_world_split(tiny_world, "validation"))["antonym_text_cos"] < 0.96


def test_text_readout_sees_only_the_words_up_to_eos():
    torch.manual_seed(0)
    model = ToyModel().eval()
    texts = ["Pushing red ball from left to right", "Holding box"]
    ids, eos = model.tokenizer.encode(texts[:1])
    later = torch.cat([ids, torch.tensor([[5]])], dim=1)  # any token after [EOS], padding or not
    with torch.no_grad():
        torch.testing.assert_close(model.text(later, eos), model.text(ids, eos), rtol=0, atol=1e-6)
        alone = torch.cat([model.encode_text([t]) for t in texts])
        torch.testing.assert_close(model.encode_text(texts), alone, rtol=0, atol=1e-5)


def test_preprocess_rejects_non_uint8(toy):
    with pytest.raises(ValueError, match="uint8"):
        toy.preprocess(np.zeros((1, 2, 64, 64, 3), dtype=np.float32))


def test_config_hash_is_stable_and_tracks_weights(toy):
    assert toy.config_hash() == load_backbone("toy").config_hash() and len(toy.config_hash()) == 16
    model = ToyModel.load(WEIGHTS_PATH)
    with torch.no_grad():
        model.text_proj.weight.mul_(1.01)
    assert ToyBackbone(model=model).config_hash() != toy.config_hash()


def test_tokenizer_unknown_words_and_eos():
    tok = WordTokenizer(world_vocabulary())
    ids, eos = tok.encode(["Pushing red ball", "zebra"])
    assert ids.shape == (2, 4) and eos.tolist() == [3, 1]
    assert ids[1, 0] == tok.index[UNK] and ids[1, 2:].eq(0).all()
    assert all(w in tok.index for w in ["something", "left", "right", "uncovering", "purple", "triangle"])


def test_sincos_embedding_distinguishes_every_patch():
    pos = sincos_2d(6, 96)
    assert pos.shape == (36, 96)
    assert torch.cdist(pos, pos).add(torch.eye(36) * 1e3).min() > 0.1


def test_save_load_roundtrip(tmp_path):
    torch.manual_seed(0)
    model = ToyModel().eval()
    model.save(tmp_path / "w.pt", provenance={"note": "test"})
    loaded = load_toy(tmp_path / "w.pt")
    with torch.no_grad():
        expected = model.encode_text(["Filling green ring"])
    torch.testing.assert_close(loaded.encode_text(["Filling green ring"]), expected)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(BackboneError):
        load_toy(tmp_path / "bad.pt")
    with pytest.raises(BackboneError, match="not found"):
        load_toy(tmp_path / "missing.pt")


def test_contrastive_loss_counts_duplicate_captions_as_positives():
    video = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    right = torch.tensor([[True, False], [True, False], [False, True]])
    wrong = torch.tensor([[True, False], [False, True], [False, True]])
    scale = torch.tensor(10.0)
    assert contrastive_loss(video, text, right, scale) < contrastive_loss(video, text, wrong, scale)


def _tiny_clips(n: int = 8) -> WorldClips:
    rng = np.random.default_rng(0)
    frames = np.zeros((n, 8, 64, 64, 3), dtype=np.uint8)
    objects = ["red ball", "blue box"]
    for i in range(n):
        frames[i, :, :, :, i % 2 * 2] = 200  # red or blue scene, as the captions say
        frames[i] += rng.integers(0, 20, frames[i].shape, dtype=np.uint8)
    return WorldClips(frames, [f"Holding {objects[i % 2]}" for i in range(n)], ["Holding [something]"] * n,
                      [[objects[i % 2]] for i in range(n)])


def test_batch_texts_pair_each_text_with_its_reversal():
    import random

    clips = WorldClips(
        np.zeros((3, 8, 64, 64, 3), dtype=np.uint8),
        ["Pushing red ball from left to right", "Holding blue box", "Covering green ring"],
        ["Pushing [something] from left to right", "Holding [something]", "Covering [something]"],
        [["red ball"], ["blue box"], ["green ring"]],
    )
    captions = _batch_texts(np.arange(3), clips, template_prob=0.0, rng=random.Random(0))
    own = sorted(clips.captions)
    assert captions.texts == [*own, "Pushing red ball from right to left", "Uncovering green ring"]
    assert captions.positive.tolist() == [[t == c for t in own] for c in clips.captions]
    pairs = {(captions.texts[a], captions.texts[b]) for a, b in captions.pairs.tolist()}
    assert pairs == {("Covering green ring", "Uncovering green ring"),
                     ("Pushing red ball from left to right", "Pushing red ball from right to left")}
    hidden = _batch_texts(np.arange(3), clips, template_prob=1.0, rng=random.Random(0))
    assert "Pushing something from right to left" in hidden.texts and "Uncovering something" in hidden.texts
    assert hidden.positive.sum(1).tolist() == [1, 1, 1]


def test_antonym_hinge_by_hand():
    text = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 2.0]])
    # cos(0, 1) = 0.6 and cos(1, 2) = 0.8; margin 0.5 -> mean(0.1, 0.3)
    assert antonym_hinge(text, torch.tensor([[0, 1], [1, 2]]), 0.5).item() == pytest.approx(0.2)
    assert antonym_hinge(text, torch.tensor([[0, 2]]), 0.5).item() == 0.0
    assert antonym_hinge(text, torch.zeros(0, 2, dtype=torch.long), 0.5).item() == 0.0


def test_training_lowers_the_loss():
    model, history = train_toy_model(_tiny_clips(), epochs=6, batch_size=8, frames_per_step=2, seed=0)
    assert len(history) == 6 and history[-1] < history[0]
    assert not model.training


def test_train_toy_end_to_end_on_a_tiny_world(tiny_world, tmp_path):
    steps = []
    summary = train_toy(tiny_world, tmp_path / "w.pt", epochs=1, progress=lambda *a: steps.append(a))
    assert summary["train_clips"] == 6 and len(summary["loss"]) == 1
    assert summary["validation"]["clips"] == 40 and summary["validation"]["time_blind"] == 1.0
    assert {s[0] for s in steps} == {"decode", "train"}
    assert load_toy(tmp_path / "w.pt").tokens_per_frame == 37


def _paxion(*args: str):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "paxion", *args], check=False, capture_output=True, text=True,
                          timeout=120)


def test_cli_info_and_bad_input(toy, tmp_path):
    ok = _paxion("backbone", "info", "toy")
    assert ok.returncode == 0 and toy.config_hash() in ok.stdout
    bad = _paxion("backbone", "info", "nope")
    assert bad.returncode == 1 and "unknown backbone" in bad.stderr and "Traceback" not in bad.stderr
    missing = _paxion("backbone", "train-toy", "--world", str(tmp_path / "none"), "--out", str(tmp_path / "w.pt"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
