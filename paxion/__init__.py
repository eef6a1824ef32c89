"""paxion: patch action knowledge into frozen video-language models from a feature cache.

The public API, what a notebook needs for the study of the paper (each name is imported on first use, so
`import paxion` stays light):

    from paxion import read_dataset, build_bench, load_backbone, Cache
    from paxion import TrainConfig, train, load_scorer, actionbench, run_task
    from paxion.extract.pipeline import extract   # (`paxion.extract` is the subpackage)

    annotations = read_dataset("ssv2", "ssv2/labels", videos="ssv2/videos")
    build_bench(annotations, "bench")                                  # ActionBench texts (§3.1)
    extract("bench", "ssv2/videos", "cache", load_backbone("hf-clip:openai/clip-vit-base-patch16"))
    cache = Cache("cache")
    actionbench(cache, load_scorer(cache, None))                       # the frozen backbone (Table 1)
    train("cache", "runs/kp", options={"objective": "vtc+dvdm"})       # Knowledge Patcher + DVDM (§3.2)
    actionbench(cache, load_scorer(cache, "runs/kp"))
    run_task(cache, load_scorer(cache, "runs/kp"), "template")         # retrieval (Table 2)
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it
_API = {
    "read_dataset": "paxion.bench.readers",
    "build_bench": "paxion.bench.build",
    "read_bench": "paxion.bench.files",
    "action_antonym": "paxion.bench.antonyms",
    "load_backbone": "paxion.extract.backbones.registry",
    "read_frames": "paxion.extract.video",
    "Cache": "paxion.cache.reader",
    "CacheLoader": "paxion.cache.loader",
    "verify_cache": "paxion.cache.verify",
    "TrainConfig": "paxion.trainer.config",
    "train": "paxion.trainer.train",
    "build_model": "paxion.models.patched",
    "load_model": "paxion.models.patched",
    "PatchedModel": "paxion.models.patched",
    "load_scorer": "paxion.scoring",
    "encode_split": "paxion.scoring",
    "actionbench": "paxion.trainer.evaluate",
    "run_task": "paxion.retrieval.tasks",
    "write_world": "paxion.synth.world",
    "PaxionError": "paxion.errors",
}

__all__ = list(_API)


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (PEP 562)."""
    if name not in _API:
        raise AttributeError(f"module 'paxion' has no attribute {name!r}")
    value = getattr(import_module(_API[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
