"""Confidence intervals for the accuracies the package reports."""

from __future__ import annotations

import math

Z_95 = 1.96
# Two scores within this much of each other are a tie: half credit for a pair, 1/m among m tied candidates.
TIE_TOLERANCE = 1e-6


def wilson_interval(correct: float, n: int, *, z: float = Z_95) -> list[float]:
    """Wilson score interval [lo, hi] in percent for `correct` successes out of n > 0 (z = 1.96: 95%)."""
    p = correct / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return [100 * max(centre - half, 0.0), 100 * min(centre + half, 1.0)]
