"""Ego4D as it ships: EgoClip with both narration passes, and narration.json read directly."""

import json

import pytest
from click.testing import CliRunner

from paxion.bench.build import build_bench
from paxion.bench.objects import clip_objects
from paxion.bench.readers import read_dataset, read_ego4d
from paxion.bench.records import Annotations, ClipRecord, Clips
from paxion.cli import cli
from paxion.errors import AnnotationError

EGOCLIP = (
    "video_uid\tvideo_dur\tnarration_source\tnarration_ind\tnarration_time\tclip_start\tclip_end\tclip_text\t"
    "tag_verb\ttag_noun\n"
    "v1\t9.0\tnarration_pass_1\t0\t0.2\t-0.3\t0.7\t#C C picks up the knife\t[93]\t[321]\n"
    "v1\t9.0\tnarration_pass_1\t1\t2.5\t2.0\t3.0\t#C C opens the drawer\t[12]\t[40]\n"
    "v1\t9.0\tnarration_pass_2\t0\t0.7\t0.2\t1.2\t#C C lifts a knife\t[93]\t[321]\n"
)


def test_egoclip_two_passes_get_distinct_ids_and_clamped_starts(tmp_path):
    path = tmp_path / "egoclip.csv"  # tab-separated despite its name, as EgoClip ships it
    path.write_text(EGOCLIP)
    records = read_ego4d(path).records
    assert [(r.id, r.split, r.video, r.start, r.end) for r in records] == [
        ("v1_narration_pass_1_0", "egoclip", "v1.mp4", 0.0, 0.7),
        ("v1_narration_pass_1_1", "egoclip", "v1.mp4", 2.0, 3.0),
        ("v1_narration_pass_2_0", "egoclip", "v1.mp4", 0.2, 1.2),
    ]
    assert records[2].caption == "C lifts a knife"


NARRATION = {
    "vid-a": {
        "status": "complete",
        "narration_pass_1": {"narrations": [
            {"timestamp_sec": 0.2, "timestamp_frame": 6, "narration_text": "#C C picks up the cup", "annotation_uid": "1"},
            {"timestamp_sec": 5.0, "timestamp_frame": 150, "narration_text": "#C C opens the fridge", "annotation_uid": "2"},
        ], "summaries": []},
        "narration_pass_2": {"narrations": [
            {"timestamp_sec": 1.5, "timestamp_frame": 45, "narration_text": "#C C lifts the cup", "annotation_uid": "3"},
        ], "summaries": []},
    },
    "vid-b": {"status": "redacted"},
}


def test_narration_json_windows_around_timestamps(tmp_path):
    path = tmp_path / "narration.json"
    path.write_text(json.dumps(NARRATION))
    records = read_dataset("ego4d", path, window=2.0).records
    assert [(r.id, r.video, r.start, r.end, r.caption) for r in records] == [
        ("vid-a_narration_pass_1_0", "vid-a.mp4", 0.0, 1.2, "C picks up the cup"),
        ("vid-a_narration_pass_1_1", "vid-a.mp4", 4.0, 6.0, "C opens the fridge"),
        ("vid-a_narration_pass_2_0", "vid-a.mp4", 0.5, 2.5, "C lifts the cup"),
    ]
    default = read_ego4d(path).records[1]
    assert (default.start, default.end) == (4.5, 5.5)


def test_narration_json_bad_entry_names_it(tmp_path):
    path = tmp_path / "narration.json"
    path.write_text(json.dumps({"v": {"narration_pass_1": {"narrations": [{"timestamp_sec": "late"}]}}}))
    with pytest.raises(AnnotationError, match=r"narration\.json: video v, narration_pass_1 narration 0: needs"):
        read_ego4d(path)


def test_zero_clips_is_an_error(tmp_path):
    path = tmp_path / "narration.json"
    path.write_text(json.dumps({"vid-b": {"status": "redacted"}}))
    with pytest.raises(AnnotationError, match="narration.json: no clips found"):
        read_dataset("ego4d", path)


def test_build_refuses_duplicate_ids_naming_both_lines(tmp_path):
    records = [ClipRecord("x", "val", "a.mp4", "C opens it", origin="f.tsv:2"),
               ClipRecord("x", "val", "a.mp4", "C shuts it", origin="f.tsv:5")]
    with pytest.raises(AnnotationError, match=r"^f\.tsv:5: duplicate clip id 'x' \(first at f\.tsv:2\)$"):
        build_bench(Annotations("ego4d", records), tmp_path / "bench")
    assert not (tmp_path / "bench").exists()


# Ego4D's narration_noun_taxonomy.csv: row k names tag_noun index k.
TAXONOMY = 'label,group\nboard,"[\'board\', \'cutting_board\']"\nknife,"[\'knife\']"\ndrawer,"[\'drawer\']"\n'
TAGGED = (
    "video_uid\tnarration_source\tnarration_ind\tclip_start\tclip_end\tclip_text\ttag_verb\ttag_noun\n"
    "v1\tnarration_pass_1\t0\t0.0\t1.0\t#C C picks up the knife from the board\t[93]\t[1]\n"
    "v1\tnarration_pass_1\t1\t1.0\t2.0\t#C C opens the drawer\t[12]\t[2]\n"
    "v1\tnarration_pass_2\t0\t2.0\t3.0\t#C C puts the knives on the cutting board\t[93]\t[1, 0]\n"
)


def test_tag_noun_indices_are_named_through_the_taxonomy_and_decide_the_objects(tmp_path):
    (tmp_path / "egoclip.tsv").write_text(TAGGED)
    (tmp_path / "taxonomy.csv").write_text(TAXONOMY)
    records = read_dataset("ego4d", tmp_path / "egoclip.tsv", noun_taxonomy=tmp_path / "taxonomy.csv").records
    assert records[0].nouns == ("knife", "knives")
    assert records[2].nouns == ("knife", "knives", "board", "boards", "cutting board")
    # The board of row 1 is not tagged, so it is no object there; WordNet alone would take it.
    assert [clip_objects(r) for r in records] == [("knife",), ("drawer",), ("knives", "cutting board")]
    assert clip_objects(read_ego4d(tmp_path / "egoclip.tsv").records[0]) == ("knife", "board")
    build_bench(Annotations("ego4d", records), tmp_path / "bench", seed=0)
    rows = [json.loads(line) for line in (tmp_path / "bench" / "egoclip.jsonl").read_text().splitlines()]
    # Vocabulary: cutting board, drawer, knife, knives; row 1 swaps its knife, never for itself, and keeps the board.
    first = rows[0]["or_caption"]
    assert first.startswith("C picks up the ") and first.endswith(" from the board")
    assert first.removeprefix("C picks up the ").removesuffix(" from the board") in {"cutting board", "drawer", "knives"}


def test_tag_noun_index_outside_the_taxonomy_names_the_line(tmp_path):
    (tmp_path / "egoclip.tsv").write_text(TAGGED.replace("[1, 0]", "[1, 7]"))
    (tmp_path / "taxonomy.csv").write_text(TAXONOMY)
    with pytest.raises(AnnotationError, match=r"egoclip\.tsv:4: 'tag_noun' index 7 is not in the noun taxonomy \(3 nouns\)"):
        read_ego4d(tmp_path / "egoclip.tsv", noun_taxonomy=tmp_path / "taxonomy.csv")


def test_streamed_clips_build_the_same_bench_as_a_list(tmp_path):
    (tmp_path / "egoclip.tsv").write_text(TAGGED)
    streamed = read_ego4d(tmp_path / "egoclip.tsv", stream=True)
    assert isinstance(streamed.records, Clips)
    assert list(streamed.records) == list(streamed.records) == read_ego4d(tmp_path / "egoclip.tsv").records
    build_bench(streamed, tmp_path / "streamed", seed=3)
    build_bench(read_ego4d(tmp_path / "egoclip.tsv"), tmp_path / "listed", seed=3)
    for name in ("egoclip.jsonl", "meta.json"):
        assert (tmp_path / "streamed" / name).read_text() == (tmp_path / "listed" / name).read_text()


def test_streamed_duplicate_ids_name_both_lines(tmp_path):
    (tmp_path / "egoclip.tsv").write_text(TAGGED.replace("narration_pass_2\t0", "narration_pass_1\t0"))
    with pytest.raises(AnnotationError, match=r"egoclip\.tsv:4: duplicate clip id 'v1_narration_pass_1_0' \(first at .*egoclip\.tsv:2\)$"):
        build_bench(read_ego4d(tmp_path / "egoclip.tsv", stream=True), tmp_path / "bench")
    assert not (tmp_path / "bench").exists()


def test_cli_noun_taxonomy_restricts_object_replacement_to_tagged_nouns(tmp_path):
    (tmp_path / "egoclip.tsv").write_text(TAGGED)
    (tmp_path / "taxonomy.csv").write_text(TAXONOMY)
    result = CliRunner().invoke(cli, ["bench", "build", "--dataset", "ego4d", "--annotations", str(tmp_path / "egoclip.tsv"),
                                      "--noun-taxonomy", str(tmp_path / "taxonomy.csv"), "--out", str(tmp_path / "bench")])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "bench" / "egoclip.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["v1_narration_pass_1_0", "v1_narration_pass_1_1", "v1_narration_pass_2_0"]
    assert rows[0]["or_caption"].endswith(" from the board")  # the untagged board stays
    assert rows[1]["or_caption"] in {"C opens the knife", "C opens the knives", "C opens the cutting board"}


def test_noun_taxonomy_is_for_ego4d_only(tmp_path):
    (tmp_path / "taxonomy.csv").write_text(TAXONOMY)
    with pytest.raises(AnnotationError, match="a noun taxonomy is read for ego4d only, not nextqa"):
        read_dataset("nextqa", tmp_path, noun_taxonomy=tmp_path / "taxonomy.csv")


@pytest.mark.parametrize("name", ["egoclip.tsv", "egoclip.jsonl"])
def test_streamed_bad_utf8_is_one_annotation_error(tmp_path, name):
    good = TAGGED if name.endswith(".tsv") else json.dumps({"video_uid": "v", "clip_text": "#C C opens it"}) + "\n"
    (tmp_path / name).write_bytes(good.encode() + b"\xff\n")
    with pytest.raises(AnnotationError, match=rf"{name}(:\d+)?: cannot read: 'utf-8' codec can't decode byte 0xff"):
        list(read_ego4d(tmp_path / name, stream=True).records)
