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
    of the correct one (NExT-QA).
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


@dataclass
class Annotations:
    """A dataset's clips; `templates` are its raw class templates in label order (SSv2), else None."""

    dataset: str
    records: list[ClipRecord] = field(default_factory=list)
    templates: list[str] | None = None
