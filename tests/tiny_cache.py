"""A tiny feature cache with a temporal signal, written straight with the cache writer (no videos, no backbone).

A frame-wise "backbone": each clip's tokens are its object's vector plus its action's direction vector
times a ramp over the frames, forward or backward by the action. The pooled embedding is the mean over
frames, where the ramp cancels: the backbone sees the object but not the direction of the action, so its
Action Antonym accuracy is near chance and Video Reversal is all ties, while the tokens hold the answer.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from paxion.cache.manifest import SCHEMA_VERSION, shard_file, write_manifest
from paxion.cache.writer import ShardWriter, write_texts

FRAMES, TOKENS, DIM = 4, 2, 16
OBJECTS, PAIRS = 3, 2  # actions 2p and 2p + 1 are reversals of each other


def _caption(action: int, obj: int) -> str:
    return f"action {action} on object {obj}"


def _mc_fields(action: np.ndarray, obj: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Five shuffled candidates a clip (the four actions on its object, its action on the next object), the answer's
    position, and each candidate's antonym (the partner action): -1 for the next-object one on odd clips."""
    rng = np.random.default_rng([seed, 1])  # apart from the features' stream, so mc=False caches stay as they were
    n = len(action)
    cand_action = np.concatenate([np.tile(np.arange(2 * PAIRS), (n, 1)), action[:, None]], axis=1)
    cand_obj = np.concatenate([np.tile(obj[:, None], (1, 2 * PAIRS)), ((obj + 1) % OBJECTS)[:, None]], axis=1)
    order = np.argsort(rng.random(cand_action.shape), axis=1)
    cand_action, cand_obj = np.take_along_axis(cand_action, order, 1), np.take_along_axis(cand_obj, order, 1)
    antonyms = (cand_action ^ 1) * OBJECTS + cand_obj
    antonyms[(cand_obj != obj[:, None]) & (np.arange(n) % 2 == 1)[:, None]] = -1
    answer = np.argmax((cand_action == action[:, None]) & (cand_obj == obj[:, None]), axis=1)
    return {"mc_idx": (cand_action * OBJECTS + cand_obj).astype(np.int32), "mc_answer": answer.astype(np.int32),
            "mc_aa_idx": antonyms.astype(np.int32)}


def make_cache(root: str | Path, *, clips: dict[str, int] | None = None, shard_size: int = 48, seed: int = 0,
               builtin_world: bool = False, mc: bool = False) -> Path:
    """Write the cache under `root` (default 192 train / 96 validation clips) and return its path; `mc` adds
    multiple-choice fields (mc_idx, mc_answer, mc_aa_idx) as a NExT-QA cache has."""
    clips = clips or {"train": 192, "validation": 96}
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    obj_vec = rng.normal(size=(OBJECTS, DIM))
    dir_vec = rng.normal(size=(PAIRS, DIM))
    actions = 2 * PAIRS
    texts = [_caption(a, o) for a in range(actions) for o in range(OBJECTS)] + [f"template {a}" for a in range(actions)]
    act_emb = rng.normal(size=(actions, DIM))
    emb = np.concatenate([(act_emb[:, None] + obj_vec[None]).reshape(-1, DIM), act_emb]).astype(np.float32)
    texts_record = write_texts(root / "texts.h5", texts, emb)
    ramp = np.linspace(-1.0, 1.0, FRAMES)
    splits = {}
    for split, n in clips.items():
        action = rng.integers(0, actions, size=n)
        obj = rng.integers(0, OBJECTS, size=n)
        sign = np.where(action % 2 == 0, 1.0, -1.0)
        tokens = (obj_vec[obj][:, None, None] + (sign[:, None] * ramp)[:, :, None, None] * dir_vec[action // 2][:, None, None]
                  + 0.3 * rng.normal(size=(n, FRAMES, TOKENS, DIM)))
        frames = tokens.mean(axis=2)
        other = (obj + 1) % OBJECTS
        fields = {
            "id": np.array([f"{split}{i}" for i in range(n)], dtype=object),
            "tokens": tokens.astype(np.float32),
            "pooled": frames.mean(axis=1).astype(np.float32),
            "frames": frames.astype(np.float32),
            "caption_idx": (action * OBJECTS + obj).astype(np.int32),
            "template_idx": (actions * OBJECTS + action).astype(np.int32),
            "aa_idx": ((action ^ 1) * OBJECTS + obj).astype(np.int32),
            "or_idx": (action * OBJECTS + other).astype(np.int32),
            "label": action.astype(np.int32),
            "class_idx": (actions * OBJECTS + action).astype(np.int32),  # the class is the template
            "delta_vt": np.ones(n, dtype=np.float32),
            "theta_vv": np.zeros(n, dtype=np.float32),
            "salient": rng.random(n) < 0.8,
            "aa_same": np.zeros(n, dtype=bool),
            "or_same": np.zeros(n, dtype=bool),
        }
        if mc:
            fields |= _mc_fields(action, obj, seed)
        shards = []
        for k, start in enumerate(range(0, n, shard_size)):
            writer = ShardWriter(root / shard_file(split, k), capacity=min(shard_size, n - start))
            writer.append({name: a[start:start + shard_size] for name, a in fields.items()})
            shards.append(writer.finish())
        splits[split] = {"clips": n, "shards": shards, "captions_cut": 0, "aa_same": 0, "or_same": 0,
                         "salient": int(fields["salient"].sum())}
    backbone = {"name": "fake-framewise", "config_hash": f"fake{seed}", "temporal": False, "embed_dim": DIM,
                "token_dim": DIM, "tokens_per_frame": TOKENS, "num_params": 1_000_000}
    write_manifest(root, {
        "schema_version": SCHEMA_VERSION, "backbone": backbone, "frames": FRAMES, "token_dtype": "fp16",
        "saliency": {"delta_vt": 0.003, "theta_vv": 0.95, "backbone": None},
        "bench": {"dataset": "tiny", "builtin_world": builtin_world, "classes": None, "temporal_classes": None},
        "texts": texts_record, "files": {}, "splits": splits, "failed": []})
    return root


def replace_shard(root: str | Path, split: str, k: int, fields: dict[str, np.ndarray]) -> None:
    """Rewrite shard k of a split with `fields` (e.g. its own fields plus NExT-QA's mc_idx / mc_answer) and
    update its record in the manifest."""
    root = Path(root)
    writer = ShardWriter(root / shard_file(split, k), capacity=len(fields["id"]))
    writer.append(fields)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["splits"][split]["shards"][k] = writer.finish()
    write_manifest(root, manifest)
