"""Object replacement: swap a caption's objects for other objects from the same dataset's vocabulary.

Objects are the dataset's own where it names them (SSv2 placeholders, the built-in world's "red ball",
a noun list such as EgoClip's `tag_noun` passed as `nouns=`), else the object noun phrases of the
caption: after a determiner or a preposition, a head noun that WordNet files under physical things
(artifacts, food, substances, plants, animals, natural objects), with noun modifiers of the same kind
("kitchen sink"). People ("C", "the man X"), body parts, places and times ("the end of the video"),
verbs and particles are never objects.
"""

from __future__ import annotations

import random
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import cache, lru_cache

from paxion.bench.inflect import match_case, verb_readings
from paxion.bench.pos import (
    BOUNDARIES,
    DETERMINERS,
    PREPOSITIONS,
    SUBJECTS,
    adjective_leaning,
    noun_kinds,
    verb_leaning,
)
from paxion.bench.records import ClipRecord

_WORD = re.compile(r"[A-Za-z]+(?:['-][A-Za-z]+)*|[^\sA-Za-z]+")
# Determiners and prepositions open a noun phrase; particles do not ("warm up stretch").
_ANCHORS = (DETERMINERS - {"no", "all", "both"}) | (
    PREPOSITIONS - {"up", "down", "out", "off", "away", "back", "apart"}
)
# WordNet lexicographer files of physical things that can be swapped for one another.
_THINGS = frozenset({"noun.artifact", "noun.food", "noun.substance", "noun.object", "noun.plant", "noun.animal"})
# A head noun whose first sense is one of these is not an object even when a later sense is a thing.
_NOT_THINGS = frozenset(
    {"noun.person", "noun.time", "noun.location", "noun.body", "noun.attribute"}
    | {"noun.state", "noun.cognition", "noun.relation", "noun.quantity", "noun.feeling", "noun.process"}
    | {"noun.phenomenon", "noun.motive"}
)
# Things that are the recording itself, never what a clip shows ("at the end of the video").
_MEDIA = frozenset({"video", "clip", "scene", "footage", "camera"})
_AUXILIARIES = frozenset(
    {"do", "does", "did", "can", "could", "will", "would", "should", "is", "are", "was", "were", "be", "been"}
    | {"has", "have", "had", "being"}
)
_PRONOUNS = frozenset({"it", "them", "him", "her", "me", "us", "you", "one", "itself", "themselves", "something"})
_MAX_WORDS = 3
_TRIES = 16


@dataclass(frozen=True)
class ObjectResult:
    """The object-replaced caption, or None with the reason."""

    text: str | None
    reason: str | None


@cache
def is_thing(word: str) -> bool:
    """Whether a lowercase noun names a physical thing in WordNet: first sense not a person, place or time,
    one of its first three senses an artifact, food, substance, plant, animal or natural object, and not
    mostly an adjective ("special", "young")."""
    kinds = noun_kinds(word)
    return (
        len(word) > 1
        and word not in _MEDIA
        and not adjective_leaning(word)
        and bool(kinds)
        and kinds[0] not in _NOT_THINGS
        and bool(_THINGS & set(kinds[:3]))
    )


def _stops(word: str) -> bool:
    return (
        not word.isalpha()
        or word in PREPOSITIONS
        or word in BOUNDARIES
        or word in DETERMINERS
        or word in _PRONOUNS
        or word in SUBJECTS
        or word in _AUXILIARIES
        or word in {"and", "or", "to", "not"}
    )


def object_phrases(caption: str, *, nouns: Collection[str] | None = None) -> list[str]:
    """The lowercase object noun phrases of a free-text caption, in caption order.

    nouns: the dataset's own object nouns (e.g. EgoClip's `tag_noun` names); where given, a head noun must
    be one of them instead of a WordNet thing.
    """
    tokens = [t.lower() for t in _WORD.findall(caption)]
    head_ok = is_thing if nouns is None else (lambda w: w in nouns)
    phrases = []
    aux = False  # an auxiliary opened the clause: its verb follows the subject ("why does the dog run")
    for i, token in enumerate(tokens[:-1]):
        aux = (aux or token in _AUXILIARIES) and token not in BOUNDARIES
        if token not in _ANCHORS:
            continue
        if token == "to" and any(f == "base" for _, f in verb_readings(tokens[i + 1])):  # "wants to ride donkey"
            continue
        words: list[str] = []
        for word in tokens[i + 1 : i + 1 + _MAX_WORDS]:
            # After a noun, a word read mostly as a verb or a third-person verb form is the clause's verb
            # ("the cat stand up", "the dog stands up"), as is a base form after "does ... <noun>"
            # ("why does the dog run").
            verb_next = words and (
                (
                    (verb_leaning(word) or any(f == "s" for _, f in verb_readings(word)))
                    and (nouns is None or word not in nouns)
                )
                or (aux and head_ok(words[-1]) and any(f == "base" for _, f in verb_readings(word)))
            )
            if _stops(word) or verb_next:
                break
            words.append(word)
        if not words or not head_ok(words[-1]):  # "the orange shirt boy", "the end": no object
            continue
        start = len(words) - 1
        while start > 0 and start > len(words) - 2 and (
            head_ok(words[start - 1]) or (nouns is not None and " ".join(words[start - 1 :]) in nouns)
        ):  # a noun modifier, or a dataset noun of two words ("cutting board")
            start -= 1
        phrases.append(" ".join(words[start:]))
    return phrases


def clip_objects(record: ClipRecord, *, nouns: Collection[str] | None = None) -> tuple[str, ...]:
    """The objects of a clip: its dataset's own (none when the dataset names them but none is usable), else the
    object noun phrases of its caption, headed by one of `nouns` where given, else by one of the clip's own noun
    tags (`record.nouns`) where it has them."""
    if record.objects is not None:
        return record.objects
    if nouns is not None:
        return tuple(object_phrases(record.caption, nouns=nouns))
    return _caption_objects(record.caption, record.nouns)


@lru_cache(maxsize=1 << 16)
def _caption_objects(caption: str, nouns: tuple[str, ...]) -> tuple[str, ...]:
    """`object_phrases` of a caption with its clip's noun tags (none: WordNet decides); cached, as a bench
    build asks twice per clip and narrations repeat ("C picks up the knife")."""
    return tuple(object_phrases(caption, nouns=nouns or None))


def object_vocabulary(records: Iterable[ClipRecord], *, nouns: Collection[str] | None = None) -> list[str]:
    """Every distinct lowercase object of the dataset, sorted."""
    return sorted({obj.lower() for record in records for obj in clip_objects(record, nouns=nouns)})


@lru_cache(maxsize=4096)
def whole_words(phrases: tuple[str, ...]) -> re.Pattern[str]:
    """A case-insensitive pattern matching any of the phrases as whole words, longest first; compiled once per
    phrase set (Python's own pattern cache is too small for a dataset's object combinations)."""
    alternatives = "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])", re.IGNORECASE)


def _draw(rng: random.Random, vocabulary: list[str], avoid: set[str]) -> str | None:
    """A vocabulary entry not in `avoid`: a few random draws (constant time on a large vocabulary), then,
    for a small or crowded one, a uniform choice among the rest."""
    for _ in range(_TRIES):
        choice = vocabulary[rng.randrange(len(vocabulary))]
        if choice not in avoid:
            return choice
    rest = [v for v in vocabulary if v not in avoid]
    return rng.choice(rest) if rest else None


def replace_objects(
    caption: str, objects: Iterable[str], vocabulary: list[str], *, seed: int, clip_id: str
) -> ObjectResult:
    """Replace every object of the caption (whole words) by another vocabulary object, never one of its own.

    The choice is deterministic for (seed, clip_id) and draws a constant number of entries per object.
    """
    own = list(dict.fromkeys(obj.lower() for obj in objects))
    if not own:
        return ObjectResult(None, "no object found in the caption")
    if not vocabulary:
        return ObjectResult(None, "no other object in the dataset's vocabulary")
    rng = random.Random(f"{seed}:{clip_id}")
    mapping: dict[str, str] = {}
    for obj in own:
        choice = _draw(rng, vocabulary, set(own) | set(mapping.values())) or _draw(rng, vocabulary, set(own))
        if choice is None:
            return ObjectResult(None, "no other object in the dataset's vocabulary")
        mapping[obj] = choice
    text = whole_words(tuple(own)).sub(lambda m: match_case(m.group(), mapping[m.group().lower()]), caption)
    if text == caption:
        return ObjectResult(None, "its objects do not appear in the caption")
    return ObjectResult(text, None)
