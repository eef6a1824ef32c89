"""Issue 13: parallel writers, kill-and-resume, Ctrl-C, bad input printed literally, ties in mc and zero-shot."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeBackbone, make_bench
from tiny_cache import make_cache, replace_shard

from paxion import atomic
from paxion.cache.manifest import read_json, write_manifest
from paxion.cache.reader import Cache
from paxion.cache.verify import verify_cache
from paxion.cache.writer import ShardWriter, write_texts
from paxion.cli import main
from paxion.errors import CacheError
from paxion.extract.pipeline import extract
from paxion.retrieval.tasks import run_task
from paxion.scoring import BackboneScorer

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """8 validation clips: with --shard-size 1, 8 shards, more than one process claims at once."""
    return make_bench(tmp_path_factory.mktemp("world"), {"validation": 8})


def _args(world, out, *extra):
    bench, videos = world
    return [sys.executable, "-m", "paxion", "extract", "--bench", str(bench), "--videos", str(videos), "--out",
            str(out), "--backbone", "toy", "--frames", "4", "--device", "cpu", "--workers", "0", "--batch-size", "1",
            "--shard-size", "1", *extra]


def _start(args):
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _assert_same_cache(cache, reference):
    assert verify_cache(cache) == []
    a, b = Cache(cache, verify=True), Cache(reference, verify=True)
    assert a.texts == b.texts and np.array_equal(a.text_emb, b.text_emb)
    for split in b.manifest["splits"]:
        x, y = a.read_split(split), b.read_split(split)
        assert sorted(x) == sorted(y)
        for name in y:
            assert np.array_equal(x[name], y[name]), name


def _counts(stdout):
    """(shards written, shards kept) from `paxion extract`'s summary line."""
    words = stdout.split("shards written")[0].split()[-1], stdout.split(" kept")[0].split()[-1]
    return int(words[0]), int(words[1])


@pytest.fixture(scope="module")
def reference(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "cache"
    done = subprocess.run(_args(world, out), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return out


# ---- parallel writers ----

def test_two_concurrent_extracts_share_the_shards_and_equal_one_run(world, reference, tmp_path):
    out = tmp_path / "cache"
    procs = [_start(_args(world, out))]
    time.sleep(0.3)
    procs.append(_start(_args(world, out)))
    results = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0 and "Traceback" not in err, err
    counts = [_counts(stdout) for stdout, _ in results]
    # every shard written exactly once (a shard lock per shard), each process accounts for all 8
    assert sum(written for written, _ in counts) == 8
    assert all(written + kept == 8 for written, kept in counts)
    _assert_same_cache(out, reference)


def test_ranks_with_overwrite_started_together_keep_each_others_shards(world, reference, tmp_path):
    out = tmp_path / "cache"
    assert subprocess.run(_args(world, out, "--frames", "2"), capture_output=True, check=False).returncode == 0
    procs = [_start(_args(world, out, "--num-shards", "2", "--shard-index", str(r), "--overwrite")) for r in (0, 1)]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0 and "Traceback" not in err, err
    assert [_counts(stdout)[0] for stdout, _ in results] == [4, 4]  # neither rank redid (or lost) the other's
    _assert_same_cache(out, reference)


def test_a_later_rank_with_overwrite_keeps_a_finished_ranks_shards(world, tmp_path):
    out = tmp_path / "cache"
    extract(*world, out, FakeBackbone(), frames=2, workers=0, shard_size=1)
    first = extract(*world, out, FakeBackbone(), frames=4, workers=0, shard_size=1, num_shards=2, shard_index=1,
                    overwrite=True)
    second = extract(*world, out, FakeBackbone(), frames=4, workers=0, shard_size=1, num_shards=2, shard_index=0,
                     overwrite=True)
    assert (first.shards_written, second.shards_written, second.complete) == (4, 4, True)
    assert Cache(out).read_split("validation")["tokens"].shape[:2] == (8, 4)


def _hold(path):
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_overwrite_refuses_while_another_process_writes_a_shard(world, tmp_path):
    out = tmp_path / "cache"
    extract(*world, out, FakeBackbone(), frames=2, workers=0, shard_size=1)
    fd = _hold(out / "parts" / "validation-00003.lock")  # as a live writer of shard 3 holds it
    try:
        with pytest.raises(CacheError, match="another paxion extract is writing shard validation-00003"):
            extract(*world, out, FakeBackbone(), frames=4, workers=0, shard_size=1, overwrite=True)
    finally:
        os.close(fd)
    assert Cache(out).read_split("validation")["tokens"].shape[1] == 2  # nothing was deleted
    assert extract(*world, out, FakeBackbone(), frames=4, workers=0, shard_size=1, overwrite=True).complete


def test_a_shard_another_process_holds_is_waited_for_and_taken_over_if_left_undone(world, tmp_path):
    out = tmp_path / "cache"
    extract(*world, out, FakeBackbone(), frames=4, workers=0, shard_size=1, splits=["validation"], num_shards=8,
            shard_index=7)  # sets the folder up and writes shard 7
    fd = _hold(out / "parts" / "validation-00000.lock")
    results = []
    thread = threading.Thread(target=lambda: results.append(
        extract(*world, out, FakeBackbone(), frames=4, workers=0, shard_size=1)))
    thread.start()
    try:
        while not (out / "parts" / "validation-00006.json").exists():  # every shard but the held one is done
            assert thread.is_alive()
            time.sleep(0.01)
        assert not (out / "manifest.json").exists()  # it waits for shard 0
    finally:
        os.close(fd)  # the holder dies without writing shard 0
    thread.join(timeout=120)
    assert (results[0].shards_written, results[0].shards_resumed, results[0].complete) == (7, 1, True)
    assert verify_cache(out) == []


def test_temporary_names_never_collide_across_hosts_or_equal_process_ids(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "getpid", lambda: 4242)  # two containers whose writers both have pid 4242
    monkeypatch.setattr(socket, "gethostname", lambda: "node-a")
    same_host = {atomic.temporary_name(tmp_path / "s.h5") for _ in range(1000)}
    assert len(same_host) == 1000  # the random part alone keeps equal host + pid apart
    monkeypatch.setattr(socket, "gethostname", lambda: "node-b")
    other = atomic.temporary_name(tmp_path / "s.h5").name
    assert other.startswith(f"s.h5{atomic.TMP_MARK}node-b-4242-")
    assert not any(p.name.startswith(f"s.h5{atomic.TMP_MARK}node-b") for p in same_host)


def test_a_writer_keeps_the_temporaries_of_another_host_with_the_same_pid(monkeypatch, tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    monkeypatch.setattr(socket, "gethostname", lambda: "node-a")
    mine_dead = tmp_path / f"s.h5{atomic.TMP_MARK}node-a-{dead}-0000aaaa"
    theirs = tmp_path / f"s.h5{atomic.TMP_MARK}node-b-{dead}-0000bbbb"  # pid `dead` may live on node-b
    for path in (mine_dead, theirs):
        path.write_bytes(b"half")
    ShardWriter(tmp_path / "s.h5", capacity=1)
    assert [p.name for p in tmp_path.iterdir()] == [theirs.name]


# ---- crash safety ----

def test_sigint_stops_in_one_line_and_a_rerun_resumes(world, reference, tmp_path):
    out = tmp_path / "cache"
    (out / "parts").mkdir(parents=True)
    fd = _hold(out / "parts" / "validation-00007.lock")  # as another process writing shard 7 would
    try:
        # as from a terminal, Ctrl-C set to stop the run: a child inherits what this process ignores at the moment
        # (some full-suite runs had SIGINT and SIGQUIT ignored here, as glibc's system() does while it runs)
        reset = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                 "from paxion.cli import main; sys.argv[0] = 'paxion'; main()")
        proc = _start([sys.executable, "-c", reset, *_args(world, out)[3:]])
        while not (out / "parts" / "validation-00006.json").exists():  # the others done: it waits for shard 7
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        try:
            stdout, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"the run went on after Ctrl-C: {proc.communicate()[1][-3000:]}")
    finally:
        os.close(fd)
    assert proc.returncode == 130
    assert "Traceback" not in stderr
    assert [line for line in (stdout + stderr).splitlines() if line.strip()] == ["error: aborted"]
    assert not list(out.glob(f"*{atomic.TMP_MARK}*"))
    rerun = subprocess.run(_args(world, out), capture_output=True, text=True, check=False)
    assert rerun.returncode == 0, rerun.stderr
    assert _counts(rerun.stdout) == (1, 7)  # shards written, kept
    _assert_same_cache(out, reference)


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    """The reliability benchmark's --tiny run: 3 SIGKILLs, 1 concurrent run, 6 bad inputs, 5 flipped bytes."""
    path = tmp_path_factory.mktemp("report") / "counts.json"
    done = subprocess.run([sys.executable, "bench_reliability.py", "--tiny", "--json", str(path)], cwd=BENCHMARKS,
                          capture_output=True, text=True, timeout=900, check=False)
    assert path.exists(), done.stdout + done.stderr
    return json.loads(path.read_text()) | {"exit": done.returncode, "output": done.stdout + done.stderr}


def test_every_killed_extraction_resumes_to_the_uninterrupted_tensors(tiny_report):
    kills = tiny_report["kills survived"]
    assert (kills["tried"], kills["bad"]) == (3, 0), kills["problems"]


def test_concurrent_writers_in_the_benchmark_leave_the_reference_tensors(tiny_report):
    runs = tiny_report["concurrent writers tried"]
    assert (runs["tried"], runs["bad"]) == (1, 0), runs["problems"]


def test_no_bad_input_gives_a_traceback(tiny_report):
    bad = tiny_report["bad inputs tried"]
    assert (bad["tried"], bad["bad"]) == (6, 0), bad["problems"]
    assert "tracebacks seen | 0 (goal 0)" in tiny_report["output"]


def test_every_flipped_byte_is_detected(tiny_report):
    flips = tiny_report["corrupted bytes detected"]
    assert (flips["tried"], flips["bad"]) == (5, 0), flips["problems"]
    assert tiny_report["exit"] == 0


# ---- one-line errors ----

def test_an_error_quoting_markup_is_printed_literally(monkeypatch, capsys, tmp_path):
    bench, videos = make_bench(tmp_path / "w", {"val": 2})
    rows = [json.loads(line) for line in (bench / "val.jsonl").read_text().splitlines()]
    rows[0]["id"] = rows[1]["id"] = "[/b][bold]x"
    (bench / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setattr(sys, "argv", ["paxion", "extract", "--bench", str(bench), "--videos", str(videos), "--out",
                                      str(tmp_path / "c"), "--device", "cpu", "--workers", "0"])
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert err.strip() == f"error: {bench / 'val.jsonl'}:2: duplicate id '[/b][bold]x'"


# ---- ties in multiple choice and zero-shot ----

def _backbone_scores(cache):
    """Cosine of every validation clip's pooled embedding with every text of the table [clips, texts]."""
    videos = cache.read_split("validation", ["pooled"])["pooled"].astype(np.float64)
    texts = cache.text_emb.astype(np.float64)
    return (videos / np.linalg.norm(videos, axis=1, keepdims=True)) @ (texts / np.linalg.norm(texts, axis=1)[:, None]).T


def test_zeroshot_splits_credit_between_classes_whose_texts_embed_alike(tmp_path):
    root = make_cache(tmp_path, clips={"validation": 24}, shard_size=24)
    cache = Cache(root)
    texts, emb = list(cache.texts), np.array(cache.text_emb)
    classes = [f"template {a}" for a in range(4)]
    emb[texts.index("template 1")] = emb[texts.index("template 0")]  # two classes the backbone cannot tell apart
    manifest = read_json(root / "manifest.json")
    write_manifest(root, manifest | {"texts": write_texts(root / "texts.h5", texts, emb)})
    cache = Cache(root)
    labels = cache.read_split("validation", ["label"])["label"]
    scores = _backbone_scores(cache)[:, [texts.index(c) for c in classes]]
    top = scores >= scores.max(axis=1, keepdims=True) - 1e-6
    credit = np.where(top[np.arange(24), labels], 1.0 / top.sum(axis=1), 0.0)
    assert (credit == 0.5).any() and (credit == 1.0).any()
    out = run_task(cache, BackboneScorer(temporal=False), "zeroshot", classes=classes)
    assert (out["accuracy"], out["n"]) == (pytest.approx(100 * credit.mean()), 24)


def test_multiple_choice_splits_credit_between_identical_candidates(tmp_path):
    root = make_cache(tmp_path, clips={"validation": 24}, shard_size=24)
    shard = Cache(root).read_shard("validation", 0)
    answer = np.arange(24) % 3
    # candidates: the clip's own caption twice, then its antonym caption; the answer is a copy or the antonym
    shard["mc_idx"] = np.stack([shard["caption_idx"], shard["caption_idx"], shard["aa_idx"]], axis=1).astype(np.int32)
    shard["mc_answer"] = answer.astype(np.int32)
    replace_shard(root, "validation", 0, shard)
    cache = Cache(root)
    scores, clips = _backbone_scores(cache), np.arange(24)
    own_wins = scores[clips, shard["caption_idx"]] > scores[clips, shard["aa_idx"]]
    # the two copies tie: a copy as the answer earns 1/2 when the caption wins; the antonym earns 1 when it wins
    credit = np.where(answer < 2, np.where(own_wins, 0.5, 0.0), np.where(own_wins, 0.0, 1.0))
    assert own_wins.any() and (~own_wins).any()
    out = run_task(cache, BackboneScorer(temporal=False), "mc")
    assert (out["accuracy"], out["n"]) == (pytest.approx(100 * credit.mean()), 24)
