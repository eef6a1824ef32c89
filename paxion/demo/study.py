"""The whole PAXION study on the built-in world, as resumable stages writing into one directory."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from paxion.analysis.html import write_report
from paxion.analysis.items import write_predictions
from paxion.analysis.predict import actionbench_predictions
from paxion.analysis.saliency import saliency_summary
from paxion.atomic import ensure_dir, write_text
from paxion.bench.build import build_bench
from paxion.bench.readers import read_dataset
from paxion.cache.reader import Cache
from paxion.device import resolve_device
from paxion.extract.backbones import load_backbone
from paxion.extract.pipeline import extract
from paxion.models.patched import count_parameters, load_model
from paxion.retrieval.tasks import run_task
from paxion.scoring import ModelScorer, load_scorer
from paxion.synth.nextqa import write_nextqa
from paxion.synth.render import BUILT_IN, SHIFTED
from paxion.synth.world import sample_world, video_path, write_world
from paxion.trainer.config import TrainConfig
from paxion.trainer.train import train


@dataclass(frozen=True)
class DemoPlan:
    """Sizes of the study: world clips, patcher epochs (ActionBench), downstream epochs (retrieval) and the
    multiple-choice fine-tuning on the NExT-QA layout of the same clips (Table 3 analog)."""

    train_clips: int
    val_clips: int
    patch_epochs: int
    downstream_epochs: int
    seed: int = 0
    shift_clips: int = 200  # validation clips of the domain-shifted world (Table 4 analog)
    mc_epochs: int = 3  # PAXION [mc] epochs, started from the KP-Perceiver [VTC+DVDM] patcher
    mc_vac: bool = False  # also train PAXION [mc+vac] (the answers' action antonyms as extra negatives)


# The full study trains its patchers with the built-in world's preset as it is (TrainConfig.builtin_world()).
FULL = DemoPlan(train_clips=2000, val_clips=400, patch_epochs=TrainConfig.builtin_world().epochs, downstream_epochs=5,
                mc_vac=True)
QUICK = DemoPlan(train_clips=600, val_clips=200, patch_epochs=16, downstream_epochs=3, shift_clips=100)

# Table 1 of the paper: (report name, model kind, patcher objective).
PATCHERS = (
    ("kp-transformer[vtc]", "kp-transformer", "vtc"),
    ("kp-perceiver[vtc]", "kp-perceiver", "vtc"),
    ("kp-perceiver[vtc+dvdm]", "kp-perceiver", "vtc+dvdm"),
)
# Table 2: (report name, model kind, the patcher run it starts from); fine-tuned / fused with VTC (Table 6).
DOWNSTREAM = (
    ("kp-perceiver-ft[vtc]", "kp-perceiver", "kp-perceiver[vtc]"),
    ("side-tuning[vtc+dvdm]", "side-tuning", "kp-perceiver[vtc+dvdm]"),
    ("paxion[vtc+dvdm]", "paxion", "kp-perceiver[vtc+dvdm]"),
)
# Figure 6: KP[VTC]+KF, the fuser on the patcher trained without DVDM (its retrieval runs, as DOWNSTREAM's).
ABLATION_RUNS = (("paxion[vtc]", "paxion", "kp-perceiver[vtc]"),)
# (name shown, model, reference): retrieval R1 of the ablated setting minus PAXION's, per task.
ABLATIONS = (("KP+Finetune", "kp-perceiver-ft[vtc]", "paxion[vtc+dvdm]"),
             ("KP[VTC]+KF", "paxion[vtc]", "paxion[vtc+dvdm]"))
# Table 3: PAXION fine-tuned on the NExT-QA layout's questions (App. D.3) starts from this patcher (paper §4).
MC_INIT = "kp-perceiver[vtc+dvdm]"
# The patchers whose AA / VR / OR are scored after every epoch (learning curves).
CURVES = ("kp-perceiver[vtc]", "kp-perceiver[vtc+dvdm]")
# Retrieval task -> the captions its downstream models are trained on (paper Table 7).
RETRIEVAL_TASKS = {"label": "label", "template": "template", "temporal": "template"}


def _clip_progress(advance: Callable[[int], None]) -> Callable:
    """An `extract` progress callback that advances a stage's bar by the clips done since its last call."""
    state = {"done": 0}

    def on_progress(p) -> None:
        advance(p.clips_done - state["done"])
        state["done"] = p.clips_done

    return on_progress


class Reporter(Protocol):
    """Receives the study's progress; the CLI draws it."""

    def stage(self, name: str, total: int | None) -> Callable[[int], None]: ...

    def done(self, name: str, seconds: float, reused: bool) -> None: ...


class Study:
    """Runs the stages of the demo in `root`; each finished stage is recorded and reused by a rerun."""

    def __init__(self, root: str | Path, *, plan: DemoPlan, device: str, reporter: Reporter) -> None:
        self.root = Path(root)
        self.plan = plan
        self.device = str(resolve_device(device))
        self.reporter = reporter
        self.timings: dict[str, float] = {}
        for folder in ("stages", "predictions"):
            ensure_dir(self.root / folder)

    def stage(self, name: str, work: Callable[[Callable[[int], None]], object], total: int | None = None) -> object:
        """Run `work(advance)` once: its JSON result is stored under stages/ and returned again on reruns."""
        record = self.root / "stages" / f"{name.replace('/', '_')}.json"
        if record.exists():
            saved = json.loads(record.read_text())
            self.timings[name] = saved["seconds"]
            self.reporter.done(name, saved["seconds"], True)
            return saved["result"]
        began = time.perf_counter()
        result = work(self.reporter.stage(name, total))
        seconds = round(time.perf_counter() - began, 2)
        write_text(record, json.dumps({"seconds": seconds, "result": result}))
        self.timings[name] = seconds
        self.reporter.done(name, seconds, False)
        return result

    @property
    def cache_dir(self) -> Path:
        """The feature cache of the study."""
        return self.root / "cache"

    def run_dir(self, name: str) -> Path:
        """The training run of a model of the study."""
        return self.root / "runs" / name.replace("[", "-").replace("]", "").replace("+", "-")

    def make_world(self) -> None:
        """Render the built-in world and build its ActionBench texts."""
        world = self.root / "world"
        total = self.plan.train_clips + self.plan.val_clips
        self.stage("synth", lambda advance: write_world(
            world, train=self.plan.train_clips, val=self.plan.val_clips, seed=self.plan.seed,
            progress=advance).clips, total)

        def bench(advance: Callable[[int], None]) -> dict:
            annotations = read_dataset("ssv2", world / "annotations", videos=world / "videos")
            summary = build_bench(annotations, self.root / "bench", seed=self.plan.seed,
                                  progress=lambda _done, _total: advance(1))
            return {split: s.clips for split, s in summary.splits.items()}

        self.stage("bench", bench, total)

    def make_cache(self) -> None:
        """Extract the toy backbone's features of every clip."""
        total = self.plan.train_clips + self.plan.val_clips

        def work(advance: Callable[[int], None]) -> dict:
            result = extract(self.root / "bench", self.root / "world" / "videos", self.cache_dir,
                             load_backbone("toy", device=self.device), device=self.device,
                             progress=_clip_progress(advance))
            return {"clips": result.clips, "failed": len(result.failed)}

        self.stage("extract", work, total)

    def train_model(self, name: str, kind: str, objective: str, *, text: str, epochs: int,
                    init: str | None = None, curve: bool = False, cache: Path | None = None) -> dict:
        """Train one model (resuming a run cut short) and return its trainable parameter count; curve: also score
        ActionBench on the validation split after every epoch (into the run's metrics.jsonl); cache: train on this
        cache instead of the study's, with the built-in world's optimiser settings (its bench does not say it is
        the built-in world)."""
        cache_dir = cache or self.cache_dir
        world = TrainConfig.builtin_world()

        def work(advance: Callable[[int], None]) -> dict:
            def on_event(event: dict) -> None:
                if event["event"] == "step":
                    advance(1)

            options = {"model": kind, "objective": objective, "text": text, "epochs": epochs, "seed": self.plan.seed,
                       "eval_split": "validation" if curve else None, "eval_every_epoch": curve,
                       "init": None if init is None else self.run_dir(init), "lr": world.lr, "schedule": world.schedule}
            train(cache_dir, self.run_dir(name), options=options, device=self.device, resume=True,
                  progress=on_event)
            return {"trainable": count_parameters(load_model(self.run_dir(name) / "model.pt")[0])}

        cache = Cache(cache_dir)
        batch = min(TrainConfig.builtin_world().batch_size, cache.num_clips("train"))
        return self.stage(f"train/{name}", work, epochs * (cache.num_clips("train") // batch))

    def curve(self, run: str) -> list[dict]:
        """The per-epoch {"epoch", "aa", "vr", "or"} lines of a run trained with curve=True."""
        lines = [json.loads(line) for line in (self.run_dir(run) / "metrics.jsonl").read_text().splitlines()]
        return [m for m in lines if "aa" in m and "epoch" in m]

    def prediction_path(self, name: str) -> str:
        """Where the ActionBench prediction records of a model go, relative to the study root."""
        return f"predictions/{name.replace('[', '-').replace(']', '').replace('+', '-')}.jsonl"

    def actionbench(self, name: str, run: str | None) -> dict:
        """ActionBench (AA, VR, OR) of the backbone (run None) or of a trained run on the validation split; its
        prediction records go to `prediction_path(name)`."""
        cache = Cache(self.cache_dir)
        scorer = load_scorer(cache, None if run is None else self.run_dir(run), device=self.device)

        def work(advance: Callable[[int], None]) -> dict:
            result, records = actionbench_predictions(cache, scorer, "validation", device=self.device,
                                                      progress=advance)
            write_predictions(self.root / self.prediction_path(name), records)
            return result

        return self.stage(f"actionbench/{name}", work, cache.num_clips("validation"))

    def retrieval(self, name: str, task: str, run: str | None) -> dict:
        """One retrieval task of the backbone (run None) or of a trained run on the validation split."""
        cache = Cache(self.cache_dir)
        scorer = load_scorer(cache, None if run is None else self.run_dir(run), device=self.device)
        return self.stage(f"retrieval/{name}/{task}", lambda advance: run_task(
            cache, scorer, task, split="validation", device=self.device))

    @property
    def shift_cache_dir(self) -> Path:
        """The feature cache of the domain-shifted world."""
        return self.root / "shift" / "cache"

    def make_shift_cache(self) -> None:
        """Render the domain-shifted world (one training clip, the reader needs one) in the Kinetics layout, build
        its bench and extract its "val" split; its class texts are in the cache's text table."""
        shift = self.root / "shift"

        def work(advance: Callable[[int], None]) -> dict:
            world = write_world(shift / "world", train=1, val=self.plan.shift_clips, seed=self.plan.seed,
                                domain=SHIFTED, layout="kinetics", progress=advance)
            kinetics = shift / "world" / "kinetics"
            build_bench(read_dataset("kinetics", kinetics, videos=kinetics / "videos"), shift / "bench",
                        seed=self.plan.seed)
            result = extract(shift / "bench", kinetics / "videos", self.shift_cache_dir,
                             load_backbone("toy", device=self.device), device=self.device, splits=["val"])
            return {"clips": world.clips, "extracted": result.clips}

        self.stage("shift/world", work, self.plan.shift_clips)

    @property
    def nextqa_cache_dir(self) -> Path:
        """The feature cache of the world's NExT-QA layout."""
        return self.root / "nextqa" / "cache"

    def make_nextqa_cache(self) -> None:
        """Write the world's clips a second time in the NExT-QA layout (`paxion synth --nextqa`: one question per
        clip with five candidate answers, nested video folders of hard links to the rendered videos, the map file),
        build its bench and extract its cache ("train" and "val" questions). Nothing is rendered again; the clips
        are decoded again, as the cache has no way to take another cache's features."""
        world = self.root / "world"
        qa = world / "nextqa"

        def work(advance: Callable[[int], None]) -> dict:
            clips = sample_world(train=self.plan.train_clips, val=self.plan.val_clips, seed=self.plan.seed)
            write_nextqa(world, clips, sources=[video_path(world, c.id) for c in clips], seed=self.plan.seed,
                         pool=BUILT_IN.objects)
            annotations = read_dataset("nextqa", qa, video_map=qa / "map_vid_vidorID.json")
            summary = build_bench(annotations, self.root / "nextqa" / "bench", seed=self.plan.seed)
            result = extract(self.root / "nextqa" / "bench", qa / "videos", self.nextqa_cache_dir,
                             load_backbone("toy", device=self.device), device=self.device,
                             progress=_clip_progress(advance))
            return {"questions": {split: s.clips for split, s in summary.splits.items()}, "extracted": result.clips}

        self.stage("nextqa/world", work, self.plan.train_clips + self.plan.val_clips)

    def multiple_choice(self, name: str, run: str | None) -> dict:
        """Multiple-choice accuracy on the NExT-QA layout's "val" questions of the backbone (run None) or a run."""
        cache = Cache(self.nextqa_cache_dir)
        scorer = load_scorer(cache, None if run is None else self.run_dir(run), device=self.device)
        return self.stage(f"mc/{name}", lambda advance: run_task(cache, scorer, "mc", split="val",
                                                                  device=self.device))

    def zeroshot(self, name: str, run: str | None, *, fuser: bool = True, ensemble: bool = False) -> dict:
        """Zero-shot classification on the shifted world of the backbone (run None) or a run; fuser False scores
        a PAXION run's patcher alone, ensemble True adds the backbone's probabilities."""
        cache = Cache(self.shift_cache_dir)
        if fuser:
            scorer = load_scorer(cache, None if run is None else self.run_dir(run), device=self.device)
        else:
            model, _ = load_model(self.run_dir(run) / "model.pt", map_location=self.device)
            model.fuser = None  # the patcher's output is the video embedding, as a KP-Perceiver's
            scorer = ModelScorer(model)
        backbone = load_scorer(cache, None, device=self.device) if ensemble else None
        return self.stage(f"zeroshot/{name}", lambda advance: run_task(
            cache, scorer, "zeroshot", split="val", ensemble_with=backbone, device=self.device))


def run_study(root: str | Path, *, quick: bool = False, device: str = "auto", reporter: Reporter,
              plan: DemoPlan | None = None) -> dict:
    """Run (or finish) the whole study in `root` and return the report, also written to root/report.json.

    The sizes are QUICK or FULL, or `plan` when given (benchmarks/bench_demo.py --tiny).
    """
    plan = plan or (QUICK if quick else FULL)
    study = Study(root, plan=plan, device=device, reporter=reporter)
    study.make_world()
    study.make_cache()
    backbone_params = Cache(study.cache_dir).manifest["backbone"].get("num_params")

    bench = {"backbone": study.actionbench("backbone", None)}
    params = {"backbone": backbone_params}
    for name, kind, objective in PATCHERS:
        params[name] = study.train_model(name, kind, objective, text="label", epochs=plan.patch_epochs,
                                         curve=name in CURVES)["trainable"]
        bench[name] = study.actionbench(name, name)

    retrieval = {"backbone": {task: study.retrieval("backbone", task, None) for task in RETRIEVAL_TASKS}}
    for name, kind, init in DOWNSTREAM + ABLATION_RUNS:
        runs = {}
        for text in sorted(set(RETRIEVAL_TASKS.values())):
            run = f"{name}-{text}"
            params[name] = study.train_model(run, kind, "vtc", text=text, epochs=plan.downstream_epochs,
                                             init=init)["trainable"]
            runs[text] = run
        retrieval[name] = {task: study.retrieval(name, task, runs[text]) for task, text in RETRIEVAL_TASKS.items()}

    study.make_shift_cache()
    paxion = "paxion[vtc+dvdm]-template"  # zero-shot names classes by action: the template-trained runs
    zeroshot = {"backbone": study.zeroshot("backbone", None),
                "kp-perceiver-ft[vtc]": study.zeroshot("kp-perceiver-ft[vtc]", "kp-perceiver-ft[vtc]-template"),
                "side-tuning[vtc+dvdm]": study.zeroshot("side-tuning[vtc+dvdm]", "side-tuning[vtc+dvdm]-template"),
                "paxion[vtc+dvdm]": study.zeroshot("paxion[vtc+dvdm]", paxion),
                "paxion[vtc+dvdm] without fuser": study.zeroshot("paxion-no-fuser", paxion, fuser=False),
                "paxion[vtc+dvdm] + backbone ensemble": study.zeroshot("paxion-ensemble", paxion, ensemble=True)}

    study.make_nextqa_cache()
    mc = {"backbone": study.multiple_choice("backbone", None)}
    for objective in ("mc", "mc+vac") if plan.mc_vac else ("mc",):
        name = f"paxion[{objective}]"
        params[name] = study.train_model(name, "paxion", objective, text="label", epochs=plan.mc_epochs, init=MC_INIT,
                                         cache=study.nextqa_cache_dir)["trainable"]
        mc[name] = study.multiple_choice(name, name)

    report = {
        "plan": {"quick": quick, **plan.__dict__},
        "actionbench": bench,
        "retrieval": retrieval,
        "zeroshot": {model: {"shifted world": result} for model, result in zeroshot.items()},
        "mc": mc,
        "ablations": [{"name": n, "model": m, "reference": r} for n, m, r in ABLATIONS],
        "predictions": {name: study.prediction_path(name) for name in bench},
        "curves": {name: study.curve(name) for name in CURVES},
        "saliency": saliency_summary(Cache(study.cache_dir), "validation"),
        "parameters": params,
        "timings_s": dict(study.timings),
    }
    root = Path(root)
    write_text(root / "report.json", json.dumps(report, indent=2))  # model order matters to readers: no sorted keys
    write_report(root, root / "report.html", report=report)
    return report
