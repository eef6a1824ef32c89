"""The `paxion` command line: parses arguments, calls the library, prints with rich. No logic of its own."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.markup import escape

from paxion.errors import PaxionError

console = Console()
err_console = Console(stderr=True)


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


def _write_json(path: str, result: dict) -> None:
    """Write a command's result as JSON (for --json) and say where."""
    try:
        with open(path, "w") as f:
            json.dump(result, f, indent=2)
    except OSError as exc:
        raise click.FileError(path, hint=exc.strerror) from None
    console.print(f"wrote {path}")


# ---- synth ----


@cli.command()
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="Folder to write: annotations/{train,validation,labels}.json and videos/{id}.mp4.")
@click.option("--train", "train", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Training clips.")
@click.option("--val", "val", type=click.IntRange(min=0), default=400, show_default=True,
              help="Validation clips.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="World seed; the same seed gives byte-identical files.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes that render and encode  [default: all CPU cores]; the output does not depend on it.")
def synth(out: str, train: int, val: int, seed: int, workers: int | None) -> None:
    """Render the built-in action world (64x64, 16 frames per clip) in Something-Something v2 format.

    Every reversal pair (left/right, falling/rising, covering/uncovering, ...) is drawn so that one
    member is exactly the other played backwards; Holding and Shaking have no state change.
    """
    from rich.markup import escape
    from rich.progress import Progress
    from rich.table import Table

    from paxion.synth.world import write_world

    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task("rendering clips", total=train + val)
        summary = write_world(out, train=train, val=val, seed=seed, workers=workers,
                              progress=lambda k: bar.advance(task, k))
    table = Table(title=f"world written to {summary.root}")
    table.add_column("action")
    table.add_column("clips", justify="right")
    for template, count in summary.class_counts.items():
        table.add_row(escape(template), str(count))
    console.print(table)
    total = sum(summary.clips.values())
    console.print(f"{summary.clips['train']} train + {summary.clips['validation']} validation clips, "
                  f"{summary.video_bytes / 1e6:.1f} MB of {summary.codec} video, {summary.seconds:.1f} s "
                  f"({total / summary.seconds:.0f} clips/s)")


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
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    required=True,
    help="Folder to write {split}.jsonl and meta.json into (created if missing).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the object replacement.")
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
def bench_build(dataset: str, annotations: str, out: str, seed: int, videos: str | None, video_map: str | None,
                window: float, saliency_flags: str | None) -> None:
    """Write OUT/{split}.jsonl (clips with AA and OR negatives) and OUT/meta.json, then print coverage.

    Negatives shipped with the annotations (the paper's release, JSONL aa_caption / or_caption) are used as
    given; the others are made.
    """
    from rich.progress import Progress
    from rich.table import Table

    from paxion.bench.build import build_bench
    from paxion.bench.readers import read_dataset

    records = read_dataset(dataset, annotations, videos=videos, video_map=video_map, window=window)
    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task("building bench", total=len(records.records))
        summary = build_bench(records, out, seed=seed, flags=saliency_flags,
                              progress=lambda done, _: bar.update(task, completed=done))
    table = Table(title=f"ActionBench ({dataset}) written to {out}")
    for column in ("split", "clips", "AA negatives", "AA given", "OR negatives", "OR given"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for name, split in summary.splits.items():
        aa, replaced = f"{split.aa} ({split.aa / split.clips:.0%})", f"{split.or_} ({split.or_ / split.clips:.0%})"
        table.add_row(name, str(split.clips), aa, str(split.aa_given), replaced, str(split.or_given))
    console.print(table)
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


# ---- backbone ----


@cli.group()
def backbone() -> None:
    """Inspect frozen backbones and rebuild the built-in toy model's shipped weights."""


@backbone.command("info")
@click.argument("spec", default="toy")
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]),
              help="Where to load the model.")
def backbone_info(spec: str, device: str) -> None:
    """Load SPEC (toy, hf-clip:NAME_OR_PATH, hf-xclip:NAME_OR_PATH; default toy) offline and print its shapes."""
    from rich.table import Table

    from paxion.device import resolve_device
    from paxion.extract.backbones import load_backbone

    bb = load_backbone(spec, device=resolve_device(device))
    table = Table(title=f"backbone {bb.name}")
    table.add_column("field")
    table.add_column("value", justify="right")
    for field, value in [("temporal", bb.temporal), ("image size", bb.image_size), ("joint dim d", bb.embed_dim),
                         ("token dim D", bb.token_dim), ("tokens per frame N", bb.tokens_per_frame),
                         ("parameters", f"{sum(p.numel() for p in bb.parameters()):,}"),
                         ("config hash", bb.config_hash())]:
        table.add_row(field, str(value))
    console.print(table)


@backbone.command("train-toy")
@click.option("--world", required=True, type=click.Path(exists=True, file_okay=False),
              help="A world written by `paxion synth` (annotations/ and videos/).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Weights file to write (config + vocabulary + weights, ~2.4 MB).")
@click.option("--epochs", type=click.IntRange(min=1), default=20, show_default=True, help="Passes over the train split.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of initialisation and batch order.")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]),
              help="Where to train (auto: CUDA when available).")
def backbone_train_toy(world: str, out: str, epochs: int, seed: int, device: str) -> None:
    """Train the toy backbone CLIP-style on WORLD's train split, write OUT, and check it on the validation split.

    \b
    The shipped paxion/extract/backbones/toy_weights.pt was made with:
      paxion synth --out world-1234 --train 4000 --val 400 --seed 1234
      paxion backbone train-toy --world world-1234 --out toy_weights.pt --epochs 20 --seed 0
    Batch 128, AdamW lr 1e-3 with cosine decay, weight decay 0.05, 4 random frames of 8 per clip per step;
    about 30 s on one GPU, 16 min on 2 CPU cores (plus 1-2 min decoding).
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

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
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="Cache folder to write: manifest.json, texts.h5, {split}-{k:05d}.h5 shards, parts/.")
@click.option("--backbone", default="toy", show_default=True,
              help="Backbone spec: toy, hf-clip:NAME_OR_PATH or hf-xclip:NAME_OR_PATH.")
@click.option("--frames", type=click.IntRange(min=1), default=8, show_default=True,
              help="Frames per clip: the one on screen at the centre of each of this many equal time segments.")
@click.option("--splits", default=None, help="Comma-separated splits  [default: every split in meta.json].")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True, help="Clips per forward pass.")
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True,
              help="Background decoding processes; one that crashes on a clip fails only that clip "
                   "(0 = decode in the main process, where a decoder crash ends the run).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="auto = cuda when available, else cpu; cuda runs the backbone under fp16 autocast.")
@click.option("--dtype", "token_dtype", type=click.Choice(["fp16", "int8"]), default="fp16", show_default=True,
              help="Token storage; int8 (per-token scale) takes about half the bytes of fp16.")
@click.option("--shard-size", type=click.IntRange(min=1), default=512, show_default=True, help="Clips per shard file.")
@click.option("--num-shards", type=click.IntRange(min=1), default=None,
              help="Processes sharing the work; this one does shards g with g % K == --shard-index  "
                   "[default: $WORLD_SIZE or 1].")
@click.option("--shard-index", type=click.IntRange(min=0), default=None,
              help="This process's index in [0, --num-shards)  [default: $RANK or 0].")
@click.option("--overwrite", is_flag=True, help="Replace a cache made with another configuration in --out.")
def extract_cmd(bench_dir: str, videos: str, out: str, backbone: str, frames: int, splits: str | None,
                batch_size: int, workers: int, device: str, token_dtype: str, shard_size: int,
                num_shards: int | None, shard_index: int | None, overwrite: bool) -> None:
    """Run the frozen backbone once over every bench clip and write the feature cache to OUT.

    Per clip: tokens, per-frame and pooled embeddings, state-change saliency, indices into one deduplicated
    text table; reversed clips too for temporal backbones. Rerunning the same command resumes: finished
    shards are kept. Bad videos are skipped and listed in manifest.json; exits 1 only if every clip failed.
    """
    from rich.progress import Progress

    from paxion.device import resolve_device
    from paxion.extract.backbones import load_backbone
    from paxion.extract.pipeline import extract

    device = resolve_device(device)
    model = load_backbone(backbone, device=device)
    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task(f"extracting ({backbone} on {device})", total=None)
        result = extract(
            bench_dir, videos, out, model, splits=splits.split(",") if splits else None, frames=frames,
            batch_size=batch_size, workers=workers, device=device, token_dtype=token_dtype, shard_size=shard_size,
            num_shards=num_shards, shard_index=shard_index, overwrite=overwrite,
            progress=lambda p: bar.update(task, completed=p.clips_done, total=p.clips_total),
        )
    console.print(f"{result.clips} clips cached, {len(result.failed)} failed; {result.shards_written} shards "
                  f"written, {result.shards_resumed} kept from an earlier run", highlight=False)
    for failure in result.failed[:10]:
        console.print(f"  failed {failure['split']}/{failure['id']} ({failure['video']}): {failure['reason']}",
                      highlight=False)
    if not result.complete:
        console.print("other processes' shards are not finished yet: the last one to finish writes manifest.json")
    if result.clips == 0 and result.failed:
        raise PaxionError(f"every clip failed to decode ({len(result.failed)}); see manifest failures above")


@cli.group("cache")
def cache_group() -> None:
    """Inspect and check a feature cache written by `paxion extract`."""


@cache_group.command("info")
@click.argument("root", type=click.Path(exists=True, file_okay=False))
def cache_info(root: str) -> None:
    """Print a cache's backbone, token dtype, clips and bytes per split, and failed clips by reason."""
    from rich.table import Table

    from paxion.cache.manifest import read_manifest, summarize

    info = summarize(read_manifest(root))
    bb = info["backbone"]
    console.print(f"{root}: backbone {bb['name']} ({bb['config_hash']}, {bb['num_params']:,} parameters, "
                  f"{'temporal' if bb['temporal'] else 'frame-wise'}), {info['frames']} frames, "
                  f"{info['token_dtype']} tokens, {info['texts']} distinct texts", highlight=False)
    table = Table()
    for column in ("split", "clips", "shards", "MB", "KB per clip"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for name, split in info["splits"].items():
        table.add_row(name, str(split["clips"]), str(split["shards"]), f"{split['bytes'] / 1e6:.1f}",
                      f"{split['bytes_per_clip'] / 1e3:.1f}")
    console.print(table)
    console.print(f"{info['failed']} failed clips", highlight=False)
    for reason, count in sorted(info["failed_reasons"].items(), key=lambda kv: -kv[1]):
        console.print(f"  {count} x {reason}", highlight=False)


@cache_group.command("verify")
@click.argument("root", type=click.Path(exists=True, file_okay=False))
def cache_verify(root: str) -> None:
    """Check every file's xxh3_128 hash, every field's shape and that all values are finite; exits 1 on any problem."""
    from rich.progress import Progress

    from paxion.cache.verify import verify_cache
    from paxion.errors import CacheError

    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task("verifying shards", total=None)
        problems = verify_cache(root, progress=lambda done, total: bar.update(task, completed=done, total=total))
    for problem in problems:
        err_console.print(f"[red]problem:[/red] {problem}", highlight=False, soft_wrap=True)
    if problems:
        raise CacheError(f"{root}: {len(problems)} problem(s) found")
    console.print(f"{root}: ok")

# ---- train / eval ----

def _memory_budget(ctx: click.Context, param: click.Parameter, value: str) -> int:
    from paxion.cache.loader import parse_bytes

    try:
        return parse_bytes(value)
    except PaxionError as exc:
        raise click.BadParameter(str(exc)) from None


@cli.command("train")
@click.option("--cache", "cache_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Feature cache directory written by `paxion extract`.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Run directory to write: config.json, metrics.jsonl, checkpoint.pt (every epoch), model.pt.")
@click.option("--model", default="kp-perceiver", show_default=True,
              type=click.Choice(["kp-perceiver", "kp-transformer", "paxion", "side-tuning"]),
              help="kp-* = a Knowledge Patcher alone; paxion = KP-Perceiver + Knowledge Fuser; side-tuning = "
                   "KP-Perceiver + Side-Tuning.")
@click.option("--objective", default="vtc+dvdm", show_default=True, type=click.Choice(["vtc", "vtc+dvdm"]),
              help="vtc = video-text contrastive only; vtc+dvdm adds VAC (antonym captions) and ATM (reversal).")
@click.option("--init", "init", type=click.Path(exists=True, file_okay=False),
              help="Start the patcher from this run's model (its patcher kind must match), e.g. train paxion "
                   "from a KP-Perceiver run, or continue a KP run (FT).")
@click.option("--text", default="label", show_default=True, type=click.Choice(["label", "template"]),
              help="Train on the clip's caption (label) or its object-hidden template; template turns VAC off.")
@click.option("--epochs", type=click.IntRange(min=1),
              help="Epochs [default: 1; built-in world 40].")
@click.option("--batch-size", type=click.IntRange(min=1),
              help="Global batch (split over torchrun processes) [default: 32; built-in world 64].")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True),
              help="AdamW learning rate [default: 1e-5; built-in world 2e-3].")
@click.option("--weight-decay", type=click.FloatRange(min=0), help="AdamW weight decay [default: 0.05].")
@click.option("--schedule", type=click.Choice(["constant", "cosine"]),
              help="Learning-rate schedule per step [default: constant; built-in world cosine].")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the initial weights and batch order.")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]),
              help="auto = CUDA when available, else CPU.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint (same settings).")
@click.option("--atm-weight", default=0.4, show_default=True, type=click.FloatRange(min=0),
              help="Weight of the ATM loss in vtc+dvdm.")
@click.option("--no-vac", is_flag=True, help="Leave out VAC (antonym captions as extra negatives).")
@click.option("--saliency/--no-saliency", default=None,
              help="ATM only on clips with a salient state change (Appendix C), or on every clip "
                   "[default: --saliency; built-in world --no-saliency].")
@click.option("--memory-budget", default="2GB", show_default=True, callback=_memory_budget,
              help="A split whose features fit this size (e.g. 512MB, 8GiB; tokens count 2 bytes per value, as float16) stays resident on the device; "
                   "a larger one is streamed shard by shard.")
@click.option("--split", default="train", show_default=True, help="Cache split to train on.")
@click.option("--eval-split", default="validation", show_default=True,
              help="Split scored on ActionBench at the end (skipped when the cache lacks it, or 'none').")
def train_command(cache_dir: str, out_dir: str, model: str, objective: str, init: str | None, text: str,
                  epochs: int | None, batch_size: int | None, lr: float | None, weight_decay: float | None,
                  schedule: str | None, seed: int, device: str, resume: bool, atm_weight: float, no_vac: bool,
                  saliency: bool | None, memory_budget: int, split: str, eval_split: str) -> None:
    """Train a Knowledge Patcher (or PAXION / Side-Tuning) on cached backbone features.

    \b
    Defaults are the paper's (AdamW, lr 1e-5, weight decay 0.05, batch 32, one epoch, constant lr). On the
    built-in world (the cache says so) they are lr 2e-3, batch 64, 12 epochs, cosine decay, ATM on every
    clip and a 4 x 32-head patcher: the world is tiny and its toy backbone small (see
    paxion/trainer/train.py for why). With --init the patcher's sizes come from that run. An option you
    give always wins.
    Data-parallel: torchrun --nproc-per-node 2 -m paxion train ... (rank 0 writes the files).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from paxion.trainer.models import format_parameters
    from paxion.trainer.train import train

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("loss {task.fields[loss]:.4f}"), TimeRemainingColumn(), console=err_console)

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
            bar.console.print(f"epoch {event['epoch']}: loss {event['loss']:.4f} (vtc {event['vtc']:.4f}, "
                              f"atm {event['atm']:.4f}) {event['time_s']:.1f}s")
        elif kind == "eval":
            bar.stop()
            console.print(f"scoring ActionBench on {event['split']} ({event['clips']} clips)")

    try:
        summary = train(cache_dir, out_dir, model=model, objective=objective, init=init, text=text, epochs=epochs,
                        batch_size=batch_size, lr=lr, weight_decay=weight_decay, schedule=schedule, seed=seed,
                        device=device, resume=resume, atm_weight=atm_weight, vac=not no_vac,
                        saliency=saliency, memory_budget=memory_budget, split=split,
                        eval_split=None if eval_split == "none" else eval_split, progress=show)
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
        console.print(f"{eval_split}: {scores}")
    console.print(f"wrote {out_dir}/model.pt, config.json, metrics.jsonl")


@cli.command("eval")
@click.option("--cache", "cache_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Feature cache directory written by `paxion extract`.")
@click.option("--run", "run_dir", type=click.Path(exists=True, file_okay=False),
              help="Run directory written by `paxion train` (its model.pt is scored).")
@click.option("--backbone-only", is_flag=True, help="Score the frozen backbone itself instead of a run.")
@click.option("--split", default="validation", show_default=True, help="Cache split to evaluate.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False),
              help='Also write {"aa": {"accuracy", "n", "ci95"}, "vr": ..., "or": ...} to this file.')
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]),
              help="auto = CUDA when available, else CPU.")
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1),
              help="Clips scored per batch.")
def eval_command(cache_dir: str, run_dir: str | None, backbone_only: bool, split: str, json_out: str | None,
                 device: str, batch_size: int) -> None:
    """ActionBench accuracy (Action Antonym, Video Reversal, Object Replacement) of a run or the backbone.

    Give exactly one of --run and --backbone-only. Prints accuracy in percent, the number of pairs n and
    the 95% Wilson interval per task; ties count as half correct. Writes nothing unless --json is given.
    """

    from rich.progress import Progress
    from rich.table import Table

    from paxion.cache.reader import Cache
    from paxion.device import resolve_device
    from paxion.trainer.evaluate import actionbench
    from paxion.trainer.scoring import check_split, load_scorer

    if (run_dir is not None) == backbone_only:
        raise click.UsageError("give exactly one of --run RUN_DIR and --backbone-only")
    cache = Cache(cache_dir)
    torch_device = resolve_device(device)
    scorer = load_scorer(cache, run_dir, device=torch_device)
    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task(f"scoring {split}", total=check_split(cache, split))
        result = actionbench(scorer, cache, split, batch_size=batch_size, device=torch_device,
                             progress=lambda k: bar.advance(task, k))
    table = Table(title=f"ActionBench on {split}: {run_dir or 'backbone'}")
    for column in ("task", "accuracy %", "n", "95% CI"):
        table.add_column(column, justify="left" if column == "task" else "right")
    names = {"aa": "Action Antonym (AA)", "vr": "Video Reversal (VR)", "or": "Object Replacement (OR)"}
    for key, name in names.items():
        row = result[key]
        if row["accuracy"] is None:
            table.add_row(name, "-", "0", "-")
        else:
            lo, hi = row["ci95"]
            table.add_row(name, f"{row['accuracy']:.1f}", str(row["n"]), f"{lo:.1f}-{hi:.1f}")
    console.print(table)
    if json_out is not None:
        _write_json(json_out, result)


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
@click.option("--cache", "cache_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Feature cache directory written by `paxion extract`.")
@click.option("--run", "run_dir", type=click.Path(exists=True, file_okay=False),
              help="Run directory written by `paxion train` (patcher, fuser or side-tuning). Default: the backbone.")
@click.option("--task", required=True, type=click.Choice(["label", "template", "temporal", "mc", "zeroshot"]),
              help="label: video<->caption retrieval; template: video<->action (object-hidden) retrieval; "
                   "temporal: template retrieval on the temporal classes; mc: multiple-choice QA (NExT-QA caches); "
                   "zeroshot: classification into the bench classes.")
@click.option("--split", default="validation", show_default=True, help="Cache split to evaluate.")
@click.option("--ensemble", is_flag=True,
              help="mc / zeroshot: add the backbone's softmax probabilities to the model's (backbone ensemble).")
@click.option("--k", "ks", default="1,5,10", show_default=True, callback=_parse_ks,
              help="Comma-separated recall cut-offs for the retrieval tasks.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False),
              help='Also write {"v2t": {"r1", "r5", "r10", "medr", "n"}, "t2v": {...}} (retrieval tasks) or '
                   '{"accuracy", "n", "ci95"} (mc, zeroshot) to this file; recalls and accuracy in percent.')
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]),
              help="auto = CUDA when available, else CPU (FAISS uses a GPU when faiss-gpu sees one).")
@click.option("--classes", "classes_file", type=click.Path(exists=True, dir_okay=False),
              help="temporal / zeroshot: file with one class caption per line. Default: the cache's "
                   "temporal_classes (temporal) or classes (zeroshot).")
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1),
              help="Clips encoded per batch.")
def retrieve_command(cache_dir: str, run_dir: str | None, task: str, split: str, ensemble: bool,
                     ks: tuple[int, ...], json_out: str | None, device: str, classes_file: str | None,
                     batch_size: int) -> None:
    """Downstream evaluation of a run (or the backbone): exact FAISS retrieval, multiple choice, zero-shot.

    Retrieval tasks print R@k in percent and the median rank in both directions (video to text, text to
    video); a text is found when any of its videos is in the top k. mc and zeroshot print accuracy in percent,
    the number of clips and the 95% Wilson interval. Writes nothing unless --json is given.
    """

    from rich.progress import Progress
    from rich.table import Table

    from paxion.cache.reader import Cache
    from paxion.device import resolve_device
    from paxion.retrieval.tasks import read_classes, run_task
    from paxion.trainer.scoring import load_scorer

    cache = Cache(cache_dir)
    torch_device = resolve_device(device)
    scorer = load_scorer(cache, run_dir, device=torch_device)
    backbone = load_scorer(cache, None, device=torch_device) if ensemble else None
    classes = read_classes(classes_file) if classes_file is not None else None
    with Progress(console=err_console, transient=True) as bar:
        stages: dict[str, int] = {}

        def report(stage: str, advance: int, total: int) -> None:
            if stage not in stages:
                stages[stage] = bar.add_task(stage, total=total)
            bar.advance(stages[stage], advance)

        result = run_task(cache, scorer, task, split=split, ks=ks, classes=classes, ensemble_with=backbone,
                          device=torch_device, batch_size=batch_size, progress=report)
    table = Table(title=f"{task} on {split}: {run_dir or 'backbone'}{' + backbone ensemble' if ensemble else ''}")
    if "accuracy" in result:
        for column in ("accuracy %", "n", "95% CI"):
            table.add_column(column, justify="right")
        lo, hi = result["ci95"]
        table.add_row(f"{result['accuracy']:.1f}", str(result["n"]), f"{lo:.1f}-{hi:.1f}")
    else:
        table.add_column("direction")
        for column in [*(f"R@{k} %" for k in ks), "median rank", "queries"]:
            table.add_column(column, justify="right")
        for key, name in (("v2t", "video to text"), ("t2v", "text to video")):
            row = result[key]
            table.add_row(name, *(f"{row[f'r{k}']:.1f}" for k in ks), f"{row['medr']:g}", str(row["n"]))
    console.print(table)
    if json_out is not None:
        _write_json(json_out, result)


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
@click.option("--out", "out", type=click.Path(file_okay=False), default="paxion-demo", show_default=True,
              help="Directory for the world, bench, cache, runs and the report; a rerun reuses finished stages.")
@click.option("--quick", is_flag=True, help="A smaller world and fewer steps: the whole study in about 2 minutes, "
              "as a smoke test (patchers reach AA/VR ~70%, not ~93%).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where extraction and training run (auto: CUDA when available).")
def demo(out: str, quick: bool, device: str) -> None:
    """Reproduce the paper's findings on the built-in world, in minutes, on a CPU.

    \b
    Stages: synth world -> bench build -> extract (toy backbone) -> ActionBench of the backbone ->
    KP-Transformer [VTC], KP-Perceiver [VTC], KP-Perceiver [VTC+DVDM] -> ActionBench of each ->
    KP-Perceiver FT, Side-Tuning and the PAXION fuser -> retrieval (label, template, temporal).
    Writes OUT/report.json (every number) and OUT/report.png (the ActionBench figure).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from paxion.demo.report import actionbench_table, plot_actionbench, retrieval_table, timings_table
    from paxion.demo.study import run_study

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        report = run_study(out, quick=quick, device=device, reporter=_StageReporter(progress))
    figure = plot_actionbench(report, f"{out}/report.png")
    for table in (actionbench_table(report), retrieval_table(report), timings_table(report)):
        console.print(table)
    console.print(f"report: {out}/report.json, figure: {figure}")


def main() -> None:
    """Entry point: run the CLI, turning library errors into a one-line message and exit code 1."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("[red]error:[/red] aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except PaxionError as exc:  # printed literally: a message quoting user input may hold "[/b]"-like markup
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("[red]error:[/red] interrupted")
        sys.exit(130)
