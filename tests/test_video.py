"""Video decoding: shapes, the segment-centre sampling rule, time ranges, and every kind of bad file."""

from __future__ import annotations

import av
import numpy as np
import pytest

from paxion.errors import VideoDecodeError
from paxion.extract.video import read_frames, segment_centres
from paxion.synth.encode import write_video

BASE, STEP = 30, 12  # frame j is a flat grey of BASE + STEP * j, so decoded frames tell their index


def _numbered(count: int, size: int = 32) -> np.ndarray:
    values = BASE + STEP * np.arange(count, dtype=np.uint8)
    return np.broadcast_to(values[:, None, None, None], (count, size, size, 3)).copy()


def _indices(frames: np.ndarray) -> list[int]:
    return [round(float(f.mean() - BASE) / STEP) for f in frames]


@pytest.fixture(scope="module")
def clip16(tmp_path_factory):
    """A 16-frame, 8 fps (2 s) numbered clip."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    write_video(path, _numbered(16))
    return path


def test_shape_dtype_and_size(clip16):
    frames = read_frames(clip16)
    assert frames.shape == (8, 32, 32, 3) and frames.dtype == np.uint8
    small = read_frames(clip16, num_frames=3, size=20)
    assert small.shape == (3, 20, 20, 3) and small.dtype == np.uint8
    assert _indices(small) == [2, 8, 13]


def test_takes_the_frame_under_each_segment_centre(clip16):
    assert _indices(read_frames(clip16, num_frames=16)) == list(range(16))
    assert _indices(read_frames(clip16, num_frames=4)) == [2, 6, 9, 13]
    assert _indices(read_frames(clip16, num_frames=2)) == [4, 11]


def test_short_clip_repeats_frames(tmp_path):
    path = tmp_path / "short.mp4"
    write_video(path, _numbered(3))
    assert _indices(read_frames(path, num_frames=6)) == [0, 0, 1, 1, 2, 2]
    assert _indices(read_frames(path, num_frames=1)) == [1]


@pytest.mark.parametrize("count, num_frames", [(16, 8), (15, 8), (9, 4), (5, 8), (16, 5)])
def test_sampling_a_reversed_clip_gives_the_same_frames_reversed(count, num_frames):
    forward = segment_centres(count, num_frames)
    backward = [count - 1 - i for i in segment_centres(count, num_frames)[::-1]]
    if num_frames % 2 == 1 and count % 2 == 0:  # the middle segment must pick one of two middle frames
        mid = num_frames // 2
        forward, backward = forward[:mid] + forward[mid + 1 :], backward[:mid] + backward[mid + 1 :]
    assert forward == backward


def test_time_range(clip16):
    # 0.5..1.5 s = frames 4..11; centres at 0.625, 0.875, 1.125, 1.375 s
    assert _indices(read_frames(clip16, num_frames=4, start=0.5, end=1.5)) == [5, 7, 8, 10]
    whole = read_frames(clip16, num_frames=8)
    assert np.array_equal(read_frames(clip16, num_frames=8, start=0.0, end=2.0), whole)
    assert np.array_equal(read_frames(clip16, num_frames=8, start=0.0), whole)


def test_container_without_frame_count(tmp_path):
    path = tmp_path / "clip.mkv"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv444p"
        stream.options = {"crf": "0"}
        for frame in _numbered(10):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    assert _indices(read_frames(path, num_frames=5)) == [1, 3, 5, 6, 8]


def _audio_only(path):
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), dtype=np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())


def _bad_file(kind, tmp_path, clip16):
    path = tmp_path / f"{kind}.mp4"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        data = clip16.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "text":
        path.write_text("this is not a video\n" * 50)
    elif kind == "directory":
        path.mkdir()
    elif kind == "audio":
        path = tmp_path / "audio.wav"
        _audio_only(path)
    return path


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("missing", "not found"),
        ("empty", "empty"),
        ("truncated", "not a readable video"),
        ("text", "not a readable video"),
        ("directory", "not a file"),
        ("audio", "no video stream"),
    ],
)
@pytest.mark.parametrize("timed", [False, True])
def test_bad_files_raise_video_decode_error(kind, reason, timed, tmp_path, clip16):
    path = _bad_file(kind, tmp_path, clip16)
    window = {"start": 0.0, "end": 1.0} if timed else {}
    with pytest.raises(VideoDecodeError) as info:
        read_frames(path, **window)
    assert info.value.path == str(path)
    assert str(path) in str(info.value) and reason in info.value.reason


def test_bad_arguments(clip16):
    with pytest.raises(ValueError):
        read_frames(clip16, num_frames=0)
    with pytest.raises(VideoDecodeError, match="empty time range"):
        read_frames(clip16, start=1.0, end=0.5)
