"""VTC, VAC and ATM losses against small cases worked out by hand; the batch objective with a tiny model."""

import pytest
import torch
from model_fakes import make_model

from paxion.errors import PaxionError
from paxion.trainer.losses import atm_loss, objective_loss, vtc_loss

# Hand computations below use scale 1 and label smoothing 0.1, so with C candidates a single positive gets
# target 0.9 + 0.1 / C and every other candidate 0.1 / C; loss of a row = logsumexp(logits) - targets . logits.
# The 2x2 identity case: logits [1, 0], targets [0.95, 0.05]: log(e + 1) - 0.95 = 0.3632617.
TWO_BY_TWO = 0.3632617

E1, E2 = torch.eye(2)


def _video(*rows):
    return torch.stack(rows)[:, None]  # one latent per clip


def test_vtc_two_by_two():
    loss = vtc_loss(_video(E1, E2), torch.stack([E1, E2]), torch.tensor([0, 1]), scale=1.0)
    assert loss.item() == pytest.approx(TWO_BY_TWO, abs=1e-6)


def test_vtc_identical_captions_are_positives():
    # both clips have caption 5 (vector e1); clip videos e1 and e2.
    # v2t rows: [1, 1] and [0, 0], both columns positive -> targets [0.5, 0.5] -> log 2 each.
    # t2v rows (both texts): [1, 0], both videos positive -> 0.5 * (log(e+1) - 1) + 0.5 * log(e+1) = 0.8132617.
    # total (0.6931472 + 0.8132617) / 2 = 0.7532044
    loss = vtc_loss(_video(E1, E2), torch.stack([E1, E1]), torch.tensor([5, 5]), scale=1.0)
    assert loss.item() == pytest.approx(0.7532044, abs=1e-6)


def test_vac_appends_antonyms_as_video_to_text_candidates():
    # antonyms -e1 (id 2) for clip 0 and -e2 (id 3) for clip 1: 2B = 4 candidates.
    # v2t row 0 logits [1, 0, -1, 0], targets [0.925, 0.025, 0.025, 0.025]: log(e + 2 + 1/e) - 0.9 = 0.7265234,
    # row 1 the same; t2v unchanged: 0.3632617. Total (0.7265234 + 0.3632617) / 2 = 0.5448925
    loss = vtc_loss(_video(E1, E2), torch.stack([E1, E2]), torch.tensor([0, 1]), scale=1.0,
                    extra_text=torch.stack([-E1, -E2]), extra_ids=torch.tensor([2, 3]))
    assert loss.item() == pytest.approx(0.5448925, abs=1e-6)


def test_vac_drops_missing_antonyms():
    # clip 1 has no antonym (-1): 3 candidates. Row 0 logits [1, 0, -1]: log(e + 1 + 1/e) - 0.9;
    # row 1 logits [0, 1, 0]: log(e + 2) - (0.9 + 0.1/3). Total with t2v 0.3632617: 0.4630602
    loss = vtc_loss(_video(E1, E2), torch.stack([E1, E2]), torch.tensor([0, 1]), scale=1.0,
                    extra_text=torch.stack([-E1, torch.full((2,), float("nan"))]), extra_ids=torch.tensor([2, -1]))
    assert loss.item() == pytest.approx(0.4630602, abs=1e-6)


def test_vac_antonym_equal_to_own_caption_is_a_positive():
    # clip 0's "antonym" is its own caption (id 0, e1): v2t row 0 logits [1, 0, 1, 0] with positives at 0 and 2,
    # targets [0.475, 0.025, 0.475, 0.025]: log(2e + 2) - 0.95; row 1 as in the VAC case (antonym -e2, id 3).
    # Total ((log(2e+2) - 0.95 + 0.7265234) / 2 + 0.3632617) / 2 = 0.6273639
    loss = vtc_loss(_video(E1, E2), torch.stack([E1, E2]), torch.tensor([0, 1]), scale=1.0,
                    extra_text=torch.stack([E1, -E2]), extra_ids=torch.tensor([0, 3]))
    assert loss.item() == pytest.approx(0.6273639, abs=1e-6)


def test_atm_counts_salient_clips_only():
    # clip 0: score with its text 1, reversed 0 -> logits [1, 0], target original: 0.3632617.
    # clip 1 (not salient) would score the reversed clip higher and must not count.
    video, video_rev = _video(E1, E1), _video(E2, -E1)
    text = torch.stack([E1, -E1])
    loss = atm_loss(video, video_rev, text, torch.tensor([True, False]), scale=1.0)
    assert loss.item() == pytest.approx(TWO_BY_TWO, abs=1e-6)
    both = atm_loss(video, video_rev, text, torch.tensor([True, True]), scale=1.0)
    # clip 1: logits [-1, 1]: log(e + 1/e) + 0.95 - 0.05 = 2.0269280; mean (0.3632617 + 2.0269280) / 2
    assert both.item() == pytest.approx(1.1950949, abs=1e-6)


def test_atm_without_salient_clips_is_zero_with_finite_gradient():
    video = torch.randn(3, 2, 4, requires_grad=True)
    video_rev = torch.randn(3, 2, 4, requires_grad=True)
    loss = atm_loss(video, video_rev, torch.randn(3, 4), torch.zeros(3, dtype=torch.bool), scale=torch.tensor(14.0))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(video.grad, torch.zeros_like(video)) and torch.isfinite(video_rev.grad).all()


BACKBONE = {"name": "fake", "config_hash": "abc", "temporal": False, "embed_dim": 8, "token_dim": 12,
            "tokens_per_frame": 3, "num_params": 1000}


def _batch(b=4, n_text=10):
    torch.manual_seed(1)
    return {
        "tokens": torch.randn(b, 4, 3, 12), "pooled": torch.randn(b, 8),
        "caption_idx": torch.tensor([0, 1, 2, 3])[:b], "template_idx": torch.tensor([7, 7, 8, 9])[:b],
        "aa_idx": torch.tensor([4, 5, -1, 6])[:b], "salient": torch.tensor([True, False, True, True])[:b],
    }, torch.randn(n_text, 8)


def test_objective_loss_parts():
    model = make_model("kp-perceiver", backbone=BACKBONE, frames=4, heads=2, dim_head=4, time_pos_dropout=0.0)
    batch, text_emb = _batch()
    loss, parts = objective_loss(model, batch, text_emb)
    assert parts["vac_candidates"] == 4 + 3  # one clip has no antonym
    assert parts["atm_clips"] == 3
    assert parts["loss"] == pytest.approx(parts["vtc"] + 0.4 * parts["atm"], rel=1e-5)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert model.logit_scale.grad is not None

    _, plain = objective_loss(model, batch, text_emb, objective="vtc")
    assert plain["vac_candidates"] == 4 and plain["atm"] == 0.0 and plain["atm_clips"] == 0
    _, every = objective_loss(model, batch, text_emb, use_saliency=False, vac=False)
    assert every["atm_clips"] == 4 and every["vac_candidates"] == 4
    _, template = objective_loss(model, batch, text_emb, objective="vtc", text_key="template_idx")
    assert template["vtc"] != plain["vtc"]
    with pytest.raises(PaxionError, match="unknown objective"):
        objective_loss(model, batch, text_emb, objective="mse")


def test_vac_has_two_b_candidates_when_every_clip_has_an_antonym():
    model = make_model("kp-perceiver", backbone=BACKBONE, frames=4, heads=2, dim_head=4, time_pos_dropout=0.0)
    batch, text_emb = _batch()
    batch["aa_idx"] = torch.tensor([4, 5, 6, 7])
    _, parts = objective_loss(model, batch, text_emb)
    assert parts["vac_candidates"] == 2 * 4


def test_gather_builds_the_global_batch():
    # a "gather" that duplicates every tensor (two ranks holding the same clips) must give the loss of the
    # concatenated batch computed in one process
    model = make_model("kp-perceiver", backbone=BACKBONE, frames=4, heads=2, dim_head=4, time_pos_dropout=0.0)
    batch, text_emb = _batch()
    gathered, _ = objective_loss(model, batch, text_emb, gather=lambda t: torch.cat([t, t]))
    doubled = {k: torch.cat([v, v]) for k, v in batch.items()}
    single, _ = objective_loss(model, doubled, text_emb)
    assert gathered.item() == pytest.approx(single.item(), rel=1e-5)
