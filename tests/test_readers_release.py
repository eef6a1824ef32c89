"""The paper's released ActionBench files, read as shipped: their negatives and state-change flags are used."""

import json

from click.testing import CliRunner

from paxion.bench.build import build_bench
from paxion.bench.readers import read_dataset, read_ego4d, read_jsonl, read_ssv2
from paxion.cli import cli

LABELS = {"Opening something": "0", "Spinning something that quickly stops spinning": "1"}
VALIDATION = [
    {"id": 74225, "label": "Spinning cube that quickly stops spinning",
     "template": "Spinning [something] that quickly stops spinning", "placeholders": ["cube"],
     "template_action_antonym_clip_text": "Spinning something that quickly starts spinning",
     "label_action_antonym_clip_text": "Spinning cube that quickly starts spinning",
     "label_object_shuffled_clip_text": "spinning feeding lid that quickly stops spinning"},
]
TRAIN = [
    {"id": "5", "label": "Opening a jar", "template": "Opening [something]", "placeholders": ["a jar"]},
    {"id": "6", "label": "Opening a box", "template": "Opening [something]", "placeholders": ["a box"]},
]


def _release(tmp_path):
    ann = tmp_path / "ann"
    ann.mkdir()
    for name, data in {"labels": LABELS, "validation": VALIDATION, "train": TRAIN}.items():
        (ann / f"{name}.json").write_text(json.dumps(data))
    (ann / "train_antonym.json").write_text(json.dumps(
        [{"id": 5, "label": "Opening a jar", "label_action_antonym_clip_text": "Shutting a jar",
          "template_action_antonym_clip_text": "Closing something"}]
    ))
    (ann / "state_change_heavy_instance_filtering_train.json").write_text(
        json.dumps({"5": {"if_keep": False}, "6": {"if_keep": True}})
    )
    (ann / "state_change_heavy_instance_filtering_val.json").write_text(json.dumps({"74225": {"if_keep": False}}))
    return ann


def test_ssv2_release_negatives_antonym_file_and_flags(tmp_path):
    by_id = {r.id: r for r in read_ssv2(_release(tmp_path)).records}
    val = by_id["74225"]
    assert (val.split, val.aa_given, val.or_given, val.salient) == (
        "validation", "Spinning cube that quickly starts spinning",
        "spinning feeding lid that quickly stops spinning", False,
    )
    assert (by_id["5"].aa_given, by_id["5"].or_given, by_id["5"].salient) == ("Shutting a jar", None, False)
    assert (by_id["6"].aa_given, by_id["6"].salient) == (None, True)


def test_bench_build_uses_given_negatives_and_says_so(tmp_path):
    out = tmp_path / "bench"
    result = CliRunner().invoke(
        cli, ["bench", "build", "--dataset", "ssv2", "--annotations", str(_release(tmp_path)), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    (val,) = [json.loads(line) for line in (out / "validation.jsonl").read_text().splitlines()]
    assert val["aa_caption"] == "Spinning cube that quickly starts spinning" and val["aa_given"] is True
    assert val["or_caption"] == "spinning feeding lid that quickly stops spinning" and val["or_given"] is True
    assert val["salient"] is False
    train = {r["id"]: r for r in map(json.loads, (out / "train.jsonl").read_text().splitlines())}
    assert (train["5"]["aa_caption"], train["5"]["aa_given"]) == ("Shutting a jar", True)
    # clip 6 has no shipped antonym: ours is made; its OR is made from another clip's object
    assert (train["6"]["aa_caption"], train["6"]["aa_given"]) == ("Closing a box", False)
    assert train["6"]["or_caption"] in {"Opening a jar", "Opening cube"} and train["6"]["or_given"] is False
    table = " ".join(result.output.replace("│", " ").split())
    assert "AA given" in table and "OR given" in table
    assert "validation 1 1 (100%) 1 1 (100%) 1" in table
    assert "train 2 2 (100%) 1 2 (100%) 0" in table


def test_ego4d_release_jsonl_clip_relative_times_and_negatives(tmp_path):
    path = tmp_path / "val.jsonl"
    path.write_text(json.dumps({
        "video_uid": "002d", "video_dur": 3571.4, "narration_source": "narration_pass_1", "narration_ind": 229,
        "narration_time": 592.69, "clip_start": 592.35, "clip_end": 593.03,
        "clip_text": "#C C picks up the knife from the chopping board.",
        "action_antonym_clip_text": "#C C drops down the knife from the chopping board.",
        "object_shuffled_clip_text": "#C C picks up the banana from the chopping board.",
        "tag_verb": "[17, 93]", "tag_noun": "[321]", "clip_uid": "116e", "clip_relative_start": 0.35,
        "clip_relative_end": 1.03, "clip_fps": 30.0,
    }) + "\n")
    (rec,) = read_ego4d(path).records
    assert (rec.id, rec.video, rec.start, rec.end) == ("002d_narration_pass_1_229", "116e.mp4", 0.35, 1.03)
    assert rec.caption == "C picks up the knife from the chopping board."
    assert rec.aa_given == "C drops down the knife from the chopping board."
    assert rec.or_given == "C picks up the banana from the chopping board."


def test_jsonl_given_negatives_label_and_flags_file(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(
        '{"id": "a", "video": "a.mp4", "caption": "He opens a door", "label": "opening",'
        ' "aa_caption": "He shuts a door", "or_caption": "He opens a jar"}\n'
        '{"id": "b", "video": "b.mp4", "caption": "He closes a jar", "label": "closing"}\n'
    )
    data = read_jsonl(path)
    first, second = data.records
    assert (first.class_name, first.label, second.class_name, second.label) == ("opening", 1, "closing", 0)
    assert data.templates == ["closing", "opening"]
    flags = tmp_path / "flags.json"
    flags.write_text('{"b": {"if_keep": false}, "zzz": {"if_keep": true}}')
    out = tmp_path / "bench"
    summary = build_bench(read_dataset("jsonl", path), out, flags=flags)
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert [(r["aa_caption"], r["aa_given"]) for r in rows] == [("He shuts a door", True), ("He opens a jar", False)]
    assert [(r["or_caption"], r["or_given"]) for r in rows] == [("He opens a jar", True), ("He closes a door", False)]
    assert [(r["label"], r["class_name"]) for r in rows] == [(1, "opening"), (0, "closing")]
    assert ["salient" in rows[0], rows[1]["salient"]] == [False, False]
    split = summary.splits["train"]
    assert (split.aa, split.aa_given, split.or_, split.or_given) == (2, 1, 2, 1)


def test_extract_stores_the_given_flags_and_finds_the_video_by_id(tmp_path):
    from fakes import FakeBackbone, make_bench

    from paxion.cache.reader import Cache
    from paxion.extract.pipeline import extract

    bench, videos = make_bench(tmp_path / "world", {"train": 3})
    extract(bench, videos, tmp_path / "computed", FakeBackbone(), frames=4, workers=0)
    computed = Cache(tmp_path / "computed").read_split("train")["salient"].tolist()
    rows = [json.loads(line) for line in (bench / "train.jsonl").read_text().splitlines()]
    for row, flag in zip(rows, [not computed[0], not computed[1], None]):
        if flag is not None:
            row["salient"] = flag
        row["video"] = row["id"] + ".webm"  # the files are .mp4
    (bench / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = extract(bench, videos, tmp_path / "given", FakeBackbone(), frames=4, workers=0)
    assert result.clips == 3 and not result.failed
    assert Cache(tmp_path / "given").read_split("train")["salient"].tolist() == [
        not computed[0], not computed[1], computed[2]
    ]
