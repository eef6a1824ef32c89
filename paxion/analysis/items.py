"""Per-item predictions: one record per clip and task, written as JSONL, and their aggregates per task and class.

A record (one JSON object a line):

    {"clip": "17", "task": "aa", "class": "Pushing something from left to right",
     "candidates": [{"text": "...", "score": 0.31, "rank": 1}, {"text": "...", "score": 0.12, "rank": 2}],
     "answer": 0, "outcome": "correct", "credit": 1.0}

`candidates` keep the order they were given (for ActionBench the true pair first); each may carry extra keys
(VR: "video": "forward" | "reversed"). `rank` orders the candidates by score, highest first, equal scores by
ascending index (the order of `paxion.retrieval.index.ExactIndex`). `answer` is the index of the true candidate.
`outcome`: "tie" when the answer's score is within `tolerance` of the best other candidate's, "correct" when it
is higher, else "wrong". `credit` under the rule "share" (ActionBench's, `paxion.trainer.evaluate.pair_credit`):
1, 0 or, for a tie, 1 / (the number of candidates tied with the answer), i.e. 0.5 for a pair; under the rule
"first" (multiple choice and zero-shot, `paxion.retrieval.metrics.choice_accuracy`): 1 when the answer has rank
1 (equal scores: the lowest index wins), else 0, whatever the outcome says.

Retrieval (one query clip against every text, `ranking_records`) keeps only the top candidates, so a record has
"answer": the positive's index among them or None, "answer_text", "answer_rank": its rank among all texts (None
when deeper than searched), "answer_ties": [above, negatives, positives] around the positive's score
(`paxion.retrieval.metrics.first_hits`; None when deeper than searched); credit: the share of the random orders of
the tied texts that put it first (`recall_credit` at k = 1), outcome "correct" (credit 1), "tie" (between 0 and 1)
or "wrong". `recall_summary` turns such records back into recall at k and the median rank.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from paxion.atomic import write_text
from paxion.errors import PaxionError
from paxion.retrieval.metrics import rank_summary, recall_credit
from paxion.stats import TIE_TOLERANCE
from paxion.trainer.evaluate import summarise

OUTCOMES = ("correct", "tie", "wrong")


def _candidate(label: str | dict, score: float, rank: int) -> dict:
    entry = {"text": label} if isinstance(label, str) else dict(label)
    entry.update(score=float(score), rank=rank)
    return entry


def prediction_records(
    clip_ids: Sequence[str],
    task: str,
    candidates: Sequence[Sequence[str | dict]],
    scores: np.ndarray,
    answers: Sequence[int] | np.ndarray,
    *,
    classes: Sequence[str | None] | None = None,
    tolerance: float = TIE_TOLERANCE,
    ties: str = "share",
) -> list[dict]:
    """One record per item (see the module docstring).

    clip_ids: n clip ids. candidates: per item, K labels (a text, or a dict with at least "text").
    scores: [n, K] the model's score of each candidate, in the dtype the model produced them (the tie test
    subtracts in that dtype, as ActionBench does). answers: [n] index of the true candidate.
    classes: per item its class (template or label text), None where unknown; default None for all.
    tolerance: scores this close count as a tie (default 1e-6, ActionBench's).
    ties: "share" (ActionBench, default) or "first" (multiple choice; see the module docstring).
    Raises ValueError when the lengths or shapes disagree or `ties` is unknown.
    """
    if ties not in ("share", "first"):
        raise ValueError(f"ties must be 'share' or 'first', got {ties!r}")
    scores = np.asarray(scores)
    answers = np.asarray(answers, dtype=np.int64)
    n = len(clip_ids)
    if scores.ndim != 2 or len(scores) != n or len(answers) != n or len(candidates) != n:
        raise ValueError(f"{n} clip ids need scores [n, K], n answers and n candidate lists; got scores "
                         f"{scores.shape}, {len(answers)} answers, {len(candidates)} candidate lists")
    if classes is not None and len(classes) != n:
        raise ValueError(f"{n} clip ids but {len(classes)} classes")
    k = scores.shape[1]
    if k < 2 or np.any((answers < 0) | (answers >= k)):
        raise ValueError(f"need at least 2 candidates and answers in [0, {k}); got K={k}")
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, k + 1)[None].repeat(n, axis=0), axis=1)
    records = []
    for i in range(n):
        if len(candidates[i]) != k:
            raise ValueError(f"item {clip_ids[i]!r}: {len(candidates[i])} candidate labels for {k} scores")
        row, a = scores[i], answers[i]
        others = np.delete(row, a)
        margin = row[a] - others.max()  # in the scores' dtype, like pair_credit
        if abs(margin) <= tolerance:
            tied = int(np.sum(np.abs(row - row[a]) <= tolerance))
            outcome, credit = "tie", 1.0 / tied
        else:
            outcome, credit = ("correct", 1.0) if margin > 0 else ("wrong", 0.0)
        if ties == "first":
            credit = float(ranks[i, a] == 1)
        records.append({
            "clip": str(clip_ids[i]),
            "task": task,
            "class": None if classes is None else classes[i],
            "candidates": [_candidate(label, s, int(r)) for label, s, r in zip(candidates[i], row, ranks[i])],
            "answer": int(a),
            "outcome": outcome,
            "credit": credit,
        })
    return records


def pair_records(
    clip_ids: Sequence[str],
    task: str,
    positive: np.ndarray,
    negative: np.ndarray,
    *,
    positive_labels: Sequence[str | dict],
    negative_labels: Sequence[str | dict],
    classes: Sequence[str | None] | None = None,
    tolerance: float = TIE_TOLERANCE,
) -> list[dict]:
    """Records of a two-candidate task (ActionBench AA, VR, OR): the true pair's score [n] against the negative's [n].

    positive_labels / negative_labels: per item the true and the negative candidate (AA / OR: the caption and
    the antonym / object-replaced caption; VR: {"text": caption, "video": "forward"} and the same with
    "reversed"). The answer is candidate 0.
    """
    scores = np.stack([np.asarray(positive), np.asarray(negative)], axis=1)
    candidates = [(p, q) for p, q in zip(positive_labels, negative_labels)]
    return prediction_records(clip_ids, task, candidates, scores, np.zeros(len(clip_ids), np.int64),
                              classes=classes, tolerance=tolerance)


def actionbench_records(
    *,
    ids: Sequence[str],
    texts: Sequence[str],
    caption_idx: np.ndarray,
    template_idx: np.ndarray,
    negative_idx: dict[str, np.ndarray],
    own: np.ndarray,
    reversed_own: np.ndarray,
    negative_scores: dict[str, np.ndarray],
    tolerance: float = TIE_TOLERANCE,
) -> list[dict]:
    """AA, VR and OR records of a split from ActionBench's per-clip arrays (all [n], in clip order).

    texts: the cache's text table; caption_idx / template_idx: rows of it (template -1 = no class).
    negative_idx: {"aa": [n], "or": [n]} text rows of the negatives, -1 = the clip has none (no record).
    own: score(clip, caption); reversed_own: score(reversed clip, caption); negative_scores: {"aa", "or"}:
    score(clip, negative) (any value where the index is -1). The class of a record is the clip's template.
    """
    ids = [str(i) for i in ids]
    captions = [texts[int(i)] for i in caption_idx]
    classes = [texts[int(i)] if i >= 0 else None for i in template_idx]
    records = []
    for task in ("aa", "vr", "or"):
        if task == "vr":
            records += pair_records(ids, "vr", own, reversed_own,
                                    positive_labels=[{"text": c, "video": "forward"} for c in captions],
                                    negative_labels=[{"text": c, "video": "reversed"} for c in captions],
                                    classes=classes, tolerance=tolerance)
            continue
        rows = np.flatnonzero(np.asarray(negative_idx[task]) >= 0)
        records += pair_records([ids[r] for r in rows], task, np.asarray(own)[rows],
                                np.asarray(negative_scores[task])[rows],
                                positive_labels=[captions[r] for r in rows],
                                negative_labels=[texts[int(negative_idx[task][r])] for r in rows],
                                classes=[classes[r] for r in rows], tolerance=tolerance)
    return records


def ranking_records(
    clip_ids: Sequence[str],
    task: str,
    top_texts: Sequence[Sequence[str]],
    top_scores: np.ndarray,
    answer_texts: Sequence[str],
    answer_ranks: np.ndarray,
    answer_ties: np.ndarray,
    *,
    classes: Sequence[str | None] | None = None,
) -> list[dict]:
    """Records of a retrieval task, one per query clip (see the module docstring).

    top_texts / top_scores: per query its top k texts and their scores [n, k], best first (as
    `ExactIndex.search` returns them). answer_texts: per query its positive text. answer_ranks: [n] 1-based rank
    of the positive among all texts, inf where deeper than searched, and answer_ties [n, 3] its tie group, both from
    `paxion.retrieval.metrics.first_hits`. Raises ValueError when the lengths disagree.
    """
    top_scores = np.asarray(top_scores)
    answer_ranks = np.asarray(answer_ranks, dtype=np.float64)
    answer_ties = np.asarray(answer_ties, dtype=np.int64)
    n = len(clip_ids)
    if not (len(top_texts) == len(top_scores) == len(answer_texts) == len(answer_ranks) == len(answer_ties) == n):
        raise ValueError(f"{n} clip ids need n top lists, n answers, n ranks and n tie groups")
    credits = recall_credit(answer_ranks, answer_ties, 1)
    records = []
    for i in range(n):
        rank = None if not np.isfinite(answer_ranks[i]) else int(answer_ranks[i])
        records.append({
            "clip": str(clip_ids[i]),
            "task": task,
            "class": None if classes is None else classes[i],
            "candidates": [{"text": t, "score": float(sc), "rank": j + 1}
                           for j, (t, sc) in enumerate(zip(top_texts[i], top_scores[i]))],
            "answer": rank - 1 if rank is not None and rank <= len(top_texts[i]) else None,
            "answer_text": answer_texts[i],
            "answer_rank": rank,
            "answer_ties": None if rank is None else [int(t) for t in answer_ties[i]],
            "outcome": "correct" if credits[i] == 1 else "tie" if credits[i] > 0 else "wrong",
            "credit": float(credits[i]),
        })
    return records


def recall_summary(records: Sequence[dict], *, ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """{"r<k>": %, "medr", "n"} of ranking records, as `paxion.retrieval.metrics.retrieval_metrics` reports them
    (a rank deeper than searched counts as infinite). Raises ValueError for no records."""
    if not records:
        raise ValueError("no records to summarise")
    ranks = np.array([np.inf if r["answer_rank"] is None else r["answer_rank"] for r in records], dtype=np.float64)
    ties = np.array([r["answer_ties"] or [0, 0, 0] for r in records], dtype=np.int64).reshape(-1, 3)
    return rank_summary(ranks, ties, ks)


def write_predictions(path: str | Path, records: Iterable[dict]) -> Path:
    """Write records as JSONL (UTF-8, one object a line) to `path` atomically; return the path."""
    path = Path(path)
    write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


def read_jsonl(path: str | Path) -> list[dict]:
    """Objects of a JSONL file, lines split on "\\n" only (a caption may hold U+2028); blank lines skipped.

    Raises PaxionError naming the file (and line) when it cannot be read or a line is not a JSON object.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise PaxionError(f"{path}: cannot read ({exc})") from None
    out = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PaxionError(f"{path}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise PaxionError(f"{path}:{number}: expected a JSON object")
        out.append(obj)
    return out


def read_json_object(path: str | Path, what: str) -> dict:
    """The JSON object in a file; PaxionError naming the file and `what` it should hold when it cannot be read,
    is not JSON or is not an object."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise PaxionError(f"{path}: cannot read the {what} ({exc})") from None
    except json.JSONDecodeError as exc:
        raise PaxionError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(value, dict):
        raise PaxionError(f"{path}: expected a JSON object ({what})")
    return value


def read_predictions(path: str | Path) -> list[dict]:
    """Records written by `write_predictions`; PaxionError naming the file and line of a malformed one."""
    records = read_jsonl(path)
    for number, r in enumerate(records, start=1):
        if not {"clip", "task", "candidates", "answer", "outcome", "credit"} <= r.keys() or r["outcome"] not in OUTCOMES:
            raise PaxionError(f"{path}: record {number} is not a prediction record (clip, task, candidates, "
                              f"answer, outcome, credit)")
    return records


def tasks_of(records: Iterable[dict]) -> list[str]:
    """The tasks of the records, in order of first appearance."""
    return list(dict.fromkeys(r["task"] for r in records))


def summarise_records(records: Sequence[dict]) -> dict[str, dict]:
    """{task: {"accuracy": %, "n", "ci95": [lo, hi]}}: the records' credits summarised exactly as ActionBench does."""
    return {task: summarise(np.array([r["credit"] for r in records if r["task"] == task], dtype=np.float64))
            for task in tasks_of(records)}


def per_class(records: Sequence[dict], *, key: str = "class") -> dict[str, dict[str, dict]]:
    """{class: {task: {"accuracy", "n", "ci95"}}} ordered from the worst class to the best.

    A class's place is the mean of its task accuracies (equal means: by name); records whose `key` is None
    are grouped under "(none)". The n of a task over all classes adds up to the task's n.
    """
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault("(none)" if r.get(key) is None else str(r[key]), []).append(r)
    table = {name: summarise_records(group) for name, group in groups.items()}

    def place(name: str) -> tuple[float, str]:
        accuracies = [s["accuracy"] for s in table[name].values()]
        return (sum(accuracies) / len(accuracies), name)

    return {name: table[name] for name in sorted(table, key=place)}
