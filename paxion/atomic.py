"""Atomic file writes: the one way this package replaces a file, so a crash never leaves half of one.

A file is written under a temporary name in the target's folder that is unique to this host, process and a
random part (process ids repeat across containers and machines sharing a file system), flushed and fsynced,
then renamed over the target; the folder is fsynced too so the rename itself survives a power loss.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from paxion.errors import PaxionError

TMP_MARK = ".tmp-"  # every temporary name contains this, so cleanup and `cache verify` can recognise them


def temporary_name(path: str | Path) -> Path:
    """A sibling of `path` named `{name}.tmp-{host}-{pid}-{random}`, unique across hosts and processes."""
    path = Path(path)
    host = socket.gethostname().replace(os.sep, "_") or "host"
    return path.with_name(f"{path.name}{TMP_MARK}{host}-{os.getpid()}-{secrets.token_hex(4)}")


def fsync_dir(folder: str | Path) -> None:
    """Flush a folder's entries (a rename) to disk; a no-op where the platform cannot open folders."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_file(path: str | Path) -> None:
    """Flush a closed file's bytes to disk (for files written by another library, e.g. h5py or torch)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(path: str | Path) -> Path:
    """Create the folder `path` and its parents unless it exists; returns it as a Path.

    Raises PaxionError naming the folder and the cause (a file in the way, no permission, disk full).
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PaxionError(f"{path}: cannot create the folder ({exc.strerror or exc})") from None
    return path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is fsynced and renamed to `path`, on error removed.

    Raises PaxionError naming the file and the cause when the environment fails (disk full, no permission).
    """
    path = Path(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        _discard(tmp)
        raise PaxionError(f"{path}: cannot write ({exc.strerror or exc})") from None
    except BaseException:
        _discard(tmp)
        raise


def _discard(tmp: Path) -> None:
    """Remove a temporary file if there is one (its folder may be missing or be a file)."""
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        pass


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp_path)` and move the result to `path` atomically (see `atomic_path`)."""
    with atomic_path(path) as tmp:
        write(tmp)


def write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 text to `path` atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, obj: Any, *, indent: int = 2) -> None:
    """Write `obj` as JSON (UTF-8, sorted keys, trailing newline) to `path` atomically."""
    write_text(path, json.dumps(obj, indent=indent, sort_keys=True, ensure_ascii=False) + "\n")


def save_torch(path: str | Path, obj: Any) -> None:
    """`torch.save(obj)` to `path` atomically.

    The object is serialised in memory first: torch's file writer reports a failed write (a full disk) as an opaque
    RuntimeError, a plain write gives the OSError that says why.
    """
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write(path, lambda tmp: tmp.write_bytes(buffer.getbuffer()))


def remove_stale_temporaries(path: Path) -> None:
    """Delete the temporaries of `path` (`temporary_name`) left by processes of this host that are
    gone (killed mid-write); those of live processes and of other hosts stay."""
    this_host = temporary_name(path).name.rsplit("-", 2)[0]  # "{name}.tmp-{host}"
    for tmp in path.parent.glob(f"{this_host}-*"):
        try:
            os.kill(int(tmp.name[len(this_host) + 1 :].split("-")[0]), 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except (OSError, ValueError):  # alive (another user's), or not a name temporary_name makes
            pass
