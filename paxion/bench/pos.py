"""Where a word of a caption is a verb or a noun, decided by its position and WordNet, without a tagger.

Captions of SSv2, Ego4D and NExT-QA are short and regular: a verb opens an SSv2 template ("Pushing ...")
or an answer ("opens the door"), follows a subject ("C", "#O the man", "[something]", "the leaf"), an
auxiliary or "to", or joins another verb with "and". A word right after a determiner, a number or a
preposition is not a verb, and a base form after a noun is part of a compound ("the kitchen sink").
"""

from __future__ import annotations

from functools import cache

DETERMINERS = frozenset(
    {"a", "an", "the", "this", "that", "these", "those", "its", "his", "her", "their", "my", "your", "our"}
    | {"some", "any", "no", "another", "each", "every", "both", "all", "many", "few", "several", "other"}
    | {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"}
)
COPULAS = frozenset({"is", "are", "was", "were", "be", "been", "being", "am"})
# Words after which a clause of its own begins: verbs there belong to it, not to the caption's action.
BOUNDARIES = frozenset(
    {"so", "until", "that", "without", "but", "because", "while", "as", "which", "who", "whom", "if"}
    | {"when", "after", "before", "then", "though", "although", "where", "whilst", "since", "once", "why"}
    | {"how", "what"}
)
PREPOSITIONS = frozenset(
    {"on", "in", "into", "onto", "to", "from", "of", "off", "with", "at", "by", "for", "next", "behind"}
    | {"underneath", "under", "over", "across", "along", "through", "towards", "toward", "away", "up"}
    | {"down", "out", "inside", "outside", "near", "against", "around", "back", "beside", "between"}
    | {"above", "below", "beneath", "upon", "within", "past", "apart", "like"}
)
# People and pronouns that narrate actions: Ego4D's "C" (camera wearer), "#O"/"O" and "X"/"Y" for others.
SUBJECTS = frozenset(
    {"c", "o", "x", "y", "he", "she", "they", "it", "i", "we", "you", "someone", "somebody", "something", "person"}
    | {"man", "woman", "lady", "boy", "girl", "child", "kid", "baby", "people", "everyone", "nobody"}
)
# Words after which a verb in any form may follow.
_LEADS = frozenset(
    {"and", "or", "to", "not", "also", "again", "still", "just", "then", "first", "finally", "now"}
    | {"can", "can't", "cannot", "could", "will", "would", "should", "must", "may", "might", "shall"}
    | {"do", "does", "did", "don't", "doesn't", "didn't", "has", "have", "had", "let", "lets", "help"}
)


@cache
def _wordnet():
    from nltk.corpus import wordnet

    return wordnet


@cache
def is_noun(word: str) -> bool:
    """Whether WordNet knows the lowercase word (or its singular) as a noun."""
    wn = _wordnet()
    return bool(wn.synsets(word, wn.NOUN))


@cache
def verb_leaning(word: str) -> bool:
    """Whether WordNet has more verb than noun senses for the lowercase word ("stand", "jump", "sink")."""
    wn = _wordnet()
    return len(wn.synsets(word, wn.VERB)) > len(wn.synsets(word, wn.NOUN))


def verb_position(lower: list[str], free: list[bool], i: int, form: str) -> bool:
    """Whether word i of a caption (lowercase words; `free` False for placeholders and named objects),
    read as a verb in `form` (see `paxion.bench.inflect.FORMS`), stands where a verb can stand."""
    if not free[i]:
        return False
    if i == 0:
        return True
    before = lower[i - 1]
    if not free[i - 1]:
        return True
    if before in SUBJECTS or before in _LEADS or before.endswith("ly"):
        return True
    if i > 1 and lower[i - 2] in SUBJECTS and len(before) == 1:  # Ego4D's "the man A picks ..."
        return True
    if before in DETERMINERS or before in PREPOSITIONS:
        return False
    if before in COPULAS:
        return form == "ing"
    return form != "base" and is_noun(before)


@cache
def adjective_leaning(word: str) -> bool:
    """Whether WordNet has more adjective than noun senses for the lowercase word ("special", "young")."""
    wn = _wordnet()
    adjective = {s for pos in (wn.ADJ, wn.ADJ_SAT) for s in wn.synsets(word, pos)}
    return len(adjective) > len(wn.synsets(word, wn.NOUN))


@cache
def noun_kinds(word: str) -> tuple[str, ...]:
    """The WordNet lexicographer files of a lowercase noun's senses, most frequent first
    ("knife" -> ("noun.artifact", ...)); empty for words WordNet has no noun for."""
    wn = _wordnet()
    return tuple(s.lexname() for s in wn.synsets(word, wn.NOUN))
