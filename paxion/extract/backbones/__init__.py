"""Frozen video-language backbones behind one interface: the built-in toy model, HF CLIP and X-CLIP, plug-ins.

`load_backbone(spec, *, device)` finds a backbone by name through `registry` (built-ins and the
`paxion.backbones` entry points); `base.Backbone` is the interface every adapter implements.
"""

from __future__ import annotations

from paxion.errors import BackboneError
from paxion.extract.backbones.base import Backbone, VideoFeatures
from paxion.extract.backbones.registry import ENTRY_POINT_GROUP, BackboneEntry, backbone_entries, load_backbone

__all__ = [
    "ENTRY_POINT_GROUP", "Backbone", "BackboneEntry", "BackboneError", "VideoFeatures", "backbone_entries",
    "load_backbone",
]
