"""`paxion bench build` / `paxion bench antonym` on small samples: files written, table, bad input."""

import json

import pytest
from click.testing import CliRunner

from paxion.bench.build import bench_meta
from paxion.bench.records import Annotations
from paxion.cli import cli, main
from paxion.synth.actions import ACTIONS, OBJECTS, TEMPORAL_TEMPLATES, fill_template, template_caption


def _world(tmp_path, actions=ACTIONS):
    ann = tmp_path / "annotations"
    ann.mkdir()
    (ann / "labels.json").write_text(json.dumps({a.template: str(i) for i, a in enumerate(actions)}))
    for split, start in (("train", 0), ("validation", 1)):
        items = []
        for i, a in enumerate(actions):
            objects = [OBJECTS[(i + start + k) % len(OBJECTS)] for k in range(a.n_objects)]
            label = fill_template(a.template, objects)
            items.append({"id": f"{split}{i}", "label": label, "template": a.template, "placeholders": objects})
        (ann / f"{split}.json").write_text(json.dumps(items))
    return ann


def test_build_builtin_world(tmp_path):
    ann = _world(tmp_path)
    out = tmp_path / "bench"
    result = CliRunner().invoke(
        cli, ["bench", "build", "--dataset", "ssv2", "--annotations", str(ann), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "validation" in result.output and "AA negatives" in result.output and "hold (2)" in result.output
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert len(rows) == len(ACTIONS)
    keys = {"id", "video", "start", "end", "caption", "template", "label", "aa_caption", "aa_reason", "or_caption"}
    assert keys | {"or_reason", "aa_given", "or_given"} == set(rows[0])
    by_template = {ACTIONS[r["label"]].template: r for r in rows}
    for a in ACTIONS:
        row = by_template[a.template]
        assert row["template"] == template_caption(a.template) and row["video"] == f"{row['id']}.webm"
        assert (row["aa_caption"] is None) == (a.partner is None)
        assert row["or_caption"] and row["or_caption"] != row["caption"]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["splits"] == {"train": len(ACTIONS), "validation": len(ACTIONS)}
    assert meta["classes"] == [template_caption(a.template) for a in ACTIONS]
    assert meta["temporal_classes"] == [template_caption(t) for t in TEMPORAL_TEMPLATES]
    assert meta["builtin_world"] is True


def test_build_is_deterministic_for_a_seed(tmp_path):
    ann = _world(tmp_path)
    texts = []
    for seed, name in ((1, "a"), (1, "b"), (2, "c")):
        args = ["bench", "build", "--dataset", "ssv2", "--annotations", str(ann), "--out", str(tmp_path / name)]
        assert CliRunner().invoke(cli, [*args, "--seed", str(seed)]).exit_code == 0
        texts.append((tmp_path / name / "train.jsonl").read_text())
    assert texts[0] == texts[1] != texts[2]


def test_meta_of_other_templates_has_no_temporal_classes():
    meta = bench_meta(Annotations("ssv2", templates=["Holding [something]"]), {"train": 1})
    assert meta["classes"] == ["Holding something"]
    assert meta["temporal_classes"] is None and meta["builtin_world"] is False


def test_build_nextqa_adds_candidates_and_negates_the_answer_only(tmp_path):
    # The question's own verbs ("pick up", "opens") have antonyms too; only the answer may change.
    path = tmp_path / "val.csv"
    path.write_text(
        "video,question,answer,qid,type,a0,a1,a2,a3,a4\n"
        "11,why did the boy pick up the present,1,0,CW,cry,share it with the girl,sleep,eat,run\n"
        "12,what does the girl do after she opens the box,2,1,TN,smile,cry,pick up the toy,run,jump\n"
    )
    out = tmp_path / "bench"
    result = CliRunner().invoke(
        cli, ["bench", "build", "--dataset", "nextqa", "--annotations", str(path), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    first, second = [json.loads(line) for line in (out / "val.jsonl").read_text().splitlines()]
    assert first["answer"] == 1 and len(first["candidates"]) == 5
    assert first["caption"] == "why did the boy pick up the present share it with the girl"
    assert first["aa_caption"] is None
    assert second["caption"] == "what does the girl do after she opens the box pick up the toy"
    assert second["aa_caption"] == "what does the girl do after she opens the box put down the toy"
    # each candidate's antonym (mc+vac's extra negatives) is made on its answer only, the question kept verbatim
    question = "what does the girl do after she opens the box"
    assert len(second["candidates_aa"]) == 5 and second["candidates_aa"][2] == f"{question} put down the toy"
    assert all(a is None or a.startswith(question + " ") for a in second["candidates_aa"])
    assert "close" not in " ".join(a or "" for a in second["candidates_aa"])
    assert json.loads((out / "meta.json").read_text())["classes"] is None


def test_antonym_command_lines_and_json():
    runner = CliRunner()
    lines = runner.invoke(cli, ["bench", "antonym", "Opening box", "Holding box", "C picks up the knife"])
    assert lines.exit_code == 0
    assert lines.output == "Closing box\n\nC puts down the knife\n"
    as_json = runner.invoke(cli, ["bench", "antonym", "--json", "Red ball falling", "Shaking box"])
    assert json.loads(as_json.output) == ["Red ball rising", None]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "ssv2", "--annotations", "{tmp}/missing", "--out", "{tmp}/o"], "does not exist"),
        (["--dataset", "howto100m", "--annotations", "{tmp}", "--out", "{tmp}/o"], "Invalid value for '--dataset'"),
        (["--dataset", "ssv2", "--annotations", "{tmp}", "--out", "{tmp}/o", "--seed", "x"], "is not a valid integer"),
        (["--dataset", "ssv2", "--annotations", "{tmp}", "--out", "{tmp}/o"], "labels.json: file not found"),
        (["--dataset", "jsonl", "--annotations", "{tmp}/bad.jsonl", "--out", "{tmp}/o"], "bad.jsonl:1: bad JSON"),
        (["--dataset", "jsonl", "--annotations", "{tmp}/empty.jsonl", "--out", "{tmp}/o"], "empty.jsonl: no clips found"),
        (["--dataset", "jsonl", "--annotations", "{tmp}/dup.jsonl", "--out", "{tmp}/o"],
         "dup.jsonl:3: duplicate clip id 'x' (first at {tmp}/dup.jsonl:1)"),
    ],
)
def test_bad_input_is_one_line_error(tmp_path, monkeypatch, capsys, args, message):
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    (tmp_path / "empty.jsonl").write_text("\n")
    (tmp_path / "dup.jsonl").write_text('{"id": "x", "video": "a", "caption": "A"}\n\n{"id": "x", "video": "b", "caption": "B"}\n')
    argv = ["paxion", "bench", "build", *(a.format(tmp=tmp_path) for a in args)]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert message.format(tmp=tmp_path) in " ".join(err.split())
    assert "Traceback" not in err
