"""Shapes and behaviour of the patcher, fuser, side-tuning models and the PatchedModel / backbone scorers."""

import math

import pytest
import torch
import torch.nn.functional as F
from model_fakes import make_model

from paxion.errors import PaxionError
from paxion.models.layers import CrossAttention, KnowledgeFuser, KPPerceiver, KPTransformer, SideTuning
from paxion.models.patched import PatchedModel, count_parameters, format_parameters, load_model, save_model
from paxion.scoring import BackboneScorer, ModelScorer, similarity
from paxion.trainer.config import TrainConfig

B, T, N, D, DIM = 3, 4, 5, 16, 8
BACKBONE = {"name": "fake", "config_hash": "abc", "temporal": False, "embed_dim": DIM, "token_dim": D,
            "tokens_per_frame": N, "num_params": 1000}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _batch(temporal=False):
    batch = {"tokens": torch.randn(B, T, N, D), "pooled": torch.randn(B, DIM)}
    if temporal:
        batch |= {"tokens_rev": torch.randn(B, T, N, D), "pooled_rev": torch.randn(B, DIM)}
    return batch


def test_cross_attention_reads_keys_and_values_from_context_only():
    attend = CrossAttention(dim=DIM, context_dim=D, heads=2, dim_head=4)
    queries, context = torch.randn(B, 6, DIM), torch.randn(B, 7, D)
    out = attend(queries, context)
    assert out.shape == (B, 6, DIM)
    assert all(m.bias is None for m in (attend.to_q, attend.to_kv, attend.to_out))
    # a query attends over the context only, so it does not depend on the other queries
    assert torch.allclose(attend(queries[:, :1], context), out[:, :1], atol=1e-6)
    assert not torch.allclose(attend(queries, torch.randn(B, 7, D)), out)


def test_perceiver_shape_and_temporal_embedding_breaks_reversal_symmetry():
    tokens = torch.randn(B, T, N, D)
    kp = KPPerceiver(token_dim=D, dim=DIM, frames=T, tokens_per_frame=N, heads=2, dim_head=4)
    out = kp(tokens)
    assert out.shape == (B, 16, DIM)
    assert not torch.allclose(kp(tokens.flip(1)), out, atol=1e-4)
    plain = KPPerceiver(token_dim=D, dim=DIM, frames=T, tokens_per_frame=N, num_latents=3,
                        time_pos_emb=False, token_pos_emb=False)
    assert plain(tokens).shape == (B, 3, DIM)
    # without position embeddings cross-attention is blind to token order
    assert torch.allclose(plain(tokens.flip(1)), plain(tokens), atol=1e-5)


def test_frame_embedding_dropout_acts_only_while_training():
    tokens = torch.randn(B, T, N, D)
    kp = KPPerceiver(token_dim=D, dim=DIM, frames=T, tokens_per_frame=N, heads=2, dim_head=4, time_pos_dropout=0.5)
    assert not torch.equal(kp(tokens), kp(tokens))  # a new dropout mask each call
    kp.eval()
    assert torch.equal(kp(tokens), kp(tokens))
    # dropout zeroes entries of the embedding, never of the tokens: with the embedding at 0 it changes nothing
    with torch.no_grad():
        kp.time_pos.time_pos_emb.zero_()
    expected = kp(tokens)
    assert torch.equal(kp.train()(tokens), expected)


def test_transformer_patcher_shape_and_reversal():
    tokens = torch.randn(B, T, N, D)
    kp = KPTransformer(token_dim=D, dim=DIM, frames=T, tokens_per_frame=N, heads=4)
    out = kp(tokens)
    assert out.shape == (B, 1, DIM)
    assert not torch.allclose(kp(tokens.flip(1)), out, atol=1e-4)


def test_fuser_and_side_tuning_shapes_and_alpha_at_init():
    pooled, latents = torch.randn(B, DIM), torch.randn(B, 16, DIM)
    assert KnowledgeFuser(dim=DIM, heads=2, dim_head=4)(pooled, latents).shape == (B, 1, DIM)
    side = SideTuning()
    assert side.alpha.item() == 0.5
    expected = 0.5 * F.normalize(pooled, dim=-1) + 0.5 * F.normalize(latents.mean(1), dim=-1)
    assert torch.allclose(side(pooled, latents)[:, 0], expected)


@pytest.mark.parametrize(("kind", "latents"), [("kp-perceiver", 16), ("kp-transformer", 1), ("paxion", 1),
                                               ("side-tuning", 1)])
def test_patched_model_outputs_normalised_vectors(kind, latents):
    model = make_model(kind, backbone=BACKBONE, frames=T).eval()  # eval: no frame-embedding dropout
    batch = _batch()
    out = model.encode_video(batch)
    assert out.shape == (B, latents, DIM)
    assert torch.allclose(out.norm(dim=-1), torch.ones(B, latents), atol=1e-5)
    # frame-wise cache: the reversed clip is the tokens flipped in time
    flipped = {"tokens": batch["tokens"].flip(1), "pooled": batch["pooled"]}
    assert torch.allclose(model.encode_video(batch, reverse=True), model.encode_video(flipped))
    assert model.scale.item() == pytest.approx(1 / 0.07, rel=1e-5)


def test_patched_model_reads_stored_reversal_on_temporal_caches():
    model = make_model("paxion", backbone=BACKBONE | {"temporal": True}, frames=T).eval()
    batch = _batch(temporal=True)
    stored = {"tokens": batch["tokens_rev"], "pooled": batch["pooled_rev"]}
    assert torch.allclose(model.encode_video(batch, reverse=True), model.encode_video(stored))
    assert model.video_fields(reverse=True) == ("tokens_rev", "pooled_rev")


def test_backbone_scorer_is_blind_to_frame_order_but_reads_pooled_rev_when_temporal():
    batch = _batch(temporal=True)
    framewise = BackboneScorer(temporal=False)
    assert torch.equal(framewise.encode_video(batch, reverse=True), framewise.encode_video(batch))
    assert framewise.encode_video(batch).shape == (B, 1, DIM)
    temporal = BackboneScorer(temporal=True)
    assert torch.allclose(temporal.encode_video(batch, reverse=True)[:, 0], F.normalize(batch["pooled_rev"]))
    assert BackboneScorer(temporal=False).scale == 100.0  # CLIP's, when the manifest records none
    assert BackboneScorer(temporal=False, scale=7.5).scale == 7.5


def test_similarity_takes_the_max_over_latents():
    videos = torch.tensor([[[1.0, 0.0], [0.6, 0.8]], [[0.0, 1.0], [0.0, -1.0]]])
    texts = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    # video 0: latent dots with text 1 are 0 and 0.8 -> 0.8; video 1: with text 2 are -1 and 1 -> 1
    expected = torch.tensor([[1.0, 0.8, 0.0], [0.0, 1.0, 1.0]])
    assert torch.allclose(similarity(videos, texts), expected)


def test_save_and_load_round_trip_rebuilds_from_the_saved_config(tmp_path):
    config = TrainConfig.paper(model="paxion", num_latents=4, heads=2, token_pos_emb=True, label_smoothing=0.2)
    model = make_model("paxion", backbone=BACKBONE, frames=T, num_latents=4, heads=2, token_pos_emb=True).eval()
    with torch.no_grad():
        model.logit_scale.fill_(math.log(20.0))
    save_model(model, tmp_path / "model.pt", config=config.to_dict())
    loaded, saved = load_model(tmp_path / "model.pt")
    batch = _batch()
    assert saved == config.to_dict() and saved["label_smoothing"] == 0.2
    assert loaded.kind == "paxion" and loaded.options == model.options and loaded.options["num_latents"] == 4
    assert loaded.kp.token_pos_emb is not None and "kp.time_pos.time_pos_emb" in loaded.state_dict()
    assert torch.equal(loaded.eval().encode_video(batch), model.encode_video(batch))
    assert ModelScorer(loaded).scale == pytest.approx(20.0)


def test_load_model_rejects_bad_and_old_files(tmp_path):
    with pytest.raises(PaxionError, match="no such model file"):
        load_model(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(PaxionError, match="not a paxion model"):
        load_model(tmp_path / "junk.pt")
    # the format before runs saved their config: options={} meant "today's class defaults"
    model = make_model("kp-perceiver", backbone=BACKBONE, frames=T)
    torch.save({"kind": "kp-perceiver", "config": {"backbone": BACKBONE, "frames": T, "options": {}},
                "state_dict": model.state_dict()}, tmp_path / "old.pt")
    with pytest.raises(PaxionError, match="old.pt: written by an older paxion .*; retrain it"):
        load_model(tmp_path / "old.pt")
    with pytest.raises(PaxionError, match="unknown model kind"):
        make_model("kp-lstm", backbone=BACKBONE, frames=T)
    with pytest.raises(PaxionError, match="needs exactly the options"):
        PatchedModel(kind="kp-perceiver", backbone=BACKBONE, frames=T, options={"heads": 2})


def test_patcher_is_shared_by_fused_kinds_and_copyable():
    trained = make_model("kp-perceiver", backbone=BACKBONE, frames=T).eval()
    fused = make_model("side-tuning", backbone=BACKBONE, frames=T).eval()
    fused.patcher().load_state_dict(trained.patcher().state_dict())
    tokens = torch.randn(B, T, N, D)
    assert torch.equal(fused.patcher()(tokens), trained.patcher()(tokens))


def test_parameter_count_and_format():
    layer = torch.nn.Linear(10, 4)
    layer.bias.requires_grad_(False)
    assert count_parameters(layer) == 40
    assert format_parameters(4_200_000, 466_000_000) == "4.2M (0.9%)"
    assert format_parameters(12_345) == "12.3K"
    assert format_parameters(40, 4000) == "40 (1.0%)"
