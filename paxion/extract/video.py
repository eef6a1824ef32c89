"""Decode and sample video frames with PyAV; every failure becomes a VideoDecodeError naming the file."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from paxion.errors import VideoDecodeError

# Frame threading pays off only on large frames; tiny clips (the built-in world) decode faster on one thread.
LARGE_FRAME = 320 * 240


def segment_centres(count: int, num_frames: int) -> list[int]:
    """Index of the frame under the centre of each of `num_frames` equal segments of `count` frames.

    Frame j covers [j, j + 1); a centre exactly between two frames takes the one nearer the middle of the
    clip, so a clip played backwards samples the same frames in reverse order.
    """
    picks = []
    for k in range(num_frames):
        centre = (k + 0.5) * count / num_frames
        picks.append(math.floor(centre) if centre <= count / 2 else math.ceil(centre) - 1)
    return picks


def _to_rgb(frame: av.VideoFrame, size: int | None) -> np.ndarray:
    if size is None:
        return frame.to_ndarray(format="rgb24")
    return frame.reformat(width=size, height=size, format="rgb24", interpolation="AREA").to_ndarray()


def _open(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise VideoDecodeError(path, "file not found")
    if not path.is_file():
        raise VideoDecodeError(path, "not a file")
    if path.stat().st_size == 0:
        raise VideoDecodeError(path, "empty file (0 bytes)")
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise VideoDecodeError(path, f"not a readable video ({exc})") from exc
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(path, "no video stream")
    return container


def _decode(container: av.container.InputContainer) -> Iterator[av.VideoFrame]:
    stream = container.streams.video[0]
    if stream.codec_context.width * stream.codec_context.height >= LARGE_FRAME:
        stream.thread_type = "AUTO"
    yield from container.decode(stream)


def _sample_whole(path: Path, num_frames: int, size: int | None, count: int = 0) -> tuple[list[np.ndarray], int]:
    """Sample a whole clip of `count` frames (0 = read from the header, else count packets).

    Decodes in order, converting only the sampled frames; returns them and how many frames were decoded.
    """
    picked: dict[int, np.ndarray] = {}
    decoded = 0
    with _open(path) as container:
        stream = container.streams.video[0]
        count = count or stream.frames
        if count <= 0:  # e.g. Matroska/WebM headers carry no frame count: count packets without decoding
            count = sum(packet.size > 0 for packet in container.demux(stream))
            container.seek(0)
        if count <= 0:
            return [], 0
        wanted = segment_centres(count, num_frames)
        for index, frame in enumerate(_decode(container)):
            decoded = index + 1
            if index in wanted:
                picked[index] = _to_rgb(frame, size)
            if index >= wanted[-1]:
                break
    return [picked[i] for i in wanted if i in picked], decoded


def _sample_by_time(path: Path, num_frames: int, size: int | None, start: float, end: float | None) -> list[np.ndarray]:
    """Seek to `start` and take, for each segment centre, the frame on screen at that time."""
    with _open(path) as container:
        stream = container.streams.video[0]
        if end is None:
            if container.duration is None:
                raise VideoDecodeError(path, "unknown duration; give an end time")
            end = container.duration / av.time_base
        if end <= start:
            raise VideoDecodeError(path, f"empty time range [{start}, {end}] s")
        centres = [start + (k + 0.5) * (end - start) / num_frames for k in range(num_frames)]
        middle = (start + end) / 2
        if stream.time_base is not None and start > 0:
            container.seek(int(start / stream.time_base), stream=stream, backward=True)
        picked: list[np.ndarray] = []
        previous = None
        for frame in _decode(container):
            t = frame.time if frame.time is not None else 0.0
            # a frame starting exactly at a centre past the middle yields to the previous one (see segment_centres)
            while len(picked) < num_frames and (t > (c := centres[len(picked)]) or (t == c and c > middle)):
                picked.append(_to_rgb(previous if previous is not None else frame, size))
            if len(picked) == num_frames:
                break
            previous = frame
        if previous is not None:
            last = _to_rgb(previous, size)
            picked.extend(last for _ in range(num_frames - len(picked)))
    return picked


def read_frames(
    path: str | Path,
    *,
    num_frames: int = 8,
    size: int | None = None,
    start: float | None = None,
    end: float | None = None,
) -> np.ndarray:
    """Sample `num_frames` RGB frames of a video as uint8 [T, H, W, 3] (H = W = size when given).

    Sampling rule: the clip (or [start, end] in seconds) is split into T equal segments and the frame
    on screen at each segment's centre is taken; a centre exactly between two frames takes the one nearer
    the middle, so a reversed clip gives the same frames reversed. A clip with fewer than T frames gives
    repeated frames by the same rule. Raises VideoDecodeError for a missing, empty,
    truncated or non-video file, one without a video stream, or one with no decodable frames.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    if size is not None and size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    path = Path(path)
    try:
        if start is None and end is None:
            frames, decoded = _sample_whole(path, num_frames, size)
            if len(frames) < num_frames and decoded:  # the header over-counted frames: sample what is there
                frames, _ = _sample_whole(path, num_frames, size, count=decoded)
        else:
            frames = _sample_by_time(path, num_frames, size, start or 0.0, end)
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise VideoDecodeError(path, f"decoding failed ({exc})") from exc
    if not frames:
        raise VideoDecodeError(path, "no decodable frames")
    return np.stack(frames)
