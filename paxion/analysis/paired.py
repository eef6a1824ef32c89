"""Paired comparison of two models scored on the same items: accuracy difference and an exact McNemar test.

McNemar (1947) tests whether two classifiers err on the same items at the same rate from the discordant pairs
only: b items right for A and wrong for B, c the other way. Under the null each discordant item is a fair coin,
so the exact two-sided p-value is 2 * P(X <= min(b, c)) for X ~ Binomial(b + c, 1/2), capped at 1.

Ties: the test needs right / wrong per item, while ActionBench gives a tie 0.5 credit, the expected score of a
guess. For the test a tie is resolved as that guess: right when a uniform number drawn from a hash of (model name,
task, clip) is below the tie's credit, so the resolution is the same on every run and independent between models.
The other readings fail on the built-in world, where the frame-wise backbone ties on every Video Reversal clip:
counting ties as wrong gives the backbone 0 right and p ~ 1e-39 against a patcher 15 points better; dropping them
leaves no item to test. The reported accuracies and their difference keep the 0.5 credits, and each model's
number of ties is reported beside the test.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from fractions import Fraction
from math import comb

from paxion.analysis.items import summarise_records, tasks_of
from paxion.errors import PaxionError


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value of b and c discordant pairs (b + c = 0 gives 1.0).

    Computed with integer arithmetic, so exact for any counts. Raises ValueError for negative counts.
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be non-negative, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(comb(n, k) for k in range(min(b, c) + 1))
    return float(min(Fraction(2 * tail, 2**n), Fraction(1)))


def is_right(record: dict, model: str) -> bool:
    """The record's outcome as right / wrong for the test: a tie is a guess resolved by a hash (module docstring)."""
    if record["outcome"] != "tie":
        return record["outcome"] == "correct"
    key = f"{model}\0{record['task']}\0{record['clip']}".encode()
    draw = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / 2**64
    return draw < record["credit"]


def _by_item(records: Sequence[dict], what: str) -> dict[tuple[str, str], dict]:
    out = {}
    for r in records:
        item = (r["task"], r["clip"])
        if item in out:
            raise PaxionError(f"{what}: item {r['clip']!r} of task {r['task']!r} appears twice")
        out[item] = r
    return out


def paired_comparison(a: Sequence[dict], b: Sequence[dict], *, names: tuple[str, str] = ("A", "B")) -> dict[str, dict]:
    """Per task: {"n", "accuracy_a", "accuracy_b", "difference" (a - b, points), "a_only", "b_only", "p_value",
    "ties_a", "ties_b"} of two prediction-record lists over the same items (matched by task and clip id).

    a_only / b_only: items right for one model and not for the other (a tie resolved as a guess; see the module
    docstring). names: the two models' names, used in messages and the tie resolution (default "A", "B").
    Raises PaxionError naming the models when their items differ.
    """
    items_a, items_b = _by_item(a, names[0]), _by_item(b, names[1])
    if items_a.keys() != items_b.keys():
        missing = sorted(items_a.keys() ^ items_b.keys())
        raise PaxionError(f"{names[0]} and {names[1]} were not scored on the same items "
                          f"({len(missing)} differ, e.g. task {missing[0][0]!r} clip {missing[0][1]!r})")
    out = {}
    for task in tasks_of(a):
        keys = [k for k in items_a if k[0] == task]
        ra, rb = [items_a[k] for k in keys], [items_b[k] for k in keys]
        right_a = [is_right(r, names[0]) for r in ra]
        right_b = [is_right(r, names[1]) for r in rb]
        a_only = sum(x and not y for x, y in zip(right_a, right_b))
        b_only = sum(y and not x for x, y in zip(right_a, right_b))
        acc_a, acc_b = summarise_records(ra)[task]["accuracy"], summarise_records(rb)[task]["accuracy"]
        out[task] = {
            "n": len(keys),
            "accuracy_a": acc_a,
            "accuracy_b": acc_b,
            "difference": acc_a - acc_b,
            "a_only": a_only,
            "b_only": b_only,
            "p_value": mcnemar_exact(a_only, b_only),
            "ties_a": sum(r["outcome"] == "tie" for r in ra),
            "ties_b": sum(r["outcome"] == "tie" for r in rb),
        }
    return out


def compare_models(predictions: dict[str, Sequence[dict]]) -> dict[str, dict[str, dict]]:
    """{"B vs A": paired_comparison(B, A)} for every pair of models, A listed before B (so the difference is
    what the later model, e.g. the patched one, gains over the earlier, e.g. the backbone)."""
    names = list(predictions)
    return {f"{b} vs {a}": paired_comparison(predictions[b], predictions[a], names=(b, a))
            for i, a in enumerate(names) for b in names[i + 1:]}
