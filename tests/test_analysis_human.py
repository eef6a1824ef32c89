"""Human baseline: deterministic sampling, clips (VR one reversed), sheet and key, scoring of a filled sheet."""

import csv
import json

import numpy as np
import pytest

from paxion.analysis.human import sample_items, score_sheet, write_human_eval
from paxion.errors import PaxionError
from paxion.extract.video import read_frames
from paxion.synth.encode import write_video

CLIPS = 10


def _bench(root):
    videos = root / "videos"
    videos.mkdir(parents=True)
    records = []
    for i in range(CLIPS):
        frames = np.zeros((8, 24, 24, 3), dtype=np.uint8)
        for t in range(8):
            frames[t, :, 2 * t: 2 * t + 6] = (250, 250, 250)  # a bar moving right
        write_video(videos / f"{i}.mp4", frames)
        records.append({"id": str(i), "video": f"{i}.mp4", "start": None, "end": None,
                        "caption": f"Moving bar {i} right\u2028now",  # a line separator must not split records
                        "aa_caption": f"Moving bar {i} left" if i % 3 else None,
                        "or_caption": f"Moving cup {i} right" if i % 2 else None})
    bench = root / "validation.jsonl"
    bench.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return bench, videos, records


def test_sampling_is_deterministic_for_a_seed(tmp_path):
    _, _, records = _bench(tmp_path)
    a, b = sample_items(records, n=4, seed=3), sample_items(records, n=4, seed=3)
    assert a == b
    assert [i["task"] for i in a].count("vr") == 4 and len(a) == 8
    assert {i["swap"] for i in a} == {True, False}  # which option is the true one varies
    assert all(i["record"][f"{i['task']}_caption"] for i in a if i["task"] != "vr")
    others = [sample_items(records, n=4, seed=s) for s in range(4, 10)]
    assert any(o != a for o in others)
    pairs = [(r["id"], t) for r in records for t in ("aa", "or") if r[f"{t}_caption"]]
    assert len(sample_items(records, n=50, seed=0)) == len(pairs) + CLIPS  # all there are, without repeats


def test_human_eval_writes_clips_sheet_and_key_and_scores_a_filled_sheet(tmp_path):
    bench, videos, records = _bench(tmp_path)
    out = tmp_path / "human"
    key = write_human_eval(bench, videos, out, n=4, seed=1, frames=8)
    with open(out / "sheet.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["item"] for r in rows] == [k["item"] for k in key] and all(r["answer"] == "" for r in rows)
    by_id = {r["id"]: r for r in records}
    for row, k in zip(rows, key):
        record = by_id[k["clip"]]
        if k["task"] == "vr":
            shown = {c: read_frames(out / f"clips/{row['item']}-{c}.mp4", num_frames=8) for c in "AB"}
            forward, backward = shown[k["answer"]], shown["B" if k["answer"] == "A" else "A"]
            assert forward[0, 12].argmax(axis=0)[0] < forward[-1, 12].argmax(axis=0)[0]  # bar moves right
            assert np.abs(forward.astype(int) - backward[::-1].astype(int)).max() <= 8
            assert row["text"] == record["caption"]
        else:
            assert (out / f"clips/{row['item']}.mp4").exists()
            true_option = row[f"option {k['answer']}"]
            assert true_option == record["caption"]
            assert {row["option A"], row["option B"]} == {record["caption"], record[f"{k['task']}_caption"]}
    assert json.loads((out / "key.json").read_text())["items"] == key
    assert "answer" in (out / "README.txt").read_text()

    # fill: right on the first VR item and wrong on the others; right on every AA/OR item but the first
    vr = [k for k in key if k["task"] == "vr"]
    text = [k for k in key if k["task"] != "vr"]
    wrong = {vr[1]["item"], vr[2]["item"], vr[3]["item"], text[0]["item"]}
    for row, k in zip(rows, key):
        flip = {"A": "b", "B": " a "}
        row["answer"] = flip[k["answer"]] if k["item"] in wrong else k["answer"].lower()
    filled = tmp_path / "filled.csv"
    with open(filled, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    scores = score_sheet(out, filled)
    assert scores["vr"]["accuracy"] == pytest.approx(25.0) and scores["vr"]["n"] == 4
    aa_or = {t: [k for k in text if k["task"] == t] for t in ("aa", "or")}
    for task, items in aa_or.items():
        if items:
            right = sum(k["item"] not in wrong for k in items)
            assert scores[task]["n"] == len(items)
            assert scores[task]["accuracy"] == pytest.approx(100 * right / len(items))
    assert scores["vr"]["ci95"] == pytest.approx([4.56, 69.94], abs=0.01)  # Wilson, 1 of 4

    rows[0]["answer"] = "maybe"
    with open(filled, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(PaxionError, match="filled.csv:2: item '001' needs the answer A or B"):
        score_sheet(out, filled)
    with open(filled, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[1:])
    with pytest.raises(PaxionError, match="1 items not answered, e.g. '001'"):
        score_sheet(out, filled)
