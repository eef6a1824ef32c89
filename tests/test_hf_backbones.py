"""HF CLIP / X-CLIP adapters on tiny randomly initialised models saved to disk and loaded offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from paxion.cache.quant import as_float32
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


def _save(model, path, *, processor=None) -> str:
    torch.manual_seed(0)
    path.mkdir()
    model.save_pretrained(path)
    _save_tokenizer(path)
    if processor is not None:
        processor.save_pretrained(path)
    return str(path)


def _clip_processor(**overrides):
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    return CLIPImageProcessorPil(**{"size": {"shortest_edge": 32}, "crop_size": {"height": 32, "width": 32},
                                    "image_mean": [0.5, 0.4, 0.3], "image_std": [0.5, 0.25, 0.2], **overrides})


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    config = CLIPConfig(text_config=TEXT, vision_config=VISION, projection_dim=24)
    return _save(CLIPModel(config), tmp_path_factory.mktemp("m") / "clip", processor=_clip_processor())


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


def _levels(a: torch.Tensor, b: torch.Tensor, std) -> torch.Tensor:
    """|a - b| of normalised pixels [..., 3, H, W] in uint8 grey levels."""
    return (a - b).abs() * torch.tensor(std).view(3, 1, 1) * 255


# Tolerance against the image processor (PIL): bicubic equal to 1 grey level, bilinear to 2 (PIL's fixed-point
# weights), each on under 10% of the values; after normalisation that is levels / (255 * std).
@pytest.mark.parametrize("shape", [(40, 56), (63, 30), (240, 427), (32, 32)])
def test_pixels_equal_the_checkpoints_clip_image_processor(clip_dir, shape):
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    bb = load_backbone("hf-clip:" + clip_dir)
    frames = np.random.default_rng(sum(shape)).integers(0, 256, (1, 3, *shape, 3), dtype=np.uint8)
    processor = CLIPImageProcessorPil.from_pretrained(clip_dir)
    expected = torch.from_numpy(np.stack(processor(list(frames[0]), return_tensors="np")["pixel_values"]))
    got = bb.preprocess(frames)[0]
    assert got.shape == expected.shape == (3, 3, 32, 32)
    levels = _levels(got, expected, processor.image_std)
    assert levels.max() <= 1 + 1e-4 and (levels > 0.5).float().mean() < 0.1


@pytest.mark.parametrize("shape", [(40, 56), (63, 30)])
def test_bilinear_pixels_equal_the_image_processor(shape):
    from paxion.extract.backbones.base import PixelSpec, processor_pixels

    processor = _clip_processor(resample=2)
    spec = PixelSpec(size=32, crop=(32, 32), resample="bilinear", mean=(0.5, 0.4, 0.3), std=(0.5, 0.25, 0.2))
    frames = np.random.default_rng(1).integers(0, 256, (1, 2, *shape, 3), dtype=np.uint8)
    expected = torch.from_numpy(np.stack(processor(list(frames[0]), return_tensors="np")["pixel_values"]))
    levels = _levels(processor_pixels(frames, spec)[0], expected, spec.std)
    assert levels.max() <= 2 + 1e-4 and (levels > 0.5).float().mean() < 0.1


def test_wide_frames_are_centre_cropped_not_squashed(clip_dir):
    bb = load_backbone("hf-clip:" + clip_dir)
    frames = np.zeros((1, 1, 32, 64, 3), dtype=np.uint8)
    frames[..., 16:48, :] = 255  # a white centre square between black side bands
    white = (1.0 - torch.tensor([0.5, 0.4, 0.3])) / torch.tensor([0.5, 0.25, 0.2])
    torch.testing.assert_close(bb.preprocess(frames)[0, 0], white.view(3, 1, 1).expand(3, 32, 32))


def test_half_precision_checkpoint_loads_in_float32(clip_dir, tmp_path):
    from transformers import CLIPModel

    half = CLIPModel.from_pretrained(clip_dir, dtype=torch.float32).half()
    half.save_pretrained(tmp_path / "half")
    for name in ("tokenizer.json", "tokenizer_config.json", "preprocessor_config.json"):
        (tmp_path / "half" / name).write_bytes((Path(clip_dir) / name).read_bytes())
    bb = load_backbone(f"hf-clip:{tmp_path / 'half'}")
    assert {p.dtype for p in bb.parameters()} == {torch.float32}
    torch.testing.assert_close(bb.model.visual_projection.weight, half.visual_projection.weight.float())


def test_xclip_uses_its_own_statistics(xclip_dir):
    bb = load_backbone("hf-xclip:" + xclip_dir)
    assert (bb.pixels.mean, bb.pixels.std) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert (bb.pixels.size, bb.pixels.crop, bb.pixels.resample) == (32, (32, 32), "bilinear")


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


@pytest.fixture(scope="module")
def siglip_dir(tmp_path_factory):
    from transformers import SiglipConfig, SiglipModel
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    torch.manual_seed(0)
    config = SiglipConfig(text_config=TEXT, vision_config=VISION)
    processor = SiglipImageProcessorPil(size={"height": 32, "width": 32})
    return _save(SiglipModel(config), tmp_path_factory.mktemp("m") / "siglip", processor=processor)


def test_siglip_is_framewise_and_scores_as_siglip(siglip_dir):
    from transformers import SiglipModel

    bb = load_backbone("hf-siglip:" + siglip_dir)
    assert (bb.temporal, bb.embed_dim, bb.token_dim, bb.tokens_per_frame) == (False, 32, 32, 16)
    assert (bb.pixels.crop, bb.pixels.size, bb.decode_geometry) == (None, (32, 32), (32, False))
    frames = _frames(4)
    out = bb.encode_video(bb.preprocess(frames))
    assert out.tokens.shape == (2, FRAMES, 16, 32) and out.frames.shape == (2, FRAMES, 32)
    texts = ["opening a box", "closing a box", "x"]
    # the model's own sigmoid logits on the first frame: logit_scale * cos + logit_bias, SigLIP's score
    reference = SiglipModel.from_pretrained(siglip_dir).eval()
    inputs = bb.tokenizer(texts, padding="max_length", max_length=16, return_tensors="pt")
    with torch.no_grad():
        logits = reference(input_ids=inputs["input_ids"], pixel_values=bb.preprocess(frames)[:, 0]).logits_per_image
    cos = torch.nn.functional.normalize(out.frames[:, 0], dim=-1) @ torch.nn.functional.normalize(
        bb.encode_text(texts), dim=-1).T
    bias = reference.logit_bias.item()
    torch.testing.assert_close(bb.logit_scale * cos + bias, logits, atol=1e-4, rtol=1e-4)


def test_siglip_extraction_records_its_scale(siglip_dir, tmp_path):
    from fakes import make_bench

    from paxion.cache.reader import Cache
    from paxion.extract.pipeline import extract
    from paxion.extract.video import read_frames
    from paxion.scoring import load_scorer

    bench, videos = make_bench(tmp_path / "world", {"validation": 3})
    bb = load_backbone("hf-siglip:" + siglip_dir)
    result = extract(bench, videos, tmp_path / "c", bb, frames=FRAMES, batch_size=2, workers=0)
    assert result.complete and result.clips == 3
    cache = Cache(tmp_path / "c", backbone=bb)
    got = cache.read_split("validation")
    rows = [json.loads(line) for line in (bench / "validation.jsonl").read_text().splitlines()]
    clips = np.stack([read_frames(videos / r["video"], num_frames=FRAMES, size=32) for r in rows])
    expected = bb.encode_video(bb.preprocess(clips))
    np.testing.assert_allclose(got["pooled"], expected.pooled.numpy(), rtol=1e-5, atol=1e-5)
    assert "tokens_rev" not in got and got["tokens"].shape == (3, FRAMES, 16, 32)
    assert load_scorer(cache, None).scale == pytest.approx(bb.logit_scale)


def test_xclip_reversed_clip_without_a_second_vision_pass(xclip_dir):
    bb = load_backbone("hf-xclip:" + xclip_dir)
    calls = []
    bb.model.vision_model.register_forward_hook(lambda *_: calls.append(1))
    first = bb.preprocess(_frames(2))
    bb.encode_reversed(first, bb.encode_video(first))  # the first batch is checked with a full pass
    assert bb.tokens_symmetric is True and len(calls) == 2
    pixels = bb.preprocess(_frames(3))
    feats = bb.encode_video(pixels)
    calls.clear()
    rev = bb.encode_reversed(pixels, feats)
    assert calls == []
    full = bb.encode_video(pixels.flip(1))
    torch.testing.assert_close(rev.pooled, full.pooled, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rev.tokens, full.tokens, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(rev.pooled, feats.pooled, atol=1e-4)


def test_xclip_reversal_falls_back_to_a_full_pass_when_not_symmetric(xclip_dir):
    bb = load_backbone("hf-xclip:" + xclip_dir)
    bb.symmetry_rtol = -1.0  # no difference passes: behaves as a tower whose tokens depend on frame order
    calls = []
    bb.model.vision_model.register_forward_hook(lambda *_: calls.append(1))
    for seed in (2, 3):
        pixels = bb.preprocess(_frames(seed))
        bb.encode_reversed(pixels, bb.encode_video(pixels))
    assert bb.tokens_symmetric is False and len(calls) == 4


@pytest.mark.parametrize("kind", ["toy", "hf-clip", "hf-xclip", "hf-siglip"])
def test_temporal_flag_matches_a_flipped_clip(kind, request):
    from paxion.extract.backbones.registry import parse_spec

    spec = kind if kind == "toy" else f"{kind}:{request.getfixturevalue(kind.replace('hf-', '') + '_dir')}"
    bb = load_backbone(spec)
    listed = {entry.name: entry.temporal for entry in backbone_entries()}[parse_spec(spec)[0]]
    size = bb.image_size
    frames = np.random.default_rng(5).integers(0, 256, (2, FRAMES, size, size, 3), dtype=np.uint8)
    pixels = bb.preprocess(frames)
    with torch.no_grad():
        forward, backward = bb.encode_video(pixels).pooled, bb.encode_video(pixels.flip(1)).pooled
    order_free = torch.allclose(forward, backward, rtol=1e-5, atol=1e-6)
    assert bb.temporal == listed == (not order_free) == (kind == "hf-xclip")


@pytest.mark.parametrize("token_dtype", ["fp16", "int8"])
def test_xclip_cache_reads_reversed_tokens_it_does_not_store(xclip_dir, tmp_path, token_dtype):
    import h5py
    from fakes import make_bench

    from paxion.cache.reader import Cache
    from paxion.cache.verify import verify_cache
    from paxion.extract.pipeline import extract
    from paxion.extract.video import read_frames

    bench, videos = make_bench(tmp_path / "world", {"validation": 3})
    bb = load_backbone("hf-xclip:" + xclip_dir)
    assert extract(bench, videos, tmp_path / "c", bb, frames=FRAMES, batch_size=2, workers=0,
                   token_dtype=token_dtype).complete
    cache = Cache(tmp_path / "c", backbone=bb)
    for shard in cache.manifest["splits"]["validation"]["shards"]:
        with h5py.File(tmp_path / "c" / shard["file"], "r") as f:
            assert not any(name.startswith("tokens_rev") for name in f) and "pooled_rev" in f
    stored = cache.read_split("validation", ["tokens", "tokens_rev", "pooled_rev"])
    got = {name: t.numpy() for name, t in as_float32({n: torch.from_numpy(a) for n, a in stored.items()}).items()}
    np.testing.assert_array_equal(got["tokens_rev"], got["tokens"][:, ::-1])
    rows = [json.loads(line) for line in (bench / "validation.jsonl").read_text().splitlines()]
    size, crop = bb.decode_geometry
    clips = np.stack([read_frames(videos / r["video"], num_frames=FRAMES, size=size, crop=crop) for r in rows])
    rev = bb.encode_video(bb.preprocess(clips).flip(1))
    np.testing.assert_allclose(got["pooled_rev"], rev.pooled.numpy(), rtol=1e-4, atol=1e-5)
    if token_dtype == "fp16":
        np.testing.assert_allclose(got["tokens_rev"], rev.tokens.numpy(), rtol=2e-3, atol=2e-3)
    else:  # within half a quantisation step (per-token scale x channel scale) of the reversed clip's tokens
        step = stored["tokens_rev_scale"].astype(np.float32)[..., None] * stored["tokens_rev_channel_scale"].astype(
            np.float32)[:, None, None, :]
        assert (np.abs(got["tokens_rev"] - rev.tokens.numpy()) <= 0.5 * step + 2e-3).all()
    assert verify_cache(tmp_path / "c") == []


def _xclip_world(root: Path, clips: int) -> tuple[Path, Path, list[dict]]:
    """A bench of `clips` distinct captions, each with an antonym and an object-replaced negative, all within the
    tiny text encoder's context (14 characters). The tiny text model pools at the largest token id (its byte
    tokenizer's "z</w>" here), so every text ends with " z" to be read whole."""
    from fakes import make_bench

    bench, videos = make_bench(root, {"validation": clips})
    rows = [json.loads(line) for line in (bench / "validation.jsonl").read_text().splitlines()]
    for i, row in enumerate(rows):
        row |= {"caption": f"push a{i} z", "aa_caption": f"pull a{i} z", "or_caption": f"push b{i} z", "or_reason": None}
    (bench / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return bench, videos, rows


@pytest.mark.parametrize("symmetric", [True, False])
def test_xclip_backbone_scores_are_its_logits_per_video(xclip_dir, tmp_path, symmetric):
    import h5py
    from click.testing import CliRunner
    from transformers import XCLIPModel

    from paxion.analysis.predict import task_predictions
    from paxion.cache.reader import Cache
    from paxion.cli import cli
    from paxion.extract.pipeline import extract
    from paxion.extract.video import read_frames
    from paxion.retrieval.tasks import run_task, score_matrix
    from paxion.scoring import PromptScorer, load_scorer
    from paxion.trainer.evaluate import actionbench

    n = 6
    bench, videos, rows = _xclip_world(tmp_path / "world", n)
    bb = load_backbone("hf-xclip:" + xclip_dir)
    if not symmetric:
        bb.symmetry_rtol = -1.0  # as a tower whose tokens depend on frame order: reversed context stored
    assert extract(bench, videos, tmp_path / "c", bb, frames=FRAMES, batch_size=4, workers=0).complete
    cache = Cache(tmp_path / "c", backbone=bb)
    with h5py.File(tmp_path / "c" / cache.manifest["splits"]["validation"]["shards"][0]["file"], "r") as f:
        assert f["score_context"].shape == (n, 16, 24) and f["score_context"].dtype == np.float32  # P = 4 x 4, d
        assert ("score_context_rev" in f) == ("tokens_rev" in f) == (not symmetric)
    scorer = load_scorer(cache, None)
    assert isinstance(scorer, PromptScorer) and scorer.scale == pytest.approx(bb.logit_scale)
    result, items = actionbench(cache, scorer, records=True)

    # X-CLIP itself on the same frames and texts: row b scores clip b against every clip's 3 texts
    model = XCLIPModel.from_pretrained(xclip_dir).eval()
    size, crop = bb.decode_geometry
    pixels = bb.preprocess(np.stack([read_frames(videos / r["video"], num_frames=FRAMES, size=size, crop=crop)
                                     for r in rows]))
    texts = [t for r in rows for t in (r["caption"], r["aa_caption"], r["or_caption"])]
    inputs = bb.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(pixel_values=pixels, **inputs).logits_per_video.view(n, n, 3).diagonal().T.numpy()
        backwards = model(pixel_values=pixels.flip(1), **inputs).logits_per_video.view(n, n, 3).diagonal().T.numpy()
    own, aa, obj = logits.T
    atol = 1e-4  # float32 on the CPU (measured: 3e-6); the logits are about +-1 here (logit_scale.exp() = 14.3)
    np.testing.assert_allclose(scorer.scale * items["own"], own, rtol=0, atol=atol)
    np.testing.assert_allclose(scorer.scale * items["negative_scores"]["aa"], aa, rtol=0, atol=atol)
    np.testing.assert_allclose(scorer.scale * items["negative_scores"]["or"], obj, rtol=0, atol=atol)
    np.testing.assert_allclose(scorer.scale * items["reversed_own"], backwards[:, 0], rtol=0, atol=atol)
    # the plain text features give other scores: the test sees the conditioning
    emb = cache.text_emb / np.linalg.norm(cache.text_emb, axis=-1, keepdims=True)
    pooled = cache.read_split("validation", ["pooled"])["pooled"]
    plain = (pooled / np.linalg.norm(pooled, axis=-1, keepdims=True) * emb[items["caption_idx"]]).sum(-1)
    assert np.abs(scorer.scale * plain - own).max() > 100 * atol

    # the chosen answers, through `paxion eval --backbone-only --json`
    scored = CliRunner().invoke(cli, ["eval", "--cache", str(tmp_path / "c"), "--backbone-only", "--device", "cpu",
                                      "--json", str(tmp_path / "eval.json")])
    assert scored.exit_code == 0, scored.output
    printed = json.loads((tmp_path / "eval.json").read_text())
    ours = {"aa": items["negative_scores"]["aa"], "or": items["negative_scores"]["or"], "vr": items["reversed_own"]}
    for task, negative in (("aa", aa), ("or", obj), ("vr", backwards[:, 0])):
        np.testing.assert_array_equal(items["own"] > ours[task], own > negative)  # the same answer chosen
        assert printed[task]["n"] == n and printed[task]["accuracy"] == pytest.approx(100 * np.mean(own > negative))
        assert result[task]["accuracy"] == printed[task]["accuracy"]

    # retrieval: the full clip x caption matrix, each caption conditioned on each clip
    captions = [r["caption"] for r in rows]
    text_ids = np.array([cache.texts.index(c) for c in captions])
    with torch.no_grad():
        matrix = model(pixel_values=pixels, **bb.tokenizer(captions, padding=True, return_tensors="pt")).logits_per_video
    np.testing.assert_allclose(scorer.scale * score_matrix(cache, scorer, "validation", text_ids, batch_size=4),
                               matrix.numpy(), rtol=0, atol=atol)
    table = matrix.numpy()[:, np.argsort(text_ids)]  # columns in the task's order: the texts' table order
    label = run_task(cache, scorer, "label", ks=(1,))
    expected = np.argsort(np.argsort(text_ids))  # each clip's caption column
    assert label["v2t"]["r1"] == pytest.approx(100 * np.mean(table.argmax(1) == expected))
    assert label["t2v"]["r1"] == pytest.approx(100 * np.mean(table.argmax(0)[expected] == np.arange(n)))
    records = task_predictions(cache, scorer, "label", depth=3)  # `paxion retrieve --predictions`
    order = np.argsort(-table, axis=1)
    assert [[c["text"] for c in r["candidates"]] for r in records] == [
        [captions[j] for j in np.argsort(text_ids)[order[i, :3]]] for i in range(n)]
    assert [r["answer_rank"] for r in records] == [1 + int((table[i] > table[i, expected[i]]).sum()) for i in range(n)]


def test_xclip_scorer_file_is_checked(xclip_dir, tmp_path):
    from paxion.cache.reader import Cache
    from paxion.cache.verify import verify_cache
    from paxion.errors import CacheError
    from paxion.extract.pipeline import extract
    from paxion.scoring import load_scorer

    bench, videos, _ = _xclip_world(tmp_path / "world", 2)
    bb = load_backbone("hf-xclip:" + xclip_dir)
    assert extract(bench, videos, tmp_path / "c", bb, frames=FRAMES, batch_size=2, workers=0).complete
    record = Cache(tmp_path / "c").manifest["files"]["scorer"]
    path = tmp_path / "c" / record["file"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))  # same size: only the hash tells
    cache = Cache(tmp_path / "c")
    with pytest.raises(CacheError, match="scorer.pt: xxh3_128 differs"):
        load_scorer(cache, None)
    assert any("scorer.pt: xxh3_128 differs" in p for p in verify_cache(tmp_path / "c"))
    path.unlink()
    with pytest.raises(CacheError, match="scorer.pt: missing"):
        Cache(tmp_path / "c")


@pytest.mark.parametrize("act", ["quick_gelu", "gelu"])
def test_prompt_generator_equals_transformers(act):
    from transformers import XCLIPConfig
    from transformers.models.x_clip.modeling_x_clip import XCLIPPromptGenerator

    from paxion.errors import PaxionError
    from paxion.models.prompt import load_prompt_generator

    torch.manual_seed(1)
    config = XCLIPConfig(text_config=TEXT, vision_config=VISION, projection_dim=16, prompt_layers=2,
                         prompt_num_attention_heads=4, prompt_hidden_act=act, prompt_alpha=0.5)
    reference = XCLIPPromptGenerator(config).eval()
    for value in reference.parameters():  # away from the initial ones and zeros
        torch.nn.init.normal_(value, std=0.3)
    settings = {"dim": 16, "layers": 2, "heads": 4, "text_eps": 1e-5, "vision_eps": 1e-5, "act": act}
    ours = load_prompt_generator({"config": settings, "weights": reference.state_dict()})
    text, visual = torch.randn(3, 5, 16), torch.randn(3, 7, 16)
    with torch.no_grad():
        expected = torch.nn.functional.normalize(text + reference(text, visual), dim=-1)
        torch.testing.assert_close(ours(text, visual), expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(PaxionError, match="activation 'relu'"):
        load_prompt_generator({"config": settings | {"act": "relu"}, "weights": reference.state_dict()})
    with pytest.raises(PaxionError, match="does not fit"):
        load_prompt_generator({"config": settings | {"layers": 3}, "weights": reference.state_dict()})
