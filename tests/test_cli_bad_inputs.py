"""Every subcommand against bad inputs: one `error:` line on stderr, a non-zero exit, never a traceback.

One tiny world is built per module (a 4 + 2 clip bench, toy-backbone caches of 4 and 2 frames, two tiny runs),
then each row of CASES runs `paxion ARGV` in-process through `paxion.cli.main` (its real error path); the
full-disk rows run `python -m paxion` in a subprocess under `ulimit -f`.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import make_bench

from paxion.cache.manifest import write_manifest
from paxion.cli import main
from paxion.extract.backbones import load_backbone
from paxion.extract.pipeline import extract
from paxion.trainer.train import train

TINY_RUN = {"epochs": 1, "batch_size": 4, "num_latents": 2, "heads": 1, "dim_head": 8, "eval_split": None}


def _bench_copy(src: Path, dst: Path, change) -> Path:
    """A copy of bench `src` at `dst` whose validation rows are passed through `change(rows)`."""
    shutil.copytree(src, dst)
    path = dst / "validation.jsonl"
    rows = change([json.loads(line) for line in path.read_text().splitlines()])
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return dst


def _ssv2_annotations(root: Path) -> Path:
    """SSv2 annotations whose one clip has a template ("... [something] ...") that labels.json lacks."""
    root.mkdir()
    (root / "labels.json").write_text(json.dumps({"Pushing [something] from left to right": "0"}))
    clip = {"id": "1", "label": "Pushing ball from the left", "template": "Pushing [something] from the left",
            "placeholders": ["ball"]}
    (root / "train.json").write_text(json.dumps([clip]))
    (root / "validation.json").write_text("[]")
    return root


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, str]:
    """Paths of the good and bad inputs the CASES refer to as {name}."""
    w = tmp_path_factory.mktemp("bad-inputs")
    bench, videos = make_bench(w, {"train": 4, "validation": 2})
    toy = load_backbone("toy", device="cpu")
    for name, frames in (("cache", 4), ("cache2", 2)):
        extract(bench, videos, w / name, toy, frames=frames, batch_size=8, workers=0)
    train(w / "cache", w / "run", options=TINY_RUN, device="cpu")
    train(w / "cache", w / "run_kt", options=dict(TINY_RUN, model="kp-transformer"), device="cpu")
    shutil.copytree(w / "cache", w / "other_backbone")
    manifest = json.loads((w / "other_backbone" / "manifest.json").read_text())
    manifest["backbone"]["config_hash"] = "0123456789abcdef"
    write_manifest(w / "other_backbone", manifest)
    shutil.copytree(w / "cache", w / "truncated")
    shard = w / "truncated" / "train-00000.h5"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    shutil.copytree(w / "cache", w / "bad_manifest")
    (w / "bad_manifest" / "manifest.json").write_text('{"schema_version": 5, "splits": ')
    shutil.copytree(w / "cache", w / "edited")
    manifest = json.loads((w / "edited" / "manifest.json").read_text())
    manifest["splits"]["train"]["shards"][0]["bytes"] = "125868"  # a hand edit, the manifest's xxh3_128 kept
    (w / "edited" / "manifest.json").write_text(json.dumps(manifest))
    _bench_copy(bench, w / "bench_start", lambda rows: [dict(rows[0], start="0.1"), *rows[1:]])
    _bench_copy(bench, w / "bench_ids", lambda rows: [dict(row, id="[/b]") for row in rows])
    (w / "plain.txt").write_text("not a folder\n")
    (w / "binary.txt").write_bytes(b"\xff\xfe\x00\x80 not utf-8")
    (w / "run_garbage").mkdir()
    (w / "run_garbage" / "model.pt").write_bytes(b"not a checkpoint" * 10)
    (w / "run_garbage" / "config.json").write_text('{"model": ')
    (w / "run_cut").mkdir()  # the run as if cut before its end, its checkpoint garbage
    shutil.copy(w / "run" / "config.json", w / "run_cut")
    (w / "run_cut" / "checkpoint.pt").write_bytes(b"not a checkpoint" * 10)
    _ssv2_annotations(w / "ssv2")
    (w / "jsonl").mkdir()
    (w / "jsonl" / "train.jsonl").write_text('{"id": "1", "caption": "Pushing a ball"\n')
    return {"w": str(w), "bench": str(bench), "videos": str(videos), "missing": str(w / "missing"),
            "file": str(w / "plain.txt"), "binary": str(w / "binary.txt"), **{name: str(w / name) for name in (
                "cache", "cache2", "run", "run_kt", "other_backbone", "truncated", "bad_manifest", "edited", "bench_start",
                "bench_ids", "run_garbage", "run_cut", "ssv2", "jsonl")}}


RUN_OPTIONS = ["--epochs", "1", "--batch-size", "4", "--num-latents", "2", "--heads", "1", "--dim-head", "8",
               "--eval-split", "none"]  # TINY_RUN
CACHE = ["--cache", "{cache}", "--device", "cpu"]
TRAIN = ["train", "--out", "{w}/new-run", "--device", "cpu", "--epochs", "1", "--batch-size", "4"]
EXTRACT = ["extract", "--videos", "{videos}", "--frames", "4", "--workers", "0", "--device", "cpu"]

# (name, argv with {path} fields, a fragment the one error line must contain literally)
CASES = [
    # synth
    ("synth-out-is-a-file", ["synth", "--out", "{file}"], "is a file"),
    ("synth-train-not-an-int", ["synth", "--out", "{w}/s", "--train", "abc"], "'abc' is not a valid integer"),
    ("synth-out-under-a-file", ["synth", "--out", "{file}/world", "--train", "1", "--val", "0", "--workers", "1"],
     "plain.txt"),
    # bench build / antonym
    ("bench-annotations-missing", ["bench", "build", "--dataset", "ssv2", "--annotations", "{missing}", "--out",
                                   "{w}/b"], "does not exist"),
    ("bench-ssv2-annotations-is-a-file", ["bench", "build", "--dataset", "ssv2", "--annotations", "{file}", "--out",
                                          "{w}/b"], "plain.txt"),
    ("bench-template-with-brackets", ["bench", "build", "--dataset", "ssv2", "--annotations", "{ssv2}", "--out",
                                      "{w}/b"], "template 'Pushing [something] from the left' is not in labels.json"),
    ("bench-jsonl-bad-json", ["bench", "build", "--dataset", "jsonl", "--annotations", "{jsonl}", "--out", "{w}/b"],
     "train.jsonl:1: bad JSON"),
    ("bench-out-is-a-file", ["bench", "build", "--dataset", "ssv2", "--annotations", "{ssv2}", "--out", "{file}"],
     "is a file"),
    ("bench-out-under-a-file", ["bench", "build", "--dataset", "jsonl", "--annotations", "{bench}/train.jsonl",
                                "--out", "{file}/b"], "plain.txt"),
    ("bench-flags-not-json", ["bench", "build", "--dataset", "jsonl", "--annotations", "{bench}/train.jsonl",
                              "--out", "{w}/b2", "--saliency-flags", "{binary}"], "binary.txt"),
    ("bench-window-zero", ["bench", "build", "--dataset", "ego4d", "--annotations", "{file}", "--out", "{w}/b",
                           "--window", "0"], "Invalid value for '--window'"),
    ("bench-antonym-no-text", ["bench", "antonym"], "Missing argument 'TEXTS...'"),
    # backbones / backbone info / backbone train-toy
    ("backbones-extra-argument", ["backbones", "extra"], "Got unexpected extra argument (extra)"),
    ("backbone-unknown", ["backbone", "info", "nosuch"], "nosuch"),
    ("backbone-bracketed-name", ["backbone", "info", "[/b]"], "[/b]"),
    ("backbone-hf-path-missing", ["backbone", "info", "hf-clip:{missing}"], "missing"),
    ("backbone-hf-path-is-a-file", ["backbone", "info", "hf-clip:{file}"], "plain.txt"),
    ("backbone-device-unknown", ["backbone", "info", "toy", "--device", "tpu"], "Invalid value for '--device'"),
    ("train-toy-world-missing", ["backbone", "train-toy", "--world", "{missing}", "--out", "{w}/t.pt"],
     "does not exist"),
    ("train-toy-world-not-a-world", ["backbone", "train-toy", "--world", "{videos}", "--out", "{w}/t.pt"],
     "videos"),
    ("train-toy-epochs-zero", ["backbone", "train-toy", "--world", "{w}", "--out", "{w}/t.pt", "--epochs", "0"],
     "Invalid value for '--epochs'"),
    # extract
    ("extract-bench-missing", [*EXTRACT, "--bench", "{missing}", "--out", "{w}/c"], "does not exist"),
    ("extract-bench-is-a-file", [*EXTRACT, "--bench", "{file}", "--out", "{w}/c"], "is a file"),
    ("extract-bench-without-meta", [*EXTRACT, "--bench", "{videos}", "--out", "{w}/c"], "meta.json: file not found"),
    ("extract-start-is-a-string", [*EXTRACT, "--bench", "{bench_start}", "--out", "{w}/c"],
     "validation.jsonl:1: 'start' must be a number of seconds or null, got '0.1'"),
    ("extract-bracketed-duplicate-id", [*EXTRACT, "--bench", "{bench_ids}", "--out", "{w}/c"],
     "validation.jsonl:2: duplicate id '[/b]'"),
    ("extract-frames-zero", [*EXTRACT, "--bench", "{bench}", "--out", "{w}/c", "--frames", "0"],
     "Invalid value for '--frames'"),
    ("extract-batch-size-not-an-int", [*EXTRACT, "--bench", "{bench}", "--out", "{w}/c", "--batch-size", "abc"],
     "'abc' is not a valid integer"),
    ("extract-out-is-a-file", [*EXTRACT, "--bench", "{bench}", "--out", "{file}"], "is a file"),
    ("extract-out-under-a-file", [*EXTRACT, "--bench", "{bench}", "--out", "{file}/c"], "plain.txt"),
    ("extract-backbone-unknown", [*EXTRACT, "--bench", "{bench}", "--out", "{w}/c", "--backbone", "nosuch"],
     "nosuch"),
    ("extract-split-unknown", [*EXTRACT, "--bench", "{bench}", "--out", "{w}/c", "--splits", "nosuch"],
     "nosuch.jsonl: no such split file"),
    ("extract-shard-index-outside", [*EXTRACT, "--bench", "{bench}", "--out", "{w}/c", "--num-shards", "2",
                                     "--shard-index", "5"], "shard index 5 is not in [0, 2) processes"),
    ("extract-into-other-frame-count", [*EXTRACT, "--bench", "{bench}", "--out", "{cache2}"], "--overwrite"),
    # cache info / verify / add-texts
    ("cache-info-missing", ["cache", "info", "{missing}"], "does not exist"),
    ("cache-info-file", ["cache", "info", "{file}"], "is a file"),
    ("cache-info-not-a-cache", ["cache", "info", "{videos}"], "manifest.json: missing"),
    ("cache-info-bad-manifest", ["cache", "info", "{bad_manifest}"], "manifest.json: unreadable"),
    ("cache-info-edited-manifest", ["cache", "info", "{edited}"],
     "{edited}/manifest.json: its values differ from its xxh3_128 (edited or corrupt); rerun the `paxion extract`"),
    ("cache-verify-truncated-shard", ["cache", "verify", "{truncated}"],
     "1 problem(s) found, the first: {truncated}/train-00000.h5: {truncated_size} bytes, the manifest says"),
    ("cache-verify-not-a-cache", ["cache", "verify", "{videos}"], "manifest.json: missing"),
    ("add-texts-file-missing", ["cache", "add-texts", "{cache}", "{missing}"], "does not exist"),
    ("add-texts-file-is-a-folder", ["cache", "add-texts", "{cache}", "{videos}"], "is a directory"),
    ("add-texts-not-utf8", ["cache", "add-texts", "{cache}", "{binary}", "--device", "cpu"], "binary.txt"),
    ("add-texts-other-backbone", ["cache", "add-texts", "{other_backbone}", "{file}", "--device", "cpu"],
     "0123456789abcdef"),
    # train
    ("train-cache-missing", [*TRAIN, "--cache", "{missing}"], "does not exist"),
    ("train-not-a-cache", [*TRAIN, "--cache", "{videos}"], "manifest.json: missing"),
    ("train-truncated-shard", [*TRAIN, "--cache", "{truncated}"],
     "train-00000.h5: {truncated_size} bytes, the manifest says"),
    ("train-init-other-kind", [*TRAIN, "--cache", "{cache}", "--init", "{run_kt}", "--model", "paxion"],
     "has a KPTransformer patcher, but paxion needs a KPPerceiver"),
    ("train-init-without-model", [*TRAIN, "--cache", "{cache}", "--init", "{videos}"], "model.pt"),
    ("train-init-garbage-model", [*TRAIN, "--cache", "{cache}", "--init", "{run_garbage}"], "model.pt"),
    ("train-init-other-backbone", [*TRAIN, "--cache", "{other_backbone}", "--init", "{run}"], "backbone"),
    ("train-init-other-frames", [*TRAIN, "--cache", "{cache2}", "--init", "{run}"], "frames"),
    ("train-batch-size-not-an-int", [*TRAIN, "--cache", "{cache}", "--batch-size", "abc"],
     "'abc' is not a valid integer"),
    ("train-out-is-a-file", ["train", "--cache", "{cache}", "--out", "{file}"], "is a file"),
    ("train-out-under-a-file", ["train", "--cache", "{cache}", "--out", "{file}/run", "--epochs", "1",
                                "--batch-size", "4", "--device", "cpu"], "plain.txt"),
    ("train-split-unknown", [*TRAIN, "--cache", "{cache}", "--split", "nosuch"], "nosuch"),
    ("train-memory-budget-not-a-size", [*TRAIN, "--cache", "{cache}", "--memory-budget", "lots"],
     "Invalid value for '--memory-budget'"),
    ("train-resume-bad-config", [*TRAIN[:2], "{run_garbage}", *TRAIN[3:], "--cache", "{cache}", "--resume"],
     "run_garbage/config.json: unreadable"),
    ("train-resume-garbage-checkpoint", ["train", "--cache", "{cache}", "--out", "{run_cut}", "--device", "cpu",
                                         "--resume", *RUN_OPTIONS], "run_cut/checkpoint.pt: unreadable checkpoint"),
    ("train-over-another-run", ["train", "--out", "{run_kt}", "--cache", "{cache}", "--device", "cpu", "--epochs", "2"],
     "run_kt"),
    # eval
    ("eval-neither-run-nor-backbone", ["eval", *CACHE], "give --run RUN_DIR (one or more) or --backbone-only"),
    ("eval-other-frame-count", ["eval", "--cache", "{cache2}", "--run", "{run}", "--device", "cpu"], "frames"),
    ("eval-other-backbone", ["eval", "--cache", "{other_backbone}", "--run", "{run}", "--device", "cpu"],
     "backbone"),
    ("eval-truncated-shard", ["eval", "--cache", "{truncated}", "--backbone-only", "--split", "train",
                              "--device", "cpu"], "train-00000.h5: {truncated_size} bytes, the manifest says"),
    ("eval-edited-manifest", ["eval", "--cache", "{edited}", "--backbone-only", "--device", "cpu"],
     "manifest.json: its values differ from its xxh3_128"),
    ("eval-split-unknown", ["eval", *CACHE, "--backbone-only", "--split", "nosuch"], "nosuch"),
    ("eval-ids-missing", ["eval", *CACHE, "--backbone-only", "--ids", "{missing}"], "does not exist"),
    ("eval-run-without-model", ["eval", *CACHE, "--run", "{videos}"], "model.pt"),
    ("eval-run-garbage-model", ["eval", *CACHE, "--run", "{run_garbage}"], "model.pt"),
    ("eval-json-under-a-file", ["eval", *CACHE, "--backbone-only", "--json", "{file}/r.json"], "plain.txt"),
    ("eval-batch-size-zero", ["eval", *CACHE, "--backbone-only", "--batch-size", "0"],
     "Invalid value for '--batch-size'"),
    # retrieve
    ("retrieve-mc-without-candidates", ["retrieve", *CACHE, "--task", "mc"], "mc"),
    ("retrieve-temporal-without-classes", ["retrieve", *CACHE, "--task", "temporal"], "temporal"),
    ("retrieve-classes-missing", ["retrieve", *CACHE, "--task", "zeroshot", "--classes", "{missing}"], "missing"),
    ("retrieve-classes-not-utf8", ["retrieve", *CACHE, "--task", "zeroshot", "--classes", "{binary}"],
     "binary.txt"),
    ("retrieve-classes-bracketed-name", ["retrieve", *CACHE, "--task", "zeroshot", "--classes", "[/b]"],
     "[/b]: no such class list file"),
    ("retrieve-k-not-ints", ["retrieve", *CACHE, "--task", "label", "--k", "a,b"],
     "'a,b' is not a comma-separated list of integers"),
    ("retrieve-other-frame-count", ["retrieve", "--cache", "{cache2}", "--run", "{run}", "--task", "label",
                                    "--device", "cpu"], "frames"),
    ("retrieve-ids-none-in-split", ["retrieve", *CACHE, "--task", "label", "--ids", "{file}"],
     "none of the 1 listed clip ids is in split 'validation'"),
    # demo
    ("demo-out-is-a-file", ["demo", "--out", "{file}"], "is a file"),
    ("demo-out-under-a-file", ["demo", "--quick", "--out", "{file}/demo", "--device", "cpu"], "plain.txt"),
    ("demo-device-unknown", ["demo", "--device", "tpu"], "Invalid value for '--device'"),
]


def _fill(items: list[str], paths: dict[str, str]) -> list[str]:
    return [item.format(**paths) for item in items]


def _check_one_line(code: int, out: str, err: str, fragment: str) -> None:
    """The rule: a non-zero exit, no traceback anywhere, exactly one non-empty stderr line, `error: ...`
    holding `fragment` literally."""
    assert code not in (0, None), (out, err)
    assert "Traceback" not in out + err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and err.count("error:") == 1, err
    assert fragment in lines[0], (fragment, lines[0])


@pytest.mark.parametrize(("argv", "fragment"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_is_one_line(paths, monkeypatch, capsys, argv, fragment):
    sizes = {"truncated_size": str((Path(paths["truncated"]) / "train-00000.h5").stat().st_size)}
    monkeypatch.setattr(sys, "argv", ["paxion", *_fill(argv, paths)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    _check_one_line(exit_info.value.code, captured.out, captured.err, fragment.format(**paths, **sizes))


def _limit_file_size(limit: int):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


# (name, argv, file size limit in bytes, the file that cannot be written)
FULL_DISK = [
    ("bench-build", ["bench", "build", "--dataset", "jsonl", "--annotations", "{bench}/train.jsonl", "--out",
                     "{w}/full-bench"], 1024, "{w}/full-bench/train.jsonl"),
    ("extract", [*EXTRACT, "--bench", "{bench}", "--out", "{w}/full-cache"], 16 * 1024, "{w}/full-cache/"),
    ("train", [*TRAIN, "--cache", "{cache}", "--out", "{w}/full-run"], 16 * 1024, "{w}/full-run/"),
]


@pytest.mark.parametrize(("argv", "limit", "file"), [case[1:] for case in FULL_DISK], ids=[case[0] for case in FULL_DISK])
def test_full_disk_is_one_line_naming_the_file(paths, argv, limit, file):
    """Under `ulimit -f` the first write past the limit fails with EFBIG: one line naming the file and the cause."""
    env = {"PYTHONPATH": str(Path(__file__).parents[1]), "PATH": str(Path(sys.executable).parent),
           "PYTHONDONTWRITEBYTECODE": "1"}  # a .pyc cut by the limit would break later imports
    result = subprocess.run([sys.executable, "-m", "paxion", *_fill(argv, paths)], capture_output=True, text=True,
                            preexec_fn=_limit_file_size(limit), env=env, timeout=120, check=False)
    _check_one_line(result.returncode, result.stdout, result.stderr, "(File too large)")
    assert f"error: {file.format(**paths)}" in result.stderr
