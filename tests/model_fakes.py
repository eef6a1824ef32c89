"""A patched model for tests: the paper preset's options, changed where a test needs it."""

from __future__ import annotations

from paxion.models.patched import PatchedModel, build_model
from paxion.trainer.config import TrainConfig


def make_model(kind: str, *, backbone: dict, frames: int, **changes) -> PatchedModel:
    """A new `kind` model for `backbone` built from `TrainConfig.paper(model=kind, **changes)`."""
    return build_model(TrainConfig.paper(model=kind, **changes).to_dict(), backbone=backbone, frames=frames)
