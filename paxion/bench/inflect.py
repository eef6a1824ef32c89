"""English verb inflection: the five forms of a verb, and copying capitalisation."""

from __future__ import annotations

import re

FORMS: tuple[str, ...] = ("base", "s", "ing", "past", "pp")

_VOWELS = "aeiou"
# One vowel group ending consonant-vowel-consonant ("put", "zip", "drop"): the final consonant doubles.
_DOUBLING = re.compile(r"^[^aeiou]*[aeiou][^aeiouwxy]$")


def _doubles(lemma: str) -> bool:
    return bool(_DOUBLING.match(lemma)) or (lemma.startswith("un") and bool(_DOUBLING.match(lemma[2:])))


def _third_person(lemma: str) -> str:
    if lemma.endswith(("s", "x", "z", "ch", "sh", "o")):
        return lemma + "es"
    if lemma.endswith("y") and len(lemma) > 1 and lemma[-2] not in _VOWELS:
        return lemma[:-1] + "ies"
    return lemma + "s"


def _regular_past(lemma: str) -> str:
    if lemma.endswith("e"):
        return lemma + "d"
    if lemma.endswith("y") and len(lemma) > 1 and lemma[-2] not in _VOWELS:
        return lemma[:-1] + "ied"
    if _doubles(lemma):
        return lemma + lemma[-1] + "ed"
    return lemma + "ed"


def _gerund(lemma: str) -> str:
    if lemma.endswith("ie"):
        return lemma[:-2] + "ying"
    if lemma.endswith("e") and not lemma.endswith(("ee", "ye", "oe")) and len(lemma) > 2:
        return lemma[:-1] + "ing"
    if _doubles(lemma):
        return lemma + lemma[-1] + "ing"
    return lemma + "ing"


def verb_forms(lemma: str, irregular: dict[str, tuple[str, str]]) -> dict[str, str]:
    """The base, third-person, -ing, past and past-participle forms of a lowercase verb lemma."""
    past, pp = irregular.get(lemma) or (_regular_past(lemma),) * 2
    return {"base": lemma, "s": _third_person(lemma), "ing": _gerund(lemma), "past": past, "pp": pp}


def match_case(source: str, text: str) -> str:
    """Give `text` the capitalisation of `source` (all capitals, or a capital first letter)."""
    if len(source) > 1 and source.isupper():
        return text.upper()
    if source[:1].isupper():
        return text[:1].upper() + text[1:]
    return text
