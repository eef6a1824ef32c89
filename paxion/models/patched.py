"""The patched model (a trainable head on cached backbone features) and its file format."""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paxion.atomic import save_torch
from paxion.errors import PaxionError, first_line
from paxion.models.layers import KnowledgeFuser, KPPerceiver, KPTransformer, SideTuning

MODEL_KINDS = ("kp-perceiver", "kp-transformer", "paxion", "side-tuning")
# The options each patcher class takes; a saved run's config holds them under these names.
PERCEIVER_OPTIONS = ("num_latents", "heads", "dim_head", "ff_mult", "time_pos_emb", "token_pos_emb", "embedding_std",
                     "time_pos_dropout")
TRANSFORMER_OPTIONS = ("heads", "ff_mult", "time_pos_emb", "embedding_std", "time_pos_dropout")
MAX_SCALE = 100.0
MODEL_FORMAT = 2


def patcher_option_names(kind: str) -> tuple[str, ...]:
    """The patcher options a model of `kind` is built from; PaxionError for an unknown kind."""
    if kind not in MODEL_KINDS:
        raise PaxionError(f"unknown model kind {kind!r}; choose one of {', '.join(MODEL_KINDS)}")
    return TRANSFORMER_OPTIONS if kind == "kp-transformer" else PERCEIVER_OPTIONS


class PatchedModel(nn.Module):
    """A trainable head on cached backbone features: a Knowledge Patcher, optionally fused with the backbone.

    Args (keyword-only):
        kind: one of MODEL_KINDS ("paxion" = KP-Perceiver + Knowledge Fuser, "side-tuning" = KP-Perceiver +
            Side-Tuning).
        backbone: the cache manifest's backbone entry (token_dim, embed_dim, tokens_per_frame, temporal, ...).
        frames: frames per clip.
        options: every patcher option of `patcher_option_names(kind)`, none left to the class defaults.

    Raises PaxionError for an unknown kind or missing / unknown options.
    """

    def __init__(self, *, kind: str, backbone: dict, frames: int, options: dict) -> None:
        super().__init__()
        names = patcher_option_names(kind)
        if set(options) != set(names):
            raise PaxionError(f"a {kind} model needs exactly the options {', '.join(names)}, got {', '.join(options)}")
        self.kind = kind
        self.backbone = dict(backbone)
        self.frames = frames
        self.options = dict(options)
        self.temporal = bool(backbone["temporal"])
        dim = backbone["embed_dim"]
        patcher_class = KPTransformer if kind == "kp-transformer" else KPPerceiver
        self.kp = patcher_class(token_dim=backbone["token_dim"], dim=dim, frames=frames,
                                tokens_per_frame=backbone["tokens_per_frame"], **options)
        if kind == "paxion":
            self.fuser = KnowledgeFuser(dim=dim)
        elif kind == "side-tuning":
            self.fuser = SideTuning()
        else:
            self.fuser = None
        # Learnable log inverse temperature, initialised at temperature 0.07 (DESIGN.md §5).
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def patcher(self) -> KPPerceiver | KPTransformer:
        """The Knowledge Patcher part (copied by `--init` from a trained run)."""
        return self.kp

    @property
    def scale(self) -> Tensor:
        """The linear inverse temperature exp(logit_scale), clamped at MAX_SCALE."""
        return self.logit_scale.exp().clamp(max=MAX_SCALE)

    def video_fields(self, *, reverse: bool = False) -> tuple[str, ...]:
        """The cache fields encode_video reads."""
        suffix = "_rev" if reverse and self.temporal else ""
        return (f"tokens{suffix}", f"pooled{suffix}") if self.fuser is not None else (f"tokens{suffix}",)

    def encode_video(self, batch: dict[str, Tensor], *, reverse: bool = False) -> Tensor:
        """Clips of a batch (reversed in time when asked) as L2-normalised vectors [B, L, d]."""
        if not reverse:
            tokens, pooled = batch["tokens"], batch.get("pooled")
        elif self.temporal:
            tokens, pooled = batch["tokens_rev"], batch.get("pooled_rev")
        else:
            tokens, pooled = batch["tokens"].flip(1), batch.get("pooled")
        out = self.kp(tokens.float())
        if self.fuser is not None:
            out = self.fuser(pooled.float(), out)
        return F.normalize(out, dim=-1)

    def encode_text(self, text_emb: Tensor) -> Tensor:
        """Backbone text embeddings [n, d] L2-normalised."""
        return F.normalize(text_emb.float(), dim=-1)


def build_model(config: Mapping[str, Any], *, backbone: dict, frames: int) -> PatchedModel:
    """A new model as a training config (a TrainConfig as a dict) describes it: kind `model`, patcher options."""
    kind = config["model"]
    return PatchedModel(kind=kind, backbone=backbone, frames=frames,
                        options={name: config[name] for name in patcher_option_names(kind)})


def save_model(model: PatchedModel, path: str | Path, *, config: dict) -> None:
    """Write the model with the whole training config it was built from (a TrainConfig as a dict) to `path`."""
    save_torch(path, {"format": MODEL_FORMAT, "config": config, "backbone": model.backbone, "frames": model.frames,
                      "state_dict": model.state_dict()})


def load_model(path: str | Path, *, map_location: str | torch.device = "cpu") -> tuple[PatchedModel, dict]:
    """The model written by save_model, rebuilt from its saved training config, and that config.

    Raises PaxionError for a missing or unreadable file, and for a file saved before runs kept their config.
    """
    path = Path(path)
    if not path.is_file():
        raise PaxionError(f"{path}: no such model file")
    try:
        saved = torch.load(path, map_location=map_location, weights_only=True)
        if saved.get("format") != MODEL_FORMAT:
            raise PaxionError(f"{path}: written by an older paxion that did not save the training config; retrain it")
        model = build_model(saved["config"], backbone=saved["backbone"], frames=saved["frames"])
        model.load_state_dict(saved["state_dict"])
    except pickle.UnpicklingError:  # torch's message is a paragraph on weights_only
        raise PaxionError(f"{path}: not a paxion model file (not a torch file of tensors)") from None
    except (RuntimeError, KeyError, TypeError, AttributeError, EOFError) as exc:
        raise PaxionError(f"{path}: not a paxion model file ({first_line(exc)})") from exc
    return model.to(map_location), saved["config"]


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters of a module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def format_parameters(count: int, backbone_params: int | None = None) -> str:
    """A parameter count as "4.2M (0.9%)", the share being of the backbone's size when known."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= size:
            text = f"{count / size:.1f}{suffix}"
            break
    else:
        text = str(count)
    if backbone_params:
        text += f" ({100 * count / backbone_params:.1f}%)"
    return text
