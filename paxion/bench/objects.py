"""Object replacement: swap a caption's objects for other objects from the same dataset's vocabulary.

Objects are the dataset's own where it names them (SSv2 placeholders, the built-in world's "red ball"),
else the noun phrase after each determiner ("C picks up the knife" -> "knife"; "the cutting board" ->
"cutting board"), up to two words and stopping at function words and verbs.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass

from paxion.bench.antonyms import verb_lemma
from paxion.bench.inflect import match_case
from paxion.bench.records import ClipRecord

_WORD = re.compile(r"[A-Za-z]+(?:['-][A-Za-z]+)*|[^\sA-Za-z]+")
_DETERMINERS = frozenset(
    {"the", "a", "an", "another", "his", "her", "their", "its", "my", "your", "our", "this", "that", "these"}
    | {"those", "some"}
)
_STOPS = frozenset(
    {"and", "or", "but", "with", "from", "to", "into", "onto", "on", "in", "at", "of", "off", "by", "for"}
    | {"over", "under", "up", "down", "out", "near", "behind", "next", "while", "then", "so", "as", "that"}
    | {"is", "are", "was", "were", "be", "it", "him", "them", "one", "other", "each", "away", "towards"}
)
_MAX_WORDS = 2


@dataclass(frozen=True)
class ObjectResult:
    """The object-replaced caption, or None with the reason."""

    text: str | None
    reason: str | None


def object_phrases(caption: str) -> list[str]:
    """The lowercase noun phrases right after determiners, in caption order."""
    tokens = [t.lower() for t in _WORD.findall(caption)]
    phrases = []
    for i, token in enumerate(tokens[:-1]):
        if token not in _DETERMINERS:
            continue
        words: list[str] = []
        for word in tokens[i + 1 : i + 1 + _MAX_WORDS]:
            if not word.isalpha() or word in _STOPS or word in _DETERMINERS or (words and verb_lemma(word)):
                break
            words.append(word)
        if words:
            phrases.append(" ".join(words))
    return phrases


def clip_objects(record: ClipRecord) -> tuple[str, ...]:
    """The objects of a clip: its dataset's own, else the noun phrases of its caption."""
    return record.objects or tuple(object_phrases(record.caption))


def object_vocabulary(records: Iterable[ClipRecord]) -> list[str]:
    """Every distinct lowercase object of the dataset, sorted."""
    return sorted({obj.lower() for record in records for obj in clip_objects(record)})


def replace_objects(
    caption: str, objects: Iterable[str], vocabulary: list[str], *, seed: int, clip_id: str
) -> ObjectResult:
    """Replace every object of the caption (whole words) by another vocabulary object, never one of its own.

    The choice is deterministic for (seed, clip_id).
    """
    own = list(dict.fromkeys(obj.lower() for obj in objects))
    if not own:
        return ObjectResult(None, "no object found in the caption")
    choices = [v for v in vocabulary if v not in own]
    if not choices:
        return ObjectResult(None, "no other object in the dataset's vocabulary")
    rng = random.Random(f"{seed}:{clip_id}")
    mapping: dict[str, str] = {}
    for obj in own:
        unused = [c for c in choices if c not in mapping.values()] or choices
        mapping[obj] = rng.choice(unused)
    pattern = "|".join(re.escape(o) for o in sorted(own, key=len, reverse=True))
    text = re.sub(
        rf"(?<![\w-])(?:{pattern})(?![\w-])",
        lambda m: match_case(m.group(), mapping[m.group().lower()]),
        caption,
        flags=re.IGNORECASE,
    )
    if text == caption:
        return ObjectResult(None, "its objects do not appear in the caption")
    return ObjectResult(text, None)
