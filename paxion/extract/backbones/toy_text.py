"""The toy backbone's word-level tokenizer, its vocabulary taken from the built-in world."""

from __future__ import annotations

import re

import torch

from paxion.synth.actions import ACTIONS, OBJECTS

PAD, UNK, EOS = "[PAD]", "[UNK]", "[EOS]"

_WORD = re.compile(r"[a-z]+")


def split_words(text: str) -> list[str]:
    """Lower-case a text and split it into its alphabetic words."""
    return _WORD.findall(text.lower())


def world_vocabulary() -> list[str]:
    """The special tokens, then every word of the world's templates and objects, sorted.

    The world's action antonyms are its reversal partners, whose templates are among ACTIONS.
    """
    words: set[str] = {"something"}
    for action in ACTIONS:
        words.update(split_words(action.template))
    for obj in OBJECTS:
        words.update(split_words(obj))
    return [PAD, UNK, EOS, *sorted(words)]


class WordTokenizer:
    """Maps texts to padded id tensors; unknown words become [UNK], each text ends with [EOS]."""

    def __init__(self, vocab: list[str], *, max_len: int = 24) -> None:
        if vocab[:3] != [PAD, UNK, EOS]:
            raise ValueError("vocabulary must start with [PAD], [UNK], [EOS]")
        self.vocab = list(vocab)
        self.max_len = max_len
        self.index = {w: i for i, w in enumerate(self.vocab)}

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids [n, L] (0 = padding) and the position of each text's [EOS] [n]."""
        unk, eos = self.index[UNK], self.index[EOS]
        rows = [[self.index.get(w, unk) for w in split_words(t)][: self.max_len - 1] + [eos] for t in texts]
        length = max((len(r) for r in rows), default=1)
        ids = torch.zeros(len(rows), length, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
        return ids, torch.tensor([len(r) - 1 for r in rows], dtype=torch.long)
