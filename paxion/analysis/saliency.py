"""The share of clips the state-change saliency filter keeps (paper App. C, Figure 7), for the report."""

from __future__ import annotations

import numpy as np


def saliency_summary(cache, split: str = "validation", *, examples: int = 3, seed: int = 0) -> dict:
    """{"split", "kept", "total", "thresholds": {"delta_vt", "theta_vv"}, "examples": {"kept": [...], "skipped":
    [...]}} of a cache split; each example is {"clip", "delta_vt", "theta_vv"}, up to `examples` of each kind
    drawn with `seed` (default 3, seed 0). This is the format `paxion.analysis.html` reads as report["saliency"].
    Raises CacheError (from the reader) when the split or its saliency fields are missing.
    """
    fields = cache.read_split(split, ["id", "salient", "delta_vt", "theta_vv"])
    salient = np.asarray(fields["salient"], dtype=bool)
    rng = np.random.default_rng(seed)

    def pick(mask: np.ndarray) -> list[dict]:
        rows = np.flatnonzero(mask)
        chosen = np.sort(rng.choice(rows, size=min(examples, len(rows)), replace=False)) if len(rows) else rows
        return [{"clip": str(fields["id"][i]), "delta_vt": float(fields["delta_vt"][i]),
                 "theta_vv": float(fields["theta_vv"][i])} for i in chosen]

    return {
        "split": split,
        "kept": int(salient.sum()),
        "total": len(salient),
        "thresholds": {k: v for k, v in cache.manifest.get("saliency", {}).items() if k in ("delta_vt", "theta_vv")},
        "examples": {"kept": pick(salient), "skipped": pick(~salient)},
    }
