"""Dataset readers on small hand-written samples of each format, including malformed rows."""

import json

import pytest

from paxion.bench.readers import clean_narration, read_dataset, read_ego4d, read_jsonl, read_nextqa, read_ssv2
from paxion.errors import AnnotationError

SSV2_TRAIN = """[
  {"id": "7", "label": "Pushing red ball from left to right",
   "template": "Pushing [something] from left to right", "placeholders": ["red ball"]},
  {"id": "8", "label": "putting pen into cup", "template": "Putting [something] into [something]",
   "placeholders": ["pen", "cup"]}
]"""


def _ssv2(tmp_path, train=SSV2_TRAIN, labels=None):
    ann = tmp_path / "ann"
    ann.mkdir()
    labels = labels or {"Putting something into something": "1", "Pushing something from left to right": "0"}
    (ann / "labels.json").write_text(json.dumps(labels))
    (ann / "train.json").write_text(train)
    return ann


def test_ssv2_reads_records_labels_and_existing_video(tmp_path):
    ann = _ssv2(tmp_path)
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "8.mp4").write_bytes(b"")
    data = read_ssv2(ann, videos=videos)
    first, second = data.records
    assert (first.id, first.split, first.video, first.label) == ("7", "train", "7.webm", 0)
    assert first.template == "Pushing something from left to right"
    assert first.objects == ("red ball",)
    assert (second.video, second.label, second.caption) == ("8.mp4", 1, "putting pen into cup")
    assert data.templates == ["Pushing something from left to right", "Putting something into something"]


def test_ssv2_bracketed_label_keys_as_synth_writes_them(tmp_path):
    ann = _ssv2(
        tmp_path, labels={"Pushing [something] from left to right": "0", "Putting [something] into [something]": "1"}
    )
    assert [r.label for r in read_ssv2(ann).records] == [0, 1]


def test_ssv2_missing_key_names_file_and_line(tmp_path):
    bad = SSV2_TRAIN.replace('"label": "putting pen into cup", ', "")
    with pytest.raises(AnnotationError) as err:
        read_ssv2(_ssv2(tmp_path, train=bad))
    assert err.value.line == 4
    assert err.value.path.endswith("train.json")
    assert "label" in str(err.value)


def test_ssv2_bad_json_and_unknown_template(tmp_path):
    with pytest.raises(AnnotationError, match=r"train\.json:3: bad JSON"):
        read_ssv2(_ssv2(tmp_path, train=SSV2_TRAIN.replace('"template": "Pushing', '"template" "Pushing')))
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(AnnotationError, match="not in labels.json"):
        read_ssv2(_ssv2(other, train=SSV2_TRAIN.replace("into [something]", "onto [something]")))


def test_ssv2_missing_files(tmp_path):
    with pytest.raises(AnnotationError, match="labels.json: file not found"):
        read_ssv2(tmp_path)


def test_clean_narration():
    assert clean_narration("#C C picks up the knife") == "C picks up the knife"
    assert clean_narration("#O man X opens the door #unsure") == "man X opens the door"


def test_ego4d_csv_and_jsonl(tmp_path):
    csv_file = tmp_path / "train.csv"
    csv_file.write_text(
        "video_uid,narration_ind,clip_start,clip_end,clip_text\n"
        "abc,3,1.5,2.5,#C C picks up the knife\n"
        'abc,4,3.0,4.0,"#C C cuts the onion, slowly"\n'
    )
    records = read_ego4d(csv_file).records
    assert [(r.id, r.split, r.video, r.start, r.end) for r in records] == [
        ("abc_3", "train", "abc.mp4", 1.5, 2.5),
        ("abc_4", "train", "abc.mp4", 3.0, 4.0),
    ]
    assert records[1].caption == "C cuts the onion, slowly"
    jsonl = tmp_path / "test.jsonl"
    jsonl.write_text('{"video": "v1", "narration": "#C C opens the door", "start": 0, "end": 1}\n')
    (rec,) = read_ego4d(jsonl).records
    assert (rec.id, rec.split, rec.caption) == ("v1_1", "test", "C opens the door")


def test_ego4d_tsv_folder_one_file_per_split(tmp_path):
    (tmp_path / "train.tsv").write_text("video_uid\tclip_start\tclip_end\tclip_text\nv\t0\t1\t#C C drops a cup\n")
    (tmp_path / "val.tsv").write_text("video_uid\tclip_start\tclip_end\tclip_text\nw\t2\t3\t#C C lifts a box\n")
    assert [(r.split, r.caption) for r in read_ego4d(tmp_path).records] == [
        ("train", "C drops a cup"),
        ("val", "C lifts a box"),
    ]


def test_ego4d_malformed_rows(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("video_uid,clip_start,clip_end,clip_text\nv,0,1,#C C opens it\nv,zero,1,#C C closes it\n")
    with pytest.raises(AnnotationError, match=r"train\.csv:3: 'clip_start' must be a number"):
        read_ego4d(path)
    path.write_text("video_uid,clip_start,clip_end\nv,0,1\n")
    with pytest.raises(AnnotationError, match=r"train\.csv:2: missing column 'clip_text'"):
        read_ego4d(path)
    path.write_text("video_uid,clip_start,clip_end,clip_text\nv,0,1,#C C opens it,extra\n")
    with pytest.raises(AnnotationError, match=r"train\.csv:2: wrong number of columns"):
        read_ego4d(path)


NEXTQA = (
    "video,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4\n"
    "4010069381,369,640,480,why did the boy pick up the present,2,6,CW,cry,run,share it,sleep,eat\n"
)


def test_nextqa_candidates_and_answer(tmp_path):
    path = tmp_path / "val.csv"
    path.write_text(NEXTQA)
    (rec,) = read_nextqa(path).records
    assert (rec.id, rec.video, rec.answer) == ("4010069381_6", "4010069381.mp4", 2)
    assert rec.candidates[0] == "why did the boy pick up the present cry"
    assert rec.caption == "why did the boy pick up the present share it"


def test_nextqa_bad_answer(tmp_path):
    path = tmp_path / "val.csv"
    path.write_text(NEXTQA.replace(",2,6,", ",7,6,"))
    with pytest.raises(AnnotationError, match=r"val\.csv:2: 'answer' must be 0-4"):
        read_nextqa(path)


def test_jsonl_generic(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(
        '{"video": "a.mp4", "caption": "A man opens a door"}\n\n'
        '{"id": "x", "video": "b.mp4", "caption": "Dog falls", "start": 1, "end": 2.5}\n'
    )
    first, second = read_jsonl(path).records
    assert (first.id, first.video, first.start, first.end) == ("train-1", "a.mp4", None, None)
    assert (second.id, second.start, second.end) == ("x", 1.0, 2.5)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ('{"video": "a.mp4", "caption": "x"', "bad JSON"),
        ('{"video": "a.mp4"}', "missing column 'caption'"),
        ('{"video": "a.mp4", "caption": ["x"]}', "'caption' must be a non-empty string"),
        ('{"video": "a.mp4", "caption": "x", "start": "soon"}', "'start' must be a number"),
        ('["a.mp4", "x"]', "expected a JSON object"),
    ],
)
def test_jsonl_malformed_row_names_line(tmp_path, row, message):
    path = tmp_path / "train.jsonl"
    path.write_text('{"video": "ok.mp4", "caption": "fine"}\n' + row + "\n")
    with pytest.raises(AnnotationError, match=rf"train\.jsonl:2: {message}"):
        read_jsonl(path)


def test_missing_paths_and_unknown_dataset(tmp_path):
    with pytest.raises(AnnotationError, match="no such file or folder"):
        read_jsonl(tmp_path / "nope.jsonl")
    with pytest.raises(AnnotationError, match="unknown dataset"):
        read_dataset("howto100m", tmp_path)
