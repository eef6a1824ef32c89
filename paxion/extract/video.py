"""Decode and sample video frames with PyAV as a player shows them; every failure is a VideoDecodeError naming the file.

Times are exact fractions of the stream's time base, counted from the video stream's start time (its first
presentation time), so ties between a segment centre and a frame boundary are decided exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from paxion.errors import VideoDecodeError

# Frame threading pays off only on large frames; tiny clips (the built-in world) decode faster on one thread.
LARGE_FRAME = 320 * 240
# A file whose packets end before its declared duration by more than this is truncated (a cut download).
TRUNCATION_TOLERANCE_S = 0.5
TRUNCATION_TOLERANCE_FRACTION = 0.1


def segment_centres(start: Fraction, end: Fraction, num_frames: int) -> list[Fraction]:
    """Centres (seconds) of `num_frames` equal segments of [start, end]."""
    return [start + (2 * k + 1) * (end - start) / (2 * num_frames) for k in range(num_frames)]


def _on_screen(
    frames: Iterable[tuple[Fraction, object]], centres: list[Fraction], middle: Fraction
) -> Iterator[object]:
    """For each centre in order, the item of `frames` (start time, item; ascending times) on screen at that time.

    A frame is on screen from its start to the next frame's start. A centre exactly at a frame's start takes that
    frame when the centre is at or before `middle`, else the frame before, so a clip played backwards samples the
    same frames in reverse order. Centres before the first frame take the first frame. Stops once every centre is
    decided; centres after the last frame's start are left to the caller.
    """
    done, previous = 0, None
    for t, item in frames:
        while done < len(centres) and (t > centres[done] or (t == centres[done] and centres[done] > middle)):
            yield item if previous is None else previous
            done += 1
        if done == len(centres):
            return
        previous = item


def sample_times(times: list[Fraction], *, start: Fraction, end: Fraction, num_frames: int) -> list[int]:
    """Index of the frame on screen at each of `num_frames` segment centres of [start, end] (seconds).

    `times` are the frames' start times, ascending; the last frame stays on screen to the end. The rule of
    `read_frames`, without a video: tests check it here on hand-made frame times.
    """
    centres = segment_centres(start, end, num_frames)
    picks = list(_on_screen(zip(times, range(len(times))), centres, (start + end) / 2))
    return picks + [len(times) - 1] * (num_frames - len(picks))


def _rgb(frame: av.VideoFrame, size: int | None, crop: bool = False) -> np.ndarray:
    """The frame as RGB uint8 [H, W, 3], upright as a player shows it (display-matrix rotation applied); with
    `crop`, the shorter side resized to `size` and the centred size x size square kept, else squashed to it."""
    if size is None:
        rgb = frame.to_ndarray(format="rgb24")
    elif crop:
        scale = size / min(frame.width, frame.height)
        w, h = max(size, round(frame.width * scale)), max(size, round(frame.height * scale))
        rgb = frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()
        top, left = (h - size) // 2, (w - size) // 2
        rgb = np.ascontiguousarray(rgb[top:top + size, left:left + size])
    else:
        rgb = frame.reformat(width=size, height=size, format="rgb24", interpolation="AREA").to_ndarray()
    # PyAV's rotation is the display matrix's angle, counter-clockwise (av_display_rotation_get): players turn the
    # picture by it, e.g. 90 for a phone's portrait video stored landscape; np.rot90 turns counter-clockwise too.
    quarter_turns = round((frame.rotation or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, quarter_turns)) if quarter_turns else rgb


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


def _declared_duration(container: av.container.InputContainer, stream: av.VideoStream) -> Fraction | None:
    """Seconds the file says its video lasts: the stream's duration, Matroska's DURATION tag, else the container's."""
    if stream.duration:
        return stream.duration * stream.time_base
    tag = stream.metadata.get("DURATION", "")  # "HH:MM:SS.nnnnnnnnn", written per track by Matroska muxers
    if tag.count(":") == 2:
        try:
            hours, minutes, seconds = tag.split(":")
            return Fraction(int(hours) * 3600 + int(minutes) * 60) + Fraction(seconds)
        except ValueError:
            pass
    return Fraction(container.duration, av.time_base) if container.duration else None


class _Timeline:
    """Tracks the packets' presentation times of one stream; `end` is where the last frame stops being shown.

    A frame is shown until the next one starts; the last one is taken to last as long as the gap before it (the
    duration files record for a last frame is the writer's guess, often one frame at the nominal rate, which
    would cut a variable-frame-rate clip short). A single frame lasts its recorded duration, else 1 / rate.
    """

    def __init__(self, stream: av.VideoStream) -> None:
        self.stream = stream
        self.origin = stream.start_time or 0
        self.last: list[int] = []  # the two largest pts seen
        self.single = 0

    def time(self, pts: int) -> Fraction:
        return (pts - self.origin) * self.stream.time_base

    def add(self, packet: av.Packet) -> None:
        if packet.pts is None or not packet.size:
            return
        self.last = sorted({*self.last, packet.pts})[-2:]
        if packet.pts == self.last[-1]:
            self.single = packet.duration or 0

    @property
    def end(self) -> Fraction | None:
        if not self.last:
            return None
        if len(self.last) == 2:
            return self.time(2 * self.last[1] - self.last[0])
        rate = self.stream.average_rate or self.stream.guessed_rate
        gap = self.single * self.stream.time_base if self.single else (1 / Fraction(rate) if rate else Fraction(0))
        return self.time(self.last[0]) + gap


def _seconds(t: Fraction) -> str:
    """Seconds to the millisecond, at least one decimal: 2.0, 30.5, 1.875."""
    text = f"{float(t):.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _check_complete(path: Path, decoded: Fraction | None, declared: Fraction | None) -> None:
    """Raise VideoDecodeError unless the file's packets reach its declared duration within the tolerance."""
    tolerance = max(TRUNCATION_TOLERANCE_S, TRUNCATION_TOLERANCE_FRACTION * declared) if declared is not None else 0
    if declared is not None and declared - (decoded or 0) > tolerance:
        raise VideoDecodeError(
            path, f"truncated: decodes to {_seconds(decoded or Fraction(0))} s but declares {_seconds(declared)} s"
        )
    if decoded is None:
        raise VideoDecodeError(path, "no decodable frames")


class _Sampler:
    """One open video: its declared duration and the passes that read it."""

    def __init__(self, path: Path, container: av.container.InputContainer, size: int | None, crop: bool) -> None:
        self.path, self.container, self.size, self.crop = path, container, size, crop
        self.stream = container.streams.video[0]
        if self.stream.codec_context.width * self.stream.codec_context.height >= LARGE_FRAME:
            self.stream.thread_type = "AUTO"
        self.declared = _declared_duration(container, self.stream)
        self.end: Fraction | None = None  # where the last frame ends, once a pass has reached the end of the file
        self.moved = False  # a pass has read packets: the next one seeks (some cut files cannot seek at all)

    def duration(self) -> Fraction:
        """Seconds from the first frame's start to the last's end, read from the packets (nothing decoded)."""
        timeline = _Timeline(self.stream)
        self.moved = True
        for packet in self.container.demux(self.stream):
            timeline.add(packet)
        _check_complete(self.path, timeline.end, self.declared)
        self.end = timeline.end
        return timeline.end

    def sample(self, start: Fraction, end: Fraction, num_frames: int) -> list[np.ndarray] | None:
        """The frames on screen at the segment centres of [start, end] seconds; None when the file ends before `end`
        (then `self.end` is where it ends, and the caller decides what the range means)."""
        timeline = _Timeline(self.stream)
        if start > 0 or self.moved:
            self.container.seek(int(timeline.origin + start / self.stream.time_base), stream=self.stream, backward=True)
        self.moved = True
        centres = segment_centres(start, end, num_frames)
        picked: list[np.ndarray] = []
        last = shown = None  # the last decoded frame; the last picked one, converted once for adjacent centres
        decoded_all = False

        def frames() -> Iterator[tuple[Fraction, av.VideoFrame]]:
            nonlocal last, decoded_all
            for packet in self.container.demux(self.stream):
                timeline.add(packet)
                for frame in packet.decode():
                    if frame.pts is not None:
                        last = frame
                        yield timeline.time(frame.pts), frame
            decoded_all = True

        for frame in _on_screen(frames(), centres, (start + end) / 2):
            if shown is None or shown[0] is not frame:
                shown = frame, _rgb(frame, self.size, self.crop)
            picked.append(shown[1])
        # Every centre is decided (or the file ended): read on, without decoding, to see whether the file reaches `end`.
        for packet in self.container.demux(self.stream):
            timeline.add(packet)
            if packet.pts is not None and timeline.time(packet.pts) >= end:
                return picked
        self.end = timeline.end
        if self.end is None or self.end < end or last is None:
            return None
        if decoded_all:  # frames stopping short of the packets (a corrupt tail the decoder skipped) is a cut file too
            last_gap = self.end - timeline.time(timeline.last[-1])
            _check_complete(self.path, timeline.time(last.pts) + last_gap, self.end)
        if len(picked) < num_frames:
            picked += [shown[1] if shown and shown[0] is last else _rgb(last, self.size, self.crop)] * (num_frames - len(picked))
        return picked


def read_frames(
    path: str | Path,
    *,
    num_frames: int = 8,
    size: int | None = None,
    start: float | None = None,
    end: float | None = None,
    crop: bool = False,
) -> np.ndarray:
    """Sample `num_frames` RGB frames of a video as uint8 [T, H, W, 3] (H = W = size when given), upright.

    With a size, each frame is squashed to size x size, or with `crop` its shorter side is resized to `size` and the
    centred square kept (the geometry of CLIP-style image processors).

    Sampling rule, by presentation time: [start, end] in seconds from the video's first frame (whole clip:
    [0, duration], with the same result as giving those times) is split into T equal segments and the frame on
    screen at each segment's centre is taken. A frame is on screen from its start until the next frame starts;
    the last one for as long as the gap before it. A centre exactly at a frame's start takes the frame nearer
    the range's middle, so a reversed clip gives the same frames reversed. A clip with fewer than T frames gives
    repeated frames by the same rule.

    Orientation: the display matrix's rotation (phones store portrait video landscape with a 90 or -90 degree
    matrix) is applied, as players do: a counter-clockwise angle, rounded to quarter turns; mirroring is not.

    Time ranges: a negative start counts as 0; an end past the video's end is cut to it when at least half of
    the range lies in the video, else the clip fails, and a start at or past the end always fails.

    Raises VideoDecodeError for a missing, empty, non-video or undecodable file, one without a video stream or
    without decodable frames, a range past the end, and a truncated file: one whose packets end more than
    max(TRUNCATION_TOLERANCE_S, TRUNCATION_TOLERANCE_FRACTION x declared) before the duration its stream (else its
    container) declares, or whose decoded frames stop that far before its packets do. Source: presentation
    timestamps and the display matrix as FFmpeg/PyAV report them.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    if size is not None and size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    path = Path(path)
    begin = max(Fraction(start or 0), Fraction(0))
    try:
        with _open(path) as container:
            sampler = _Sampler(path, container, size, crop)
            stop = sampler.duration() if end is None else Fraction(end)
            if stop <= begin:
                raise VideoDecodeError(path, f"empty time range [{start}, {end}] s")
            frames = sampler.sample(begin, stop, num_frames)
            if frames is None:  # the file ends before the range does
                _check_complete(path, sampler.end, sampler.declared)
                video_end = sampler.end
                span = f"time range {_seconds(begin)}-{_seconds(stop)} s"
                if begin >= video_end:
                    raise VideoDecodeError(path, f"{span} is past the end of the video ({_seconds(video_end)} s)")
                if video_end - begin < (stop - begin) / 2:
                    raise VideoDecodeError(
                        path, f"{span} is mostly past the end of the video ({_seconds(video_end)} s)"
                    )
                frames = sampler.sample(begin, video_end, num_frames)
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise VideoDecodeError(path, f"decoding failed ({exc})") from exc
    if not frames:
        raise VideoDecodeError(path, "no decodable frames")
    return np.stack(frames)
