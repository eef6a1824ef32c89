"""A set of `paxion train` runs and `paxion eval` outputs gathered into the report dict `paxion.analysis.html` renders.

Inputs (`collect`): run folders (config.json, model.pt and metrics.jsonl, as `paxion train` writes them), folders
whose subfolders are run folders (each one a model, in name order), and the files `paxion eval` writes: the
`--predictions` JSONL (one record per clip and task; with several models each record names its "model") and the
`--json` result (one model's, or {"models": {name: result}, ...}).

What the report gets from them:
- "actionbench" (AA / VR / OR with 95% intervals): with a cache, every run (and, first, the backbone) scored on
  the cache's split, keeping per-clip records; else a predictions file's records summarised as ActionBench does;
  else an eval JSON's numbers; else the run's own end-of-training eval (metrics.jsonl's last {"eval": split} line).
- "predictions" (paired McNemar tests, per-class results, qualitative examples): the per-clip records above.
- "curves" / "losses": metrics.jsonl's per-epoch lines: AA / VR / OR (runs trained with eval_every_epoch) and the
  training loss (every run).
- "settings": the config.json values that differ between runs; "parameters" (model.pt) and "timings_s" (the sum
  of the epochs' time_s); "saliency" of the cache split (`paxion.analysis.saliency`).
- "clips": the bench JSONL and videos folder the example frames come from, when given; "figure_title"; "omitted":
  why the sections a set of runs has no data for are left out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from paxion.analysis.items import read_json_object, read_jsonl, read_predictions, summarise_records
from paxion.errors import PaxionError
from paxion.trainer.evaluate import TASKS

RUN_FILES = ("config.json", "metrics.jsonl")
# config.json keys that describe the run's machine or files, not its method: never shown as differing settings
NOT_SETTINGS = frozenset({"cache", "device", "world_size", "init", "memory_budget", "backbone_hash"})


def is_run(path: Path) -> bool:
    """Whether `path` is a folder `paxion train` wrote (config.json and metrics.jsonl)."""
    return path.is_dir() and all((path / name).is_file() for name in RUN_FILES)


def _inputs(paths: Sequence[str | Path]) -> tuple[list[Path], list[Path]]:
    """(run folders, eval output files) of the given paths; PaxionError for a path that is neither."""
    runs, files = [], []
    for path in map(Path, paths):
        if is_run(path):
            runs.append(path)
        elif path.is_file() and path.suffix in (".json", ".jsonl"):
            files.append(path)
        elif path.is_dir() and (found := sorted(p for p in path.iterdir() if is_run(p))):
            runs += found
        elif (path / "report.json").is_file():
            raise PaxionError(f"{path}: a demo folder (report.json) is reported on its own, not with other inputs")
        else:
            raise PaxionError(f"{path}: neither a demo folder (report.json), a `paxion train` run folder (config.json, "
                              "metrics.jsonl), a folder of runs, nor a `paxion eval` output (.json / .jsonl)")
    return runs, files


def run_names(runs: Sequence[Path]) -> list[str]:
    """Each run's folder name, or its path as given where two runs share a name."""
    names = [r.name for r in runs]
    return [str(r) if names.count(r.name) > 1 else r.name for r in runs]


def _eval_file(path: Path) -> dict[str, dict]:
    """{model: ActionBench result} of a `paxion eval --json` file (one model's result is named by the file)."""
    data = read_json_object(path, "eval result")
    models = data.get("models", {path.stem: data})
    for name, result in models.items():
        if not isinstance(result, dict) or not all(isinstance(result.get(t), dict) for t in TASKS):
            raise PaxionError(f"{path}: model {name!r} has no ActionBench result (aa, vr, or), not `paxion eval` output")
    return {name: {t: result[t] for t in TASKS} for name, result in models.items()}


def _predictions_file(path: Path) -> dict[str, list[dict]]:
    """{model: records} of a `paxion eval --predictions` file (records without "model" are named by the file)."""
    by_model: dict[str, list[dict]] = {}
    for r in read_predictions(path):
        if r["task"] not in TASKS:
            raise PaxionError(f"{path}: task {r['task']!r} is not ActionBench's (aa, vr, or); "
                              "the report reads `paxion eval --predictions` files")
        by_model.setdefault(str(r.get("model", path.stem)), []).append({k: v for k, v in r.items() if k != "model"})
    return by_model


def _settings(configs: dict[str, dict]) -> dict[str, dict]:
    """{run: {key: value}} of the config keys whose values differ between runs (all of them for a single run)."""
    keys = sorted({k for c in configs.values() for k in c} - NOT_SETTINGS)
    if len(configs) > 1:
        keys = [k for k in keys if len({json.dumps(c.get(k), sort_keys=True) for c in configs.values()}) > 1]
    return {name: {k: c.get(k) for k in keys} for name, c in configs.items()}


def collect(
    paths: Sequence[str | Path],
    *,
    cache=None,
    split: str = "validation",
    backbone: bool = True,
    bench: str | Path | None = None,
    videos: str | Path | None = None,
    device="cpu",
    batch_size: int = 256,
) -> tuple[dict, dict[str, list[dict]]]:
    """(report dict, {model: prediction records}) of runs and eval outputs (see the module docstring).

    cache: a `paxion.cache.reader.Cache` to score every run on (default None: use what the inputs hold).
    split: the cache split scored (default "validation"). backbone: with a cache, also score the frozen backbone,
    listed first as the reference (default True). bench / videos: the bench JSONL of that split and its videos
    folder, for the examples' frames (default None: no frames). device, batch_size: as `paxion eval`.
    Raises PaxionError for an input that is neither a run nor an eval output, an unreadable file, no input, or a
    model named twice.
    """
    from paxion.analysis.predict import actionbench_predictions
    from paxion.analysis.saliency import saliency_summary
    from paxion.models.patched import count_parameters, load_model
    from paxion.scoring import load_scorer

    runs, files = _inputs(paths)
    if not runs and not files:
        raise PaxionError("no runs to report on: give run folders, a folder of runs or `paxion eval` outputs")
    names = run_names(runs)
    scored = (["backbone"] if cache is not None and backbone else []) + (names if cache is not None else [])
    if len(set(names)) != len(names) or len(set(scored)) != len(scored):
        raise PaxionError(f"a model is given twice: {', '.join(scored or names)}")
    results: dict[str, dict] = {}
    records: dict[str, list[dict]] = {}
    if cache is not None:
        for name, run in ([("backbone", None)] if backbone else []) + list(zip(names, runs)):
            scorer = load_scorer(cache, run, device=device)
            results[name], records[name] = actionbench_predictions(cache, scorer, split, batch_size=batch_size,
                                                                   device=device)
    for path in files:
        given = _predictions_file(path) if path.suffix == ".jsonl" else _eval_file(path)
        for name, value in given.items():
            if name in results:
                raise PaxionError(f"{path}: model {name!r} is already in the report (from another input)")
            if path.suffix == ".jsonl":
                records[name] = value
                value = summarise_records(value)
            results[name] = value
    curves, losses, timings, parameters, configs = {}, {}, {}, {}, {}
    for name, run in zip(names, runs):
        metrics = read_jsonl(run / "metrics.jsonl")
        configs[name] = read_json_object(run / "config.json", "run config")
        epochs = [m for m in metrics if "epoch" in m and "loss" in m]
        curves[name] = [m for m in metrics if "epoch" in m and all(t in m for t in TASKS)]
        losses[name] = [{"epoch": m["epoch"], "loss": m["loss"]} for m in epochs]
        timings[f"train/{name}"] = sum(m.get("time_s", 0.0) for m in epochs)
        if (run / "model.pt").is_file():
            parameters[name] = count_parameters(load_model(run / "model.pt")[0])
        final = [m for m in metrics if "eval" in m]
        if name not in results and final:
            results[name] = {t: final[-1][t] for t in TASKS}
    report: dict = {
        "plan": {"inputs": ", ".join(map(str, paths)), "models": len(results) or len(runs),
                 "scored on": f"{cache.root} ({split})" if cache is not None else "saved results (eval outputs, the runs' own eval)"},
        "settings": _settings(configs),
        "actionbench": results,
        "curves": {k: v for k, v in curves.items() if v},
        "losses": {k: v for k, v in losses.items() if v},
        "parameters": parameters,
        "timings_s": timings,
    }
    if cache is not None:
        report["saliency"] = saliency_summary(cache, split)
        report["figure_title"] = f"ActionBench on {cache.manifest['bench'].get('dataset', 'the cache')} ({split})"
    else:
        report["figure_title"] = "ActionBench: does the model understand actions?"
    if bench is not None and videos is not None:
        report["clips"] = {"bench": str(Path(bench).resolve()), "videos": str(Path(videos).resolve())}
    else:
        report["clips"] = {"missing": "frames not shown: give the split's bench JSONL and videos folder (--bench, "
                                      "--videos)"}
    report["omitted"] = _omitted(records)
    return {k: v for k, v in report.items() if v}, records


def _omitted(records: dict[str, list[dict]]) -> dict[str, str]:
    """{section: why a set of runs leaves it empty}: what `paxion.analysis.html` says in place of a section with
    no data (its own message, naming report.json, fits a demo folder)."""
    per_clip = "needs per-clip records: give --cache CACHE to score the runs, or `paxion eval --predictions` files"
    only = "a set of runs is scored on ActionBench only"
    return {
        "retrieval": f"{only} (`paxion retrieve` scores retrieval)",
        "mc": f"{only} (`paxion retrieve --task mc` scores multiple choice)",
        "zeroshot": f"{only} (`paxion retrieve --task zeroshot` scores zero-shot classification)",
        "ablations": "the demo's pairs of settings; a set of runs has none",
        "saliency": "needs the cache the runs were trained on (--cache CACHE)",
        "actionbench": "no run has a result: give --cache CACHE, or runs trained with an eval split",
        "curves": "no run recorded per-epoch metrics (metrics.jsonl)",
        "paired": per_clip if not records else "needs per-clip records of two or more models",
        "per-class": per_clip,
        "examples": per_clip,
    }
