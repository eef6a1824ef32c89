"""Action antonyms: replace exactly one action expression of a caption by its opposite.

Order of preference: directional phrases ("from left to right"), then the curated verbs and phrasal
verbs shipped in `data/antonyms.json` ("picks up" -> "puts down"), then WordNet verb antonyms. Matching
is on whole words (a hyphenated word is one word), never on substrings, keeps the verb's inflection and
the capitalisation, and skips object words, bracketed SSv2 placeholders and words right after a
determiner or a form of "be" (there "empty", "open" or "fall" are adjectives or nouns). Verbs listed as
having no sensible antonym ("holding", "shaking") are never replaced, so such captions get no antonym.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from paxion.bench.inflect import FORMS, match_case, verb_forms

_WORD = re.compile(r"[A-Za-z]+(?:['-][A-Za-z]+)*")
_PLACEHOLDER = re.compile(r"\[[^\]]*\]")
_GAP = "*"
_MAX_GAP = 4
_DETERMINERS = frozenset(
    {"a", "an", "the", "this", "that", "these", "those", "its", "his", "her", "their", "my", "your", "our"}
    | {"some", "any", "no"}
)
_COPULAS = frozenset({"is", "are", "was", "were", "be", "been"})


@dataclass(frozen=True)
class AntonymResult:
    """The action-antonym caption, or None with the reason; `word` is the verb blamed when there is none."""

    text: str | None
    reason: str | None
    word: str | None = None


@dataclass(frozen=True)
class _Rule:
    source: tuple[tuple[str, ...], ...]  # literal parts between gaps, lowercase
    target: tuple[tuple[str, ...], ...]
    verb: bool

    @property
    def length(self) -> int:
        return sum(len(part) for part in self.source) + len(self.source) - 1


@dataclass(frozen=True)
class _Table:
    phrases: tuple[_Rule, ...]
    verbs: tuple[_Rule, ...]
    no_antonym: frozenset[str]
    irregular: dict[str, tuple[str, str]]


def _parts(pattern: str) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(part.split()) for part in pattern.split(_GAP))


def _rules(pairs: list[list[str]], *, verb: bool) -> tuple[_Rule, ...]:
    targets: dict[str, str] = {}
    for a, b in pairs:
        targets.setdefault(a, b)
        targets.setdefault(b, a)
    rules = [_Rule(_parts(a), _parts(b), verb) for a, b in targets.items()]
    return tuple(sorted(rules, key=lambda r: -r.length))


@cache
def _table() -> _Table:
    data = json.loads(resources.files("paxion.bench").joinpath("data/antonyms.json").read_text("utf-8"))
    return _Table(
        phrases=_rules(data["phrases"], verb=False),
        verbs=_rules(data["verbs"], verb=True),
        no_antonym=frozenset(data["no_antonym"]),
        irregular={k: (v[0], v[1]) for k, v in data["irregular"].items()},
    )


@cache
def _surface_forms(lemma: str) -> dict[str, str]:
    forms = verb_forms(lemma, _table().irregular)
    return {forms[name]: name for name in reversed(FORMS)}


def _form(word: str, lemma: str) -> str | None:
    """Which verb form of `lemma` the lowercase `word` is (the first of FORMS that spells it), or None."""
    return _surface_forms(lemma).get(word)


@cache
def _wordnet():
    from nltk.corpus import wordnet

    return wordnet


def _protected(caption: str, objects: tuple[str, ...]) -> list[tuple[int, int]]:
    spans = [m.span() for m in _PLACEHOLDER.finditer(caption)]
    for obj in objects:
        spans += [m.span() for m in re.finditer(rf"(?<![\w-]){re.escape(obj)}(?![\w-])", caption, re.IGNORECASE)]
    return spans


class _Caption:
    """A caption cut into words, with the words that may not be replaced marked."""

    def __init__(self, caption: str, objects: tuple[str, ...]) -> None:
        self.text = caption
        self.words = list(_WORD.finditer(caption))
        spans = _protected(caption, objects)
        self.free = [not any(s < m.end() and m.start() < e for s, e in spans) for m in self.words]
        self.lower = [m.group().lower() for m in self.words]

    def verb_position(self, i: int, form: str | None) -> bool:
        """Whether word i, in this verb form, may be read as a verb: free, not after a determiner, and
        after "be" only as an -ing form ("is empty", "is open" are adjectives; "is falling" is a verb)."""
        before = self.lower[i - 1] if i > 0 else ""
        return (
            form is not None
            and self.free[i]
            and before not in _DETERMINERS
            and (before not in _COPULAS or form == "ing")
        )

    def literal(self, part: tuple[str, ...], i: int) -> bool:
        """Whether the free words from i on spell `part`."""
        end = i + len(part)
        return end <= len(self.words) and all(self.free[j] and self.lower[j] == w for j, w in zip(range(i, end), part))

    def replace(self, segments: list[tuple[int, int, str]]) -> str:
        """The caption with each word range [a, b) replaced by its text, in the case of its first word."""
        text = self.text
        for a, b, new in sorted(segments, reverse=True):
            first = self.words[a]
            text = text[: first.start()] + match_case(first.group(), new) + text[self.words[b - 1].end() :]
        return text


def _match(rule: _Rule, cap: _Caption, i: int) -> list[tuple[int, int]] | None:
    """The word ranges of the rule's parts when it matches at word i, else None."""
    head, *rest = rule.source[0]
    if rule.verb:
        if not cap.verb_position(i, _form(cap.lower[i], head)):
            return None
    elif not (cap.free[i] and cap.lower[i] == head):
        return None
    if not cap.literal(tuple(rest), i + 1):
        return None
    ranges = [(i, i + len(rule.source[0]))]
    for part in rule.source[1:]:
        start = next((s for s in range(ranges[-1][1] + 1, ranges[-1][1] + _MAX_GAP + 1) if cap.literal(part, s)), None)
        if start is None:
            return None
        ranges.append((start, start + len(part)))
    return ranges


def _apply(rule: _Rule, cap: _Caption, ranges: list[tuple[int, int]], table: _Table) -> str:
    target = [" ".join(part) for part in rule.target]
    if rule.verb:
        form = _form(cap.lower[ranges[0][0]], rule.source[0][0])
        head, _, tail = target[0].partition(" ")
        target[0] = " ".join(filter(None, [verb_forms(head, table.irregular)[form], tail]))
    return cap.replace([(a, b, new) for (a, b), new in zip(ranges, target)])


def _curated(cap: _Caption, rules: tuple[_Rule, ...], table: _Table) -> str | None:
    for i in range(len(cap.words)):
        for rule in rules:
            ranges = _match(rule, cap, i)
            if ranges is not None:
                return _apply(rule, cap, ranges, table)
    return None


@cache
def verb_lemma(word: str) -> str | None:
    """The verb lemma of a lowercase word when WordNet reads it mainly as a verb, else None."""
    wn = _wordnet()
    lemma = wn.morphy(word, wn.VERB)
    if lemma is None:
        return None
    other = sum(len(wn.synsets(word, pos)) for pos in (wn.NOUN, wn.ADJ))
    return lemma if len(wn.synsets(word, wn.VERB)) >= other else None


@cache
def _wordnet_antonym(lemma: str) -> str | None:
    """The first one-word antonym of a verb lemma over its WordNet senses (most frequent first)."""
    wn = _wordnet()
    for synset in wn.synsets(lemma, wn.VERB):
        for entry in synset.lemmas():
            if entry.name() == lemma:
                names = [a.name() for a in entry.antonyms() if "_" not in a.name()]
                if names:
                    return names[0]
    return None


def _from_wordnet(cap: _Caption, table: _Table) -> str | None:
    for i, word in enumerate(cap.lower):
        lemma = verb_lemma(word)
        if lemma is None or lemma in table.no_antonym:
            continue
        form = _form(word, lemma)
        antonym = _wordnet_antonym(lemma)
        if antonym is not None and cap.verb_position(i, form):
            return cap.replace([(i, i + 1, verb_forms(antonym, table.irregular)[form])])
    return None


def _blamed_verb(cap: _Caption, table: _Table) -> tuple[str | None, bool]:
    """The first verb of the caption (a lemma) and whether it is listed as having no antonym."""
    lemmas = [verb_lemma(w) for w in cap.lower]
    lemmas = [m if m and cap.verb_position(i, _form(w, m)) else None for i, (w, m) in enumerate(zip(cap.lower, lemmas))]
    listed = next((lemma for lemma in lemmas if lemma in table.no_antonym), None)
    if listed is not None:
        return listed, True
    return next((lemma for lemma in lemmas if lemma is not None), None), False


def action_antonym(caption: str, *, objects: tuple[str, ...] | list[str] = ()) -> AntonymResult:
    """The caption with one action expression replaced by its antonym; `objects` are never touched."""
    table = _table()
    cap = _Caption(caption, tuple(objects))
    text = _curated(cap, table.phrases, table) or _curated(cap, table.verbs, table) or _from_wordnet(cap, table)
    if text is not None:
        return AntonymResult(text, None)
    verb, listed = _blamed_verb(cap, table)
    if listed:
        return AntonymResult(None, f"'{verb}' has no sensible antonym", verb)
    return AntonymResult(None, "no action word with a known antonym", verb)
