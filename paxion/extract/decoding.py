"""Decode the clips of an extraction in worker processes, batch by batch, in order.

A worker that dies on a clip (a crash inside a native decoder, the out-of-memory killer) fails that clip with
the signal as its reason and is replaced; the run goes on, and a rerun fails the same clip the same way.
"""

from __future__ import annotations

import functools
import multiprocessing
import queue
import signal
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection, wait
from pathlib import Path

import numpy as np

from paxion.bench.videos import find_video
from paxion.errors import VideoDecodeError
from paxion.extract.video import read_frames

Decode = Callable[..., np.ndarray]  # read_frames(path, *, num_frames, size, start, end)
AHEAD = 2  # batches decoded ahead of the one the caller is using


def _decode_one(
    decode: Decode, videos: Path, clip: dict, num_frames: int, size: int
) -> tuple[np.ndarray | None, str | None]:
    """(frames, None) for a good clip, (None, reason) for a bad video."""
    try:
        path = find_video(videos, clip) or videos / clip["video"]
        with _signals_kept():
            frames = decode(path, num_frames=num_frames, size=size, start=clip.get("start"), end=clip.get("end"))
    except VideoDecodeError as exc:
        return None, exc.reason
    return frames, None


@contextmanager
def _signals_kept() -> Iterator[None]:
    """Re-raise, at the end of the block, what the SIGINT handler raised inside it. PyAV runs Python's signal
    handlers inside FFmpeg's callbacks and drops the KeyboardInterrupt they raise (in a loop of decodes interrupted
    at random times, 5 of 600 Ctrl-Cs vanished), so the handler is wrapped for the block and put back after it.
    Only in the main thread and for a Python handler (SIGINT ignored stays ignored)."""
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous) or threading.current_thread() is not threading.main_thread():
        yield
        return
    raised: list[BaseException] = []

    def noted(signum: int, frame: object) -> None:
        try:
            previous(signum, frame)
        except BaseException as exc:
            raised.append(exc)
            raise

    signal.signal(signal.SIGINT, noted)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if raised:
        raise raised[0]


def _collate(items: list[tuple[int, np.ndarray | None, str | None]]) -> dict:
    """One batch: `end` (one past its last position), good positions, their frames stacked [B, T, H, W, 3] (None
    when no clip decoded) and (position, reason) of the failed ones."""
    good = [(i, f) for i, f, _ in items if f is not None]
    return {
        "end": items[-1][0] + 1,
        "pos": [i for i, _ in good],
        "frames": np.stack([f for _, f in good]) if good else None,
        "failed": [(i, reason) for i, f, reason in items if f is None],
    }


def _serve(conn: Connection, videos: Path, num_frames: int, size: int, decode: Decode) -> None:
    """Worker loop: receive (position, clip), send back (position, frames, reason, error text of a bug)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the parent closes us
    while True:
        try:
            task = conn.recv()
        except EOFError:  # the parent is gone
            return
        if task is None:
            return
        pos, clip = task
        try:
            conn.send((pos, *_decode_one(decode, videos, clip, num_frames, size), None))
        except Exception:  # noqa: BLE001 - a bug, not a bad video: the parent raises it
            conn.send((pos, None, None, traceback.format_exc()))


def _worker_context() -> multiprocessing.context.BaseContext:
    """Workers forked from a clean server process that has imported this module but never decoded a video.

    A child forked straight from the caller can deadlock on locks held by the caller's FFmpeg threads (seen with
    PyAV 19 / torch 2.11 after the caller had decoded or encoded video); spawning avoids that but re-imports the
    modules in every worker. This module does not import torch, so the server starts fast.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def death_reason(exitcode: int | None) -> str:
    """The failure reason of a clip whose worker process ended with `exitcode` (negative: killed by a signal)."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"decoder process died with {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"decoder process died with signal {-exitcode}"
    return f"decoder process exited with code {exitcode}"


class _Worker:
    def __init__(self, context: multiprocessing.context.BaseContext, args: tuple) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, *args), daemon=True)
        self.process.start()
        child.close()
        self.task: int | None = None

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class _Pool:
    """A thread that keeps `workers` processes busy on the clips of the next batches and queues finished batches."""

    def __init__(self, clips: list[dict], batches: list[list[int]], args: tuple, workers: int) -> None:
        self.clips, self.batches, self.args = clips, batches, args
        self.context = _worker_context()
        self.workers = [_Worker(self.context, args) for _ in range(workers)]
        self.out: queue.Queue = queue.Queue(maxsize=AHEAD)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="paxion-decode", daemon=True)
        self.thread.start()

    def _put(self, item: object) -> bool:
        while not self.stopping.is_set():
            try:
                self.out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _collect(self, worker: _Worker, results: dict) -> None:
        """Take the worker's result, or record its clip as failed and replace it when it died."""
        try:
            if worker.conn.poll():
                pos, frames, reason, bug = worker.conn.recv()
                if bug is not None:
                    raise RuntimeError(f"decoding {self.clips[pos]['video']} failed in a worker:\n{bug}")
                results[pos] = frames, reason
                worker.task = None
                return
        except (EOFError, OSError):
            pass
        if worker.process.is_alive():
            return
        worker.process.join()
        results[worker.task] = None, death_reason(worker.process.exitcode)
        self._replace(worker)

    def _replace(self, worker: _Worker) -> _Worker:
        worker.conn.close()
        fresh = _Worker(self.context, self.args)
        self.workers[self.workers.index(worker)] = fresh
        return fresh

    def _send(self, worker: _Worker, pos: int) -> None:
        """Give clip `pos` to an idle worker, or to a fresh one if this one died while idle."""
        try:
            worker.conn.send((pos, self.clips[pos]))
        except OSError:
            worker.process.join()
            worker = self._replace(worker)
            worker.conn.send((pos, self.clips[pos]))
        worker.task = pos

    def _run(self) -> None:
        try:
            order = [p for batch in self.batches for p in batch]
            batch_of = {p: b for b, batch in enumerate(self.batches) for p in batch}
            sent, results, emitted = 0, {}, 0
            while emitted < len(self.batches) and not self.stopping.is_set():
                for worker in list(self.workers):
                    if worker.task is None and sent < len(order) and batch_of[order[sent]] < emitted + AHEAD:
                        self._send(worker, order[sent])
                        sent += 1
                busy = [w for w in self.workers if w.task is not None]
                ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=0.1)
                for worker in busy:
                    if worker.conn in ready or worker.process.sentinel in ready:
                        self._collect(worker, results)
                while emitted < len(self.batches) and all(p in results for p in self.batches[emitted]):
                    batch = self.batches[emitted]
                    if not self._put(_collate([(p, *results.pop(p)) for p in batch])):
                        return
                    emitted += 1
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self._put(exc)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join()
        for worker in self.workers:
            worker.stop()


def decode_batches(
    clips: list[dict],
    batches: list[list[int]],
    videos: Path,
    *,
    num_frames: int,
    size: int,
    crop: bool = False,
    workers: int = 2,
    decode: Decode = read_frames,
) -> Iterator[dict]:
    """Decode `clips` (bench records) in the order of `batches` (lists of positions) and yield one dict per batch.

    Each dict has `end` (one past the batch's last position), `pos` (positions that decoded), `frames` uint8
    [B, T, size, size, 3] (squashed, or with `crop` centre squares, see `read_frames`) or None, and `failed`: (position, reason) for clips whose video could not be decoded,
    including "decoder process died with SIGSEGV" when the worker decoding it died. `workers=0` decodes in the
    calling process (no protection against crashes). `decode` is `read_frames` or a stand-in with its signature.
    Raises RuntimeError when decoding fails for another reason than a bad video (a bug).
    """
    decode = functools.partial(decode, crop=True) if crop else decode
    if workers == 0:
        for batch in batches:
            yield _collate([(p, *_decode_one(decode, videos, clips[p], num_frames, size)) for p in batch])
        return
    pool = _Pool(clips, batches, (videos, num_frames, size, decode), workers)
    try:
        for _ in batches:
            item = pool.out.get()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        pool.close()
