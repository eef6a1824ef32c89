"""Where backbones come from: the built-in adapters by name, others through the `paxion.backbones` entry points.

A spec is `NAME` or `NAME:ARGS`, split at the first colon. A package adds a backbone by declaring a factory in
its pyproject.toml (the Python packaging entry-points specification):

    [project.entry-points."paxion.backbones"]
    internvideo = "paxion_internvideo:load"

`load(args, *, device)` gets what follows `NAME:` (None for a bare `NAME`) and returns a frozen
`paxion.extract.backbones.base.Backbone`. Built-in names win over plug-ins of the same name, and an earlier
plug-in over a later one. This module imports the adapters; the adapters never import it or each other.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

import torch

from paxion.errors import BackboneError
from paxion.extract.backbones.base import Backbone

ENTRY_POINT_GROUP = "paxion.backbones"

BackboneFactory = Callable[..., Backbone]  # factory(args: str | None, *, device: torch.device | str) -> Backbone


@dataclass(frozen=True)
class BackboneEntry:
    """A backbone `load_backbone` can find.

    source: "built-in" or the distribution that registers it ("NAME VERSION"). target: where its adapter or
    factory lives ("package.module:attr"). usage: the spec to write. temporal: whether its frames see each
    other; None for plug-ins (known once loaded). shadowed: an earlier entry has the same name, so this one is
    never used.
    """

    name: str
    source: str
    target: str
    usage: str
    temporal: bool | None
    factory: BackboneFactory | None = None  # built-ins; a plug-in's factory is imported from target when used
    shadowed: bool = False

    def load(self, args: str | None, *, device: torch.device | str) -> Backbone:
        """Build the backbone; BackboneError when the factory cannot be imported or returns no Backbone."""
        factory = self.factory
        if factory is None:
            try:
                factory = EntryPoint(self.name, self.target, ENTRY_POINT_GROUP).load()
            except (ImportError, AttributeError) as exc:
                raise BackboneError(f"backbone {self.name} ({self.source}): cannot import {self.target} "
                                    f"({type(exc).__name__}: {exc})") from None
        backbone = factory(args, device=device)
        if not isinstance(backbone, Backbone):
            raise BackboneError(f"backbone {self.name}: {self.target} returned a {type(backbone).__name__}, "
                                "not a paxion Backbone")
        return backbone


def _toy(args: str | None, *, device: torch.device | str) -> Backbone:
    from paxion.extract.backbones.toy import load_toy

    if args is not None:
        raise BackboneError(f"backbone toy takes no arguments, got 'toy:{args}'")
    return load_toy(device=device)


def _hugging_face(kind: str, target: str) -> BackboneFactory:
    """The factory of a Hugging Face adapter class at `target`: ARGS is a local folder or a cached model name."""
    module, _, attr = target.partition(":")

    def factory(args: str | None, *, device: torch.device | str) -> Backbone:
        if not args:
            raise BackboneError(f"backbone {kind} needs a model: {kind}:NAME_OR_PATH (a local folder or a model "
                                "in the Hugging Face cache)")
        try:
            adapter = getattr(importlib.import_module(module), attr)
        except ImportError as exc:
            raise BackboneError(f"{kind} needs transformers: pip install 'paxion[hf]' ({exc})") from None
        return adapter.load(args, device=device)

    return factory


_HF_CLIP = "paxion.extract.backbones.hf_clip:HFClipBackbone"
_HF_XCLIP = "paxion.extract.backbones.hf_xclip:HFXClipBackbone"
_HF_BLIP = "paxion.extract.backbones.hf_blip:HFBlipBackbone"
_HF_SIGLIP = "paxion.extract.backbones.hf_siglip:HFSiglipBackbone"
BUILTIN: tuple[BackboneEntry, ...] = (
    BackboneEntry("toy", "built-in", "paxion.extract.backbones.toy:ToyBackbone", "toy", False, _toy),
    BackboneEntry("hf-clip", "built-in", _HF_CLIP, "hf-clip:NAME_OR_PATH", False, _hugging_face("hf-clip", _HF_CLIP)),
    BackboneEntry("hf-xclip", "built-in", _HF_XCLIP, "hf-xclip:NAME_OR_PATH", True,
                  _hugging_face("hf-xclip", _HF_XCLIP)),
    BackboneEntry("hf-blip", "built-in", _HF_BLIP, "hf-blip:NAME_OR_PATH", False, _hugging_face("hf-blip", _HF_BLIP)),
    BackboneEntry("hf-siglip", "built-in", _HF_SIGLIP, "hf-siglip:NAME_OR_PATH", False,
                  _hugging_face("hf-siglip", _HF_SIGLIP)),
)


def backbone_entries() -> list[BackboneEntry]:
    """Every backbone installed: the built-in ones, then the `paxion.backbones` entry points in discovery order."""
    entries = list(BUILTIN)
    seen = {entry.name for entry in entries}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        dist = point.dist
        source = f"{dist.name} {dist.version}" if dist is not None else "unknown distribution"
        entries.append(BackboneEntry(point.name, source, point.value, f"{point.name}[:ARGS]", None,
                                     shadowed=point.name in seen))
        seen.add(point.name)
    return entries


def parse_spec(spec: str) -> tuple[str, str | None]:
    """Split `NAME` or `NAME:ARGS` at the first colon: (name, args), args None when there is no colon."""
    name, colon, args = spec.partition(":")
    return name, args if colon else None


def load_backbone(spec: str, *, device: str | torch.device = "cpu") -> Backbone:
    """Load a frozen backbone by spec `NAME` or `NAME:ARGS` (`toy`, `hf-clip:NAME_OR_PATH`, a plug-in's name).

    Raises BackboneError for an unknown name (listing the known ones), bad arguments or missing weights.
    """
    name, args = parse_spec(spec)
    entries = [entry for entry in backbone_entries() if not entry.shadowed]
    for entry in entries:
        if entry.name == name:
            return entry.load(args, device=device)
    known = ", ".join(entry.usage for entry in entries)
    raise BackboneError(f"unknown backbone {spec!r}; known: {known} (`paxion backbones` lists them)")
