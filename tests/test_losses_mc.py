"""The multiple-choice loss (NExT-QA fine-tuning, paper App. D.3) against cases worked out by hand."""

import math

import pytest
import torch
import torch.nn.functional as F
from model_fakes import make_model

from paxion.trainer.losses import mc_loss, objective_loss

# Scale 1 and label smoothing 0.1: with C valid candidates the answer gets target 0.9 + 0.1 / C and every other
# valid candidate 0.1 / C, so a row's loss is log(sum of exp(valid logits)) - targets . logits.
E = math.e
E1, E2 = torch.eye(2)
ZERO = torch.zeros(2)
CANDIDATES = torch.stack([E1, E2, -E1, -E2, ZERO])  # the same five candidates for both clips
# clip 0: latents e1 and e2 / 2, so scores (max over latents) [1, 0.5, 0, 0, 0]; clip 1: e2 twice, [0, 1, 0, -1, 0]
VIDEO = torch.stack([torch.stack([E1, E2 / 2]), torch.stack([E2, E2])])
ANSWER = torch.tensor([0, 1])
# clip 0: log(e + e^0.5 + 3) - (0.92 * 1 + 0.02 * 0.5); clip 1: log(e + 3 + 1/e) - (0.92 * 1 + 0.02 * -1)
FIVE_WAY = ((math.log(E + math.sqrt(E) + 3) - 0.93) + (math.log(E + 3 + 1 / E) - 0.9)) / 2


def test_five_candidates_by_hand():
    loss = mc_loss(VIDEO, CANDIDATES.expand(2, 5, 2), ANSWER, scale=1.0, smoothing=0.1)
    assert loss.item() == pytest.approx(FIVE_WAY, abs=1e-6)
    # torch's own label-smoothed cross-entropy on the same logits agrees
    logits = torch.tensor([[1, 0.5, 0, 0, 0], [0, 1, 0, -1, 0]])
    assert loss.item() == pytest.approx(F.cross_entropy(logits, ANSWER, label_smoothing=0.1).item(), abs=1e-6)


def test_scale_multiplies_the_scores():
    # clip 1 alone at scale 2: logits [0, 2, 0, -2, 0], targets 0.92 / 0.02: log(e^2 + 3 + e^-2) - (1.84 - 0.04)
    loss = mc_loss(VIDEO[1:], CANDIDATES[None], ANSWER[1:], scale=torch.tensor(2.0), smoothing=0.1)
    assert loss.item() == pytest.approx(math.log(E**2 + 3 + E**-2) - 1.8, abs=1e-6)


def test_ten_candidates_by_hand_with_missing_antonyms_masked():
    # clip 0: antonyms 2e1 and -e2 (scores 2, 0), the other three missing: 7 valid candidates, targets
    # 0.9 + 0.1/7 and 0.1/7: log(e + e^0.5 + 4 + e^2) - (0.9 * 1 + (0.1 / 7) * (1 + 0.5 + 2)).
    # clip 1: all five antonyms e1, -e2, 3e2, -e1, 0 (scores 0, -1, 3, 0, 0): 10-way, targets 0.91 / 0.01, logits
    # [0, 1, 0, -1, 0, 0, -1, 3, 0, 0]: log(6 + e + 2/e + e^3) - (0.9 * 1 + 0.01 * 2)
    extra = torch.stack([torch.stack([2 * E1, -E2, E1, E1, E1]), torch.stack([E1, -E2, 3 * E2, -E1, ZERO])])
    mask = torch.tensor([[True, True, False, False, False], [True] * 5])
    loss = mc_loss(VIDEO, CANDIDATES.expand(2, 5, 2), ANSWER, scale=1.0, smoothing=0.1, extra=extra, extra_mask=mask)
    clip0 = math.log(E + math.sqrt(E) + 4 + E**2) - 0.95
    clip1 = math.log(6 + E + 2 / E + E**3) - 0.92
    assert loss.item() == pytest.approx((clip0 + clip1) / 2, abs=1e-6)
    full = torch.tensor([[0.0, 1, 0, -1, 0, 0, -1, 3, 0, 0]])
    assert clip1 == pytest.approx(F.cross_entropy(full, ANSWER[1:], label_smoothing=0.1).item(), abs=1e-6)


def test_no_antonyms_is_plain_five_way_with_finite_gradient():
    video = VIDEO.clone().requires_grad_()
    extra = torch.full((2, 5, 2), 7.0)  # would dominate the softmax if it counted
    loss = mc_loss(video, CANDIDATES.expand(2, 5, 2), ANSWER, scale=1.0, smoothing=0.1, extra=extra,
                   extra_mask=torch.zeros(2, 5, dtype=torch.bool))
    assert loss.item() == pytest.approx(FIVE_WAY, abs=1e-6)
    loss.backward()
    assert torch.isfinite(video.grad).all()


BACKBONE = {"name": "fake", "config_hash": "abc", "temporal": False, "embed_dim": 8, "token_dim": 12,
            "tokens_per_frame": 3, "num_params": 1000}


def _batch():
    torch.manual_seed(2)
    return {
        "tokens": torch.randn(2, 4, 3, 12), "pooled": torch.randn(2, 8),
        "mc_idx": torch.tensor([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]], dtype=torch.int32),
        "mc_answer": torch.tensor([3, 0], dtype=torch.int32),
        # clip 0: antonyms 10, 11, none, 2 (one of its own candidates: left out), none; clip 1: all new
        "mc_aa_idx": torch.tensor([[10, 11, -1, 2, -1], [12, 13, 14, 15, 16]], dtype=torch.int32),
    }, torch.randn(17, 8)


@pytest.mark.parametrize("kind", ["kp-perceiver", "paxion", "side-tuning"])
def test_objective_scores_each_clip_over_its_candidates_and_antonyms(kind):
    model = make_model(kind, backbone=BACKBONE, frames=4, heads=2, dim_head=4, time_pos_dropout=0.0).eval()
    batch, text_emb = _batch()
    video = model.encode_video(batch)
    texts = model.encode_text(text_emb)
    plain, parts = objective_loss(model, batch, text_emb, objective="mc")
    expected = mc_loss(video, texts[batch["mc_idx"].long()], batch["mc_answer"], scale=model.scale)
    assert plain.item() == pytest.approx(expected.item(), rel=1e-6)
    assert parts["mc_candidates"] == 5 and parts["loss"] == parts["mc"] and "atm" not in parts
    with_vac, parts = objective_loss(model, batch, text_emb, objective="mc+vac")
    kept = torch.tensor([[True, True, False, False, False], [True] * 5])
    expected = mc_loss(video, texts[batch["mc_idx"].long()], batch["mc_answer"], scale=model.scale,
                       extra=texts[batch["mc_aa_idx"].long().clamp(min=0)], extra_mask=kept)
    assert with_vac.item() == pytest.approx(expected.item(), rel=1e-6)
    assert parts["mc_candidates"] == (7 + 10) / 2
    with_vac.backward()
    assert model.logit_scale.grad is not None


def test_mc_gather_builds_the_global_batch():
    model = make_model("kp-perceiver", backbone=BACKBONE, frames=4, heads=2, dim_head=4, time_pos_dropout=0.0)
    batch, text_emb = _batch()
    gathered, _ = objective_loss(model, batch, text_emb, objective="mc+vac", gather=lambda t: torch.cat([t, t]))
    doubled = {k: torch.cat([v, v]) for k, v in batch.items()}
    single, _ = objective_loss(model, doubled, text_emb, objective="mc+vac")
    assert gathered.item() == pytest.approx(single.item(), rel=1e-6)
