"""Speed of ActionBench construction: antonyms per second and `build_bench` on a built-in-world-sized dataset."""

import argparse
import tempfile
import time

from _tiny import parse_args

from paxion.bench.antonyms import action_antonym
from paxion.bench.build import build_bench
from paxion.bench.records import Annotations, ClipRecord
from paxion.synth.actions import ACTIONS, OBJECTS, fill_template

NARRATIONS = ["C picks up the knife from the table", "C opens the fridge", "C looks at the phone", "C fills a cup"]


def main() -> None:
    """Print clips per second for antonyms alone and for a full build."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=2400, help="clips of the dataset (default 2400, a world's)")
    parser.add_argument("--narrations", type=int, default=100, help="times the Ego4D-style narrations are repeated")
    args = parse_args(parser, {"clips": 24, "narrations": 1})
    records = []
    for i in range(args.clips):
        action = ACTIONS[i % len(ACTIONS)]
        objects = tuple(OBJECTS[(i + k) % len(OBJECTS)] for k in range(action.n_objects))
        caption = fill_template(action.template, objects)
        records.append(ClipRecord(str(i), "train", f"{i}.webm", caption, objects=objects))
    action_antonym("warm up WordNet")
    start = time.perf_counter()
    for record in records:
        action_antonym(record.caption, objects=record.objects)
    for text in NARRATIONS * args.narrations:
        action_antonym(text)
    elapsed = time.perf_counter() - start
    print(f"action_antonym: {(args.clips + len(NARRATIONS) * args.narrations) / elapsed:,.0f} captions/s")
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        build_bench(Annotations("ssv2", records, [a.template for a in ACTIONS]), out, seed=0)
        elapsed = time.perf_counter() - start
    print(f"build_bench: {args.clips} clips in {elapsed:.2f} s ({args.clips / elapsed:,.0f} clips/s)")


if __name__ == "__main__":
    main()
