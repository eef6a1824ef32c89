"""Inputs as people save them: byte-order marks, U+2028 / U+0085 inside captions, blank SSv2 placeholders,
videos in any common container."""

import json

from paxion.bench.build import build_bench
from paxion.bench.files import csv_rows
from paxion.bench.readers import read_dataset, read_jsonl, read_nextqa, read_ssv2
from paxion.bench.videos import VideoIndex, find_video
from paxion.extract.pipeline import read_bench

BOM = "\ufeff"


def test_byte_order_mark_is_not_part_of_the_first_column_or_json(tmp_path):
    csv_file = tmp_path / "val.csv"
    csv_file.write_text(BOM + "video,question,answer,qid,type,a0,a1,a2,a3,a4\r\n7,why,0,1,CW,a,b,c,d,e\r\n", "utf-8")
    assert read_nextqa(csv_file).records[0].id == "7_1"
    ann = tmp_path / "ssv2"
    ann.mkdir()
    (ann / "labels.json").write_text(BOM + '{"Opening something": "0"}', "utf-8")
    (ann / "validation.json").write_text(
        BOM + '[{"id": "1", "label": "Opening a jar", "template": "Opening [something]", "placeholders": ["a jar"]}]',
        "utf-8",
    )
    assert read_ssv2(ann).records[0].caption == "Opening a jar"
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_text(BOM + '{"id": "a", "video": "a.mp4", "caption": "x"}\n', "utf-8")
    assert read_jsonl(jsonl).records[0].id == "a"


def test_line_separators_inside_captions_survive_build_and_extract_reading(tmp_path):
    caption = "A man opens the door\u2028and walks in\u0085"
    path = tmp_path / "val.jsonl"
    path.write_text(json.dumps({"id": "w0", "video": "w0.mp4", "caption": caption}, ensure_ascii=False) + "\n", "utf-8")
    data = read_jsonl(path)
    assert data.records[0].caption == caption.strip()
    build_bench(data, tmp_path / "bench")
    assert "\u2028" in (tmp_path / "bench" / "val.jsonl").read_text("utf-8")  # written raw
    _, records = read_bench(tmp_path / "bench")
    assert [r["caption"] for r in records["val"]] == [caption.strip()]


def test_csv_rows_keep_a_line_separator_inside_a_field(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('a,b\n"x\u2028y",2\n', "utf-8")
    assert list(csv_rows(path)) == [(2, {"a": "x\u2028y", "b": "2"})]


def _ssv2_validation(tmp_path, items: list[dict]):
    """An SSv2 annotations folder of two templates whose validation split is `items`."""
    ann = tmp_path / "ann"
    ann.mkdir()
    (ann / "labels.json").write_text('{"Putting something onto something": "0", "Opening something": "1"}')
    (ann / "validation.json").write_text(json.dumps(items))
    return read_ssv2(ann)


def test_blank_and_mangled_placeholders_stay_out_of_the_objects(tmp_path):
    annotations = _ssv2_validation(tmp_path, [
        {"id": "1", "label": "putting a pen onto a book", "template": "Putting [something] onto [something]",
         "placeholders": ["a pen", " "]},
        {"id": "2", "label": "opening a soda can", "template": "Opening [something]", "placeholders": ["sodcan", ""]},
    ])
    assert [r.objects for r in annotations.records] == [("a pen",), ()]


def test_a_clip_without_usable_placeholders_gives_no_object_to_others(tmp_path):
    annotations = _ssv2_validation(tmp_path, [
        {"id": "1", "label": "putting a pen onto a book", "template": "Putting [something] onto [something]",
         "placeholders": ["a pen", "a book"]},
        {"id": "2", "label": "opening a soda can", "template": "Opening [something]", "placeholders": ["sodcan"]},
        {"id": "3", "label": "opening a jar", "template": "Opening [something]", "placeholders": ["a jar"]},
    ])
    build_bench(annotations, tmp_path / "bench")
    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "bench" / "validation.jsonl").read_text().splitlines())}
    # the vocabulary is the placeholders alone: every object keeps its article, no word goes missing or doubles
    assert rows["2"]["or_caption"] is None and rows["2"]["or_reason"] == "no object found in the caption"
    replaced = rows["1"]["or_caption"].split()
    assert len(replaced) == 6 and replaced[1] == "a" and replaced[4] == "a"
    assert rows["3"]["or_caption"] in ("opening a pen", "opening a book")


def test_find_video_by_id_with_any_common_extension(tmp_path):
    (tmp_path / "7.mp4").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "v.MOV").write_bytes(b"")
    (tmp_path / "sub" / "w.mkv").write_bytes(b"")
    assert find_video(tmp_path, {"id": "7", "video": "7.webm"}) == tmp_path / "7.mp4"
    assert find_video(tmp_path, {"id": "c", "video": "sub/w.webm"}) == tmp_path / "sub" / "w.mkv"
    assert find_video(tmp_path, {"id": "7", "video": "elsewhere.avi"}) == tmp_path / "7.mp4"
    assert find_video(tmp_path, {"id": "v", "video": "sub/v.mp4"}) == tmp_path / "sub" / "v.MOV"
    assert find_video(tmp_path, {"id": "8", "video": "8.webm"}) is None
    index = VideoIndex(tmp_path)
    assert (index.name("v", (".mp4",)), index.name("7", (".webm",)), index.name("9", (".webm",))) == (
        "sub/v.MOV", "7.mp4", "9.webm"
    )


def test_the_documented_study_names_videos_extract_can_find(tmp_path):
    # `paxion synth` writes {id}.mp4; the bench built without --videos guesses {id}.webm
    ann = tmp_path / "ann"
    ann.mkdir()
    (ann / "labels.json").write_text('{"Opening something": "0"}')
    (ann / "train.json").write_text('[{"id": "3", "label": "Opening box", "template": "Opening [something]"}]')
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "3.mp4").write_bytes(b"")
    build_bench(read_dataset("ssv2", ann), tmp_path / "bench")
    _, records = read_bench(tmp_path / "bench")
    assert find_video(tmp_path / "videos", records["train"][0]) == tmp_path / "videos" / "3.mp4"
