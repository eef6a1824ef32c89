"""`paxion cache add-texts`: append new texts (class names, prompts) to a cache's text table with the backbone's
text tower alone; no video is decoded and no shard is touched."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from paxion.atomic import write_json
from paxion.cache.manifest import MANIFEST_FILE, check_backbone
from paxion.cache.reader import Cache
from paxion.cache.writer import write_texts
from paxion.errors import PaxionError


def missing_texts(cache: Cache, texts: Sequence[str]) -> list[str]:
    """The distinct `texts` not in the cache's text table, in their first order."""
    known = set(cache.texts)
    return [t for t in dict.fromkeys(texts) if t not in known]


def add_texts(root: str | Path, texts: Sequence[str], *, backbone=None, device: str | torch.device = "cpu",
              batch_size: int = 256) -> list[str]:
    """Append the `texts` not yet in the cache's text table, embedded by the cache's backbone; returns those added.

    The table grows at its end, so every existing index stays valid; texts.h5 is rewritten atomically, then the
    manifest's texts record (count, bytes, xxh3_128). Nothing is loaded when no text is new.
    backbone: the Backbone to embed with (default None: load the manifest's backbone spec on `device`); its name
        and config hash must match the manifest's (CacheError otherwise).
    Raises PaxionError (one line) when the backbone cannot be loaded, saying what to run where it can.
    """
    root = Path(root)
    cache = Cache(root)
    new = missing_texts(cache, texts)
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
    from paxion.extract.texts import encode_texts

    emb = encode_texts(backbone, new, batch_size=batch_size)
    manifest = cache.manifest
    record = write_texts(root / manifest["texts"]["file"], cache.texts + new,
                         np.concatenate([cache.text_emb.astype(np.float32), emb]))
    write_json(root / MANIFEST_FILE, manifest | {"texts": record})
    return new
