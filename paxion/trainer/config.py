"""Everything a training run depends on, in one dataclass with two presets: the paper's and the built-in world's.

Each field's metadata gives its help text, where its paper value comes from ("source"), and, where the built-in
world differs, that value ("world") and why ("world_why"). The CLI builds `paxion train`'s options from it, and
every run saves the whole config (config.json, checkpoint.pt, model.pt), which rebuilds the model on load.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from paxion.cache.loader import DEFAULT_MEMORY_BUDGET
from paxion.errors import PaxionError
from paxion.models.patched import MODEL_KINDS, patcher_option_names
from paxion.trainer.losses import OBJECTIVES

SCHEDULES = ("constant", "cosine")
TEXT_KEYS = {"label": "caption_idx", "template": "template_idx"}

OFFICIAL = "official code"
# The built-in world is tiny (a few thousand clips, a few hundred captions): one epoch at 1e-5 barely moves the
# patcher. 12 epochs at 2e-3 with cosine decay stand in for the paper's one pass over a large dataset: on the demo
# world KP-Perceiver [VTC+DVDM] reaches AA/VR 94/93 while [VTC] stays at 82/82; trained 3x longer, VTC alone also
# learns this clean world's time (92 at 20 epochs), so a longer default would hide the finding.
WORLD_STEPS = "built-in world: tiny, so more and larger steps stand in for one pass over a large dataset"
# The toy backbone's frame embeddings ignore where an object is, so Appendix C's saliency test marks most moving-
# object clips as static, while the world's truly static clips (holding, shaking) are only 3%.
WORLD_SALIENCY = "built-in world: the toy backbone's frames ignore position, so Appendix C's test misfires"
# Patcher sizes for the world's 96-wide toy tokens: 4 x 32 attention (the paper's 8 x 64 suits 768-1024-wide tokens)
# and position embeddings started near the tokens' unit scale, so that time and place count at once; the token
# position embedding gives the toy tokens the place that motion actions need.
WORLD_PATCHER = "built-in world: sized for its 96-wide toy tokens"


_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
          "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}


def parse_bytes(text: str | int) -> int:
    """Parse a size such as "2GB", "512MiB" or "1000000" into a number of bytes."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    if match is None or match.group(2).lower() not in _UNITS:
        raise PaxionError(f"not a size: {text!r} (use e.g. 2GB, 512MiB or a number of bytes)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def _field(default: Any, help: str, source: str, *, world: Any = dataclasses.MISSING, world_why: str = "",
           choices: tuple | None = None, minimum: float | None = None, open_minimum: bool = False,
           resumable: bool = False, shown: str | None = None) -> Any:
    """A config field with its documentation; `resumable` fields may change when a run is resumed; `shown` is the
    default as the help writes it."""
    metadata = {"help": help, "source": source, "choices": choices, "minimum": minimum,
                "open_minimum": open_minimum, "resumable": resumable, "shown": shown}
    if world is not dataclasses.MISSING:
        metadata |= {"world": world, "world_why": world_why}
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class TrainConfig:
    """The settings of one training run. The class defaults are the paper preset (the official code's values).

    Build one with `TrainConfig.paper(**changes)` or `TrainConfig.builtin_world(**changes)`; `field_help(name)`
    documents every field. `batch_size` is the global batch (split over torchrun processes).
    """

    model: str = _field("kp-perceiver", "kp-* = a Knowledge Patcher alone; paxion = KP-Perceiver + Knowledge Fuser; "
                        "side-tuning = KP-Perceiver + Side-Tuning.", "paper Table 1", choices=MODEL_KINDS)
    objective: str = _field("vtc+dvdm", "vtc = video-text contrastive only; vtc+dvdm adds VAC (antonym captions) "
                            "and ATM (reversal); mc = softmax over each question's candidates (NExT-QA cache); "
                            "mc+vac adds the candidates' answer antonyms as negatives (no ATM).",
                            "paper §3.1; mc: App. D.3", choices=OBJECTIVES)
    text: str = _field("label", "Train on the clip's caption (label) or its object-hidden template; template turns "
                       "VAC off.", "paper Table 7", choices=tuple(TEXT_KEYS))
    init: str | None = _field(None, "Start the patcher from this run's model (its patcher kind must match; its "
                              "patcher options become this run's), e.g. paxion from a KP-Perceiver run.",
                              "paper §3.2")
    epochs: int = _field(1, "Passes over the training split.", OFFICIAL + " (max_epoch 1; paper App. D)",
                         world=12, world_why=WORLD_STEPS, minimum=1)
    batch_size: int = _field(64, "Global batch: the in-batch negatives, split over torchrun processes.",
                             OFFICIAL + ": 32 per GPU on 2 GPUs, features gathered", minimum=1)
    lr: float = _field(1e-5, "AdamW learning rate.", OFFICIAL + " (paper App. D)", world=2e-3, world_why=WORLD_STEPS,
                       minimum=0, open_minimum=True)
    weight_decay: float = _field(0.05, "AdamW weight decay.", OFFICIAL + " (paper App. D)", minimum=0)
    schedule: str = _field("constant", "Learning-rate factor per step after the warm-up: constant, or cosine "
                           "decay to 0 at the last step.", OFFICIAL + ": LAVIS linear_warmup_cosine_lr steps per "
                           "epoch, so a one-epoch run keeps 1e-5 throughout", world="cosine", world_why=WORLD_STEPS, choices=SCHEDULES)
    warmup: float = _field(0.0, "Linear warm-up from 0: a fraction of all steps when below 1, else a step count.",
                           OFFICIAL + " (no warmup_steps set)", minimum=0)
    label_smoothing: float = _field(0.1, "Label smoothing of every cross-entropy.", OFFICIAL, minimum=0)
    atm_weight: float = _field(0.4, "Weight of the ATM loss in vtc+dvdm.", OFFICIAL + " (loss weighting 1, 1, 0.4)",
                               minimum=0)
    vac: bool = _field(True, "VAC: antonym captions as extra negatives in vtc+dvdm.", "paper §3.1")
    saliency: bool = _field(True, "ATM only on clips with a salient state change, or on every clip.",
                            "paper App. C", world=False, world_why=WORLD_SALIENCY)
    seed: int = _field(0, "Seed of the initial weights and the batch order.", "ours")
    split: str = _field("train", "Cache split to train on.", "ours")
    eval_split: str | None = _field("validation", "Split scored on ActionBench at the end (skipped when the cache "
                                    "lacks it, or 'none').", "ours", resumable=True)
    eval_every_epoch: bool = _field(False, "Also score ActionBench on eval_split after every epoch and append "
                                    '{"epoch", "aa", "vr", "or"} (percent) to metrics.jsonl: a learning curve.',
                                    "ours", resumable=True)
    memory_budget: int = _field(DEFAULT_MEMORY_BUDGET, "A split whose features fit this size (e.g. 512MB, 8GiB; "
                                "counted as stored: fp16 tokens 2 bytes a value, int8 ones 1 byte plus their scales) "
                                "stays resident on the device; a larger one is streamed shard by shard.", "ours",
                                minimum=1, resumable=True, shown="2GB")
    num_latents: int = _field(16, "Learned latents of the Perceiver patcher.", OFFICIAL + " (paper §3.1)", minimum=1)
    heads: int = _field(8, "Attention heads of the patcher.", OFFICIAL, world=4, world_why=WORLD_PATCHER, minimum=1)
    dim_head: int = _field(64, "Width of each Perceiver attention head.", OFFICIAL, world=32,
                           world_why=WORLD_PATCHER, minimum=1)
    ff_mult: int = _field(2, "Feed-forward hidden width as a multiple of the width.", OFFICIAL, minimum=1)
    time_pos_emb: bool = _field(True, "Add a learned embedding per frame to its tokens.", OFFICIAL)
    token_pos_emb: bool = _field(False, "Add a learned embedding per token position within a frame (Perceiver).",
                                 OFFICIAL + " (none)", world=True,
                                 world_why="built-in world: its toy tokens carry little place, which motion needs")
    embedding_std: float = _field(0.02, "Initial std of the position embeddings.", "ours (the usual ViT value)",
                                  world=0.5, world_why=WORLD_PATCHER, minimum=0)
    time_pos_dropout: float = _field(0.1, "Dropout on the per-frame embedding while training.",
                                     OFFICIAL + " (temp_emb_drop_out)", world=0.0,
                                     world_why="built-in world: its demo was tuned without it",
                                     minimum=0)

    @classmethod
    def paper(cls, **changes: Any) -> TrainConfig:
        """The official code's settings (DESIGN.md §5, §9), with `changes` applied."""
        return dataclasses.replace(cls(), **changes)

    @classmethod
    def builtin_world(cls, **changes: Any) -> TrainConfig:
        """The settings the built-in world's demo trains with, with `changes` applied."""
        world = {f.name: f.metadata["world"] for f in dataclasses.fields(cls) if "world" in f.metadata}
        return dataclasses.replace(cls(), **(world | changes))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """The config saved as a dict (config.json holds run facts too: they are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        missing = names - set(data)
        if missing:
            raise PaxionError(f"a saved training config lacks {', '.join(sorted(missing))}; retrain the run")
        return cls(**{name: data[name] for name in names})

    def to_dict(self) -> dict[str, Any]:
        """Every field, as saved with a run."""
        return dataclasses.asdict(self)

    def model_options(self) -> dict[str, Any]:
        """The patcher options of this config's model kind."""
        return {name: getattr(self, name) for name in patcher_option_names(self.model)}

    def result_fields(self) -> dict[str, Any]:
        """The fields that change the trained weights: a resumed run must agree on all of them."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.metadata["resumable"]}

    def check(self, splits: list[str]) -> None:
        """PaxionError naming the first bad value (a choice, a bound, or a split the cache lacks)."""
        for f in dataclasses.fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if meta["choices"] is not None and value not in meta["choices"]:
                raise PaxionError(f"unknown {f.name} {value!r}; choose one of {', '.join(meta['choices'])}")
            low = meta["minimum"]
            if low is not None and (value < low or (meta["open_minimum"] and value == low)):
                raise PaxionError(f"{f.name} must be {'above' if meta['open_minimum'] else 'at least'} {low}, "
                                  f"got {value}")
        if self.warmup >= 1 and self.warmup != int(self.warmup):
            raise PaxionError(f"warmup is a fraction below 1 or a whole step count, got {self.warmup}")
        if self.split not in splits:
            raise PaxionError(f"the cache has no split {self.split!r} (it has: {', '.join(splits)})")

    def warmup_steps(self, total_steps: int) -> int:
        """The warm-up length in steps for a run of `total_steps`."""
        return round(self.warmup * total_steps) if self.warmup < 1 else int(self.warmup)


def field_help(name: str) -> str:
    """The help of a field with its paper default and source, and the built-in world's value when it differs."""
    f = {f.name: f for f in dataclasses.fields(TrainConfig)}[name]
    text = f"{f.metadata['help']}  [default: {f.metadata['shown'] or _show(f.default)}, {f.metadata['source']}"
    if "world" in f.metadata:
        text += f"; {_show(f.metadata['world'])} on the {f.metadata['world_why']}"
    return text + "]"


def _show(value: Any) -> str:
    """A value as the help writes it: none, true / false, floats in short form."""
    if value is None or isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)


def resolve_config(*, builtin_world: bool, given: Mapping[str, Any], init_config: Mapping[str, Any] | None = None
                   ) -> TrainConfig:
    """The run's config: the cache's preset, then the --init run's patcher options, then what the caller gave.

    given: the field values the caller sets (leave out what is not given); an unknown name raises PaxionError. An
    option given always wins, even a patcher option that makes --init's weights not fit (reported when copying).
    """
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(given) - names
    if unknown:
        raise PaxionError(f"unknown training option(s) {', '.join(sorted(unknown))}")
    config = TrainConfig.builtin_world() if builtin_world else TrainConfig.paper()
    if init_config is not None:
        kind = given.get("model") or config.model
        config = dataclasses.replace(config, **{k: init_config[k] for k in patcher_option_names(kind)
                                                if k in init_config})
    return dataclasses.replace(config, **given)
