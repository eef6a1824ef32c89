"""Training objectives: video-text contrastive (VTC) and the DVDM losses, video-action contrastive (VAC) and
action-temporal matching (ATM), and multiple choice (MC, NExT-QA fine-tuning). All features are L2-normalised."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from paxion.errors import PaxionError
from paxion.models.patched import PatchedModel
from paxion.scoring import pair_scores, similarity

MC_OBJECTIVES = ("mc", "mc+vac")
OBJECTIVES = ("vtc", "vtc+dvdm", *MC_OBJECTIVES)
MC_FIELDS = ("mc_idx", "mc_answer", "mc_aa_idx")


def soft_cross_entropy(logits: Tensor, positives: Tensor, smoothing: float, valid: Tensor | None = None) -> Tensor:
    """Per-row cross-entropy [R] of logits [R, C] against targets spread evenly over the positives [R, C].

    Label smoothing as in torch: target = (1 - smoothing) * target + smoothing / C. valid [R, C] bool (default
    all): columns left out of a row, as if its logit were -inf; C counts the row's valid columns only.
    """
    if valid is None:
        valid = torch.ones_like(positives, dtype=torch.bool)
    targets = positives.float() / positives.sum(dim=1, keepdim=True)
    targets = targets * (1 - smoothing) + smoothing * valid.float() / valid.sum(dim=1, keepdim=True)
    log_probs = logits.masked_fill(~valid, -torch.inf).log_softmax(dim=1).masked_fill(~valid, 0.0)
    return -(targets * log_probs).sum(dim=1)


def vtc_loss(
    video: Tensor,
    text: Tensor,
    text_ids: Tensor,
    *,
    scale: Tensor | float,
    smoothing: float = 0.1,
    extra_text: Tensor | None = None,
    extra_ids: Tensor | None = None,
) -> Tensor:
    """Symmetric video<->text contrastive loss over a batch; texts with the same id are all positives.

    video [B, L, d], text [B, d] (clip i's own text), text_ids [B]. extra_text [E, d] / extra_ids [E] (VAC:
    the antonym captions) are appended as candidates in the video->text direction only; rows with id -1 are
    dropped, and an appended text whose id equals a clip's own text id is a positive of that clip.
    """
    candidates, candidate_ids = text, text_ids
    if extra_text is not None:
        keep = extra_ids >= 0
        candidates = torch.cat([text, extra_text[keep]])
        candidate_ids = torch.cat([text_ids, extra_ids[keep]])
    v2t = scale * similarity(video, candidates)
    v2t_positives = text_ids[:, None] == candidate_ids[None, :]
    batch = len(text)
    t2v = v2t[:, :batch].T
    t2v_positives = v2t_positives[:, :batch].T
    v2t_loss = soft_cross_entropy(v2t, v2t_positives, smoothing).mean()
    t2v_loss = soft_cross_entropy(t2v, t2v_positives, smoothing).mean()
    return (v2t_loss + t2v_loss) / 2


def atm_loss(
    video: Tensor, video_rev: Tensor, text: Tensor, salient: Tensor, *, scale: Tensor | float, smoothing: float = 0.1
) -> Tensor:
    """Action-temporal matching: each text picks its clip over the reversed clip (2-way softmax).

    video, video_rev [B, L, d], text [B, d], salient [B] bool. Averaged over the salient rows only; exactly 0
    (with a zero gradient) when no row is salient.
    """
    logits = scale * torch.stack([pair_scores(video, text), pair_scores(video_rev, text)], dim=1)[salient]
    positives = torch.zeros_like(logits, dtype=torch.bool)
    positives[:, 0] = True
    return soft_cross_entropy(logits, positives, smoothing).sum() / max(len(logits), 1)


def mc_loss(
    video: Tensor,
    candidates: Tensor,
    answer: Tensor,
    *,
    scale: Tensor | float,
    smoothing: float = 0.1,
    extra: Tensor | None = None,
    extra_mask: Tensor | None = None,
) -> Tensor:
    """Multiple-choice cross-entropy of each clip over its own candidates, averaged over the batch.

    video [B, L, d], candidates [B, K, d] ("question answer" texts), answer [B] (index of the correct one).
    extra [B, E, d] (mc+vac: the candidates' action antonyms) are appended as negatives; extra_mask [B, E] bool
    (default all) keeps only the real ones, the rest are left out of the softmax (and of the smoothing). A score
    is the maximum over L of the dot products, times `scale`. Source: paper App. D.3 (DESIGN.md §9): 5-way,
    10-way with VAC.
    """
    texts, valid = candidates, torch.ones(candidates.shape[:2], dtype=torch.bool, device=candidates.device)
    if extra is not None:
        texts = torch.cat([candidates, extra], dim=1)
        mask = torch.ones(extra.shape[:2], dtype=torch.bool, device=extra.device) if extra_mask is None else extra_mask
        valid = torch.cat([valid, mask], dim=1)
    logits = scale * torch.einsum("bld,bkd->blk", video, texts).amax(dim=1)
    positives = torch.nn.functional.one_hot(answer.long(), texts.shape[1]).bool()
    return soft_cross_entropy(logits, positives, smoothing, valid).mean()


def _mc_objective(model: PatchedModel, batch: dict[str, Tensor], text_emb: Tensor, *, vac: bool, smoothing: float,
                  gather: Callable[[Tensor], Tensor]) -> tuple[Tensor, dict[str, float]]:
    """The mc / mc+vac loss of a batch (no ATM). An antonym whose text is one of the clip's candidates (the
    reversal of a wrong answer can be the right one) is left out: it would be the answer as a negative."""
    ids = batch["mc_idx"].long()
    video = gather(model.encode_video(batch))
    candidates = gather(model.encode_text(text_emb[ids.flatten()]).view(*ids.shape, -1))
    answer = gather(batch["mc_answer"].long())
    extra = extra_mask = None
    if vac:
        aa_ids = batch["mc_aa_idx"].long()
        extra = gather(model.encode_text(text_emb[aa_ids.clamp(min=0).flatten()]).view(*aa_ids.shape, -1))
        duplicate = (aa_ids[:, :, None] == ids[:, None, :]).any(dim=2)
        extra_mask = gather(((aa_ids >= 0) & ~duplicate).to(torch.uint8)).bool()
    loss = mc_loss(video, candidates, answer, scale=model.scale, smoothing=smoothing, extra=extra,
                   extra_mask=extra_mask)
    count = candidates.shape[1] * len(answer) + (0 if extra_mask is None else int(extra_mask.sum()))
    return loss, {"mc": loss.item(), "mc_candidates": count / len(answer), "loss": loss.item()}


def objective_loss(
    model: PatchedModel,
    batch: dict[str, Tensor],
    text_emb: Tensor,
    *,
    objective: str = "vtc+dvdm",
    text_key: str = "caption_idx",
    atm_weight: float = 0.4,
    vac: bool = True,
    use_saliency: bool = True,
    smoothing: float = 0.1,
    gather: Callable[[Tensor], Tensor] | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """The training loss of a batch: VTC (+VAC) + atm_weight * ATM for "vtc+dvdm", VTC alone for "vtc"; `mc_loss`
    over each clip's candidates for "mc", with the candidates' antonyms as extra negatives for "mc+vac" (no ATM).

    text_emb is the cache's whole text table [n_text, d] on the model's device; batch holds cache fields
    (tokens, pooled, `text_key`, aa_idx, salient, ...; mc_idx, mc_answer, mc_aa_idx for mc). `gather` all-gathers
    a tensor across data-parallel ranks with gradient; it is applied to features, ids and flags before the
    losses. Returns the loss and its parts {"vtc", "vac_candidates", "atm", "atm_clips", "loss"}; for mc {"mc",
    "mc_candidates" (the mean softmax width), "loss"}.
    """
    if objective not in OBJECTIVES:
        raise PaxionError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    if gather is None:
        gather = _identity
    if objective in MC_OBJECTIVES:
        return _mc_objective(model, batch, text_emb, vac=objective == "mc+vac", smoothing=smoothing, gather=gather)
    dvdm = objective == "vtc+dvdm"
    scale = model.scale
    text_ids = batch[text_key].long()
    video = gather(model.encode_video(batch))
    text = gather(model.encode_text(text_emb[text_ids]))
    text_ids = gather(text_ids)
    extra_text = extra_ids = None
    if dvdm and vac:
        aa_ids = batch["aa_idx"].long()
        extra_text = gather(model.encode_text(text_emb[aa_ids.clamp(min=0)]))
        extra_ids = gather(aa_ids)
    vtc = vtc_loss(video, text, text_ids, scale=scale, smoothing=smoothing, extra_text=extra_text,
                   extra_ids=extra_ids)
    candidates = len(text) + (0 if extra_ids is None else int((extra_ids >= 0).sum()))
    atm, atm_clips = torch.zeros((), device=vtc.device), 0
    if dvdm:
        salient = batch["salient"] if use_saliency else torch.ones_like(batch["salient"])
        salient = gather(salient.to(torch.uint8)).bool()
        video_rev = gather(model.encode_video(batch, reverse=True))
        atm = atm_loss(video, video_rev, text, salient, scale=scale, smoothing=smoothing)
        atm_clips = int(salient.sum())
    loss = vtc + atm_weight * atm
    parts = {"vtc": vtc.item(), "vac_candidates": float(candidates), "atm": atm.item(),
             "atm_clips": float(atm_clips), "loss": loss.item()}
    return loss, parts


def _identity(tensor: Tensor) -> Tensor:
    """The tensor itself (no data parallelism)."""
    return tensor
