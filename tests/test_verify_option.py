"""`--verify` on train / eval / retrieve: a shard whose bytes changed after extraction (same size, so a plain open
cannot tell) is refused in one line before any number is computed; without it the cheap checks let it through."""

from __future__ import annotations

import sys

import h5py
import pytest
from tiny_cache import make_cache

from paxion import cli as cli_module
from paxion.cache.manifest import shard_file


def _flip_token_byte(root, split: str) -> str:
    """Flip one byte inside the first shard's tokens of `split`; returns the shard's file name."""
    name = shard_file(split, 0)
    with h5py.File(root / name, "r") as f:
        offset = f["tokens"].id.get_offset()
    with open(root / name, "r+b") as f:
        f.seek(offset + 101)
        byte = f.read(1)
        f.seek(offset + 101)
        f.write(bytes([byte[0] ^ 0x40]))
    return name


def _cache(tmp_path):
    return make_cache(tmp_path / "cache", clips={"train": 64, "validation": 32})


def _run(monkeypatch, capsys, *args) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["paxion", *args])
    with pytest.raises(SystemExit) as exit_info:
        cli_module.main()
    return exit_info.value.code, capsys.readouterr().err


@pytest.mark.parametrize("command", [
    ["eval", "--backbone-only"],
    ["retrieve", "--task", "label"],
    ["train", "--out", "RUN", "--epochs", "1", "--batch-size", "16"],  # reads the train split first
])
def test_verify_refuses_a_shard_changed_after_extraction(tmp_path, monkeypatch, capsys, command):
    root = _cache(tmp_path)
    shard = _flip_token_byte(root, "train" if command[0] == "train" else "validation")
    command = [str(tmp_path / "run") if part == "RUN" else part for part in command]
    code, err = _run(monkeypatch, capsys, *command, "--cache", str(root), "--device", "cpu", "--verify")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error:") and shard in lines[0] and "xxh3" in lines[0].lower()


def test_without_verify_the_same_cache_opens(tmp_path, monkeypatch, capsys):
    root = _cache(tmp_path)
    _flip_token_byte(root, "validation")
    monkeypatch.setattr(sys, "argv", ["paxion", "eval", "--backbone-only", "--cache", str(root), "--device", "cpu"])
    cli_module.main()  # sizes and layout still match: only the hash can tell
    assert "Action Antonym" in capsys.readouterr().out
