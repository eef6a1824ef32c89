"""Render one action clip of the built-in world from its parameters: uint8 frames [F, H, W, 3]."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from paxion.synth.actions import ACTION_INDEX, ACTIONS, OBJECTS, SHIFT_OBJECTS, Action
from paxion.synth.draw import BACKGROUNDS, coverage, object_colour, object_shape, paint, rect_distance, shape_distance

FRAMES = 16
IMAGE_SIZE = 64
JITTER = 2  # camera shake in pixels, well below every motion's travel
SHAKE_PERIODS = 2  # full periods per clip, so each half of a shaking clip holds a whole period
LIQUID = (240.0, 240.0, 240.0)
INSIDE = (28.0, 24.0, 24.0)


@dataclass(frozen=True)
class Domain:
    """The look of a world: the objects it draws and its background painter (a key of `draw.BACKGROUNDS`).

    stream: extra key of every clip's random generator, so two domains with one seed draw unrelated clips
    (empty for the built-in world, whose clips must stay as they were).
    """

    name: str
    objects: tuple[str, ...]
    scene: str
    stream: tuple[int, ...] = ()


BUILT_IN = Domain("built-in", OBJECTS, "clutter")
# Table 4's analog: other colours, shapes and backgrounds; the same actions, sizes and motions.
SHIFTED = Domain("shifted", SHIFT_OBJECTS, "tiles", stream=(1,))


@dataclass(frozen=True)
class ClipParams:
    """Everything that decides one clip; a clip and its reversal partner share one ClipParams.

    objects: the object names, one per `[something]`.
    seed: seeds the background clutter, camera jitter, hand wobble and cloth colour.
    radius: object radius in pixels at the start of the motion.
    paths: per object (x0, y0, x1, y1), its centre in pixels at the start and end of the motion.
    growth: radius at the end divided by radius at the start (towards the camera).
    onset, offset: fractions of the clip where the motion starts and ends.
    side: which way the cloth comes from (0 left, 1 right, 2 top, 3 bottom) or the lid leaves (0 left, 1 right).
    swing: amplitude in pixels of the side-to-side oscillation of a shaken object.
    frames, size: clip length and square frame size.
    scene: the background painter, a key of `draw.BACKGROUNDS`.
    """

    objects: tuple[str, ...]
    seed: int
    radius: float
    paths: tuple[tuple[float, float, float, float], ...]
    growth: float = 1.0
    onset: float = 0.0
    offset: float = 1.0
    side: int = 0
    swing: float = 0.0
    frames: int = FRAMES
    size: int = IMAGE_SIZE
    scene: str = "clutter"


def _centre(p: ClipParams, j: int, u: float, shift: np.ndarray) -> tuple[float, float]:
    x0, y0, x1, y1 = p.paths[j]
    return x0 + u * (x1 - x0) + shift[0] + JITTER, y0 + u * (y1 - y0) + shift[1] + JITTER


def _draw_object(canvas: np.ndarray, name: str, cx: float, cy: float, r: float, alpha: float = 1.0) -> None:
    dist = shape_distance(object_shape(name), canvas.shape[0], cx, cy, r)
    paint(canvas, coverage(dist) * alpha, object_colour(name))


def _draw_container(canvas: np.ndarray, name: str, cx: float, cy: float, r: float) -> np.ndarray:
    """Draw the object as a container (coloured wall, dark inside); return the inside's coverage."""
    dist = shape_distance(object_shape(name), canvas.shape[0], cx, cy, r)
    inside = coverage(dist + 2.5)
    paint(canvas, coverage(dist), object_colour(name))
    paint(canvas, inside, INSIDE)
    return inside


def _move(canvas: np.ndarray, p: ClipParams, u: float, shift: np.ndarray, accent: np.ndarray) -> None:
    r = p.radius * (1.0 + (p.growth - 1.0) * u)
    for j, name in enumerate(p.objects):
        _draw_object(canvas, name, *_centre(p, j, u, shift), r)


def _fade(canvas: np.ndarray, p: ClipParams, u: float, shift: np.ndarray, accent: np.ndarray) -> None:
    _draw_object(canvas, p.objects[0], *_centre(p, 0, 0.0, shift), p.radius, alpha=u)


def _cover(canvas: np.ndarray, p: ClipParams, u: float, shift: np.ndarray, accent: np.ndarray) -> None:
    cx, cy = _centre(p, 0, 0.0, shift)
    _draw_object(canvas, p.objects[0], cx, cy, p.radius)
    dx, dy = ((-1, 0), (1, 0), (0, -1), (0, 1))[p.side]
    travel = (1.0 - u) * 0.8 * p.size
    half = 1.3 * p.radius + 2.0
    dist = rect_distance(canvas.shape[0], cx + dx * travel, cy + dy * travel, half, half)
    paint(canvas, coverage(dist), accent * 0.55)  # dark hem so the cloth reads on any background
    paint(canvas, coverage(dist + 1.5), accent)


def _fill(canvas: np.ndarray, p: ClipParams, u: float, shift: np.ndarray, accent: np.ndarray) -> None:
    cx, cy = _centre(p, 0, 0.0, shift)
    inside = _draw_container(canvas, p.objects[0], cx, cy, p.radius)
    level = cy + p.radius - u * 2.0 * p.radius
    ys = np.arange(canvas.shape[0], dtype=np.float32)[:, None]
    paint(canvas, inside * np.clip(ys - level + 0.5, 0.0, 1.0), LIQUID)


def _open(canvas: np.ndarray, p: ClipParams, u: float, shift: np.ndarray, accent: np.ndarray) -> None:
    cx, cy = _centre(p, 0, 0.0, shift)
    name = p.objects[0]
    _draw_container(canvas, name, cx, cy, p.radius)
    lid_x = cx + (1 if p.side else -1) * u * 1.2 * p.radius
    lid_y = cy - u * 2.4 * p.radius
    lid = coverage(shape_distance(object_shape(name), canvas.shape[0], lid_x, lid_y, p.radius))
    paint(canvas, lid, 0.8 * np.asarray(object_colour(name), dtype=np.float32) + 0.2 * 255.0)


Motion = Callable[[np.ndarray, ClipParams, float, np.ndarray, np.ndarray], None]
MOTIONS: dict[str, Motion] = {
    "slide": _move,
    "fall": _move,
    "approach": _move,
    "converge": _move,
    "hold": _move,
    "shake": _move,
    "cover": _cover,
    "fill": _fill,
    "fade": _fade,
    "open": _open,
}


def _progress(p: ClipParams) -> np.ndarray:
    t = np.arange(p.frames) / max(p.frames - 1, 1)
    return np.clip((t - p.onset) / (p.offset - p.onset), 0.0, 1.0)


def _object_shifts(motion: str, p: ClipParams, rng: np.random.Generator) -> np.ndarray:
    """Per-frame (dx, dy) of the objects on top of their path: hand wobble or shaking."""
    shifts = np.zeros((p.frames, 2))
    if motion == "hold":
        shifts[:] = rng.uniform(-1.0, 1.0, size=(p.frames, 2))
    elif motion == "shake":
        shifts[:, 0] = p.swing * np.sin(2 * np.pi * SHAKE_PERIODS * np.arange(p.frames) / p.frames)
    return shifts


def _camera_jitter(rng: np.random.Generator, frames: int) -> np.ndarray:
    """A random walk of whole-pixel camera offsets (dy, dx), clipped to +-JITTER."""
    walk = np.zeros((frames, 2), dtype=np.int64)
    for i in range(1, frames):
        walk[i] = np.clip(walk[i - 1] + rng.integers(-1, 2, size=2), -JITTER, JITTER)
    return walk


def render_forward(motion: str, p: ClipParams) -> np.ndarray:
    """Render the forward motion `motion` with parameters p: uint8 [F, size, size, 3]."""
    rng = np.random.default_rng(p.seed)
    canvas_size = p.size + 2 * JITTER
    scene = BACKGROUNDS[p.scene](rng, canvas_size)
    jitter = _camera_jitter(rng, p.frames)
    shifts = _object_shifts(motion, p, rng)
    accent = np.asarray((140.0, 100.0, 65.0) if rng.random() < 0.5 else (150.0, 150.0, 155.0), dtype=np.float32)
    accent *= rng.uniform(0.8, 1.25)
    draw = MOTIONS[motion]
    out = np.empty((p.frames, p.size, p.size, 3), dtype=np.uint8)
    for i, u in enumerate(_progress(p)):
        canvas = scene.copy()
        draw(canvas, p, float(u), shifts[i], accent)
        top, left = JITTER + jitter[i]
        out[i] = np.clip(canvas[top : top + p.size, left : left + p.size] + 0.5, 0, 255)
    return out


def render_clip(template: str, params: ClipParams) -> np.ndarray:
    """Render the clip of action `template`: uint8 [F, H, W, 3]; a reversed action is its partner played backwards."""
    action = ACTIONS[ACTION_INDEX[template]]
    frames = render_forward(action.motion, params)
    return frames[::-1].copy() if action.reversed else frames


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def sample_params(
    rng: np.random.Generator, action: Action, *, domain: Domain = BUILT_IN, size: int = IMAGE_SIZE, frames: int = FRAMES
) -> ClipParams:
    """Draw random objects (from `domain`), size, positions, speed and scene for one clip of `action`."""
    picks = rng.choice(len(domain.objects), size=action.n_objects, replace=False)
    objects = tuple(domain.objects[int(k)] for k in picks)
    seed = int(rng.integers(0, 2**31 - 1))
    onset, offset = _uniform(rng, 0.0, 0.2), _uniform(rng, 0.8, 1.0)
    s = float(size)
    motion = action.motion
    growth, side, swing = 1.0, 0, 0.0
    if motion == "slide":
        r = _uniform(rng, 0.09 * s, 0.14 * s)
        y = _uniform(rng, r + 1, s - 1 - r)
        paths = ((_uniform(rng, r + 1, 0.3 * s), y, _uniform(rng, 0.7 * s, s - 1 - r), y),)
    elif motion == "fall":
        r = _uniform(rng, 0.09 * s, 0.14 * s)
        x = _uniform(rng, r + 1, s - 1 - r)
        paths = ((x, _uniform(rng, r + 1, 0.3 * s), x, _uniform(rng, 0.7 * s, s - 1 - r)),)
    elif motion == "approach":
        r, growth = _uniform(rng, 0.08 * s, 0.11 * s), _uniform(rng, 2.0, 3.0)
        far = r * growth + 1
        x, y = _uniform(rng, far, s - far), _uniform(rng, far, s - far)
        paths = ((x, y, x, y),)
    elif motion == "converge":
        r = _uniform(rng, 0.07 * s, 0.1 * s)
        y = _uniform(rng, r + 4, s - r - 4)
        rows = (y, y + _uniform(rng, -3.0, 3.0))
        paths = tuple(
            (s / 2 + sign * (s / 2 - _uniform(rng, r + 1, 0.18 * s)), row, s / 2 + sign * (r + _uniform(rng, 1.0, 3.0)), row)
            for sign, row in zip((-1, 1), rows)
        )
    elif motion in ("fill", "open"):
        r = _uniform(rng, 0.15 * s, 0.2 * s)
        x = _uniform(rng, r + 2, s - r - 3)
        y = _uniform(rng, s / 2 if motion == "open" else r + 2, s - r - 3)
        paths = ((x, y, x, y),)
        side = int(rng.integers(0, 2))
    else:  # cover, fade, hold, shake: the object stays where it is
        r = _uniform(rng, 0.09 * s, 0.15 * s)
        swing = _uniform(rng, 0.1 * s, 0.15 * s) if motion == "shake" else 0.0
        x = _uniform(rng, r + swing + 3, s - r - swing - 3)
        y = _uniform(rng, r + 3, s - r - 3)
        paths = ((x, y, x, y),)
        side = int(rng.integers(0, 4)) if motion == "cover" else 0
    return ClipParams(
        objects=objects,
        seed=seed,
        radius=r,
        paths=paths,
        growth=growth,
        onset=onset,
        offset=offset,
        side=side,
        swing=swing,
        frames=frames,
        size=size,
        scene=domain.scene,
    )
