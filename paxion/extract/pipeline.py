"""`paxion extract`: decode clips in background workers, run the backbone once, write a resumable cache."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import torch

from paxion.atomic import write_json
from paxion.bench.files import read_bench
from paxion.cache.manifest import (
    CONFIG_FILE,
    MANIFEST_FILE,
    PARTS_DIR,
    SCHEMA_VERSION,
    TEXTS_FILE,
    file_hash,
    part_file,
    read_json,
    shard_file,
)
from paxion.cache.writer import TOKEN_DTYPES, ShardWriter, write_texts
from paxion.device import resolve_device
from paxion.errors import CacheError, PaxionError
from paxion.extract.decoding import decode_batches
from paxion.extract.saliency import DELTA_VT, THETA_VV, state_change
from paxion.extract.texts import distinct_texts, encode_texts, text_indices


@dataclass(frozen=True)
class ShardPlan:
    """The clips (bench records, in bench order) that make shard k of a split."""

    split: str
    k: int
    records: list[dict]

    def failure(self, position: int, reason: str) -> dict:
        """The manifest's record of a clip of this shard that could not be decoded."""
        clip = self.records[position]
        return {"split": self.split, "id": clip["id"], "video": clip["video"], "reason": reason}


@dataclass(frozen=True)
class ExtractProgress:
    """Where an extraction stands; passed to the progress callback after every batch and every shard."""

    clips_done: int
    clips_total: int
    shards_done: int
    shards_total: int


@dataclass
class ExtractResult:
    """What one `extract` call did: over the shards this process owns (resumed ones included)."""

    clips: int = 0
    failed: list[dict] = field(default_factory=list)
    shards_written: int = 0
    shards_resumed: int = 0
    complete: bool = False  # every shard of every process is done and manifest.json is written


def work_split(num_shards: int | None = None, shard_index: int | None = None) -> tuple[int, int]:
    """(K, I) from the arguments, else torchrun's WORLD_SIZE / RANK, else (1, 0); this process owns shards g % K == I."""
    k = num_shards if num_shards is not None else int(os.environ.get("WORLD_SIZE", "1"))
    i = shard_index if shard_index is not None else int(os.environ.get("RANK", "0"))
    if k < 1 or not 0 <= i < k:
        raise PaxionError(f"shard index {i} is not in [0, {k}) processes")
    return k, i


def _bench_digest(bench_dir: Path, splits: list[str]) -> str:
    digest = hashlib.sha256()
    for name in ["meta.json", *(f"{s}.jsonl" for s in splits)]:
        digest.update(name.encode() + b"\0" + file_hash(bench_dir / name).encode())
    return digest.hexdigest()


def plan_shards(records: dict[str, list[dict]], shard_size: int) -> list[ShardPlan]:
    """Cut every split, in bench order, into shards of at most `shard_size` clips."""
    return [
        ShardPlan(split, k, rows[start:start + shard_size])
        for split, rows in records.items()
        for k, start in enumerate(range(0, len(rows), shard_size))
    ]


def _batches(plans: list[ShardPlan], batch_size: int) -> list[list[int]]:
    """Batches of positions in the flattened clip list; a batch never spans two shards."""
    out, start = [], 0
    for plan in plans:
        n = len(plan.records)
        out += [list(range(start + b, start + min(b + batch_size, n))) for b in range(0, n, batch_size)]
        start += n
    return out


def backbone_record(backbone: torch.nn.Module) -> dict:
    """The manifest's description of a backbone."""
    return {
        "name": backbone.name, "config_hash": backbone.config_hash(), "temporal": bool(backbone.temporal),
        "embed_dim": backbone.embed_dim, "token_dim": backbone.token_dim,
        "tokens_per_frame": backbone.tokens_per_frame, "num_params": sum(p.numel() for p in backbone.parameters()),
        "logit_scale": float(backbone.logit_scale),
    }


@torch.inference_mode()
def _encode_clips(backbone: torch.nn.Module, frames: np.ndarray, device: torch.device) -> dict[str, np.ndarray]:
    pixels = backbone.preprocess(frames).to(device, non_blocking=True)
    with torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
        views = {"": backbone.encode_video(pixels)}
        if backbone.temporal:
            views["_rev"] = backbone.encode_reversed(pixels, views[""])
    out = {f"{name}{suffix}": t for suffix, feats in views.items() for name, t in feats._asdict().items()}
    if backbone.tokens_symmetric:
        del out["tokens_rev"]  # the reader flips `tokens` (cache.manifest.FLIPPED_FIELDS)
    return {name: t.float().cpu().numpy() for name, t in out.items()}


def _prepare_dir(out: Path, config: dict, *, overwrite: bool) -> None:
    parts = out / PARTS_DIR
    if (parts / CONFIG_FILE).is_file():
        if read_json(parts / CONFIG_FILE) == config:
            return
        if not overwrite:
            raise CacheError(
                f"{out}: holds a cache extracted with another configuration (backbone, frames, dtype, shard size, splits, "
                "bench or cache schema version); use another --out or --overwrite"
            )
    if overwrite:
        shutil.rmtree(parts, ignore_errors=True)
        for path in [out / MANIFEST_FILE, out / TEXTS_FILE, *out.glob("*-[0-9][0-9][0-9][0-9][0-9].h5*")]:
            path.unlink(missing_ok=True)
    parts.mkdir(parents=True, exist_ok=True)
    write_json(parts / CONFIG_FILE, config)


def _text_table(out: Path, backbone: torch.nn.Module, texts: list[str]) -> tuple[dict, np.ndarray]:
    """Reuse texts.h5 when its record shows it complete and intact (another process or an earlier run wrote it),
    else encode and write it."""
    record_path = out / PARTS_DIR / "texts.json"
    if record_path.is_file() and (out / TEXTS_FILE).is_file():
        record = read_json(record_path)
        if record.get("count") == len(texts) and file_hash(out / TEXTS_FILE) == record.get("xxh3_128"):
            with h5py.File(out / TEXTS_FILE, "r") as f:
                return record, f["emb"][()]
    emb = encode_texts(backbone, texts)
    record = write_texts(out / TEXTS_FILE, texts, emb)
    write_json(record_path, record)
    return record, emb


def _done(out: Path, plan: ShardPlan) -> dict | None:
    """The shard's sidecar record if the shard is finished and its file is in place, else None."""
    path = out / PARTS_DIR / part_file(plan.split, plan.k)
    if not path.is_file():
        return None
    part = read_json(path)
    shard = part["shard"]
    if shard is not None and not (
        (out / shard["file"]).is_file() and (out / shard["file"]).stat().st_size == shard["bytes"]
    ):
        return None
    return part


class _ShardEncoder:
    """Turns a batch of decoded clips of one shard into the shard's per-clip arrays (features, texts, saliency)."""

    def __init__(self, backbone: torch.nn.Module, device: torch.device, index: dict[str, int], text_emb: np.ndarray,
                 saliency: dict) -> None:
        self.backbone, self.device, self.index, self.text_emb, self.saliency = backbone, device, index, text_emb, saliency

    def __call__(self, plan: ShardPlan, positions: list[int], frames: np.ndarray) -> dict[str, np.ndarray]:
        """Arrays for the clips `plan.records[positions]` whose decoded frames are `frames` [B, T, H, W, 3]."""
        feats = _encode_clips(self.backbone, frames, self.device)
        records = [plan.records[p] for p in positions]
        refs = [text_indices(r, self.index) for r in records]
        arrays = {name: np.stack([r[name] for r in refs]) for name in refs[0]}
        arrays["id"] = np.array([r["id"] for r in records], dtype=object)
        arrays["label"] = np.array([-1 if r.get("label") is None else r["label"] for r in records], dtype=np.int32)
        delta, theta, keep = state_change(
            torch.from_numpy(feats["frames"]), torch.from_numpy(self.text_emb[arrays["caption_idx"]]), **self.saliency
        )
        keep = torch.tensor([k if r.get("salient") is None else r["salient"] for r, k in zip(records, keep.tolist())])
        return arrays | feats | {"delta_vt": delta.numpy(), "theta_vv": theta.numpy(), "salient": keep.numpy()}


def assemble_manifest(out: str | Path, plans: list[ShardPlan], config: dict, *, meta: dict, texts: dict,
                      splits: list[str]) -> dict | None:
    """Write manifest.json from the shard sidecars once every planned shard is done; None while some are not."""
    out = Path(out)
    parts = [_done(out, plan) for plan in plans]
    if any(p is None for p in parts):
        return None
    by_split: dict[str, dict] = {name: {"clips": 0, "shards": []} for name in splits}
    for plan, part in zip(plans, parts):
        split = by_split[plan.split]
        if part["shard"] is not None:
            split["clips"] += part["shard"]["clips"]
            split["shards"].append(part["shard"])
    manifest = config | {
        "bench": meta, "texts": texts, "splits": by_split, "failed": [f for p in parts for f in p["failed"]],
    }
    write_json(out / MANIFEST_FILE, manifest)
    return manifest


def extract(
    bench_dir: str | Path,
    videos_dir: str | Path,
    out_dir: str | Path,
    backbone: torch.nn.Module,
    *,
    splits: list[str] | None = None,
    frames: int = 8,
    batch_size: int = 32,
    workers: int = 2,
    device: str = "cpu",
    token_dtype: str = "fp16",
    shard_size: int = 512,
    num_shards: int | None = None,
    shard_index: int | None = None,
    delta_vt: float = DELTA_VT,
    theta_vv: float = THETA_VV,
    overwrite: bool = False,
    progress: Callable[[ExtractProgress], None] | None = None,
) -> ExtractResult:
    """Extract this process's shards of the bench into `out_dir`; write manifest.json when every shard is done.

    Defaults: every split of meta.json, 8 frames, batches of 32, 2 decoding workers, fp16 tokens, 512 clips per
    shard, the saliency thresholds of the paper; num_shards / shard_index default to torchrun's WORLD_SIZE / RANK,
    else one process. Finished shards of an earlier run with the same configuration are kept, so rerunning after
    a crash redoes only the rest. Clips whose video cannot be decoded are skipped and listed in the manifest (a
    decoding worker that dies on a clip fails that clip, see `decode_batches`); raises PaxionError when every clip of
    this process's shards failed.
    """
    if token_dtype not in TOKEN_DTYPES:
        raise ValueError(f"token_dtype must be one of {TOKEN_DTYPES}, not {token_dtype!r}")
    num_shards, shard_index = work_split(num_shards, shard_index)
    bench_dir, videos, out = Path(bench_dir), Path(videos_dir), Path(out_dir)
    meta, records = read_bench(bench_dir, splits)
    saliency = {"delta_vt": delta_vt, "theta_vv": theta_vv}
    config = {
        "schema_version": SCHEMA_VERSION, "backbone": backbone_record(backbone), "frames": frames,
        "token_dtype": token_dtype, "shard_size": shard_size, "saliency": saliency,
        "bench_sha256": _bench_digest(bench_dir, list(records)),
    }
    _prepare_dir(out, config, overwrite=overwrite)
    texts = distinct_texts(r for rows in records.values() for r in rows)
    index = {t: i for i, t in enumerate(texts)}
    texts_record, text_emb = _text_table(out, backbone, texts)

    plans = plan_shards(records, shard_size)
    mine = [p for g, p in enumerate(plans) if g % num_shards == shard_index]
    result = ExtractResult()
    todo = []
    for plan in mine:
        part = _done(out, plan)
        if part is None:
            todo.append(plan)
            continue
        result.shards_resumed += 1
        result.clips += part["shard"]["clips"] if part["shard"] else 0
        result.failed += part["failed"]

    clips = [r for plan in todo for r in plan.records]
    workers = workers if clips else 0
    size, crop = backbone.decode_geometry
    batches = decode_batches(clips, _batches(todo, batch_size), videos, num_frames=frames, size=size, crop=crop,
                             workers=workers)
    encode = _ShardEncoder(backbone, resolve_device(device), index, text_emb, saliency)
    done = 0
    for plan in todo:
        writer = ShardWriter(out / shard_file(plan.split, plan.k), capacity=len(plan.records), token_dtype=token_dtype)
        failed = []
        try:
            for _ in range(-(-len(plan.records) // batch_size)):
                batch = next(batches)
                failed += [plan.failure(i - done, reason) for i, reason in batch["failed"]]
                if batch["frames"] is not None:
                    writer.append(encode(plan, [i - done for i in batch["pos"]], batch["frames"]))
                if progress:
                    progress(ExtractProgress(batch["end"], len(clips), result.shards_written, len(todo)))
            record = writer.finish()
        except BaseException:
            writer.abort()
            raise
        write_json(out / PARTS_DIR / part_file(plan.split, plan.k), {"shard": record, "failed": failed})
        done += len(plan.records)
        result.shards_written += 1
        result.clips += writer.count
        result.failed += failed
        if progress:
            progress(ExtractProgress(done, len(clips), result.shards_written, len(todo)))
    manifest = assemble_manifest(out, plans, config, meta=meta, texts=texts_record, splits=list(records))
    result.complete = manifest is not None
    if result.clips == 0 and result.failed:
        first = result.failed[0]
        raise PaxionError(f"{videos}: every clip failed to decode ({len(result.failed)}), e.g. {first['split']}/"
                          f"{first['id']} ({first['video']}): {first['reason']}")
    return result
