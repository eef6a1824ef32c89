"""Video decoding: shapes, the segment-centre sampling rule, time ranges, and every kind of bad file."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from paxion.errors import VideoDecodeError
from paxion.extract.video import read_frames, sample_times
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


def _write(path, frames, *, fps=8, codec="libx264", times=None, rotation=None, options=None, pix_fmt="yuv444p"):
    """Encode uint8 frames [F, H, W, 3]; `times`: presentation times in seconds (variable frame rate);
    `rotation`: the display matrix's angle in degrees, as phones write it."""
    with av.open(str(path), mode="w", options=options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        if codec == "libx264":
            stream.options = {"crf": "0"}
        if times is not None:
            stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for j, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if times is not None:
                frame.pts, frame.time_base = round(times[j] * 1000), Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def _steady(count, fps=8):
    return [Fraction(j, fps) for j in range(count)]


@pytest.mark.parametrize("count, num_frames", [(16, 8), (15, 8), (9, 4), (5, 8), (16, 5)])
def test_steady_rate_sampling_takes_the_frame_under_each_centre(count, num_frames):
    # frame j covers [j, j + 1) in frame units; the centre (k + 1/2) count / T falls in frame floor(centre), and
    # a centre exactly on a boundary goes to the frame nearer the middle
    expected = []
    for k in range(num_frames):
        centre = Fraction(2 * k + 1, 2 * num_frames) * count
        on_boundary = centre.denominator == 1
        expected.append(int(centre) - (1 if on_boundary and centre > Fraction(count, 2) else 0))
    assert sample_times(_steady(count), start=Fraction(0), end=Fraction(count, 8), num_frames=num_frames) == expected


@pytest.mark.parametrize("count, num_frames", [(16, 8), (15, 8), (9, 4), (5, 8), (16, 5)])
@pytest.mark.parametrize("steady", [True, False])
def test_sampling_a_reversed_clip_gives_the_same_frames_reversed(count, num_frames, steady):
    rng = np.random.default_rng(count * 10 + num_frames)
    gaps = [Fraction(1, 8)] * count if steady else [Fraction(int(g), 40) for g in rng.integers(1, 9, count)]
    starts = [sum(gaps[:j], Fraction(0)) for j in range(count)]
    end = sum(gaps, Fraction(0))
    # the reversed clip shows frame count-1-j from end - (start_j + gap_j) on; its last frame lasts gaps[0],
    # which the sampler takes to be the gap before it, so the steady clips reverse exactly
    reversed_starts = [end - starts[j] - gaps[j] for j in reversed(range(count))]
    forward = sample_times(starts, start=Fraction(0), end=end, num_frames=num_frames)
    backward = [count - 1 - i for i in sample_times(reversed_starts, start=Fraction(0), end=end,
                                                      num_frames=num_frames)[::-1]]
    if num_frames % 2 == 1 and forward[num_frames // 2] != backward[num_frames // 2]:
        # the middle centre sits on the middle of the range: with a frame boundary there, each direction takes
        # the frame that starts at the middle
        mid = num_frames // 2
        assert end / 2 in starts
        forward, backward = forward[:mid] + forward[mid + 1:], backward[:mid] + backward[mid + 1:]
    assert forward == backward


def test_variable_frame_rate_is_sampled_by_time(tmp_path):
    # 8 frames in the first 0.35 s, then one a second up to 8 s; the last lasts as long as the gap before it (9 s)
    times = [0.05 * j for j in range(8)] + [float(s) for s in range(1, 9)]
    path = _write(tmp_path / "vfr.mp4", _numbered(16), times=times)
    # centres of 8 segments of [0, 9]: 0.56, 1.69, 2.81, 3.94, 5.06, 6.19, 7.31, 8.44 s
    assert _indices(read_frames(path)) == [7, 8, 9, 10, 12, 13, 14, 15]
    assert np.array_equal(read_frames(path), read_frames(path, start=0.0, end=9.0))
    # 0.1..0.3 s holds frames 2..6 at 0.05 s apart: centres 0.125, 0.175, 0.225, 0.275 s
    assert _indices(read_frames(path, num_frames=4, start=0.1, end=0.3)) == [2, 3, 4, 5]


def _marked(count=4, width=64, height=32):
    """Landscape grey frames with a red block in the top-left corner."""
    frames = np.full((count, height, width, 3), 90, dtype=np.uint8)
    frames[:, : height // 4, : width // 4] = (250, 0, 0)
    return frames


def test_crop_keeps_the_aspect_ratio_and_the_centre(tmp_path):
    # a 32 x 64 video: black side bands 16 px wide around a white centre square
    frames = np.zeros((2, 32, 64, 3), dtype=np.uint8)
    frames[:, :, 16:48] = 255
    path = _write(tmp_path / "wide.mp4", frames)
    cropped = read_frames(path, num_frames=2, size=16, crop=True)
    assert cropped.shape == (2, 16, 16, 3) and cropped.min() >= 250
    squashed = read_frames(path, num_frames=2, size=16)
    assert squashed.shape == (2, 16, 16, 3) and squashed[:, :, :3].max() <= 5


def _red_corner(frame):
    """Which corner of a frame holds the red block, read from its four corner pixels."""
    height, width = frame.shape[:2]
    corners = {"top-left": (0, 0), "top-right": (0, width - 1), "bottom-left": (height - 1, 0),
               "bottom-right": (height - 1, width - 1)}
    return [name for name, (y, x) in corners.items() if frame[y, x, 0] > 200 and frame[y, x, 1] < 60]


@pytest.mark.parametrize(
    "rotation, corner",
    # the display matrix turns the picture counter-clockwise by its angle (FFmpeg's av_display_rotation_get;
    # ffplay and players show a 90-degree file turned a quarter counter-clockwise, a -90 one clockwise)
    [(None, "top-left"), (0, "top-left"), (90, "bottom-left"), (-90, "top-right"), (180, "bottom-right"),
     (270, "top-right")],
)
def test_display_rotation_is_applied(tmp_path, rotation, corner):
    plain = read_frames(_write(tmp_path / "plain.mp4", _marked()), num_frames=2)
    frames = read_frames(_write(tmp_path / "phone.mp4", _marked(), rotation=rotation), num_frames=2)
    quarter_turns = (rotation or 0) // 90 % 4
    assert frames.shape == ((2, 64, 32, 3) if quarter_turns % 2 else (2, 32, 64, 3))
    assert [_red_corner(f) for f in frames] == [[corner], [corner]]
    assert np.array_equal(frames, np.rot90(plain, quarter_turns, axes=(1, 2)))
    resized = read_frames(tmp_path / "phone.mp4", num_frames=2, size=16)
    assert resized.shape == (2, 16, 16, 3) and _red_corner(resized[0]) == [corner]


@pytest.mark.parametrize("container", ["mkv", "faststart.mp4"])
def test_a_cut_download_is_a_failed_clip_not_a_shorter_one(tmp_path, container):
    # headers in front: the cut file still opens and declares the whole length
    options = {"movflags": "faststart"} if container.endswith("mp4") else None
    path = _write(tmp_path / f"clip.{container}", _numbered(16), options=options)
    assert _indices(read_frames(path, num_frames=4)) == [2, 6, 9, 13]
    data = path.read_bytes()
    cut = tmp_path / f"cut.{container}"
    cut.write_bytes(data[: len(data) // 2])
    for window in ({}, {"start": 0.0, "end": 2.0}):
        with pytest.raises(VideoDecodeError) as info:
            read_frames(cut, **window)
        if container == "mkv":  # the mp4 demuxer stops at a packet cut in half: a decoding error
            assert "truncated" in info.value.reason and "declares 2.0 s" in info.value.reason


def test_a_cut_file_still_gives_ranges_it_holds(tmp_path):
    path = _write(tmp_path / "clip.mkv", np.concatenate([_numbered(16)] * 4))  # 8 s, frame grey repeats each 2 s
    data = path.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    assert _indices(read_frames(cut, num_frames=4, start=0.5, end=1.5)) == [5, 7, 8, 10]
    with pytest.raises(VideoDecodeError, match=r"truncated: decodes to [0-9.]+ s but declares 8.0 s"):
        read_frames(cut, start=6.0, end=7.0)


@pytest.mark.parametrize("name, codec", [("clip.mkv", "libx264"), ("clip.webm", "libvpx")])
def test_frames_that_stop_before_the_packets_do_are_a_truncated_file(tmp_path, name, codec):
    # container intact, the second half of the packets zeroed: the decoders skip them without an error
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 32, 3), dtype=np.uint8)
    path = _write(tmp_path / name, noise, codec=codec, pix_fmt="yuv420p" if codec == "libvpx" else "yuv444p")
    with av.open(str(path)) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    data = bytearray(path.read_bytes())
    for pos, size in packets[16:]:
        data[pos:pos + size] = bytes(size)
    path.write_bytes(bytes(data))
    with pytest.raises(VideoDecodeError, match="truncated: decodes to 2.0 s but declares 4.0 s"):
        read_frames(path)


@pytest.mark.parametrize("name, codec", [("clip.webm", "libvpx"), ("clip.mkv", "libx264"), ("clip.mp4", "libx264")])
def test_complete_files_pass_the_truncation_check(tmp_path, name, codec):
    # Matroska/WebM headers carry no frame count and no stream duration; the sampled frames are the mp4's
    path = _write(tmp_path / name, _numbered(16), codec=codec, pix_fmt="yuv420p" if codec == "libvpx" else "yuv444p")
    assert _indices(read_frames(path, num_frames=4)) == [2, 6, 9, 13]
    assert _indices(read_frames(path, num_frames=4, start=1.5, end=2.0)) == [12, 13, 14, 15]
    # one frame from a 6 s file: decoding stops at 3 s, which says nothing about the rest
    long = _write(tmp_path / f"long.{name}", np.concatenate([_numbered(16)] * 3), codec=codec,
                  pix_fmt="yuv420p" if codec == "libvpx" else "yuv444p")
    assert _indices(read_frames(long, num_frames=1)) == [8]  # frame 24 of 48, grey of frame 24 - 16


def test_time_range(clip16):
    # 0.5..1.5 s = frames 4..11; centres at 0.625, 0.875, 1.125, 1.375 s
    assert _indices(read_frames(clip16, num_frames=4, start=0.5, end=1.5)) == [5, 7, 8, 10]
    whole = read_frames(clip16, num_frames=8)
    assert np.array_equal(read_frames(clip16, num_frames=8, start=0.0, end=2.0), whole)
    assert np.array_equal(read_frames(clip16, num_frames=8, start=0.0), whole)
    # [1, 2] s: centres 1.125, 1.375, 1.625, 1.875 s fall on the starts of frames 9, 11, 13, 15; the two past the
    # middle (1.5 s) go to the frame before
    assert _indices(read_frames(clip16, num_frames=4, start=1.0)) == [9, 11, 12, 14]


def test_negative_start_counts_as_zero(clip16):
    assert np.array_equal(read_frames(clip16, num_frames=4, start=-0.3, end=1.0),
                          read_frames(clip16, num_frames=4, start=0.0, end=1.0))


def test_range_past_the_end_fails_instead_of_repeating_the_last_frame(clip16):
    with pytest.raises(VideoDecodeError) as info:
        read_frames(clip16, start=30.5, end=31.5)
    assert info.value.reason == "time range 30.5-31.5 s is past the end of the video (2.0 s)"
    with pytest.raises(VideoDecodeError, match=r"time range 2.0-2.5 s is past the end"):
        read_frames(clip16, start=2.0, end=2.5)
    with pytest.raises(VideoDecodeError, match=r"time range 1.5-3.5 s is mostly past the end of the video \(2.0 s\)"):
        read_frames(clip16, start=1.5, end=3.5)


def test_range_ending_a_little_past_the_end_is_cut_to_it(clip16):
    # [1.0, 2.5]: 1 s of 1.5 s inside, so it is [1.0, 2.0] (see test_time_range)
    assert _indices(read_frames(clip16, num_frames=4, start=1.0, end=2.5)) == [9, 11, 12, 14]


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
