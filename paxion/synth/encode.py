"""Encode rendered frames as an H.264 MP4 file with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from paxion.atomic import atomic_path

FPS = 8
CODEC = "libx264"
# 4:4:4 at qp 0 is lossless in YUV: the only loss is RGB<->YUV rounding (at most 2 levels), so the
# colours stay faithful and a clip's reversal partner decodes to its frames played backwards.
PIXEL_FORMAT = "yuv444p"
OPTIONS = {"crf": "0", "preset": "ultrafast"}


def write_video(path: Path, frames: np.ndarray, *, fps: int = FPS) -> int:
    """Write uint8 frames [F, H, W, 3] to an MP4 file at `path` atomically; return its size in bytes."""
    path = Path(path)
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream(CODEC, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = PIXEL_FORMAT
        stream.options = OPTIONS
        stream.codec_context.thread_count = 1  # worlds are rendered one clip per process; threads only add overhead
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path.stat().st_size
