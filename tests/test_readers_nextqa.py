"""NExT-QA as shipped: nested video folders with and without map_vid_vidorID.json, text answers, AA on answers."""

import json

import pytest

from paxion.bench.build import answer_antonym
from paxion.bench.nextqa import read_nextqa
from paxion.bench.readers import read_dataset
from paxion.errors import AnnotationError

HEADER = "video,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4\n"
ROW = "4010069381,369,640,480,what does the girl do after lifting the cup,{answer},3,TN,sing,opens the door,sleep,eat,run\n"


def _csv(tmp_path, answer="1"):
    path = tmp_path / "val.csv"
    path.write_text(HEADER + ROW.format(answer=answer))
    return path


def test_nested_layout_with_map(tmp_path):
    mapping = tmp_path / "map_vid_vidorID.json"
    mapping.write_text(json.dumps({"4010069381": "1023/4010069381", "9": "0001/9"}))
    (rec,) = read_nextqa(_csv(tmp_path), video_map=mapping).records
    assert rec.video == "1023/4010069381.mp4"
    mapping.write_text(json.dumps({"9": "0001/9"}))
    with pytest.raises(AnnotationError, match=r"val\.csv:2: video 4010069381 is not in"):
        read_nextqa(_csv(tmp_path), video_map=mapping)
    with pytest.raises(AnnotationError, match="map_vid_vidorID.json: a video map is read for nextqa only, not jsonl"):
        read_dataset("jsonl", tmp_path, video_map=mapping)


def test_nested_layout_found_recursively_without_map(tmp_path):
    videos = tmp_path / "videos"
    (videos / "1023").mkdir(parents=True)
    (videos / "1023" / "4010069381.mp4").write_bytes(b"")
    (videos / "0001").mkdir()
    (videos / "0001" / "4010069382.mp4").write_bytes(b"")
    (rec,) = read_nextqa(_csv(tmp_path), videos=videos).records
    assert rec.video == "1023/4010069381.mp4"
    assert read_nextqa(_csv(tmp_path)).records[0].video == "4010069381.mp4"


def test_text_answer_maps_to_its_index_or_is_refused(tmp_path):
    (rec,) = read_nextqa(_csv(tmp_path, answer="opens the door")).records
    assert (rec.answer, rec.caption) == (1, "what does the girl do after lifting the cup opens the door")
    with pytest.raises(AnnotationError, match=r"val\.csv:2: 'answer' must be 0-4 or the text of a choice"):
        read_nextqa(_csv(tmp_path, answer="dance"))


def test_antonym_changes_the_answer_never_the_question(tmp_path):
    (rec,) = read_nextqa(_csv(tmp_path)).records
    assert rec.question == "what does the girl do after lifting the cup"
    # "lifting" in the question has an antonym too; it must stay
    assert answer_antonym(rec).text == "what does the girl do after lifting the cup closes the door"
    (no_verb,) = read_nextqa(_csv(tmp_path, answer="0")).records
    assert answer_antonym(no_verb).text is None
