"""One forward and backward pass of every model kind under every objective: shapes, a finite loss, and gradients
on exactly the trainable parameters."""

import pytest
import torch
from model_fakes import make_model

from paxion.models.patched import MODEL_KINDS
from paxion.trainer.losses import OBJECTIVES, objective_loss

B, T, N, D, DIM, TEXTS = 4, 3, 5, 12, 8, 9


def _backbone(temporal: bool) -> dict:
    return {"name": "fake", "config_hash": "abc", "temporal": temporal, "embed_dim": DIM, "token_dim": D,
            "tokens_per_frame": N, "num_params": 1000}


def _batch() -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    batch = {"tokens": torch.randn(B, T, N, D, generator=generator), "pooled": torch.randn(B, DIM, generator=generator),
             "tokens_rev": torch.randn(B, T, N, D, generator=generator),
             "pooled_rev": torch.randn(B, DIM, generator=generator),
             "caption_idx": torch.tensor([0, 1, 2, 3]), "template_idx": torch.tensor([4, 4, 5, 6]),
             "aa_idx": torch.tensor([7, -1, 8, 7]), "salient": torch.tensor([True, False, True, True]),
             # multiple choice: three candidates a clip, their antonyms (-1 = none)
             "mc_idx": torch.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 4, 8]]),
             "mc_answer": torch.tensor([0, 2, 1, 1]),
             "mc_aa_idx": torch.tensor([[8, -1, 7], [-1, -1, -1], [0, 1, 2], [1, 2, 3]])}
    return batch, torch.randn(TEXTS, DIM, generator=generator)


@pytest.mark.parametrize("temporal", [False, True])
@pytest.mark.parametrize("frozen", [None, "kp"])
@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_forward_and_backward(kind, objective, frozen, temporal):
    torch.manual_seed(0)
    model = make_model(kind, backbone=_backbone(temporal), frames=T, heads=2, dim_head=4, num_latents=3,
                       token_pos_emb=True)
    if frozen is not None:
        getattr(model, frozen).requires_grad_(False)
    batch, text_emb = _batch()

    latents = 3 if kind == "kp-perceiver" else 1
    for reverse in (False, True):
        video = model.encode_video(batch, reverse=reverse)
        assert video.shape == (B, latents, DIM)
        assert torch.allclose(video.norm(dim=-1), torch.ones(B, latents), atol=1e-5)
    assert model.encode_text(text_emb).shape == (TEXTS, DIM)

    loss, parts = objective_loss(model, batch, text_emb, objective=objective)
    assert loss.shape == () and torch.isfinite(loss) and loss.item() > 0
    assert parts["loss"] == pytest.approx(loss.item())
    assert (parts.get("atm_clips", 0) > 0) == (objective == "vtc+dvdm")
    loss.backward()

    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    with_grad = {name for name, p in model.named_parameters() if p.grad is not None}
    assert trainable and with_grad == trainable
    assert all(torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0 for p in model.parameters() if p.requires_grad)
    if frozen is not None:
        assert not any(name.startswith(frozen + ".") for name in with_grad)
    assert all(t.grad is None for t in (*batch.values(), text_emb))
