"""Kinetics annotation CSV and Moments in Time CSV: the class name is the caption, indices follow sorted names."""

import pytest

from paxion.bench.readers import read_dataset
from paxion.errors import AnnotationError

KINETICS = (
    "label,youtube_id,time_start,time_end,split\n"
    "opening bottle,abc123,14,24,train\n"
    "closing door,xyz789,0,10,train\n"
    '"opening bottle",qqq,5,15,val\n'
)


def test_kinetics_csv_clip_names_splits_and_classes(tmp_path):
    path = tmp_path / "kinetics400.csv"
    path.write_text(KINETICS)
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "xyz789.mkv").write_bytes(b"")  # only the full YouTube video of this one
    data = read_dataset("kinetics", path, videos=videos)
    assert data.templates == ["closing door", "opening bottle"]
    assert [(r.id, r.split, r.video, r.start, r.end, r.caption, r.label, r.class_name) for r in data.records] == [
        ("abc123_000014_000024", "train", "abc123_000014_000024.mp4", None, None, "opening bottle", 1, "opening bottle"),
        ("xyz789_000000_000010", "train", "xyz789.mkv", 0.0, 10.0, "closing door", 0, "closing door"),
        ("qqq_000005_000015", "val", "qqq_000005_000015.mp4", None, None, "opening bottle", 1, "opening bottle"),
    ]


def test_kinetics_bad_time_names_line(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("label,youtube_id,time_start,time_end,split\nx,y,1.5,11,train\n")
    with pytest.raises(AnnotationError, match=r"train\.csv:2: 'time_start' must be whole seconds"):
        read_dataset("kinetics", path)


def test_moments_in_time_csv(tmp_path):
    folder = tmp_path / "mit"
    folder.mkdir()
    (folder / "trainingSet.csv").write_text("juggling/yt-a_1.mp4,juggling,3,3\nopening/b.mp4,opening,2,3\n")
    (folder / "validationSet.csv").write_text("juggling/c.mp4,juggling\n")
    data = read_dataset("mit", folder)
    assert data.templates == ["juggling", "opening"]
    assert [(r.id, r.split, r.video, r.caption, r.label) for r in data.records] == [
        ("juggling/yt-a_1", "train", "juggling/yt-a_1.mp4", "juggling", 0),
        ("opening/b", "train", "opening/b.mp4", "opening", 1),
        ("juggling/c", "validation", "juggling/c.mp4", "juggling", 0),
    ]
    (folder / "validationSet.csv").write_text("juggling/c.mp4\n")
    with pytest.raises(AnnotationError, match=r"validationSet\.csv:1: expected a video path and its class"):
        read_dataset("mit", folder)


@pytest.mark.parametrize(
    ("dataset", "text", "expected"),
    [
        ("mit", '[{"video": "juggling/a.mp4", "label": "juggling"}]', "a Moments in Time CSV"),
        ("kinetics", '[{"label": "opening bottle", "youtube_id": "abc123"}]', "a Kinetics annotation CSV"),
    ],
)
def test_non_csv_annotation_file_is_refused_with_the_expected_format(tmp_path, dataset, text, expected):
    path = tmp_path / "validationSet.json"
    path.write_text(text)
    with pytest.raises(AnnotationError) as caught:
        read_dataset(dataset, path)
    message = str(caught.value)
    assert message.startswith(f"{path}: expected {expected}")
    assert message.endswith("(.csv), not a '.json' file")
    assert "\n" not in message
