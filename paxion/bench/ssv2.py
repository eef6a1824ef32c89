"""Something-Something v2 annotations, also as the paper's ActionBench release ships them.

The folder holds `labels.json` (template -> class index as a string), `train.json` / `validation.json`
(lists of `id`, `label`, `template`, `placeholders`); `test.json` (ids only) is skipped. The release adds
per record `label_action_antonym_clip_text` (the AA negative of `label`) and
`label_object_shuffled_clip_text` (the OR negative), keeps the training split's antonyms in
`train_antonym.json` (a list of records with `id` and `label_action_antonym_clip_text`) and the
state-change flags in `state_change_heavy_instance_filtering_{train,val}.json` (`{id: {"if_keep": bool}}`);
all are used when present (official ActionBench loaders).
"""

from __future__ import annotations

import re
from pathlib import Path

from paxion.bench import files
from paxion.bench.files import Row
from paxion.bench.records import Annotations, ClipRecord
from paxion.bench.videos import VideoIndex
from paxion.errors import AnnotationError

SSV2_SPLITS: tuple[str, ...] = ("train", "validation")
FLAG_FILES = {"train": "state_change_heavy_instance_filtering_train.json",
              "validation": "state_change_heavy_instance_filtering_val.json"}
AA_KEY = "label_action_antonym_clip_text"
OR_KEY = "label_object_shuffled_clip_text"
_PLACEHOLDER = re.compile(r"\[([^\]]*)\]")


def hide_objects(template: str) -> str:
    """The object-hidden caption of an SSv2 template: "[something]" -> "something", first letter capital."""
    text = _PLACEHOLDER.sub(r"\1", template)
    return text[:1].upper() + text[1:]


def _labels(folder: Path) -> dict[str, int]:
    path = folder / "labels.json"
    labels = files.load_json(path)
    if not isinstance(labels, dict):
        raise AnnotationError(path, "expected an object mapping templates to class indices")
    try:
        return {template: int(index) for template, index in labels.items()}
    except (TypeError, ValueError):
        raise AnnotationError(path, "class indices must be integers") from None


def _train_antonyms(folder: Path) -> dict[str, str]:
    """id -> AA negative from the release's train_antonym.json, empty when the file is not there."""
    path = folder / "train_antonym.json"
    if not path.is_file():
        return {}
    out = {}
    for line, item in files.json_array(path):
        if not isinstance(item, dict):
            raise AnnotationError(path, "expected a JSON object", line=line)
        out[files.text(item, ("id",), path, line)] = files.text(item, (AA_KEY,), path, line)
    return out


def _objects(item: Row, label: str, path: Path, line: int) -> tuple[str, ...]:
    """The placeholders of a record that occur in its label (whole words, any case).

    Empty, blank or mangled ones (seen in SSv2: "" for "pushing  from left to right", "sodcan" for "a soda
    can") are dropped: they cannot be replaced in the caption and must not enter the object vocabulary.
    """
    objects = item.get("placeholders", [])
    if not isinstance(objects, list) or not all(isinstance(o, str) for o in objects):
        raise AnnotationError(path, "'placeholders' must be a list of strings", line=line)
    return tuple(
        o.strip() for o in objects
        if o.strip() and re.search(rf"(?<![\w-]){re.escape(o.strip())}(?![\w-])", label, flags=re.IGNORECASE)
    )


def read_ssv2(folder: Path, *, videos: Path | None = None) -> Annotations:
    """Read an SSv2 annotations folder (also what `paxion synth` writes, and the paper's release)."""
    folder = Path(folder)
    labels = _labels(folder)
    index = {hide_objects(t): i for t, i in labels.items()}
    splits = [(s, folder / f"{s}.json") for s in SSV2_SPLITS if (folder / f"{s}.json").is_file()]
    if not splits:
        raise AnnotationError(folder, "no train.json or validation.json in this folder")
    antonyms = _train_antonyms(folder)
    videos_found = VideoIndex(videos)
    out = Annotations("ssv2", templates=sorted(labels, key=labels.__getitem__))
    for split, path in splits:
        flags_path = folder / FLAG_FILES[split]
        flags = files.saliency_flags(flags_path) if flags_path.is_file() else {}
        for line, item in files.json_array(path):
            if not isinstance(item, dict):
                raise AnnotationError(path, "expected a JSON object", line=line)
            hidden = hide_objects(files.text(item, ("template",), path, line))
            if hidden not in index:
                raise AnnotationError(path, f"template {item['template']!r} is not in labels.json", line=line)
            clip = files.text(item, ("id",), path, line)
            aa = files.optional_text(item, AA_KEY, path, line)
            label = files.text(item, ("label",), path, line)
            out.records.append(
                ClipRecord(
                    clip,
                    split,
                    videos_found.name(clip, (".webm", ".mp4")),
                    label,
                    template=hidden,
                    label=index[hidden],
                    objects=_objects(item, label, path, line),
                    aa_given=aa if aa is not None else antonyms.get(clip),
                    or_given=files.optional_text(item, OR_KEY, path, line),
                    salient=flags.get(clip),
                    origin=f"{path}:{line}",
                )
            )
    return out
