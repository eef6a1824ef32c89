"""Choosing the torch device from the `--device auto|cpu|cuda` option."""

from __future__ import annotations

import os

import torch

from paxion.errors import PaxionError


def resolve_device(name: str | torch.device) -> torch.device:
    """"auto" -> CUDA when available, else CPU; "cuda" -> the process's GPU under torchrun (LOCAL_RANK)."""
    name = str(name)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise PaxionError("--device cuda asked for, but no CUDA device is available")
    if name == "cuda" and "LOCAL_RANK" in os.environ:
        name = f"cuda:{os.environ['LOCAL_RANK']}"
    return torch.device(name)
