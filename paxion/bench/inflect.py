"""English inflection through lemminflect: a word's verb lemmas and form, a lemma's five forms, a noun's
plural, and copying capitalisation."""

from __future__ import annotations

from functools import cache

FORMS: tuple[str, ...] = ("base", "s", "ing", "past", "pp")
# Penn Treebank tags of each form, in lemminflect's spelling.
_TAGS: dict[str, str] = {"base": "VB", "s": "VBZ", "ing": "VBG", "past": "VBD", "pp": "VBN"}


@cache
def verb_forms(lemma: str) -> dict[str, str]:
    """The base, third-person, -ing, past and past-participle forms of a lowercase verb lemma
    (lemminflect's first spelling; its rules for words outside its lexicon)."""
    from lemminflect import getInflection

    return {form: (getInflection(lemma, tag) or (lemma,))[0] for form, tag in _TAGS.items()}


@cache
def verb_readings(word: str) -> tuple[tuple[str, str], ...]:
    """Every (lemma, form) a lowercase word can be as a verb of lemminflect's lexicon, e.g.
    "lay" -> (("lie", "past"), ("lay", "base")); empty for words it does not know as verbs."""
    from lemminflect import getAllLemmas

    readings = []
    for lemma in getAllLemmas(word, "VERB").get("VERB", ()):
        form = next((f for f, spelled in verb_forms(lemma).items() if spelled == word), None)
        if form is not None:
            readings.append((lemma, form))
    return tuple(readings)


@cache
def noun_plural(noun: str) -> str:
    """The plural of a lowercase noun (lemminflect's first spelling; its rules for words outside its lexicon)."""
    from lemminflect import getInflection

    return (getInflection(noun, "NNS") or (noun,))[0]


def match_case(source: str, text: str) -> str:
    """Give `text` the capitalisation of `source` (all capitals, or a capital first letter)."""
    if len(source) > 1 and source.isupper():
        return text.upper()
    if source[:1].isupper():
        return text[:1].upper() + text[1:]
    return text
