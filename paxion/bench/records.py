"""The one clip record every dataset reader returns, and a dataset's records with its classes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ClipRecord:
    """One annotated clip.

    id: unique within the dataset. video: file name relative to the videos folder.
    start, end: seconds inside the video, None = the whole file. caption: the clip's text.
    template: the object-hidden caption ("Pushing something from left to right"), None where none.
    label: class index, None where none. objects: the object phrases of the caption where the dataset
    names them (SSv2 placeholders; empty when none of them is usable, e.g. blank or not in the label), None
    where the dataset names none (the caption's noun phrases are used). candidates, answer: multiple-choice texts and the index
    of the correct one (NExT-QA). question: the question the candidates start with (NExT-QA), else None.
    class_name: the class as text (Kinetics, Moments in Time, JSONL `label`), else None.
    aa_given, or_given: negatives shipped with the annotations (the paper's release), None = make our own.
    salient: a shipped state-change flag (the release's `if_keep`), None = computed at extraction.
    nouns: the dataset's own noun tags of the clip (EgoClip `tag_noun` named through Ego4D's noun taxonomy),
    lowercase; where given, only they head the caption's object phrases. Empty where none.
    origin: "file:line" the clip was read from, for error messages.
    """

    id: str
    split: str
    video: str
    caption: str
    start: float | None = None
    end: float | None = None
    template: str | None = None
    label: int | None = None
    objects: tuple[str, ...] | None = None
    candidates: tuple[str, ...] | None = None
    answer: int | None = None
    question: str | None = None
    class_name: str | None = None
    aa_given: str | None = None
    or_given: str | None = None
    salient: bool | None = None
    nouns: tuple[str, ...] = ()
    origin: str = ""


class Clips:
    """Clips read again from their files at each iteration, so millions of them are never held at once.

    read: a function returning a fresh iterator over the clips, in file order.
    """

    def __init__(self, read: Callable[[], Iterator[ClipRecord]]) -> None:
        self.read = read

    def __iter__(self) -> Iterator[ClipRecord]:
        return self.read()

    def __bool__(self) -> bool:
        return next(self.read(), None) is not None


@dataclass
class Annotations:
    """A dataset's clips; `templates` are its class templates or names in label order (SSv2, Kinetics, ...), else None.

    records: a list, or `Clips` streamed from the files (`read_dataset(..., stream=True)`).
    """

    dataset: str
    records: list[ClipRecord] | Clips = field(default_factory=list)
    templates: list[str] | None = None
