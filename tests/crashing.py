"""Stand-in decoders for the decoding-worker tests, in a module light enough for every worker to import."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from paxion.extract.video import read_frames

CRASH_ON = ("crash.mp4", "t1.mp4")


def crashing_decoder(path, **kwargs):
    """read_frames, except that the process segfaults on the files named in CRASH_ON, as a native decoder bug would."""
    if Path(path).name in CRASH_ON:
        os.kill(os.getpid(), signal.SIGSEGV)
    return read_frames(path, **kwargs)


def buggy_decoder(path, **kwargs):
    raise KeyError("a bug, not a bad video")
