"""Speed of ActionBench construction: antonyms per second and `build_bench` on a built-in-world-sized dataset."""

import tempfile
import time

from paxion.bench.antonyms import action_antonym
from paxion.bench.build import build_bench
from paxion.bench.records import Annotations, ClipRecord
from paxion.synth.actions import ACTIONS, OBJECTS, fill_template

N_CLIPS = 2400
NARRATIONS = ["C picks up the knife from the table", "C opens the fridge", "C looks at the phone", "C fills a cup"]


def main() -> None:
    """Print clips per second for antonyms alone and for a full build."""
    records = []
    for i in range(N_CLIPS):
        action = ACTIONS[i % len(ACTIONS)]
        objects = tuple(OBJECTS[(i + k) % len(OBJECTS)] for k in range(action.n_objects))
        caption = fill_template(action.template, objects)
        records.append(ClipRecord(str(i), "train", f"{i}.webm", caption, objects=objects))
    action_antonym("warm up WordNet")
    start = time.perf_counter()
    for record in records:
        action_antonym(record.caption, objects=record.objects)
    for text in NARRATIONS * 100:
        action_antonym(text)
    elapsed = time.perf_counter() - start
    print(f"action_antonym: {(N_CLIPS + 400) / elapsed:,.0f} captions/s")
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        build_bench(Annotations("ssv2", records, [a.template for a in ACTIONS]), out, seed=0)
        elapsed = time.perf_counter() - start
    print(f"build_bench: {N_CLIPS} clips in {elapsed:.2f} s ({N_CLIPS / elapsed:,.0f} clips/s)")


if __name__ == "__main__":
    main()
