"""Reproduce the shipped toy backbone: CLIP-style contrastive training on a built-in world's train split.

The shipped `toy_weights.pt` was made with:

    paxion synth --out world-1234 --train 4000 --val 400 --seed 1234
    paxion backbone train-toy --world world-1234 --out paxion/extract/backbones/toy_weights.pt \
        --epochs 20 --seed 0

(a world seed other than the demo's default 0, so the demo's clips were never seen in training). The
training times and the weights' measured quality (object replacement accuracy, time-blindness, the largest
caption/reversal cosine) on a GPU and on the CPU are in BENCHMARKS.md ("Toy backbone").
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from paxion.atomic import ensure_dir
from paxion.errors import AnnotationError, VideoDecodeError
from paxion.extract.backbones.base import resize_normalise
from paxion.extract.backbones.toy import ToyBackbone, ToyModel
from paxion.synth.actions import ACTION_INDEX, ACTIONS, OBJECTS, fill_template, template_caption

# progress(phase, done, total): phase is "decode" or "train".
Progress = Callable[[str, int, int], None]

NUM_FRAMES = 8
VIDEO_SUFFIXES = (".webm", ".mp4")


@dataclass
class WorldClips:
    """A split of a world decoded into memory: frames uint8 [n, T, H, W, 3] and the annotation fields."""

    frames: np.ndarray
    captions: list[str]
    templates: list[str]
    placeholders: list[list[str]]

    @property
    def template_captions(self) -> list[str]:
        """The object-hidden caption of each clip ("Pushing something from left to right")."""
        return [template_caption(t) for t in self.templates]


def _video_path(videos: Path, clip_id: str) -> Path:
    for suffix in VIDEO_SUFFIXES:
        path = videos / f"{clip_id}{suffix}"
        if path.is_file():
            return path
    raise VideoDecodeError(videos / f"{clip_id}.webm", "no .webm or .mp4 file for this clip id")


def load_world_split(world: str | Path, split: str, *, progress: Progress | None = None) -> WorldClips:
    """Decode every clip of `world/annotations/{split}.json` (8 frames each) into memory."""
    from paxion.extract.video import read_frames

    root = Path(world)
    ann_path = root / "annotations" / f"{split}.json"
    try:
        records = json.loads(ann_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise AnnotationError(ann_path, f"cannot read annotations: {exc}") from exc
    if not isinstance(records, list) or not records:
        raise AnnotationError(ann_path, "expected a non-empty JSON list of clips")
    frames, captions, templates, placeholders = [], [], [], []
    for i, rec in enumerate(records):
        try:
            clip_id, label, template = str(rec["id"]), rec["label"], rec["template"]
        except (KeyError, TypeError) as exc:
            raise AnnotationError(ann_path, f"clip {i} lacks id/label/template") from exc
        frames.append(read_frames(_video_path(root / "videos", clip_id), num_frames=NUM_FRAMES))
        captions.append(label)
        templates.append(template)
        placeholders.append(list(rec.get("placeholders", [])))
        if progress:
            progress("decode", i + 1, len(records))
    return WorldClips(np.stack(frames), captions, templates, placeholders)


def contrastive_loss(
    video: torch.Tensor, text: torch.Tensor, positive: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """Symmetric InfoNCE where `positive` [B, U] marks every matching (video, text) pair as a target."""
    logits = scale * F.normalize(video, dim=-1) @ F.normalize(text, dim=-1).T
    target = positive.float()
    v2t = -(target / target.sum(1, keepdim=True) * logits.log_softmax(1)).sum(1).mean()
    t2v = -(target / target.sum(0, keepdim=True) * logits.log_softmax(0)).sum(0).mean()
    return (v2t + t2v) / 2


@dataclass
class BatchTexts:
    """A batch's distinct texts, which clips each describes, and each text's reversal-partner text.

    texts: the batch's own texts first, then partner texts not already among them.
    positive: [B, n_own] whether each own text describes each clip.
    pairs: [P, 2] indices into `texts` of (text, the same text with the reversed action).
    """

    texts: list[str]
    positive: torch.Tensor
    pairs: torch.Tensor


def _batch_texts(idx: np.ndarray, clips: WorldClips, *, template_prob: float, rng: random.Random) -> BatchTexts:
    """The batch's texts (captions, some replaced by their template) with their targets and partner texts."""
    hidden = [template_caption(clips.templates[i]) for i in idx]
    use_template = [rng.random() < template_prob for _ in idx]
    chosen = [h if t else clips.captions[i] for i, h, t in zip(idx, hidden, use_template)]
    own = sorted(set(chosen))
    positive = torch.tensor([[t in (clips.captions[i], h) for t in own] for i, h in zip(idx, hidden)], dtype=torch.bool)
    partner_of = {}
    for i, text, templated in zip(idx, chosen, use_template):
        partner = ACTIONS[ACTION_INDEX[clips.templates[i]]].partner
        if partner is not None:
            partner_of[text] = template_caption(partner) if templated else fill_template(partner, clips.placeholders[i])
    texts = own + sorted(set(partner_of.values()) - set(own))
    where = {t: k for k, t in enumerate(texts)}
    pairs = torch.tensor([[where[a], where[b]] for a, b in sorted(partner_of.items())], dtype=torch.long)
    return BatchTexts(texts, positive, pairs.view(-1, 2))


def antonym_hinge(text: torch.Tensor, pairs: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean of relu(cos(text, partner) - margin) over the (text, reversal partner) pairs; 0 when there are none."""
    if not len(pairs):
        return text.new_zeros(())
    unit = F.normalize(text, dim=-1)
    return F.relu((unit[pairs[:, 0]] * unit[pairs[:, 1]]).sum(-1) - margin).mean()


def train_toy_model(
    clips: WorldClips,
    *,
    epochs: int = 20,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.05,
    template_prob: float = 0.2,
    antonym_margin: float = 0.95,
    antonym_weight: float = 4.0,
    frames_per_step: int = 4,
    seed: int = 0,
    device: str = "cpu",
    progress: Progress | None = None,
) -> tuple[ToyModel, list[float]]:
    """Train a fresh toy model on decoded clips; returns it (in eval mode) and the mean loss of each epoch.

    Each step sees `frames_per_step` random frames of every clip: the pooled embedding is a time-mean, so a
    subset of frames is an unbiased, cheaper view of the clip. A hinge (`antonym_weight`) pushes each text
    below cosine `antonym_margin` with its reversal partner's text: with time-blind videos the contrastive loss
    alone pulls "from left to right" and "from right to left" onto one vector, and then no patcher can tell a
    clip from its reversal. The margin 0.95 keeps such pairs apart but close: a patcher trained with VTC alone
    then gains little from learning time, as the paper finds for real backbones, while DVDM's antonym and
    reversal contrasts still must learn it (at margin 0.5, VTC alone learned time as well as DVDM).
    """
    torch.manual_seed(seed)
    rng = random.Random(seed)
    gen = np.random.default_rng(seed)
    model = ToyModel().to(device)
    cfg = model.config
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    n = len(clips.captions)
    steps_per_epoch = max(1, n // batch_size)
    total = epochs * steps_per_epoch
    warmup = max(1, total // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
    )
    history = []
    model.train()
    for epoch in range(epochs):
        order = gen.permutation(n)
        losses = []
        for step in range(steps_per_epoch):
            idx = np.sort(order[step * batch_size : (step + 1) * batch_size])
            frame_idx = np.sort(gen.choice(clips.frames.shape[1], size=frames_per_step, replace=False))
            pixels = resize_normalise(
                clips.frames[idx][:, frame_idx], size=cfg.image_size, mean=cfg.mean, std=cfg.std, device=device
            )
            batch = _batch_texts(idx, clips, template_prob=template_prob, rng=rng)
            video = model.encode_video(pixels).pooled
            text = model.encode_text(batch.texts)
            own = text[: batch.positive.shape[1]]
            loss = contrastive_loss(video, own, batch.positive.to(device), model.logit_scale.exp())
            loss = loss + antonym_weight * antonym_hinge(text, batch.pairs.to(device), antonym_margin)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
            losses.append(loss.item())
            if progress:
                progress("train", epoch * steps_per_epoch + step + 1, total)
        history.append(float(np.mean(losses)))
    return model.eval(), history


def object_replacement_caption(template: str, placeholders: list[str], rng: random.Random) -> str:
    """The clip's caption with its first object swapped for a different object of the world."""
    other = rng.choice([o for o in OBJECTS if o != placeholders[0]])
    return fill_template(template, [other, *placeholders[1:]])


@torch.inference_mode()
def check_toy(backbone: ToyBackbone, clips: WorldClips, *, seed: int = 0, batch_size: int = 64) -> dict[str, float]:
    """Object-replacement accuracy (caption vs the caption with another object; ties 0.5) and time-blindness.

    `time_blind` is the fraction of clips whose pooled embedding is bit-identical for the reversed clip;
    `antonym_text_cos` is the largest cosine between a template caption and its reversal partner's.
    """
    rng = random.Random(seed)
    negatives = [object_replacement_caption(t, p, rng) for t, p in zip(clips.templates, clips.placeholders)]
    pos = F.normalize(backbone.encode_text(clips.captions), dim=-1)
    neg = F.normalize(backbone.encode_text(negatives), dim=-1)
    correct, blind = 0.0, 0
    for start in range(0, len(clips.captions), batch_size):
        pixels = backbone.preprocess(clips.frames[start : start + batch_size])
        pooled = backbone.encode_video(pixels).pooled
        blind += int(torch.all(pooled == backbone.encode_video(pixels.flip(1)).pooled, dim=1).sum())
        v = F.normalize(pooled, dim=-1)
        s_pos = (v * pos[start : start + len(v)]).sum(-1)
        s_neg = (v * neg[start : start + len(v)]).sum(-1)
        correct += float((s_pos > s_neg).sum() + 0.5 * (s_pos == s_neg).sum())
    n = len(clips.captions)
    return {"or_accuracy": correct / n, "time_blind": blind / n, "antonym_text_cos": _antonym_cos(backbone), "clips": n}


def _antonym_cos(backbone: ToyBackbone) -> float:
    pairs = [(template_caption(a.template), template_caption(a.partner)) for a in ACTIONS if a.partner]
    first = F.normalize(backbone.encode_text([p[0] for p in pairs]), dim=-1)
    second = F.normalize(backbone.encode_text([p[1] for p in pairs]), dim=-1)
    return float((first * second).sum(-1).max())


def train_toy(
    world: str | Path,
    out: str | Path,
    *,
    epochs: int = 20,
    seed: int = 0,
    device: str = "cpu",
    progress: Progress | None = None,
) -> dict:
    """Train the toy backbone on `world`'s train split, save it to `out`, and check it on the validation split."""
    ensure_dir(Path(out).parent)
    start = time.perf_counter()
    clips = load_world_split(world, "train", progress=progress)
    decoded = time.perf_counter()
    model, history = train_toy_model(clips, epochs=epochs, seed=seed, device=device, progress=progress)
    trained = time.perf_counter()
    summary = {
        "world": str(world),
        "train_clips": len(clips.captions),
        "epochs": epochs,
        "seed": seed,
        "device": device,
        "loss": history,
        "decode_s": round(decoded - start, 1),
        "train_s": round(trained - decoded, 1),
    }
    model.cpu().save(out, provenance=summary)
    if (Path(world) / "annotations" / "validation.json").is_file():
        val = load_world_split(world, "validation", progress=progress)
        summary["validation"] = check_toy(ToyBackbone(model=model), val, seed=seed)
    return summary
