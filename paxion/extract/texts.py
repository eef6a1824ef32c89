"""The cache's text table: every distinct text of the bench, encoded once, referred to by index."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from paxion.cache.manifest import check_backbone, write_manifest
from paxion.cache.reader import Cache
from paxion.cache.writer import write_texts
from paxion.errors import PaxionError

SAME_TOLERANCE = 1e-6  # a negative whose cosine with its caption is within this of 1 can only tie with it
TEXT_FIELDS = {"caption": "caption_idx", "template": "template_idx", "aa_caption": "aa_idx", "or_caption": "or_idx"}


def class_text(record: dict) -> str | None:
    """A bench record's class as text (docs/architecture.md §2): its `class_name` (Kinetics, Moments in Time, JSONL
    `label`), else its object-hidden template where `label` indexes the bench classes (SSv2), else None."""
    if record.get("class_name") is not None:
        return record["class_name"]
    return record.get("template") if record.get("label") is not None else None


def distinct_texts(records: Iterable[dict]) -> list[str]:
    """The sorted distinct texts (captions, templates, negatives, classes, multiple-choice candidates) of bench
    records."""
    texts: set[str] = set()
    for r in records:
        texts.update(r[k] for k in TEXT_FIELDS if r.get(k) is not None)
        texts.update(r.get("candidates") or ())
        texts.update(set(r.get("candidates_aa") or ()) - {None})
        texts.update({class_text(r)} - {None})
    return sorted(texts)


def text_indices(record: dict, index: dict[str, int]) -> dict[str, np.ndarray]:
    """A record's per-clip text references (-1 = none) with `class_idx` (its `class_text`), plus `mc_idx`/`mc_answer`
    for multiple-choice records and `mc_aa_idx` [K] (each candidate's action antonym, -1 = none) where the bench
    made them."""
    out = {
        field: np.int32(-1 if record.get(key) is None else index[record[key]]) for key, field in TEXT_FIELDS.items()
    }
    name = class_text(record)
    out["class_idx"] = np.int32(-1 if name is None else index[name])
    if record.get("candidates") is not None:
        out["mc_idx"] = np.array([index[c] for c in record["candidates"]], dtype=np.int32)
        out["mc_answer"] = np.int32(record["answer"])
        antonyms = record.get("candidates_aa") or [None] * len(record["candidates"])
        out["mc_aa_idx"] = np.array([-1 if a is None else index[a] for a in antonyms], dtype=np.int32)
    return out


@torch.inference_mode()
def encode_texts(backbone: torch.nn.Module, texts: list[str], *, batch_size: int = 256) -> np.ndarray:
    """Raw text embeddings [n, d] float32 of `texts`, encoded `batch_size` at a time."""
    chunks = [backbone.encode_text(texts[i:i + batch_size]).float().cpu().numpy() for i in range(0, len(texts), batch_size)]
    return np.concatenate(chunks) if chunks else np.zeros((0, backbone.embed_dim), dtype=np.float32)


def same_as_caption(emb: np.ndarray, caption_idx: np.ndarray, negative_idx: np.ndarray) -> np.ndarray:
    """Per clip, whether its negative (AA or OR text index, -1 = none) embeds like its caption: cosine of the raw
    text embeddings `emb` [n_text, d] within SAME_TOLERANCE of 1. This happens when the text encoder cut both to the
    same tokens (a caption longer than its context with the action word past the cut); such a pair can only tie.
    Returns bool [B]; False where there is no negative."""
    has = negative_idx >= 0
    a = emb[caption_idx].astype(np.float64)
    b = emb[np.where(has, negative_idx, caption_idx)].astype(np.float64)
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    cosine = (a * b).sum(-1) / np.maximum(norms, np.finfo(np.float64).tiny)
    return has & (cosine >= 1 - SAME_TOLERANCE)


def add_texts(root: str | Path, texts: Sequence[str], *, backbone=None, device: str | torch.device = "cpu",
              batch_size: int = 256) -> list[str]:
    """`paxion cache add-texts`: append the `texts` not yet in a cache's text table, embedded by the cache's backbone
    with its text tower alone (no video decoded, no shard touched); returns those added, in their first order.

    The table grows at its end, so every existing index stays valid; texts.h5 is rewritten atomically, then the
    manifest's texts record (count, bytes, xxh3_128). Nothing is loaded when no text is new.
    backbone: the Backbone to embed with (default None: load the manifest's backbone spec on `device`); its name
        and config hash must match the manifest's (CacheError otherwise).
    Raises PaxionError (one line) when the backbone cannot be loaded, saying what to run where it can.
    """
    root, cache = Path(root), Cache(root)
    known = set(cache.texts)
    new = [t for t in dict.fromkeys(texts) if t not in known]
    if not new:
        return []
    if backbone is None:
        from paxion.extract.backbones import load_backbone

        spec = cache.manifest["backbone"]["name"]
        try:
            backbone = load_backbone(spec, device=device)
        except (PaxionError, OSError, ImportError) as exc:
            raise PaxionError(
                f"{root}: {len(new)} texts (first {new[0]!r}) are not in the text table and backbone {spec!r} cannot "
                f"be loaded to encode them ({str(exc).splitlines()[0]}); run `paxion cache add-texts {root} FILE` "
                "where it can"
            ) from None
    check_backbone(cache.manifest, backbone, root=root)
    emb = np.concatenate([cache.text_emb.astype(np.float32), encode_texts(backbone, new, batch_size=batch_size)])
    record = write_texts(root / cache.manifest["texts"]["file"], cache.texts + new, emb)
    write_manifest(root, cache.manifest | {"texts": record})
    return new
