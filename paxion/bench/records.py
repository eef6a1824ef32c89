"""The one clip record every dataset reader returns, and a dataset's records with its classes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ClipRecord:
    """One annotated clip.

    id: unique within the dataset. video: file name relative to the videos folder.
    start, end: seconds inside the video, None = the whole file. caption: the clip's text.
    template: the object-hidden caption ("Pushing something from left to right"), None where none.
    label: class index, None where none. objects: the object phrases of the caption where the dataset
    names them (SSv2 placeholders), else empty. candidates, answer: multiple-choice texts and the index
    of the correct one (NExT-QA). question: the question the candidates start with (NExT-QA), else None.
    class_name: the class as text (Kinetics, Moments in Time, JSONL `label`), else None.
    aa_given, or_given: negatives shipped with the annotations (the paper's release), None = make our own.
    salient: a shipped state-change flag (the release's `if_keep`), None = computed at extraction.
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
    objects: tuple[str, ...] = ()
    candidates: tuple[str, ...] | None = None
    answer: int | None = None
    question: str | None = None
    class_name: str | None = None
    aa_given: str | None = None
    or_given: str | None = None
    salient: bool | None = None
    origin: str = ""


@dataclass
class Annotations:
    """A dataset's clips; `templates` are its class templates or names in label order (SSv2, Kinetics, ...), else None."""

    dataset: str
    records: list[ClipRecord] = field(default_factory=list)
    templates: list[str] | None = None
