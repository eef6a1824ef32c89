"""Time `paxion synth`: rendering + encoding a 2,000-clip world (target: under a minute on 2 cores), and decoding.

Run: python benchmarks/bench_synth.py [--clips 2000] [--sample 200] [--workers N] [--tiny]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _tiny import parse_args

from paxion.extract.video import read_frames
from paxion.synth.encode import write_video
from paxion.synth.render import render_clip
from paxion.synth.world import sample_world, video_path, write_world


def main() -> None:
    """Print clips/s for the whole world, and per-clip render, encode and decode CPU costs."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--sample", type=int, default=200, help="clips timed one by one (at most --clips)")
    args = parse_args(parser, {"clips": 8, "sample": 4, "workers": 1})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "world"
        summary = write_world(root, train=args.clips, val=0, seed=0, workers=args.workers)
        print(f"world: {args.clips} clips in {summary.seconds:.1f} s = {args.clips / summary.seconds:.0f} clips/s "
              f"({args.workers or os.cpu_count()} workers, {summary.video_bytes / args.clips / 1e3:.1f} kB/clip)")
        sample = sample_world(train=min(args.sample, args.clips), val=0, seed=0)
        start = time.process_time()
        rendered = [render_clip(clip.template, clip.params) for clip in sample]
        render_ms = (time.process_time() - start) / len(sample) * 1e3
        start = time.process_time()
        for clip, frames in zip(sample, rendered):
            write_video(Path(tmp) / f"{clip.id}.mp4", frames)
        encode_ms = (time.process_time() - start) / len(sample) * 1e3
        # CPU time does not depend on how busy a shared machine is; wall time above does
        print(f"render {render_ms:.2f} + encode {encode_ms:.2f} ms CPU per clip -> "
              f"{2000 / (render_ms + encode_ms):.0f} clips/s on 2 idle cores")
        start = time.process_time()
        for clip in sample:
            read_frames(video_path(root, clip.id), num_frames=8)
        print(f"read_frames (8 of 16 frames, 64x64): {(time.process_time() - start) / len(sample) * 1e3:.2f} ms CPU "
              f"per clip")


if __name__ == "__main__":
    main()
