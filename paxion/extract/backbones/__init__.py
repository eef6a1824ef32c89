"""Frozen video-language backbones behind one interface: the built-in toy model, HF CLIP and X-CLIP."""

from __future__ import annotations

import torch

from paxion.errors import BackboneError
from paxion.extract.backbones.base import Backbone, VideoFeatures

SPECS = ("toy", "hf-clip:NAME_OR_PATH", "hf-xclip:NAME_OR_PATH")


def load_backbone(spec: str, *, device: str | torch.device = "cpu") -> Backbone:
    """Load a frozen backbone by spec: `toy`, `hf-clip:NAME_OR_PATH` or `hf-xclip:NAME_OR_PATH`."""
    kind, _, target = spec.partition(":")
    if kind == "toy" and not target:
        from paxion.extract.backbones.toy import load_toy

        return load_toy(device=device)
    if kind in ("hf-clip", "hf-xclip") and target:
        from paxion.extract.backbones.hf_common import load_hf

        return load_hf(kind, target, device=device)
    raise BackboneError(f"unknown backbone {spec!r}; expected one of: {', '.join(SPECS)}")


__all__ = ["Backbone", "BackboneError", "VideoFeatures", "load_backbone"]
