"""Action antonyms: replace the action verbs of a caption by their opposites (PAXION Appendix B).

Order of preference: directional phrases ("from left to right"), then the curated verbs and phrasal
verbs shipped in `data/antonyms.json` ("picks * up" -> "puts * down", "removes * from" -> "puts * on").
Every verb of the first clause that has an antonym is replaced ("picks up the cup and opens the door"),
clauses after "so", "until", "because", ... stay. A word is read as a verb only where its position says
so (`paxion.bench.pos`), so nouns that are also verbs ("the kitchen sink", "a drop of water") stay. A
verb followed by a directional particle its antonym contradicts ("lifts it up", "falls down") needs a
curated phrasal entry or a particle flip, else the caption gets no antonym. Verbs and verb patterns listed
as having no sensible antonym ("holding", "uses", "throws * against") give no antonym, with the reason.
A clause "without (actually) V-ing" restating a replaced verb takes the same antonym ("Pretending to close
[something] without actually closing it"), and a parenthesised verb glossing it ("Twisting (wringing)") goes
with it: left as they were, both would contradict the new action.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from paxion.bench.inflect import match_case, verb_forms, verb_readings
from paxion.bench.objects import whole_words
from paxion.bench.pos import BOUNDARIES, PREPOSITIONS, verb_position

_WORD = re.compile(r"[A-Za-z]+(?:['-][A-Za-z]+)*")
# SSv2 placeholders, parenthesised asides ("Touching (without moving) [part] of [something]") and Ego4D's
# hand phrases inside an object ("places the can in her right hand into the fridge").
_ASIDE = re.compile(r"\([^)]*\)")
_PROTECTED = re.compile(
    rf"\[[^\]]*\]|{_ASIDE.pattern}|\b(?:in|with) (?:her|his|their|both|the|my) (?:(?:left|right) )?hands?\b",
    re.IGNORECASE,
)
_GAP = "*"
_MAX_GAP = 5
# Particles that give a verb its direction: right after the verb, or after its object.
_AFTER_OBJECT = frozenset({"up", "down", "into", "onto", "out", "off", "away", "upwards", "downwards"})
_ADJACENT = _AFTER_OBJECT | {"in", "on", "over", "back", "apart"}
# An object may run on through "of" and a relative "that" ("a photo of [something]", "[something] that can't roll").
_GAP_STOPS = (PREPOSITIONS | BOUNDARIES) - {"of", "that"}


@dataclass(frozen=True)
class AntonymResult:
    """The action-antonym caption, or None with the reason; `word` is the verb blamed when there is none."""

    text: str | None
    reason: str | None
    word: str | None = None


@dataclass(frozen=True)
class _Rule:
    source: tuple[tuple[str, ...], ...]  # literal parts between gaps, lowercase; source[0][0] is the verb
    target: tuple[tuple[str, ...], ...]

    @property
    def length(self) -> int:
        return sum(len(part) for part in self.source)

    @property
    def plain(self) -> bool:
        """A bare verb, with no particle of its own."""
        return self.source == ((self.source[0][0],),)


@dataclass(frozen=True)
class _Table:
    phrases: dict[str, tuple[_Rule, ...]]  # by first word, longest first
    verbs: dict[str, tuple[_Rule, ...]]  # by verb lemma, longest first
    flip: frozenset[str]
    particle_only: frozenset[str]
    particles: dict[str, str]
    no_antonym: dict[str, str]  # verb lemma -> reason
    no_antonym_phrases: dict[str, tuple[tuple[_Rule, str], ...]]  # lemma -> ("throw * against" rule, reason)


def _parts(pattern: str) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(part.split()) for part in pattern.split(_GAP))


def _pairs(pairs: list[list[str]], *, both: bool) -> dict[str, str]:
    targets: dict[str, str] = {}
    for a, b in pairs:
        targets.setdefault(a, b)
        if both:
            targets.setdefault(b, a)
    return targets


def _by_head(rules: list[_Rule]) -> dict[str, tuple[_Rule, ...]]:
    """The rules by their first word, longest first."""
    by_head: dict[str, list[_Rule]] = {}
    for rule in sorted(rules, key=lambda r: -r.length):
        by_head.setdefault(rule.source[0][0], []).append(rule)
    return {head: tuple(group) for head, group in by_head.items()}


@cache
def _particle_phrases(particles: tuple[str, ...], allowed: frozenset[str]) -> tuple[tuple[str, ...], ...]:
    """The particle phrases to look for, longest first: those of the table starting with an allowed word,
    and the allowed words themselves."""
    phrases = {p for p in particles if p.split()[0] in allowed} | allowed
    return tuple(tuple(p.split()) for p in sorted(phrases, key=len, reverse=True))


@cache
def _table() -> _Table:
    data = json.loads(resources.files("paxion.bench").joinpath("data/antonyms.json").read_text("utf-8"))
    verbs = _pairs(data["one_way"], both=False) | {
        a: b for a, b in _pairs(data["verbs"], both=True).items() if a not in dict(data["one_way"])
    }
    reasons = {verb: reason or f"'{verb}' has no sensible antonym" for verb, reason in data["no_antonym"].items()}
    no_antonym_phrases: dict[str, list[tuple[_Rule, str]]] = {}
    for phrase, reason in reasons.items():
        if len(phrase.split()) > 1:
            rule = _Rule(_parts(phrase), ())
            no_antonym_phrases.setdefault(rule.source[0][0], []).append((rule, reason))
    phrases = [_Rule(_parts(a), _parts(b)) for a, b in _pairs(data["phrases"], both=True).items()]
    return _Table(
        phrases=_by_head(phrases),
        verbs=_by_head([_Rule(_parts(a), _parts(b)) for a, b in verbs.items()]),
        flip=frozenset(data["flip_particle"]),
        particle_only=frozenset(data["particle_only"]),
        particles=_pairs(data["particles"], both=True),
        no_antonym=reasons,
        no_antonym_phrases={head: tuple(entries) for head, entries in no_antonym_phrases.items()},
    )


class _Caption:
    """A caption cut into words, with the words that may not be replaced marked."""

    def __init__(self, caption: str, objects: tuple[str, ...]) -> None:
        self.text = caption
        self.words = list(_WORD.finditer(caption))
        spans = [m.span() for m in _PROTECTED.finditer(caption)]
        for obj in objects:
            spans += [m.span() for m in whole_words((obj,)).finditer(caption)]
        self.free = [not any(s < m.end() and m.start() < e for s, e in spans) for m in self.words]
        self.lower = [m.group().lower() for m in self.words]
        # Where a replacement ending at each word ends in the text: a one-word parenthesised aside goes whole.
        self.ends = [m.end() for m in self.words]
        self.one_word_asides: set[int] = set()
        for aside in _ASIDE.finditer(caption):
            inside = [k for k, m in enumerate(self.words) if aside.start() < m.start() < aside.end()]
            if len(inside) == 1:
                self.ends[inside[0]] = aside.end()
                self.one_word_asides.add(inside[0])

    def literal(self, part: tuple[str, ...], i: int) -> bool:
        """Whether the free words from i on spell `part`."""
        end = i + len(part)
        return end <= len(self.words) and all(self.free[j] and self.lower[j] == w for j, w in zip(range(i, end), part))

    def gap(self, i: int) -> range:
        """The positions after an object that starts at word i: 1-5 free words that are no preposition or
        clause boundary (placeholders and the caption's objects do not count)."""
        free = 0
        j = i
        while j < len(self.words):
            if self.free[j]:
                if self.lower[j] in _GAP_STOPS or free == _MAX_GAP:
                    break
                free += 1
            j += 1
        return range(i + 1, j + 1)

    def after_gloss(self, b: int, form: str) -> int:
        """b + 1 when word b is a parenthesised verb of the same form as the verb before it, a gloss of it
        ("Twisting (wringing) [something]"), else b."""
        glossed = b in self.one_word_asides and any(f == form for _, f in verb_readings(self.lower[b]))
        return b + 1 if glossed else b

    def particle(self, i: int, particles: dict[str, str]) -> tuple[int, int] | None:
        """The word range of the directional particle of the verb at word i: right after it, or right
        after its object."""
        after_object = self.gap(i + 1)
        places = [(i + 1, _ADJACENT)] + ([(after_object[-1], _AFTER_OBJECT)] if after_object else [])
        for start, allowed in places:
            if start == len(self.words) - 1:  # a caption-final word is a particle: "pushes the drawer in"
                allowed = _ADJACENT
            for words in _particle_phrases(tuple(particles), allowed):
                if self.literal(words, start):
                    return start, start + len(words)
        return None

    def replace(self, segments: list[tuple[int, int, str]]) -> str:
        """The caption with each word range [a, b) replaced by its text, in the case of its first word."""
        text = self.text
        for a, b, new in sorted(segments, reverse=True):
            first = self.words[a]
            text = text[: first.start()] + match_case(first.group(), new) + text[self.ends[b - 1] :]
        return text


def _match(rule: _Rule, cap: _Caption, i: int) -> list[tuple[int, int]] | None:
    """The word ranges of the rule's parts when it matches with its verb at word i, else None."""
    if not cap.literal(rule.source[0][1:], i + 1):
        return None
    ranges = [(i, i + len(rule.source[0]))]
    for part in rule.source[1:]:
        start = next((s for s in cap.gap(ranges[-1][1]) if cap.literal(part, s)), None)
        if start is None:
            return None
        ranges.append((start, start + len(part)))
    return ranges


@dataclass(frozen=True)
class _Edit:
    segments: list[tuple[int, int, str]]
    used: range  # the words the edit covers, verb to last particle


def _verb_edit(cap: _Caption, i: int, lemma: str, form: str, table: _Table) -> _Edit | str | None:
    """The replacement of the verb at word i read as (lemma, form): an edit, a reason why it has none, or
    None when the table does not know the verb."""
    for rule, reason in table.no_antonym_phrases.get(lemma, ()):
        if _match(rule, cap, i) is not None:
            return reason
    matches = [(rule, ranges) for rule in table.verbs.get(lemma, ()) if (ranges := _match(rule, cap, i)) is not None]
    if matches:
        # The rule with most parts wins ("picks up * from" over "picks up"), then the nearest particle
        # ("puts it on the table next to ..." is "put * on"), then the longest.
        rule, ranges = min(matches, key=lambda m: (-len(m[1]), m[1][-1][0], -m[0].length))
        target = [" ".join(part) for part in rule.target]
        head, _, tail = target[0].partition(" ")
        target[0] = " ".join(filter(None, [verb_forms(head)[form], tail]))
        segments = [(a, b, new) for (a, b), new in zip(ranges, target)]
        # A gloss of the verb right after it ("Twisting (wringing)") would contradict its antonym: it goes too.
        a, b, new = segments[0]
        segments[0] = (a, cap.after_gloss(b, form), new)
        if not rule.plain:
            return _Edit(segments, range(i, ranges[-1][1]))
    elif lemma not in table.particle_only:
        return table.no_antonym.get(lemma)
    else:
        segments = []
    span = cap.particle(i, table.particles)
    if span is None:
        return _Edit(segments, range(i, i + 1)) if segments else table.no_antonym.get(lemma)
    particle = " ".join(cap.lower[span[0] : span[1]])
    if (segments and lemma not in table.flip) or particle not in table.particles:
        return f"'{lemma} {particle}' has no curated antonym"
    return _Edit([*segments, (span[0], span[1], table.particles[particle])], range(i, span[1]))


def _restatement(cap: _Caption, i: int, edited: set[str], table: _Table) -> list[tuple[int, int, str]]:
    """The edit of a clause at word i that restates the action negated, "without (actually) V-ing", V one of
    the `edited` verb lemmas ("Pretending to close [something] without actually closing it"): it names the
    same action, so it takes the same antonym. Empty when there is none."""
    if i == len(cap.words) or not cap.free[i] or cap.lower[i] != "without":
        return []
    j = i + 1
    while j < len(cap.words) and cap.free[j] and cap.lower[j].endswith("ly"):
        j += 1
    if j == len(cap.words) or not cap.free[j]:
        return []
    for lemma, form in verb_readings(cap.lower[j]):
        if form == "ing" and lemma in edited:
            edit = _verb_edit(cap, j, lemma, form, table)
            return edit.segments if isinstance(edit, _Edit) else []
    return []


def _phrase(cap: _Caption, table: _Table) -> str | None:
    for i in range(len(cap.words)):
        for rule in table.phrases.get(cap.lower[i], ()):
            if cap.literal(rule.source[0], i):
                return cap.replace([(i, i + len(rule.source[0]), " ".join(rule.target[0]))])
    return None


def action_antonym(caption: str, *, objects: tuple[str, ...] | list[str] = ()) -> AntonymResult:
    """The caption with its action expressions replaced by their antonyms; `objects` are never touched.

    Returns the new text, or None with the reason and the verb blamed (`word`, a lemma).
    """
    table = _table()
    cap = _Caption(caption, tuple(objects))
    text = _phrase(cap, table)
    if text is not None:
        return AntonymResult(text, None)
    segments: list[tuple[int, int, str]] = []
    edited: set[str] = set()
    blame: tuple[str, str] | None = None
    first_verb: str | None = None
    i = 0
    while i < len(cap.words):
        # A clause of its own, or a purpose "to" ("opens the box to take the pen"), ends the action.
        if cap.free[i] and (cap.lower[i] in BOUNDARIES or cap.lower[i] == "to") and segments:
            break
        edit = None
        for lemma, form in verb_readings(cap.lower[i]):
            if not verb_position(cap.lower, cap.free, i, form):
                continue
            first_verb = first_verb or lemma
            edit = _verb_edit(cap, i, lemma, form, table)
            if isinstance(edit, str):
                blame = blame or (lemma, edit)
            if edit is not None:
                break
        if isinstance(edit, _Edit):
            segments += edit.segments
            edited.add(lemma)
            i = edit.used.stop
        else:
            i += 1
    if segments:
        segments += _restatement(cap, i, edited, table)
        return AntonymResult(cap.replace(segments), None)
    if blame is not None:
        return AntonymResult(None, blame[1], blame[0])
    return AntonymResult(None, "no action word with a known antonym", first_verb)
