"""The `paxion` command line: parses arguments, calls the library, prints with rich. No logic of its own.

Options that several commands share are declared once below (`device_option`, `cache_option`, ...); the
tables come from `paxion.report.tables`.
"""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from paxion.errors import PaxionError

console = Console()
err_console = Console(stderr=True)

DEVICES = ("auto", "cpu", "cuda")


# ---- options shared by several commands ----


def device_option(*, default: str = "auto", help: str = "auto = CUDA when available, else CPU."):
    """`--device auto|cpu|cuda`."""
    return click.option("--device", type=click.Choice(DEVICES), default=default, show_default=True, help=help)


def cache_option(*, help: str = "Feature cache directory written by `paxion extract`."):
    """`--cache DIR` (required, must exist), passed as `cache_dir`."""
    return click.option("--cache", "cache_dir", required=True, type=click.Path(exists=True, file_okay=False),
                        help=help)


def run_option(*, help: str, multiple: bool = False):
    """`--run DIR`, a run directory written by `paxion train`, passed as `run_dir` (a tuple `run_dirs` when it may
    be given several times)."""
    return click.option("--run", "run_dirs" if multiple else "run_dir", type=click.Path(exists=True, file_okay=False),
                        multiple=multiple, help=help)


def predictions_option(*, what: str):
    """`--predictions FILE`: write one prediction record per item (JSONL), passed as `predictions_out`."""
    return click.option("--predictions", "predictions_out", type=click.Path(dir_okay=False),
                        help=f"Also write one JSON line per {what}: clip id, task, class, the candidates with their "
                             "scores and ranks, the answer, correct / tie / wrong and its credit.")


def split_option(*, default: str = "validation", help: str = "Cache split to evaluate."):
    """`--split NAME`."""
    return click.option("--split", default=default, show_default=True, help=help)


def batch_size_option(*, default: int, help: str):
    """`--batch-size N`, at least 1."""
    return click.option("--batch-size", type=click.IntRange(min=1), default=default, show_default=True, help=help)


def seed_option(*, help: str):
    """`--seed N`, default 0."""
    return click.option("--seed", type=int, default=0, show_default=True, help=help)


def out_dir_option(*, help: str, default: str | None = None):
    """`--out DIR`, a folder the command writes (required unless it has a default)."""
    return click.option("--out", type=click.Path(file_okay=False), required=default is None, default=default,
                        show_default=default is not None, help=help)


def json_option(*, writes: str):
    """`--json FILE`: also write the result as JSON to FILE (atomically), passed as `json_out`."""
    return click.option("--json", "json_out", type=click.Path(dir_okay=False),
                        help=f"Also write {writes} to this file.")


def verify_option():
    """`--verify`: check each shard's XXH3-128 hash before its first read (a full read of the cache once)."""
    return click.option("--verify", is_flag=True,
                        help="Check every shard's XXH3-128 hash before reading it (sizes and layout are always checked).")


def ids_option(*, help: str = "Score only the clips listed in this file, one id per line."):
    """`--ids FILE`, passed as `ids_file`."""
    return click.option("--ids", "ids_file", type=click.Path(exists=True, dir_okay=False), help=help)


def _bar() -> Progress:
    """A transient progress bar on stderr."""
    return Progress(console=err_console, transient=True)


def _write_result(path: str | None, result: dict) -> None:
    """Write a command's result for --json (atomically) and say where; nothing when --json was not given."""
    from paxion.atomic import write_json

    if path is not None:
        write_json(path, result)
        console.print(f"wrote {path}", highlight=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="paxion")
def cli() -> None:
    """Patch action knowledge into frozen video-language models.

    \b
    Typical study:
      paxion synth --out world            # or use your own SSv2 / Ego4D / NExT-QA data
      paxion bench build --dataset ssv2 --annotations world/annotations --out bench
      paxion extract --bench bench --videos world/videos --out cache
      paxion train --cache cache --model kp-perceiver --objective vtc+dvdm --out runs/kp
      paxion eval --cache cache --run runs/kp
      paxion retrieve --cache cache --run runs/paxion --task template
    or all of it on the built-in world:  paxion demo
    """


# ---- synth ----


@cli.command()
@out_dir_option(help="Folder to write: annotations/{train,validation,labels}.json and videos/{id}.mp4.")
@click.option("--train", "train", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Training clips.")
@click.option("--val", "val", type=click.IntRange(min=0), default=400, show_default=True,
              help="Validation clips.")
@seed_option(help="World seed; the same seed gives byte-identical files.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes that render and encode  [default: all CPU cores]; the output does not depend on it.")
@click.option("--nextqa", is_flag=True,
              help="Also write the clips as NExT-QA multiple choice: nextqa/{train,val}.csv, "
                   "nextqa/map_vid_vidorID.json, nextqa/videos/{folder}/{id}.mp4 (hard links).")
@click.option("--shift", is_flag=True,
              help="Render the domain-shifted world (other colours, shapes, backgrounds; same actions) "
                   "and write it as Kinetics ships: kinetics/{train,val}.csv and kinetics/videos/.")
def synth(out: str, train: int, val: int, seed: int, workers: int | None, nextqa: bool, shift: bool) -> None:
    """Render the built-in action world (64x64, 16 frames per clip) in Something-Something v2 format.

    Every reversal pair (left/right, falling/rising, covering/uncovering, ...) is drawn so that one
    member is exactly the other played backwards; Holding and Shaking have no state change.
    --nextqa adds the NExT-QA layout of the same clips; --shift writes the domain-shifted world in the
    Kinetics layout instead (for zero-shot retrieval, the paper's Table 4 analog).
    """
    from paxion.report.tables import world_table
    from paxion.synth.render import BUILT_IN, SHIFTED
    from paxion.synth.world import write_world

    with _bar() as bar:
        task = bar.add_task("rendering clips", total=train + val)
        summary = write_world(out, train=train, val=val, seed=seed, workers=workers,
                              progress=lambda k: bar.advance(task, k), domain=SHIFTED if shift else BUILT_IN,
                              layout="kinetics" if shift else "ssv2", nextqa=nextqa)
    console.print(world_table(summary))
    total = sum(summary.clips.values())
    console.print(f"{summary.clips['train']} train + {summary.clips['validation']} validation clips, "
                  f"{summary.video_bytes / 1e6:.1f} MB of {summary.codec} video, {summary.seconds:.1f} s "
                  f"({total / summary.seconds:.0f} clips/s)")
    console.print(f"layouts: {', '.join(summary.layouts)}")


# ---- bench ----


@cli.group()
def bench() -> None:
    """Build ActionBench files (Action Antonym, Object Replacement) from a dataset's annotations."""


@bench.command("build")
@click.option(
    "--dataset",
    type=click.Choice(["ssv2", "ego4d", "nextqa", "kinetics", "mit", "jsonl"]),
    required=True,
    help="Annotation format; ssv2 also reads what `paxion synth` writes and the paper's ActionBench release, "
    "ego4d reads EgoClip CSV/TSV, the release's JSONL and Ego4D's narration.json.",
)
@click.option(
    "--annotations",
    type=click.Path(exists=True),
    required=True,
    help="ssv2: the folder with train.json / validation.json / labels.json. Others: one file (its name "
    "without extension is the split) or a folder with one file per split (.csv/.tsv/.jsonl/.json).",
)
@out_dir_option(help="Folder to write {split}.jsonl and meta.json into (created if missing).")
@seed_option(help="Seed of the object replacement.")
@click.option(
    "--videos",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Videos folder (searched recursively), used to name each clip's existing file by its id "
    "(default: {id}.webm for ssv2, .mp4 else; extract also finds any common extension).",
)
@click.option(
    "--video-map",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="nextqa: map_vid_vidorID.json; videos are then VIDEOS/{folder}/{video}.mp4.",
)
@click.option(
    "--window",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="ego4d narration.json: seconds of video centred on each narration's timestamp (EgoClip's mean clip length).",
)
@click.option(
    "--saliency-flags",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help='State-change filtering JSON ({clip id: {"if_keep": true|false}}): replaces the computed flag for ATM '
    "(ssv2 picks up state_change_heavy_instance_filtering_{train,val}.json beside the annotations).",
)
@click.option("--noun-taxonomy", type=click.Path(exists=True, dir_okay=False), default=None,
              help="ego4d: Ego4D's narration_noun_taxonomy.csv, naming EgoClip's tag_noun indices; object replacement "
              "then swaps only the nouns a clip is tagged with (default: indices ignored, nouns found in the caption).")
def bench_build(dataset: str, annotations: str, out: str, seed: int, videos: str | None, video_map: str | None,
                window: float, saliency_flags: str | None, noun_taxonomy: str | None) -> None:
    """Write OUT/{split}.jsonl (clips with AA and OR negatives) and OUT/meta.json, then print coverage.

    Negatives shipped with the annotations (the paper's release, JSONL aa_caption / or_caption) are used as
    given; the others are made.
    """
    from paxion.bench.build import build_bench
    from paxion.bench.readers import read_dataset
    from paxion.report.tables import bench_table

    records = read_dataset(dataset, annotations, videos=videos, video_map=video_map, window=window,
                           noun_taxonomy=noun_taxonomy, stream=True)
    with _bar() as bar:
        task = bar.add_task("building bench", total=None)
        summary = build_bench(records, out, seed=seed, flags=saliency_flags,
                              progress=lambda done, total: bar.update(task, completed=done, total=total))
    console.print(bench_table(summary, title=f"ActionBench ({dataset}) written to {out}"))
    if summary.missing_verbs:
        verbs = ", ".join(f"{verb} ({n})" for verb, n in summary.missing_verbs.most_common(10))
        console.print(f"Most frequent verbs without an antonym (left out of AA only): {verbs}", highlight=False)


@bench.command("antonym")
@click.argument("texts", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, null where there is no antonym.")
def bench_antonym(texts: tuple[str, ...], as_json: bool) -> None:
    """Print each TEXT's action-antonym caption, one line each (an empty line when there is none)."""
    from paxion.bench.antonyms import action_antonym

    antonyms = [action_antonym(text).text for text in texts]
    if as_json:
        click.echo(json.dumps(antonyms))
    else:
        for antonym in antonyms:
            click.echo(antonym or "")


# ---- backbones ----

SPEC_HELP = "NAME or NAME:ARGS: toy, hf-clip:NAME_OR_PATH, hf-xclip:NAME_OR_PATH or a plug-in (`paxion backbones`)"


@bench.command("human-eval")
@click.option("--bench", "bench_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="A bench split written by `paxion bench build` (e.g. BENCH/validation.jsonl).")
@click.option("--videos", required=True, type=click.Path(exists=True, file_okay=False),
              help="The folder the bench's video names are relative to.")
@out_dir_option(help="Folder for the clips, sheet.csv (to fill in), key.json (the answers) and README.txt.")
@click.option("--n", type=click.IntRange(min=1), default=50, show_default=True,
              help="Items drawn for AA / OR together and for VR each.")
@seed_option(help="Seed of the draw and of which option is A.")
def bench_human_eval(bench_file: str, videos: str, out: str, n: int, seed: int) -> None:
    """Write a human-baseline sheet: sampled ActionBench items as clips, two options each (A / B)."""
    from paxion.analysis.human import write_human_eval

    key = write_human_eval(bench_file, videos, out, n=n, seed=seed)
    console.print(f"wrote {len(key)} items to {out}/sheet.csv; fill its answer column with A or B, then run "
                  f"`paxion bench human-score {out} SHEET`", markup=False)


@bench.command("human-score")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.argument("sheet", type=click.Path(exists=True, dir_okay=False))
@json_option(writes='{task: {"accuracy", "n", "ci95"}}')
def bench_human_score(folder: str, sheet: str, json_out: str | None) -> None:
    """Score a filled human-baseline sheet against FOLDER/key.json, with the same 95% intervals as the models."""
    import numpy as np

    from paxion.analysis.human import score_sheet
    from paxion.report.tables import TASK_NAMES, actionbench_table
    from paxion.trainer.evaluate import summarise

    result = score_sheet(folder, sheet)
    empty = summarise(np.zeros(0))
    console.print(actionbench_table({"human": {task: result.get(task, empty) for task in TASK_NAMES}},
                                    title=f"human baseline: {sheet}"))
    _write_result(json_out, result)


@cli.command("backbones")
def backbones_command() -> None:
    """List the backbones installed: the built-in ones and plug-ins of the `paxion.backbones` entry-point group.

    \b
    A package adds one in its pyproject.toml:
      [project.entry-points."paxion.backbones"]
      NAME = "package.module:factory"    # factory(args: str | None, *, device) -> Backbone
    and `paxion extract --backbone NAME:ARGS` loads it.
    """
    from paxion.extract.backbones import backbone_entries
    from paxion.report.tables import backbones_table

    console.print(backbones_table(backbone_entries()))


@cli.group()
def backbone() -> None:
    """Inspect a frozen backbone and rebuild the built-in toy model's shipped weights."""


@backbone.command("info")
@click.argument("spec", default="toy")
@device_option(default="cpu", help="Where to load the model (auto = CUDA when available).")
def backbone_info(spec: str, device: str) -> None:
    """Load SPEC offline and print its shapes; SPEC is NAME or NAME:ARGS (default toy; `paxion backbones` lists them)."""
    from paxion.device import resolve_device
    from paxion.extract.backbones import load_backbone
    from paxion.report.tables import backbone_table

    console.print(backbone_table(load_backbone(spec, device=resolve_device(device))))


@backbone.command("train-toy")
@click.option("--world", required=True, type=click.Path(exists=True, file_okay=False),
              help="A world written by `paxion synth` (annotations/ and videos/).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Weights file to write (config + vocabulary + weights).")
@click.option("--epochs", type=click.IntRange(min=1), default=20, show_default=True, help="Passes over the train split.")
@seed_option(help="Seed of initialisation and batch order.")
@device_option(help="Where to train (auto = CUDA when available, else CPU).")
def backbone_train_toy(world: str, out: str, epochs: int, seed: int, device: str) -> None:
    """Train the toy backbone CLIP-style on WORLD's train split, write OUT, and check it on the validation split.

    \b
    The shipped paxion/extract/backbones/toy_weights.pt was made with:
      paxion synth --out world-1234 --train 4000 --val 400 --seed 1234
      paxion backbone train-toy --world world-1234 --out toy_weights.pt --epochs 20 --seed 0
    Batch 128, AdamW lr 1e-3 with cosine decay, weight decay 0.05, 4 random frames of 8 per clip per step.
    How long it takes: BENCHMARKS.md.
    """
    from rich.progress import BarColumn, TextColumn, TimeRemainingColumn

    from paxion.device import resolve_device
    from paxion.extract.backbones.toy_train import train_toy

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeRemainingColumn(), console=err_console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task({"decode": "decoding clips", "train": "training steps"}[phase],
                                            total=total)
            bar.update(tasks[phase], completed=done, total=total)

        summary = train_toy(world, out, epochs=epochs, seed=seed, device=str(resolve_device(device)),
                            progress=progress)
    console.print(f"trained on {summary['train_clips']} clips for {summary['epochs']} epochs in "
                  f"{summary['train_s']:.0f} s (decoding {summary['decode_s']:.0f} s); final loss "
                  f"{summary['loss'][-1]:.3f}; wrote {out}")
    if "validation" in summary:
        val = summary["validation"]
        console.print(f"validation ({val['clips']} clips): object replacement {100 * val['or_accuracy']:.1f}%, "
                      f"time-blind {100 * val['time_blind']:.1f}%, "
                      f"largest caption-vs-reversed-caption cosine {val['antonym_text_cos']:.3f}")

# ---- extract / cache ----


@cli.command("extract")
@click.option("--bench", "bench_dir", type=click.Path(exists=True, file_okay=False), required=True,
              help="Bench folder from `paxion bench build` ({split}.jsonl + meta.json).")
@click.option("--videos", type=click.Path(exists=True, file_okay=False), required=True,
              help="Folder the bench's `video` names are relative to.")
@out_dir_option(help="Cache folder to write: manifest.json, texts.h5, {split}-{k:05d}.h5 shards, parts/.")
@click.option("--backbone", default="toy", show_default=True, help=f"Backbone spec, {SPEC_HELP}.")
@click.option("--frames", type=click.IntRange(min=1), default=8, show_default=True,
              help="Frames per clip: the one on screen at the centre of each of this many equal time segments.")
@click.option("--splits", default=None, help="Comma-separated splits  [default: every split in meta.json].")
@batch_size_option(default=32, help="Clips per forward pass.")
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True,
              help="Background decoding processes; one that crashes on a clip fails only that clip "
                   "(0 = decode in the main process, where a decoder crash ends the run).")
@device_option(help="auto = CUDA when available, else CPU; CUDA runs the backbone under fp16 autocast.")
@click.option("--dtype", "token_dtype", type=click.Choice(["fp16", "int8"]), default="fp16", show_default=True,
              help="Token storage; int8 (per-token and per-channel scales) takes about half the bytes of fp16.")
@click.option("--shard-size", type=click.IntRange(min=1), default=512, show_default=True, help="Clips per shard file.")
@click.option("--num-shards", type=click.IntRange(min=1), default=None,
              help="Processes sharing the work; this one does shards g with g % K == --shard-index  "
                   "[default: $WORLD_SIZE or 1].")
@click.option("--shard-index", type=click.IntRange(min=0), default=None,
              help="This process's index in [0, --num-shards)  [default: $RANK or 0].")
@click.option("--saliency-delta-vt", type=float, default=0.003, show_default=True,
              help="State-change saliency (Appendix C): a clip is salient when its frame-text similarity changes "
                   "between its halves by more than this ...")
@click.option("--saliency-theta-vv", type=float, default=0.95, show_default=True,
              help="... and the cosine between its two halves' mean frame embeddings is below this.")
@click.option("--saliency-backbone", default=None,
              help="Compute the saliency flags with this second backbone's frame and text embeddings (the paper "
                   "used BLIP: hf-blip:NAME_OR_PATH)  [default: the extracting backbone].")
@click.option("--overwrite", is_flag=True, help="Replace a cache made with another configuration in --out.")
def extract_cmd(bench_dir: str, videos: str, out: str, backbone: str, frames: int, splits: str | None,
                batch_size: int, workers: int, device: str, token_dtype: str, shard_size: int,
                num_shards: int | None, shard_index: int | None, saliency_delta_vt: float, saliency_theta_vv: float,
                saliency_backbone: str | None, overwrite: bool) -> None:
    """Run the frozen backbone once over every bench clip and write the feature cache to OUT.

    Per clip: tokens, per-frame and pooled embeddings, state-change saliency, indices into one deduplicated
    text table; reversed clips too for temporal backbones. Rerunning the same command resumes: finished
    shards are kept. Bad videos are skipped and listed in manifest.json; exits 1 only if every clip failed.
    """
    from paxion.device import resolve_device
    from paxion.extract.backbones import load_backbone
    from paxion.extract.pipeline import extract

    device = resolve_device(device)
    model = load_backbone(backbone, device=device)
    saliency_model = None if saliency_backbone is None else load_backbone(saliency_backbone, device=device)
    with _bar() as bar:
        task = bar.add_task(f"extracting ({escape(backbone)} on {device})", total=None)
        result = extract(
            bench_dir, videos, out, model, splits=splits.split(",") if splits else None, frames=frames,
            batch_size=batch_size, workers=workers, device=device, token_dtype=token_dtype, shard_size=shard_size,
            num_shards=num_shards, shard_index=shard_index, delta_vt=saliency_delta_vt, theta_vv=saliency_theta_vv,
            saliency_backbone=saliency_model, overwrite=overwrite,
            progress=lambda p: bar.update(task, completed=p.clips_done, total=p.clips_total),
        )
    console.print(f"{result.clips} clips cached, {len(result.failed)} failed; {result.shards_written} shards "
                  f"written, {result.shards_resumed} kept from an earlier run", highlight=False)
    counts = result.counts
    share = f" ({100 * counts['salient'] / result.clips:.1f}%)" if result.clips else ""
    console.print(f"salient: {counts['salient']} of {result.clips} clips{share}", highlight=False)
    if counts["captions_cut"] or counts["aa_same"] or counts["or_same"]:
        console.print(f"[yellow]note:[/yellow] captions truncated to the text encoder's context: "
                      f"{counts['captions_cut']}; {counts['aa_same']} AA and {counts['or_same']} OR negatives embed "
                      "like their caption after the cut and are left out of AA / OR", highlight=False)
    for failure in result.failed[:10]:
        console.print(f"  failed {failure['split']}/{failure['id']} ({failure['video']}): {failure['reason']}",
                      highlight=False, markup=False)
    if not result.complete:
        console.print("other processes' shards are not finished yet: the last one to finish writes manifest.json")


@cli.group("cache")
def cache_group() -> None:
    """Inspect and check a feature cache written by `paxion extract`."""


@cache_group.command("info")
@click.argument("root", type=click.Path(exists=True, file_okay=False))
def cache_info(root: str) -> None:
    """Print a cache's backbone, token dtype, clips and bytes per split, and failed clips by reason."""
    from paxion.cache.manifest import read_manifest
    from paxion.report.tables import cache_summary, cache_table

    info = cache_summary(read_manifest(root))
    bb = info["backbone"]
    console.print(f"{root}: backbone {bb['name']} ({bb['config_hash']}, {bb['num_params']:,} parameters, "
                  f"{'temporal' if bb['temporal'] else 'frame-wise'}), {info['frames']} frames, "
                  f"{info['token_dtype']} tokens, {info['texts']} distinct texts", highlight=False, markup=False)
    sal = info["saliency"]
    console.print(f"salient: delta_vt > {sal['delta_vt']:g} and theta_vv < {sal['theta_vv']:g}, from "
                  f"{sal['backbone']['name'] if sal['backbone'] else 'the backbone'}'s embeddings", highlight=False,
                  markup=False)
    console.print(cache_table(info))
    for name, split in info["splits"].items():
        console.print(f"{name}: captions truncated to the text encoder's context: {split['captions_cut']}; "
                      f"{split['aa_same']} AA and {split['or_same']} OR negatives embed like their caption "
                      "(left out of AA / OR)", highlight=False, markup=False)
    console.print(f"{info['failed']} failed clips", highlight=False)
    for reason, count in sorted(info["failed_reasons"].items(), key=lambda kv: -kv[1]):
        console.print(f"  {count} x {reason}", highlight=False, markup=False)


@cache_group.command("verify")
@click.argument("root", type=click.Path(exists=True, file_okay=False))
def cache_verify(root: str) -> None:
    """Check every file's xxh3_128 hash, every field's shape and that all values are finite; exits 1 on any problem."""
    from paxion.cache.verify import verify_cache
    from paxion.errors import CacheError

    with _bar() as bar:
        task = bar.add_task("verifying shards", total=None)
        problems = verify_cache(root, progress=lambda done, total: bar.update(task, completed=done, total=total))
    for problem in problems:
        console.print(f"[red]problem:[/red] {escape(problem)}", highlight=False, soft_wrap=True)
    if problems:
        raise CacheError(f"{root}: {len(problems)} problem(s) found, the first: {problems[0]}")
    console.print(f"{root}: ok", markup=False)


@cache_group.command("add-texts")
@click.argument("root", type=click.Path(exists=True, file_okay=False))
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--prompt", default=None, help='Wrap each line in this text, "{}" standing for it ("a video of {}").')
@device_option(help="Where the backbone's text tower runs (auto = CUDA when available, else CPU).")
def cache_add_texts(root: str, file: str, prompt: str | None, device: str) -> None:
    """Append FILE's lines (class names, one per line) to ROOT's text table, encoded by the cache's backbone
    text tower alone; no video is decoded, shards and existing texts are left as they are."""
    from paxion.device import resolve_device
    from paxion.extract.texts import add_texts
    from paxion.retrieval.subsets import read_lines
    from paxion.retrieval.tasks import prompted

    texts = prompted(read_lines(file, what="text list"), prompt)
    added = add_texts(root, texts, device=resolve_device(device))
    console.print(f"{root}: added {len(added)} new texts ({len(texts) - len(added)} already there)", highlight=False)

# ---- train / eval ----

def _memory_budget(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    from paxion.trainer.config import parse_bytes

    try:
        return None if value is None else parse_bytes(value)
    except PaxionError as exc:
        raise click.BadParameter(str(exc)) from None


def _train_config_options(command):
    """One option per TrainConfig field, its type, bounds and help (defaults, sources) taken from the field."""
    import dataclasses

    from paxion.trainer.config import TrainConfig, field_help

    special = {"init": {"type": click.Path(exists=True, file_okay=False)}, "memory_budget": {"callback": _memory_budget}}
    for f in reversed(dataclasses.fields(TrainConfig)):
        meta, flag = f.metadata, "--" + f.name.replace("_", "-")
        kwargs = {"default": None, "help": field_help(f.name)}
        if isinstance(f.default, bool):
            flag = f"{flag}/--no-{flag[2:]}"
        elif meta["choices"] is not None:
            kwargs["type"] = click.Choice(meta["choices"])
        elif isinstance(f.default, int) and f.name not in special:
            kwargs["type"] = int if meta["minimum"] is None else click.IntRange(min=meta["minimum"])
        elif isinstance(f.default, float):
            kwargs["type"] = click.FloatRange(min=meta["minimum"], min_open=meta["open_minimum"])
        command = click.option(flag, f.name, **(kwargs | special.get(f.name, {})))(command)
    return command


@cli.command("train")
@cache_option()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Run directory to write: config.json, metrics.jsonl, checkpoint.pt (every epoch), model.pt.")
@device_option()
@verify_option()
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint (same settings).")
@_train_config_options
def train_command(cache_dir: str, out_dir: str, device: str, verify: bool, resume: bool, **given) -> None:
    """Train a Knowledge Patcher (or PAXION / Side-Tuning) on cached backbone features.

    \b
    Defaults are the official code's (AdamW, lr 1e-5, weight decay 0.05, global batch 64, one epoch, constant lr,
    frame-embedding dropout 0.1, no token position embedding); each option says where its value comes from. On the
    built-in world (the cache says so) some differ, as each option says (see paxion/trainer/config.py for why).
    With --init the patcher options come from that run. An option you give always wins. The run's config.json
    holds every value it used.
    Data-parallel: torchrun --nproc-per-node 2 -m paxion train ... (rank 0 writes the files).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from paxion.models.patched import format_parameters
    from paxion.trainer.train import train

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("loss {task.fields[loss]:.4f}"), TimeRemainingColumn(), console=err_console,
                   transient=True)

    def show(event: dict) -> None:
        kind = event["event"]
        if kind == "start":
            config = event["config"]
            console.print(f"training {config['model']} \\[{config['objective']}] on {config['split']} "
                          f"({event['device']}, {'resident' if event['resident'] else 'streamed'} features): "
                          f"{config['epochs']} epochs x {event['steps_per_epoch']} steps, batch "
                          f"{config['batch_size']}, lr {config['lr']:g} {config['schedule']}")
            console.print(f"trainable parameters: {format_parameters(event['trainable'], event['backbone_params'])}"
                          f" of the backbone; patcher {format_parameters(event['patcher'])}")
            for note in event["notes"]:
                console.print(f"[yellow]note:[/yellow] {note}")
            if event["start_epoch"]:
                console.print(f"resuming after epoch {event['start_epoch']}")
            bar.add_task("training", total=event["total_steps"], completed=event["start_epoch"]
                         * event["steps_per_epoch"], loss=float("nan"))
            bar.start()
        elif kind == "step":
            bar.update(bar.task_ids[0], completed=event["step"], loss=event["loss"],
                       description=f"epoch {event['epoch']}")
        elif kind == "epoch":
            parts = ", ".join(f"{name} {event[name]:.4f}" for name in ("vtc", "atm", "mc") if name in event)
            bar.console.print(f"epoch {event['epoch']}: loss {event['loss']:.4f} ({parts}) {event['time_s']:.1f}s")
        elif kind == "eval":
            bar.stop()
            console.print(f"scoring ActionBench on {event['split']} ({event['clips']} clips)")

    try:
        options = {name: value for name, value in given.items() if value is not None}
        if options.get("eval_split") == "none":
            options["eval_split"] = None
        summary = train(cache_dir, out_dir, options=options, device=device, resume=resume, verify=verify,
                        progress=show)
    finally:
        bar.stop()
    if summary["rank"] != 0:
        return
    if summary["finished_before"]:
        console.print(f"{out_dir} holds a finished run; nothing to do")
        return
    if summary["eval"] is not None:
        scores = "  ".join(f"{task.upper()} {row['accuracy']:.1f} (n={row['n']})"
                           for task, row in summary["eval"].items() if row["accuracy"] is not None)
        console.print(f"{summary['eval_split']}: {scores}")
    console.print(f"wrote {out_dir}/model.pt, config.json, metrics.jsonl")


def _listed_clips(cache, split: str, ids_file: str | None):
    """The mask of the split's clips listed in --ids FILE (None without it); says how many listed ids it lacks."""
    if ids_file is None:
        return None
    from paxion.retrieval.subsets import clip_mask, read_ids

    mask, missing = clip_mask(cache, split, read_ids(ids_file))
    if missing:
        console.print(f"[yellow]note:[/yellow] {missing} ids listed in {escape(ids_file)} are not in split "
                      f"{escape(split)!r}; scoring the {int(mask.sum())} that are", highlight=False)
    return mask


@cli.command("eval")
@cache_option()
@run_option(help="Run directory written by `paxion train` (its model.pt is scored). Give it several times (or with "
                 "--backbone-only) to score every model on the same clips and compare them pairwise (McNemar).",
            multiple=True)
@click.option("--backbone-only", is_flag=True, help="Score the frozen backbone itself (listed first).")
@split_option()
@json_option(writes='{"aa": {"accuracy", "n", "ci95", "left_out"}, "vr": {..., "set"}, "or": ..., "per_class": [{"class", '
                    '"aa": ..., ...}, worst class first]} (several models: {"models": {name: that}, "paired": '
                    '{"B vs A": {task: ...}}})')
@device_option()
@batch_size_option(default=256, help="Clips scored per batch.")
@ids_option()
@verify_option()
@click.option("--vr-set", default="all", show_default=True, type=click.Choice(["all", "aa"]),
              help="Video Reversal on every clip, or on the clips with an Action Antonym caption (the paper's set).")
@predictions_option(what="clip and task (several models: each record carries \"model\")")
@click.option("--per-class", "show_classes", is_flag=True,
              help="Also print accuracy per class (template), n and 95% interval, worst class first.")
def eval_command(cache_dir: str, run_dirs: tuple[str, ...], backbone_only: bool, split: str, json_out: str | None,
                 verify: bool, device: str, batch_size: int, ids_file: str | None, vr_set: str,
                 predictions_out: str | None, show_classes: bool) -> None:
    """ActionBench accuracy (Action Antonym, Video Reversal, Object Replacement) of runs and / or the backbone.

    Give --run, --backbone-only or both. Prints accuracy in percent with the 95% Wilson interval per task and the
    number of pairs n; ties count as half correct. AA / OR pairs whose negative embeds like its caption (both cut
    to the same tokens by the text encoder) are left out and counted. With two or more models, also the paired difference per task
    with an exact McNemar test. Writes nothing unless --json or --predictions is given.
    """
    from paxion.analysis.items import per_class, write_predictions
    from paxion.analysis.paired import compare_models
    from paxion.analysis.predict import actionbench_predictions
    from paxion.analysis.tables import paired_tables, per_class_tables
    from paxion.cache.reader import Cache
    from paxion.device import resolve_device
    from paxion.report.tables import actionbench_table
    from paxion.scoring import check_split, load_scorer

    models = (["backbone"] if backbone_only else []) + list(run_dirs)
    if not models:
        raise click.UsageError("give --run RUN_DIR (one or more) or --backbone-only")
    if len(set(models)) != len(models):
        raise click.UsageError("a model is given twice")
    cache = Cache(cache_dir, verify=verify)
    torch_device = resolve_device(device)
    clips = _listed_clips(cache, split, ids_file)
    results, records = {}, {}
    with _bar() as bar:
        for name in models:
            scorer = load_scorer(cache, None if name == "backbone" else name, device=torch_device)
            task = bar.add_task(f"scoring {escape(split)}: {escape(name)}", total=check_split(cache, split))
            results[name], records[name] = actionbench_predictions(
                cache, scorer, split, clips=clips, vr_set=vr_set, batch_size=batch_size, device=torch_device,
                progress=lambda k, task=task: bar.advance(task, k))
    classes = {name: per_class(records[name]) for name in models}
    console.print(actionbench_table(results, title=f"ActionBench on {split} (VR on {vr_set} clips)"))
    if show_classes:
        for name in models:
            console.print(*per_class_tables(classes[name], title=f"{name}: accuracy per class, worst first",
                                            width=console.width))
    for name in models:  # a list: the JSON file's keys are sorted, the classes keep their order
        results[name]["per_class"] = [{"class": c, **tasks} for c, tasks in classes[name].items()]
    paired = compare_models(records) if len(models) > 1 else None
    if paired:
        console.print(*paired_tables(paired, title="paired difference per task (exact McNemar; A = the later model)",
                                     width=console.width))
    if predictions_out is not None:
        lines = records[models[0]] if len(models) == 1 else [
            {"model": name, **r} for name in models for r in records[name]]
        write_predictions(predictions_out, lines)
    _write_result(json_out, results[models[0]] if len(models) == 1 else {"models": results, "paired": paired})


# ---- retrieve ----

def _parse_ks(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers") from None
    if min(ks) < 1:
        raise click.BadParameter(f"cut-offs must be at least 1, got {value!r}")
    return ks


@cli.command("retrieve")
@cache_option()
@run_option(help="Run directory written by `paxion train` (patcher, fuser or side-tuning). Default: the backbone.")
@click.option("--task", required=True, type=click.Choice(["label", "template", "temporal", "mc", "zeroshot"]),
              help="label: video<->caption retrieval; template: video<->action (object-hidden) retrieval; "
                   "temporal: template retrieval on the temporal classes; mc: multiple-choice QA (NExT-QA caches); "
                   "zeroshot: classification into class names, a clip's class compared as text.")
@split_option()
@click.option("--ensemble", is_flag=True,
              help="Add the backbone's softmax probabilities to the model's (backbone ensemble), on every task; "
                   "retrieval in both directions.")
@click.option("--k", "ks", default="1,5,10", show_default=True, callback=_parse_ks,
              help="Comma-separated recall cut-offs for the retrieval tasks.")
@json_option(writes='the result, in percent: {"v2t": {"r1", "r5", "r10", "medr", "n"}, "t2v": {...}} for the '
                    'retrieval tasks, {"accuracy", "n", "ci95"} for mc and zeroshot,')
@device_option(help="auto = CUDA when available, else CPU (FAISS uses a GPU when faiss-gpu sees one).")
@click.option("--classes", "classes_source", default=None,
              help="temporal / zeroshot: a file with one class name per line, or the name of a list shipped with "
                   "paxion (e.g. temporal-kinetics). Default: the cache's temporal_classes (temporal) or the split's "
                   "distinct classes (zeroshot). zeroshot scores only clips of a listed class, in any order.")
@click.option("--prompt", default=None,
              help='zeroshot: wrap each class name, "{}" standing for it ("a video of {}"); texts not in the cache '
                   "are encoded into it by the backbone's text tower.")
@ids_option(help="Score only the clips listed in this file, one id per line (e.g. the 2,088-clip SSv2 pool).")
@verify_option()
@batch_size_option(default=256, help="Clips encoded per batch.")
@predictions_option(what="query clip (retrieval: video to text, its top 10 texts and the rank of its own)")
def retrieve_command(cache_dir: str, run_dir: str | None, task: str, split: str, ensemble: bool, verify: bool,
                     ks: tuple[int, ...], json_out: str | None, device: str, classes_source: str | None,
                     prompt: str | None, ids_file: str | None, batch_size: int, predictions_out: str | None) -> None:
    """Downstream evaluation of a run (or the backbone): exact FAISS retrieval, multiple choice, zero-shot.

    Retrieval tasks print R@k in percent and the median rank in both directions (video to text, text to
    video); a text is found when any of its videos is in the top k. mc and zeroshot print accuracy in percent,
    the number of clips and the 95% Wilson interval. Writes nothing unless --json is given.
    """
    from paxion.cache.reader import Cache
    from paxion.device import resolve_device
    from paxion.report.tables import retrieval_table
    from paxion.retrieval.subsets import read_classes
    from paxion.retrieval.tasks import run_task, zeroshot_cache
    from paxion.scoring import load_scorer

    cache = Cache(cache_dir, verify=verify)
    torch_device = resolve_device(device)
    scorer = load_scorer(cache, run_dir, device=torch_device)
    backbone = load_scorer(cache, None, device=torch_device) if ensemble else None
    classes = read_classes(classes_source) if classes_source is not None else None
    clips = _listed_clips(cache, split, ids_file)
    if task == "zeroshot":
        cache, added = zeroshot_cache(cache, split=split, classes=classes, prompt=prompt, device=torch_device)
        if added:
            console.print(f"encoded {len(added)} new class texts into {cache_dir}", highlight=False)
    with _bar() as bar:
        stages: dict[str, int] = {}

        def report(stage: str, advance: int, total: int) -> None:
            if stage not in stages:
                stages[stage] = bar.add_task(escape(stage), total=total)
            bar.advance(stages[stage], advance)

        result = run_task(cache, scorer, task, split=split, ks=ks, classes=classes, prompt=prompt, clips=clips,
                          ensemble_with=backbone, device=torch_device, batch_size=batch_size, progress=report)
    title = f"{task} on {split}: {run_dir or 'backbone'}{' + backbone ensemble' if ensemble else ''}"
    console.print(retrieval_table(result, title=title, ks=ks))
    if predictions_out is not None:
        from paxion.analysis.items import write_predictions
        from paxion.analysis.predict import task_predictions

        write_predictions(predictions_out, task_predictions(
            cache, scorer, task, split=split, classes=classes, prompt=prompt, clips=clips, ensemble_with=backbone,
            depth=max(ks), device=torch_device, batch_size=batch_size))
    _write_result(json_out, result)


# ---- report ----


@cli.command("report")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", "out_html", type=click.Path(dir_okay=False), default=None,
              help="The HTML file to write  [default: FOLDER/report.html for one folder].")
@click.option("--examples", type=click.IntRange(min=0), default=2, show_default=True,
              help="Qualitative examples per kind (learned, failed) and task.")
@click.option("--cache", "cache_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Runs: score each run (and the backbone) on this cache's split, keeping per-clip records.")
@split_option(help="Runs: the cache split scored.")
@click.option("--no-backbone", is_flag=True, help="Runs with --cache: leave the frozen backbone out.")
@click.option("--bench", "bench_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Runs: the split's bench JSONL (with --videos), for the clips' frames.")
@click.option("--videos", type=click.Path(exists=True, file_okay=False), default=None,
              help="Runs: the folder of the bench's videos.")
@device_option()
@batch_size_option(default=256, help="Runs with --cache: clips scored per batch.")
def report_command(inputs: tuple[str, ...], out_html: str | None, examples: int, cache_dir: str | None, split: str,
                   no_backbone: bool, bench_file: str | None, videos: str | None, device: str, batch_size: int) -> None:
    """One self-contained HTML page (figures inlined) of a demo folder or of a set of runs.

    \b
    INPUTS: a folder holding a report.json (e.g. `paxion demo`'s), or any of: run folders of `paxion train`,
    folders whose subfolders are runs, and the --json / --predictions files of `paxion eval`.
    Shows the tables, per-class bars, paired McNemar tests, learning curves, saliency and qualitative examples
    the inputs hold; sections without data are left out, each named with what it needs.
    """
    from paxion.analysis.html import write_inputs_report
    from paxion.cache.reader import Cache
    from paxion.device import resolve_device

    cache = Cache(cache_dir) if cache_dir is not None else None
    path = write_inputs_report(inputs, out_html, cache=cache, examples=examples, split=split,
                               backbone=not no_backbone, bench=bench_file, videos=videos,
                               device=resolve_device(device), batch_size=batch_size)
    console.print(f"wrote {path}", markup=False)


# ---- demo ----


class _StageReporter:
    """Draws one progress bar per stage of the demo and prints each stage's time when done."""

    def __init__(self, progress) -> None:
        self.progress = progress
        self.task = None

    def stage(self, name: str, total: int | None):
        self.task = self.progress.add_task(escape(name), total=total)
        return lambda n=1: self.progress.advance(self.task, n)

    def done(self, name: str, seconds: float, reused: bool) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
            self.task = None
        note = " [dim](done earlier, reused)[/dim]" if reused else ""
        self.progress.console.print(f"[green]✓[/green] {escape(name)}  {seconds:.1f} s{note}")


@cli.command()
@out_dir_option(default="paxion-demo",
                help="Directory for the world, bench, cache, runs and the report; a rerun reuses finished stages.")
@click.option("--quick", is_flag=True, help="A smaller world and fewer training steps, as a smoke test: its "
              "patchers stay well below the full demo's accuracy (times and figures: BENCHMARKS.md).")
@device_option(help="Where extraction and training run (auto = CUDA when available, else CPU).")
def demo(out: str, quick: bool, device: str) -> None:
    """Reproduce the paper's findings on the built-in world on a CPU (times: BENCHMARKS.md).

    \b
    Stages: synth world -> bench build -> extract (toy backbone) -> ActionBench of the backbone ->
    KP-Transformer [VTC], KP-Perceiver [VTC], KP-Perceiver [VTC+DVDM] -> ActionBench of each ->
    KP-Perceiver FT, Side-Tuning, the PAXION fuser and KP[VTC]+KF -> retrieval (label, template, temporal) ->
    a domain-shifted world -> zero-shot classification (Table 4 analog) -> the world's NExT-QA layout ->
    PAXION fine-tuned on its multiple-choice questions, against the backbone (Table 3 analog).
    Writes OUT/report.json (every number), OUT/report.html (the page of `paxion report`: tables, ablations,
    per-class results, McNemar tests, learning curves, saliency, examples) and OUT/report.png (the ActionBench
    figure); prediction records under OUT/predictions/.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    from paxion.demo.report import plot_actionbench
    from paxion.demo.study import run_study
    from paxion.report.tables import study_actionbench_table, study_mc_table, study_retrieval_table, timings_table

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        report = run_study(out, quick=quick, device=device, reporter=_StageReporter(progress))
    figure = plot_actionbench(report, f"{out}/report.png")
    for table in (study_actionbench_table(report), study_retrieval_table(report), study_mc_table(report),
                  timings_table(report)):
        console.print(table)
    console.print(f"report: {out}/report.json, {out}/report.html (open it in a browser), figure: {figure}",
                  markup=False)


def _print_error(message: str) -> None:
    """`error: MESSAGE` on one line of stderr, the message shown literally (no markup, no wrapping)."""
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)


def main() -> None:
    """Entry point: run the CLI, turning library and usage errors into a one-line message and exit code 1 (2 for
    usage errors)."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("[red]error:[/red] aborted")
        sys.exit(130)
    except click.ClickException as exc:
        usage = isinstance(exc, click.UsageError) and exc.ctx is not None
        _print_error(exc.format_message() + (f" (see '{exc.ctx.command_path} -h')" if usage else ""))
        sys.exit(exc.exit_code)
    except PaxionError as exc:
        _print_error(str(exc))
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("[red]error:[/red] interrupted")
        sys.exit(130)
