"""Drawing primitives for the built-in world: shape distance fields, anti-aliased painting, backgrounds."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

# Saturated object colours (RGB) so objects stand out from the desaturated clutter behind them.
COLOUR_RGB: dict[str, tuple[float, float, float]] = {
    "red": (225.0, 35.0, 35.0),
    "green": (40.0, 200.0, 60.0),
    "blue": (45.0, 85.0, 235.0),
    "yellow": (240.0, 220.0, 30.0),
    "purple": (160.0, 55.0, 210.0),
    # The domain-shifted world's colours: hues between or beside the ones above. The toy backbone learnt
    # its five colours so narrowly that farther ones (orange, teal, gold, white) leave it near chance.
    "lime": (165.0, 240.0, 40.0),
    "violet": (120.0, 40.0, 230.0),
    "crimson": (200.0, 20.0, 60.0),
    "magenta": (225.0, 30.0, 200.0),
    "azure": (40.0, 130.0, 250.0),
}


@lru_cache(maxsize=8)
def pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates of the centres of a size x size canvas, float32."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return ys, xs


def _disc(dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    return np.sqrt(dx * dx + dy * dy) - r


def _square(dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    half = 0.85 * r  # a square as wide as the disc looks heavier; shrink it to a similar area
    qx, qy = np.abs(dx) - half, np.abs(dy) - half
    outside = np.sqrt(np.maximum(qx, 0.0) ** 2 + np.maximum(qy, 0.0) ** 2)
    return outside + np.minimum(np.maximum(qx, qy), 0.0)


def _triangle(dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    # Exact distance to an upward equilateral triangle of circumradius 1.15 r (Quilez's formula, y up).
    k = math.sqrt(3.0)
    half_side = 1.15 * r * k / 2.0
    px = np.abs(dx) - half_side
    py = -dy + half_side / k
    fold = px + k * py > 0.0
    px, py = np.where(fold, (px - k * py) / 2.0, px), np.where(fold, (-k * px - py) / 2.0, py)
    px = px - np.clip(px, -2.0 * half_side, 0.0)
    return -np.sqrt(px * px + py * py) * np.sign(py)


def _ring(dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    return np.abs(np.sqrt(dx * dx + dy * dy) - 0.7 * r) - 0.3 * r


# The shifted world's shapes cover about as many pixels as the disc (pi r^2) so the toy backbone sees them alike.
def _diamond(dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    return (np.abs(dx) + np.abs(dy) - 1.2 * r) / math.sqrt(2.0)


def _cross(dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    ax, ay = np.abs(dx), np.abs(dy)
    arm, half = 1.0 * r, 0.5 * r
    return np.minimum(np.maximum(ax - arm, ay - half), np.maximum(ax - half, ay - arm))


def _hexagon(dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    # Largest distance along the three edge normals minus the apothem: exact inside, a slight underestimate
    # beyond the corners, which only softens the anti-aliasing there.
    normals = [(math.cos(a), math.sin(a)) for a in (0.0, math.pi / 3.0, 2.0 * math.pi / 3.0)]
    return np.maximum.reduce([np.abs(dx * cx + dy * cy) for cx, cy in normals]) - 0.93 * r


def _star(dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    # A five-pointed star with rounded points, one pointing up (image y grows downwards): radial distance.
    angle = np.arctan2(dy, dx) + math.pi / 2.0
    return np.sqrt(dx * dx + dy * dy) - r * (0.9 + 0.4 * np.cos(5.0 * angle))


SHAPE_SDF = {"ball": _disc, "box": _square, "triangle": _triangle, "ring": _ring,
             "star": _star, "diamond": _diamond, "cross": _cross, "hexagon": _hexagon}


def shape_distance(shape: str, size: int, cx: float, cy: float, r: float) -> np.ndarray:
    """Signed distance in pixels to a shape of radius r centred at (cx, cy); negative inside."""
    ys, xs = pixel_grid(size)
    return SHAPE_SDF[shape](xs - cx, ys - cy, r)


def rect_distance(size: int, cx: float, cy: float, half_w: float, half_h: float) -> np.ndarray:
    """Signed distance in pixels to an axis-aligned rectangle (Chebyshev approximation)."""
    ys, xs = pixel_grid(size)
    return np.maximum(np.abs(xs - cx) - half_w, np.abs(ys - cy) - half_h)


def coverage(distance: np.ndarray) -> np.ndarray:
    """Anti-aliased pixel coverage in [0, 1] of the region where `distance` < 0."""
    return np.clip(0.5 - distance, 0.0, 1.0)


def paint(canvas: np.ndarray, alpha: np.ndarray, colour: tuple[float, float, float] | np.ndarray) -> None:
    """Blend `colour` over the float canvas [H, W, 3] in place with per-pixel `alpha` [H, W]."""
    rows, cols = np.flatnonzero(alpha.any(axis=1)), np.flatnonzero(alpha.any(axis=0))
    if rows.size == 0:
        return
    box = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)  # objects are small: blend only their box
    canvas[box] += alpha[box][..., None] * (np.asarray(colour, dtype=np.float32) - canvas[box])


def object_colour(name: str) -> tuple[float, float, float]:
    """RGB of an object ("red ball" -> red)."""
    return COLOUR_RGB[name.split()[0]]


def object_shape(name: str) -> str:
    """Shape of an object ("red ball" -> ball)."""
    return name.split()[1]


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A cluttered, low-contrast, desaturated background [size, size, 3] float32, different per call."""
    ys, xs = pixel_grid(size)
    base = rng.uniform(70.0, 150.0) + rng.uniform(-12.0, 12.0, size=3)
    canvas = np.broadcast_to(base.astype(np.float32), (size, size, 3)).copy()
    for _ in range(2):  # soft gratings give texture without per-pixel noise the codec would struggle with
        angle, period, amp = rng.uniform(0, np.pi), rng.uniform(6.0, 24.0), rng.uniform(3.0, 8.0)
        wave = np.sin((xs * np.cos(angle) + ys * np.sin(angle)) * (2 * np.pi / period) + rng.uniform(0, 2 * np.pi))
        canvas += (amp * wave)[..., None]
    for _ in range(int(rng.integers(6, 15))):
        shade = base + rng.uniform(-35.0, 35.0) + rng.uniform(-8.0, 8.0, size=3)
        cx, cy = rng.uniform(0, size, size=2)
        if rng.random() < 0.5:
            dist = rect_distance(size, cx, cy, *rng.uniform(3.0, 16.0, size=2))
        else:
            rx, ry = rng.uniform(3.0, 12.0, size=2)
            dist = (np.sqrt(((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2) - 1.0) * min(rx, ry)
        paint(canvas, coverage(dist) * rng.uniform(0.5, 1.0), shade)
    return canvas


def tiled_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """The shifted world's background [size, size, 3] float32: a tinted gradient, a checkerboard, soft discs.

    Unlike `background` (desaturated clutter on one base colour), it mixes two tints, has hard-edged
    regular tiles and a few large blurred discs: another texture for the same moderate contrast.
    """
    ys, xs = pixel_grid(size)
    tints = rng.uniform(45.0, 160.0, size=(2, 1)) + rng.uniform(-25.0, 25.0, size=(2, 3))
    angle = rng.uniform(0.0, 2.0 * np.pi)
    ramp = xs * np.cos(angle) + ys * np.sin(angle)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    canvas = (tints[0] + ramp[..., None] * (tints[1] - tints[0])).astype(np.float32)
    cell = int(rng.integers(6, 14))
    checker = ((xs // cell + ys // cell) % 2) * 2.0 - 1.0
    canvas += (rng.uniform(4.0, 10.0) * checker)[..., None]
    for _ in range(int(rng.integers(3, 7))):
        cx, cy = rng.uniform(0, size, size=2)
        radius = rng.uniform(6.0, 20.0)
        dist = np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2) - radius
        soft = np.clip(0.5 - dist / 6.0, 0.0, 1.0) * rng.uniform(0.4, 0.8)
        paint(canvas, soft, canvas.mean(axis=(0, 1)) + rng.uniform(-30.0, 30.0, size=3))
    return canvas


BACKGROUNDS = {"clutter": background, "tiles": tiled_background}
