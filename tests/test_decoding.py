"""Decoding workers: batches in order, bad videos as failed clips, and a worker that dies on a clip (a native
crash) fails that clip only."""

from __future__ import annotations

import signal
from functools import partial

import numpy as np
import pytest
from crashing import CRASH_ON, buggy_decoder, crashing_decoder
from fakes import FakeBackbone, make_bench

from paxion.cache.reader import Cache
from paxion.extract import pipeline
from paxion.extract.decoding import death_reason, decode_batches
from paxion.extract.video import read_frames
from paxion.synth.encode import write_video

CRASH = CRASH_ON[0]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Five 8-frame clips of flat grey 40 + 20 * clip; crash.mp4 is a good file too (crashing_decoder crashes on it)."""
    root = tmp_path_factory.mktemp("videos")
    for n, name in enumerate(["a.mp4", "b.mp4", CRASH, "d.mp4", "e.mp4"]):
        write_video(root / name, np.full((8, 16, 16, 3), 40 + 20 * n, dtype=np.uint8))
    (root / "empty.mp4").write_bytes(b"")
    return root


def _which(frames):
    """Each clip's file index, read from its first frame's grey (colour conversion moves it a level or two)."""
    return [round((f.mean() - 40) / 20) for f in frames[:, 0]]


def _clips(names):
    return [{"id": str(i), "video": name} for i, name in enumerate(names)]


def _run(videos, names, batches, **kwargs):
    return list(decode_batches(_clips(names), batches, videos, num_frames=2, size=8, **kwargs))


def test_batches_come_in_order_with_failures_named(videos):
    names = ["a.mp4", "empty.mp4", "b.mp4", "missing.mp4", "d.mp4"]
    batches = [[0, 1], [2, 3], [4]]
    out = _run(videos, names, batches, workers=2)
    assert [b["end"] for b in out] == [2, 4, 5]
    assert [b["pos"] for b in out] == [[0], [2], [4]]
    assert [[(p, r.split(" (")[0]) for p, r in b["failed"]] for b in out] == [
        [(1, "empty file")], [(3, "file not found")], []
    ]
    assert [_which(b["frames"]) for b in out] == [[0], [1], [3]]
    in_process = _run(videos, names, batches, workers=0)
    for a, b in zip(out, in_process):
        assert a["pos"] == b["pos"] and a["failed"] == b["failed"] and np.array_equal(a["frames"], b["frames"])


@pytest.mark.parametrize("workers", [1, 2])
def test_a_worker_that_dies_fails_its_clip_and_decoding_goes_on(videos, workers):
    names = ["a.mp4", "b.mp4", CRASH, "d.mp4", "e.mp4", CRASH]
    batches = [[0, 1, 2], [3, 4, 5]]
    for _ in range(2):  # a rerun meets the same file and goes on the same way
        out = _run(videos, names, batches, workers=workers, decode=crashing_decoder)
        assert [b["pos"] for b in out] == [[0, 1], [3, 4]]
        assert [b["failed"] for b in out] == [[(2, "decoder process died with SIGSEGV")],
                                              [(5, "decoder process died with SIGSEGV")]]
        assert [_which(b["frames"]) for b in out] == [[0, 1], [3, 4]]


def test_extraction_records_the_crash_and_finishes(tmp_path, monkeypatch):
    bench = make_bench(tmp_path / "world", {"train": 4})
    monkeypatch.setattr(pipeline, "decode_batches", partial(decode_batches, decode=crashing_decoder))
    crashed = {"split": "train", "id": "t1", "video": "t1.mp4", "reason": "decoder process died with SIGSEGV"}
    for overwrite in (False, True):  # a fresh run over the same files meets the same crash and finishes too
        result = pipeline.extract(*bench, tmp_path / "cache", FakeBackbone(), frames=4, batch_size=2, workers=2,
                                  shard_size=2, overwrite=overwrite)
        assert result.complete and result.clips == 3 and result.failed == [crashed]
        cache = Cache(tmp_path / "cache")
        assert list(cache.read_split("train", fields=["id"])["id"]) == ["t0", "t2", "t3"]
        assert cache.manifest["failed"] == [crashed]


def test_a_bug_in_a_worker_is_raised_not_recorded(videos):
    with pytest.raises(RuntimeError, match="KeyError: 'a bug, not a bad video'"):
        _run(videos, ["a.mp4"], [[0]], workers=1, decode=buggy_decoder)


def test_death_reasons():
    assert death_reason(-signal.SIGSEGV) == "decoder process died with SIGSEGV"
    assert death_reason(-signal.SIGKILL) == "decoder process died with SIGKILL"
    assert death_reason(3) == "decoder process exited with code 3"


def _decode_dropping_interrupts(path, **kwargs):
    """read_frames that, like PyAV inside FFmpeg's callbacks, runs the SIGINT handler and drops what it raises."""
    try:
        signal.raise_signal(signal.SIGINT)
    except KeyboardInterrupt:
        pass
    return read_frames(path, **kwargs)


def test_a_ctrl_c_that_the_decoder_drops_still_stops_in_process_decoding(videos):
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in `paxion extract`
    try:
        with pytest.raises(KeyboardInterrupt):
            _run(videos, ["a.mp4", "b.mp4"], [[0], [1]], workers=0, decode=_decode_dropping_interrupts)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back after the clip
        abandoned = decode_batches(_clips(["a.mp4", "b.mp4"]), [[0], [1]], videos, num_frames=2, size=8, workers=0)
        next(abandoned)  # a run stopped between batches (an error elsewhere) leaves no handler of its own behind
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a run started with Ctrl-C ignored (a background job) goes on
        assert len(_run(videos, ["a.mp4", "b.mp4"], [[0], [1]], workers=0, decode=_decode_dropping_interrupts)) == 2
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
