"""`paxion extract`: decode clips in background workers, run the backbone once, write a resumable cache."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import torch

from paxion.atomic import TMP_MARK, ensure_dir, remove_stale_temporaries, save_torch, write_json
from paxion.bench.files import read_bench
from paxion.cache.manifest import (
    CONFIG_FILE,
    MANIFEST_FILE,
    PARTS_DIR,
    SCHEMA_VERSION,
    SCORER_FILE,
    TEXTS_FILE,
    file_hash,
    file_record,
    read_json,
    shard_file,
    write_manifest,
)
from paxion.cache.writer import TOKEN_DTYPES, ShardWriter, write_texts
from paxion.device import resolve_device
from paxion.errors import CacheError, PaxionError
from paxion.extract.decoding import decode_batches
from paxion.extract.saliency import DELTA_VT, THETA_VV, second_model_embeddings, state_change
from paxion.extract.texts import distinct_texts, encode_texts, same_as_caption, text_indices

# Per-split counts the manifest keeps (docs/architecture.md §5): clips whose caption the text encoder cut, whose
# AA / OR negative embeds like the caption (left out of AA / OR), and clips flagged salient.
CLIP_COUNTS = ("captions_cut", "aa_same", "or_same", "salient")


def add_counts(total: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    """The sum of two CLIP_COUNTS dicts."""
    return {name: total[name] + more[name] for name in CLIP_COUNTS}


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
    shards_resumed: int = 0  # finished by an earlier run or by another process on the same --out
    complete: bool = False  # every shard of every process is done and manifest.json is written
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLIP_COUNTS, 0))  # CLIP_COUNTS, summed


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
    } | ({} if backbone.score_context_shape is None else {"score_context": list(backbone.score_context_shape)})


@torch.inference_mode()
def _encode_clips(backbone: torch.nn.Module, frames: np.ndarray, device: torch.device) -> dict[str, np.ndarray]:
    pixels = backbone.preprocess(frames).to(device, non_blocking=True)
    with torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
        views = {"": backbone.encode_video(pixels)}
        if backbone.temporal:
            views["_rev"] = backbone.encode_reversed(pixels, views[""])
        out = {f"{name}{suffix}": t for suffix, feats in views.items() for name, t in feats._asdict().items()}
        if backbone.score_context_shape is not None:  # order-free over time for symmetric tokens: stored once
            out |= {f"score_context{suffix}": backbone.encode_score_context(feats) for suffix, feats in views.items()
                    if not (suffix and backbone.tokens_symmetric)}  # the reader shares it (manifest.DERIVED_FIELDS)
    if backbone.tokens_symmetric:
        del out["tokens_rev"]  # the reader flips `tokens` (cache.manifest.DERIVED_FIELDS)
    return {name: t.float().cpu().numpy() for name, t in out.items()}


FOLDER_LOCK = ".extract.lock"  # held while one process checks, clears or sets up --out, or writes manifest.json
CLAIM = 4  # shards a process claims (locks) at once; one decoding pipeline runs over them
LOCK_POLL_SECONDS = 0.1  # how often a process waiting for a lock tries it again


@contextmanager
def _locked(path: Path, *, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive flock(2) on `path` (created if missing) inside the block; yields False at once, holding
    nothing, when another process holds it and not `wait`.

    The kernel drops the lock when its holder dies (SIGKILL included), so no stale lock survives a crash. On a
    network file system the lock reaches other machines where the file system supports it (Linux NFS maps flock
    to its byte-range locks). Raises PaxionError when the file system refuses locks.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise PaxionError(f"{path}: cannot create the lock file ({exc.strerror or exc})") from None
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait:
                    yield False
                    return
                # polled: a blocking flock would not see a Ctrl-C that the kernel hands to another thread
                time.sleep(LOCK_POLL_SECONDS)
            except OSError as exc:
                raise PaxionError(f"{path}: cannot lock ({exc.strerror or exc}); use a local --out") from None
        yield True
    finally:
        os.close(fd)  # closing the descriptor drops the lock


def _shard_lock(out: Path, plan: ShardPlan) -> Path:
    """The lock a process holds while it writes shard `plan` (inside PARTS_DIR)."""
    return out / PARTS_DIR / shard_file(plan.split, plan.k, ".lock")


def _busy_shard(parts: Path) -> Path | None:
    """A shard lock in `parts` that another live process holds (it is writing that shard), else None."""
    for path in sorted(parts.glob("*.lock")):
        with _locked(path, wait=False) as free:
            if not free:
                return path
    return None


def _remove_dead_temporaries(out: Path) -> None:
    """Delete temporaries left in `out` and its PARTS_DIR by processes of this host that died mid-write."""
    for folder in (out, out / PARTS_DIR):
        for target in sorted({p.name.split(TMP_MARK)[0] for p in folder.glob(f"*{TMP_MARK}*")}):
            remove_stale_temporaries(folder / target)


def _prepare_dir(out: Path, config: dict, *, overwrite: bool) -> None:
    """Make `out` hold this configuration (call with FOLDER_LOCK held).

    A cache of the same configuration is kept as it is (resume, or a process that started earlier), whatever
    `overwrite` says: so under torchrun or --num-shards no rank's `--overwrite` deletes another rank's shards, as
    the first rank to get here clears the old cache and the others find the new configuration. Clearing a cache
    of another configuration needs `overwrite` and is refused while another process writes a shard there.
    """
    parts = out / PARTS_DIR
    _remove_dead_temporaries(out)
    if (parts / CONFIG_FILE).is_file():
        if read_json(parts / CONFIG_FILE) == config:
            return
        if not overwrite:
            raise CacheError(
                f"{out}: holds a cache extracted with another configuration (backbone, frames, dtype, shard size, splits, "
                "bench or cache schema version); use another --out or --overwrite"
            )
    if overwrite:
        busy = _busy_shard(parts) if parts.is_dir() else None
        if busy is not None:
            raise CacheError(f"{out}: another paxion extract is writing shard {busy.stem} there; "
                             "let it finish or stop it before --overwrite")
        shutil.rmtree(parts, ignore_errors=True)
        for path in [out / MANIFEST_FILE, out / TEXTS_FILE, out / SCORER_FILE, *out.glob(f"{TEXTS_FILE}{TMP_MARK}*"),
                     *out.glob("*-[0-9][0-9][0-9][0-9][0-9].h5*")]:
            path.unlink(missing_ok=True)
    ensure_dir(parts)
    write_json(parts / CONFIG_FILE, config)


def _text_table(out: Path, backbone: torch.nn.Module, texts: list[str]) -> tuple[dict, np.ndarray]:
    """Reuse texts.h5 when its record shows it complete and intact (another process or an earlier run wrote it),
    else encode and write it (call with FOLDER_LOCK held, so that one process writes it)."""
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


def _scorer_file(out: Path, backbone: torch.nn.Module) -> dict:
    """{"scorer": its record} of the file the backbone's own score needs (`Backbone.scorer_state`), reused when a
    process or an earlier run wrote it intact, else written; {} for a backbone scored by cosine (call with
    FOLDER_LOCK held)."""
    state = backbone.scorer_state()
    if state is None:
        return {}
    path, record_path = out / SCORER_FILE, out / PARTS_DIR / "scorer.json"
    if record_path.is_file() and path.is_file():
        record = read_json(record_path)
        if file_hash(path) == record.get("xxh3_128"):
            return {"scorer": record}
    save_torch(path, state)
    record = file_record(path)
    write_json(record_path, record)
    return {"scorer": record}


def _done(out: Path, plan: ShardPlan) -> dict | None:
    """The shard's sidecar record if the shard is finished and its file is in place, else None."""
    path = out / PARTS_DIR / shard_file(plan.split, plan.k, ".json")
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
    """Turns a batch of decoded clips of one shard into the shard's per-clip arrays (features, texts, saliency).

    cut: per text of the table, whether the text encoder cut it. saliency_backbone: computes the saliency flags from
    its own frame and caption embeddings (None = the extracting backbone's)."""

    def __init__(self, backbone: torch.nn.Module, device: torch.device, texts: list[str], text_emb: np.ndarray,
                 cut: np.ndarray, saliency: dict, saliency_backbone: torch.nn.Module | None = None) -> None:
        self.backbone, self.device, self.texts, self.text_emb, self.cut = backbone, device, texts, text_emb, cut
        self.index = {t: i for i, t in enumerate(texts)}
        self.saliency, self.saliency_backbone = saliency, saliency_backbone

    def __call__(self, plan: ShardPlan, positions: list[int], frames: np.ndarray) -> dict[str, np.ndarray]:
        """Arrays for the clips `plan.records[positions]` whose decoded frames are `frames` [B, T, H, W, 3]."""
        feats = _encode_clips(self.backbone, frames, self.device)
        records = [plan.records[p] for p in positions]
        refs = [text_indices(r, self.index) for r in records]
        arrays = {name: np.stack([r[name] for r in refs]) for name in refs[0]}
        arrays["id"] = np.array([r["id"] for r in records], dtype=object)
        arrays["label"] = np.array([-1 if r.get("label") is None else r["label"] for r in records], dtype=np.int32)
        for task in ("aa", "or"):
            arrays[f"{task}_same"] = same_as_caption(self.text_emb, arrays["caption_idx"], arrays[f"{task}_idx"])
        if self.saliency_backbone is None:
            frame_emb, caption_emb = torch.from_numpy(feats["frames"]), torch.from_numpy(self.text_emb[arrays["caption_idx"]])
        else:
            captions = [self.texts[i] for i in arrays["caption_idx"]]
            frame_emb, caption_emb = second_model_embeddings(self.saliency_backbone, frames, captions)
        delta, theta, keep = state_change(frame_emb, caption_emb, **self.saliency)
        keep = torch.tensor([k if r.get("salient") is None else r["salient"] for r, k in zip(records, keep.tolist())])
        return arrays | feats | {"delta_vt": delta.numpy(), "theta_vv": theta.numpy(), "salient": keep.numpy()}

    def counts(self, arrays: dict[str, np.ndarray]) -> dict[str, int]:
        """CLIP_COUNTS of a batch of arrays made by this encoder."""
        return {"captions_cut": int(self.cut[arrays["caption_idx"]].sum()), "aa_same": int(arrays["aa_same"].sum()),
                "or_same": int(arrays["or_same"].sum()), "salient": int(arrays["salient"].sum())}


def assemble_manifest(out: str | Path, plans: list[ShardPlan], config: dict, *, meta: dict, texts: dict,
                      splits: list[str], files: dict | None = None) -> dict | None:
    """Write manifest.json from the shard sidecars once every planned shard is done; None while some are not.
    files: records of other files beside the manifest by role (default none; "scorer": `_scorer_file`)."""
    out = Path(out)
    parts = [_done(out, plan) for plan in plans]
    if any(p is None for p in parts):
        return None
    by_split: dict[str, dict] = {name: {"clips": 0, "shards": []} | dict.fromkeys(CLIP_COUNTS, 0) for name in splits}
    for plan, part in zip(plans, parts):
        split = by_split[plan.split]
        if part["shard"] is not None:
            split["clips"] += part["shard"]["clips"]
            split["shards"].append(part["shard"])
        split |= add_counts(split, part["counts"])
    return write_manifest(out, config | {
        "bench": meta, "texts": texts, "files": files or {}, "splits": by_split,
        "failed": [f for p in parts for f in p["failed"]],
    })


@dataclass
class _Tally:
    """Adds finished shards to an ExtractResult and reports progress over this process's shards."""

    result: ExtractResult
    clips_total: int
    shards_total: int
    progress: Callable[[ExtractProgress], None] | None
    clips_done: int = 0

    def report(self, clips_in_flight: int = 0) -> None:
        if self.progress:
            shards = self.result.shards_written + self.result.shards_resumed
            done = self.clips_done + clips_in_flight
            self.progress(ExtractProgress(done, self.clips_total, shards, self.shards_total))

    def shard(self, plan: ShardPlan, part: dict, *, written: bool) -> None:
        """Count a finished shard (`part`: its sidecar record), written by this call or found finished."""
        self.result.shards_written += written
        self.result.shards_resumed += not written
        self.result.clips += part["shard"]["clips"] if part["shard"] else 0
        self.result.failed += part["failed"]
        self.result.counts = add_counts(self.result.counts, part["counts"])
        self.clips_done += len(plan.records)
        self.report()


def _write_shards(out: Path, plans: list[ShardPlan], encode: _ShardEncoder, videos: Path, *, frames: int,
                  batch_size: int, workers: int, token_dtype: str, tally: _Tally) -> None:
    """Decode, encode and write the shards `plans` (claimed by this process), each with its sidecar record."""
    clips = [r for plan in plans for r in plan.records]
    size, crop = encode.backbone.decode_geometry
    batches = decode_batches(clips, _batches(plans, batch_size), videos, num_frames=frames, size=size, crop=crop,
                             workers=workers if clips else 0)
    done = 0
    try:
        for plan in plans:
            path = out / shard_file(plan.split, plan.k)
            writer, failed = ShardWriter(path, capacity=len(plan.records), token_dtype=token_dtype), []
            counts = dict.fromkeys(CLIP_COUNTS, 0)
            try:
                for _ in range(-(-len(plan.records) // batch_size)):
                    batch = next(batches)
                    failed += [plan.failure(i - done, reason) for i, reason in batch["failed"]]
                    if batch["frames"] is not None:
                        arrays = encode(plan, [i - done for i in batch["pos"]], batch["frames"])
                        writer.append(arrays)
                        counts = add_counts(counts, encode.counts(arrays))
                    tally.report(batch["end"] - done)
                record = writer.finish()
            except BaseException:
                writer.abort()
                raise
            part = {"shard": record, "failed": failed, "counts": counts}
            write_json(out / PARTS_DIR / shard_file(plan.split, plan.k, ".json"), part)
            done += len(plan.records)
            tally.shard(plan, part, written=True)
    finally:
        batches.close()  # stops the decoding workers now, not when the generator is collected


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
    saliency_backbone: torch.nn.Module | None = None,
    overwrite: bool = False,
    progress: Callable[[ExtractProgress], None] | None = None,
) -> ExtractResult:
    """Extract this process's shards of the bench into `out_dir`; write manifest.json when every shard is done.

    Defaults: every split of meta.json, 8 frames, batches of 32, 2 decoding workers, fp16 tokens, 512 clips per
    shard, the saliency thresholds of the paper (Appendix C) computed from the backbone's own embeddings unless
    `saliency_backbone` is given (the paper used BLIP); num_shards / shard_index default to torchrun's WORLD_SIZE /
    RANK, else one process. The result and the manifest count, per split, the clips whose caption the text encoder
    cut and whose AA / OR negative then embeds like the caption (stored per clip as `aa_same` / `or_same`;
    ActionBench leaves those pairs out), and the salient clips. Finished shards of an earlier run with the same
    configuration are kept, so rerunning after a crash redoes only the rest. A decoding worker that dies on a clip
    fails that clip (see `decode_batches`); raises PaxionError when every clip of this process's shards failed.

    Several processes may run on one `out_dir` at once (the same command twice, torchrun ranks, other machines on
    a shared file system with flock support): each shard is written by the one process that holds its lock
    (parts/{split}-{k:05d}.lock), the others skip it, or wait for it when nothing else is left, and take it over if
    its writer died. The folder's setup, the text table and manifest.json are written under .extract.lock; see
    `_prepare_dir` for what `overwrite` may delete. Raises CacheError when `out_dir` holds another configuration
    and not `overwrite`, AnnotationError for a bad bench, PaxionError when the disk or file system fails.
    """
    if token_dtype not in TOKEN_DTYPES:
        raise ValueError(f"token_dtype must be one of {TOKEN_DTYPES}, not {token_dtype!r}")
    num_shards, shard_index = work_split(num_shards, shard_index)
    bench_dir, videos, out = Path(bench_dir), Path(videos_dir), Path(out_dir)
    meta, records = read_bench(bench_dir, splits)
    saliency = {"delta_vt": delta_vt, "theta_vv": theta_vv}
    saliency_record = None if saliency_backbone is None else {
        "name": saliency_backbone.name, "config_hash": saliency_backbone.config_hash()}
    config = {
        "schema_version": SCHEMA_VERSION, "backbone": backbone_record(backbone), "frames": frames,
        "token_dtype": token_dtype, "shard_size": shard_size, "saliency": saliency | {"backbone": saliency_record},
        "bench_sha256": _bench_digest(bench_dir, list(records)),
    }
    texts = distinct_texts(r for rows in records.values() for r in rows)
    ensure_dir(out)
    with _locked(out / FOLDER_LOCK):
        _prepare_dir(out, config, overwrite=overwrite)
        texts_record, text_emb = _text_table(out, backbone, texts)
        files = _scorer_file(out, backbone)

    plans = plan_shards(records, shard_size)
    mine = [p for g, p in enumerate(plans) if g % num_shards == shard_index]
    encode = _ShardEncoder(backbone, resolve_device(device), texts, text_emb, np.array(backbone.truncated(texts), bool),
                           saliency, saliency_backbone)
    result = ExtractResult()
    tally = _Tally(result, sum(len(p.records) for p in mine), len(mine), progress)
    pending = mine
    while pending:  # claim free unfinished shards and write them; wait for one that another process is writing
        claimed, waiting = [], []
        with ExitStack() as held:
            for plan in pending:
                if (part := _done(out, plan)) is not None:
                    tally.shard(plan, part, written=False)
                elif len(claimed) < CLAIM and held.enter_context(_locked(_shard_lock(out, plan), wait=False)):
                    claimed.append(plan)
                else:
                    waiting.append(plan)
            for plan in list(claimed):  # finished by another process between the check and the claim
                if (part := _done(out, plan)) is not None:
                    tally.shard(plan, part, written=False)
                    claimed.remove(plan)
            _write_shards(out, claimed, encode, videos, frames=frames, batch_size=batch_size, workers=workers,
                          token_dtype=token_dtype, tally=tally)
        if waiting and not claimed:
            with _locked(_shard_lock(out, waiting[0])):
                pass
        pending = waiting
    with _locked(out / FOLDER_LOCK):
        manifest = assemble_manifest(out, plans, config, meta=meta, texts=texts_record, splits=list(records),
                                     files=files)
    result.complete = manifest is not None
    if result.clips == 0 and result.failed:
        first = result.failed[0]
        raise PaxionError(f"{videos}: every clip failed to decode ({len(result.failed)}), e.g. {first['split']}/"
                          f"{first['id']} ({first['video']}): {first['reason']}")
    return result
