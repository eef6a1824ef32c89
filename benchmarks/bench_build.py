"""Speed of ActionBench construction: antonyms per second, `build_bench` on a built-in-world-sized dataset, and
with `--rows N` the whole `paxion bench build --dataset ego4d` over N generated EgoClip rows (wall time, rows/s
and the child's peak RSS).

The EgoClip rows are tab-separated like egoclip.csv, with both narration passes, `#C`-tagged narrations made
from sentence templates over a verb and noun vocabulary (so antonyms and object replacement do real work) and
`tag_noun` indices into a generated `narration_noun_taxonomy.csv` (`label,group`, as Ego4D ships it).
"""

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _tiny import parse_args

from paxion.bench.antonyms import action_antonym
from paxion.bench.build import build_bench
from paxion.bench.records import Annotations, ClipRecord
from paxion.synth.actions import ACTIONS, OBJECTS, fill_template

NARRATIONS = ["C picks up the knife from the table", "C opens the fridge", "C looks at the phone", "C fills a cup"]
# (template, verbs): {v} a verb in its third-person form, {n} / {m} nouns.
TEMPLATES = [
    ("#C C {v} the {n}", ["opens", "closes", "lifts", "drops", "pushes", "pulls", "cuts", "washes", "holds"]),
    ("#C C {v} up the {n} from the {m}", ["picks"]),
    ("#C C {v} the {n} on the {m}", ["puts", "places", "keeps"]),
    ("#C C {v} the {n} into the {m}", ["puts", "inserts", "drops"]),
    ("#C C {v} the {n} with the {m}", ["wipes", "cleans", "stirs", "cuts"]),
    ("#C C looks at the {n}", [""]),
    ("#O A man X {v} the {n} to C", ["gives", "passes", "throws"]),
]
NOUNS = ["knife", "cup", "drawer", "fridge", "plate", "bowl", "spoon", "pan", "towel", "bottle", "lid", "box",
         "phone", "brush", "cloth", "sponge", "jar", "tray", "bag", "book", "paper", "pen", "hammer", "nail",
         "screw", "board", "table", "shelf", "door", "tap", "sink", "bucket", "rope", "stick", "leaf", "dough",
         "onion", "tomato", "carrot", "potato", "apple", "egg", "kettle", "pot", "glass", "mug", "fork", "tape"]
VIDEO_ROWS = 400  # narrations per video, about an Ego4D video's


def egoclip_rows(rows: int, *, seed: int = 0):
    """N EgoClip TSV lines (with the header first), both narration passes of each video."""
    rng = random.Random(seed)
    columns = ("video_uid", "video_dur", "narration_source", "narration_ind", "narration_time", "clip_start",
               "clip_end", "clip_text", "tag_verb", "tag_noun")
    yield "\t".join(columns)
    for i in range(rows):
        video, k = divmod(i, VIDEO_ROWS)
        source, ind = ("narration_pass_1", k) if k < VIDEO_ROWS // 2 else ("narration_pass_2", k - VIDEO_ROWS // 2)
        template, verbs = TEMPLATES[rng.randrange(len(TEMPLATES))]
        n, m = rng.sample(range(len(NOUNS)), 2)
        text = template.format(v=rng.choice(verbs), n=NOUNS[n], m=NOUNS[m])
        tags = [n, m] if "{m}" in template else [n]
        t = ind * 2.0 + rng.random()
        yield (f"{video:08x}-0000-4000-8000-{video:012x}\t{VIDEO_ROWS * 2.0:.1f}\t{source}\t{ind}\t{t:.3f}\t"
               f"{t - 0.5:.3f}\t{t + 0.5:.3f}\t{text}\t[0]\t{tags}")


def time_cli_build(rows: int, folder: Path) -> None:
    """Write the rows and a noun taxonomy, run `paxion bench build` on them in a child and print its figures."""
    table, taxonomy = folder / "egoclip.tsv", folder / "narration_noun_taxonomy.csv"
    with table.open("w") as f:
        for line in egoclip_rows(rows):
            f.write(line + "\n")
    taxonomy.write_text("label,group\n" + "".join(f"{n},\"['{n}']\"\n" for n in NOUNS))
    command = [sys.executable, "-m", "paxion", "bench", "build", "--dataset", "ego4d", "--annotations", str(table),
               "--noun-taxonomy", str(taxonomy), "--out", str(folder / "bench")]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"bench build failed:\n{done.stderr[-3000:]}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime
    lines = sum(1 for _ in (folder / "bench" / "egoclip.jsonl").open())
    print(f"paxion bench build --dataset ego4d: {rows:,} rows ({table.stat().st_size / 2**20:,.0f} MiB) in "
          f"{elapsed:.1f} s wall ({rows / elapsed:,.0f} rows/s), {cpu:.1f} s CPU ({rows / cpu:,.0f} rows/CPU-s), "
          f"peak RSS {usage.ru_maxrss / 1024:,.0f} MiB, {lines:,} bench lines, load average {os.getloadavg()[0]:.1f}")


def main() -> None:
    """Print clips per second for antonyms alone and for a full build; with --rows, time the CLI end to end."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=2400, help="clips of the dataset (default 2400, a world's)")
    parser.add_argument("--narrations", type=int, default=100, help="times the Ego4D-style narrations are repeated")
    parser.add_argument("--rows", type=int, default=0,
                        help="time `paxion bench build` over this many generated EgoClip rows instead (e.g. 4000000)")
    args = parse_args(parser, {"clips": 24, "narrations": 1, "rows": 500})
    if args.rows:
        with tempfile.TemporaryDirectory() as folder:
            time_cli_build(args.rows, Path(folder))
        if not args.tiny:
            return
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
