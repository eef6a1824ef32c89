"""HF CLIP / X-CLIP adapters on tiny randomly initialised models saved to disk and loaded offline."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from paxion.errors import BackboneError
from paxion.extract.backbones import backbone_entries, load_backbone

TEXT = {"vocab_size": 600, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "max_position_embeddings": 16, "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1}
VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
          "image_size": 32, "patch_size": 8}
FRAMES = 4


def _save_tokenizer(path) -> None:
    """A byte-level BPE CLIP tokenizer with single-byte tokens and no merges, made offline."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    tokens = ["<|startoftext|>", "<|endoftext|>", *chars, *(c + "</w>" for c in chars)]
    CLIPTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=[]).save_pretrained(path)


def _save(model, path, *, mean=None) -> str:
    torch.manual_seed(0)
    path.mkdir()
    model.save_pretrained(path)
    _save_tokenizer(path)
    if mean is not None:
        (path / "preprocessor_config.json").write_text(json.dumps({"image_mean": mean, "image_std": [0.5] * 3}))
    return str(path)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    config = CLIPConfig(text_config=TEXT, vision_config=VISION, projection_dim=24)
    return _save(CLIPModel(config), tmp_path_factory.mktemp("m") / "clip", mean=[0.5, 0.4, 0.3])


@pytest.fixture(scope="module")
def xclip_dir(tmp_path_factory):
    from transformers import XCLIPConfig, XCLIPModel

    torch.manual_seed(0)
    vision = {**VISION, "num_frames": FRAMES, "mit_hidden_size": 24, "mit_intermediate_size": 48,
              "mit_num_hidden_layers": 1, "mit_num_attention_heads": 4}
    config = XCLIPConfig(text_config=TEXT, vision_config=vision, projection_dim=24, prompt_layers=1,
                         prompt_attention_heads=4, prompt_projection_dropout=0.0)
    return _save(XCLIPModel(config), tmp_path_factory.mktemp("m") / "xclip")


def _frames(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (2, FRAMES, 40, 40, 3), dtype=np.uint8)


def test_clip_shapes_mean_pooling_and_frozen(clip_dir):
    bb = load_backbone("hf-clip:" + clip_dir)
    assert (bb.temporal, bb.image_size, bb.embed_dim, bb.token_dim, bb.tokens_per_frame) == (False, 32, 24, 32, 17)
    assert not bb.training and not any(p.requires_grad for p in bb.parameters())
    pixels = bb.preprocess(_frames())
    assert pixels.shape == (2, FRAMES, 3, 32, 32)
    out = bb.encode_video(pixels)
    assert out.tokens.shape == (2, FRAMES, 17, 32)
    assert out.frames.shape == (2, FRAMES, 24) and out.pooled.shape == (2, 24)
    torch.testing.assert_close(out.pooled, out.frames.mean(1))
    # frame-wise: the reversed clip is the flipped original, exactly
    rev = bb.encode_video(pixels.flip(1))
    torch.testing.assert_close(rev.tokens, out.tokens.flip(1), rtol=0, atol=1e-6)
    assert torch.equal(rev.pooled, out.pooled)
    text = bb.encode_text(["pushing a red ball", "a red ball pushing", "x"])
    assert text.shape == (3, 24) and not torch.allclose(text[0], text[1])


def test_clip_uses_checkpoint_normalisation(clip_dir):
    bb = load_backbone("hf-clip:" + clip_dir)
    grey = np.full((1, 1, 32, 32, 3), 255, dtype=np.uint8)
    expected = (1.0 - torch.tensor([0.5, 0.4, 0.3])) / 0.5
    torch.testing.assert_close(bb.preprocess(grey)[0, 0, :, 0, 0], expected)


def test_config_hash_tracks_weights(clip_dir):
    a, b = load_backbone("hf-clip:" + clip_dir), load_backbone("hf-clip:" + clip_dir)
    assert a.config_hash() == b.config_hash()
    with torch.no_grad():
        b.model.visual_projection.weight.add_(1e-3)
    b._config_hash = None
    assert a.config_hash() != b.config_hash()


def test_registry_lists_what_the_adapters_are(clip_dir, xclip_dir):
    listed = {entry.name: entry.temporal for entry in backbone_entries()}
    for kind, folder in (("hf-clip", clip_dir), ("hf-xclip", xclip_dir)):
        bb = load_backbone(f"{kind}:{folder}")
        assert (bb.name, bb.kind, bb.temporal) == (f"{kind}:{folder}", kind, listed[kind])
        assert bb.config_dict()["kind"] == kind


def test_xclip_is_temporal(xclip_dir):
    bb = load_backbone("hf-xclip:" + xclip_dir)
    assert bb.temporal and bb.embed_dim == 24 and bb.tokens_per_frame == 17
    pixels = bb.preprocess(_frames(1))
    out = bb.encode_video(pixels)
    assert out.tokens.shape == (2, FRAMES, 17, 32)
    assert out.frames.shape == (2, FRAMES, 24) and out.pooled.shape == (2, 24)
    # frames talk to each other: changing the last frame changes the first frame's tokens
    changed = pixels.clone()
    changed[:, -1] = 0
    assert not torch.allclose(bb.encode_video(changed).tokens[:, 0], out.tokens[:, 0], atol=1e-4)
    # the frame integration transformer has a temporal position embedding: reversal changes the video embedding
    assert not torch.allclose(bb.encode_video(pixels.flip(1)).pooled, out.pooled, atol=1e-4)
    assert bb.encode_text(["opening a box", "closing a box"]).shape == (2, 24)
    with pytest.raises(BackboneError, match="frames"):
        bb.encode_video(pixels[:, :2])


def test_missing_weights_is_backbone_error(tmp_path):
    with pytest.raises(BackboneError, match="huggingface-cli download"):
        load_backbone("hf-clip:" + str(tmp_path / "nowhere"))
    with pytest.raises(BackboneError, match="huggingface-cli download"):
        load_backbone("hf-xclip:someone/not-a-cached-model")


def test_wrong_family_is_backbone_error(clip_dir):
    with pytest.raises(BackboneError, match="'clip' model, not 'xclip'"):
        load_backbone("hf-xclip:" + clip_dir)


def test_checkpoint_with_missing_weights_is_backbone_error(clip_dir, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    broken = tmp_path / "broken"
    shutil.copytree(clip_dir, broken)
    weights = load_file(broken / "model.safetensors")
    weights.pop("visual_projection.weight")
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(BackboneError, match="lacks 1 weights"):
        load_backbone("hf-clip:" + str(broken))
