"""Downstream tasks and `paxion retrieve` on a tiny real cache, checked against dense NumPy references."""

import json
import subprocess
import sys

import numpy as np
import pytest
import test_cache_texts
import torch
from click.testing import CliRunner
from tiny_cache import make_cache, replace_shard

from paxion import cli as cli_module
from paxion.analysis.items import recall_summary
from paxion.analysis.predict import task_predictions
from paxion.cache.manifest import read_json, write_manifest
from paxion.cache.reader import Cache
from paxion.cache.writer import write_texts
from paxion.errors import CacheError, PaxionError
from paxion.extract import backbones
from paxion.retrieval import subsets, tasks
from paxion.retrieval.metrics import ensemble_probabilities
from paxion.retrieval.tasks import run_task
from paxion.scoring import BackboneScorer

TEMPLATES = [f"template {a}" for a in range(4)]
made_by_fake = test_cache_texts.made_by_fake  # a fixture: a cache whose manifest names FakeBackbone


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _set_bench(root, **bench):
    manifest = read_json(root / "manifest.json")
    manifest["bench"].update(bench)
    write_manifest(root, manifest)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    root = make_cache(tmp_path_factory.mktemp("cache"), clips={"validation": 60}, shard_size=25)
    _set_bench(root, classes=TEMPLATES, temporal_classes=TEMPLATES[:2])
    return root


def _dense_metrics(scores, query_keys, item_keys, ks):
    """Recall and median rank from a full score matrix [queries, items], ties by ascending item id."""
    ids = np.arange(scores.shape[1])
    ranks = []
    for row, key in zip(scores, query_keys):
        order = np.lexsort((ids, -row))
        ranks.append(1 + np.flatnonzero(item_keys[order] == key)[0])
    return {**{f"r{k}": 100.0 * np.mean(np.array(ranks) <= k) for k in ks}, "medr": float(np.median(ranks)),
            "n": len(ranks)}


@pytest.mark.parametrize("task,field", [("label", "caption_idx"), ("template", "template_idx")])
def test_retrieval_tasks_match_dense_reference(cache_dir, task, field):
    cache = Cache(cache_dir)
    data = cache.read_split("validation", ["pooled", field])
    videos, keys = _unit(data["pooled"].astype(np.float64)), data[field]
    text_ids = np.unique(keys)
    texts = _unit(cache.text_emb[text_ids].astype(np.float64))
    out = run_task(cache, BackboneScorer(temporal=False), task, ks=(1, 3))
    assert out["v2t"] == pytest.approx(_dense_metrics(videos @ texts.T, keys, text_ids, (1, 3)))
    assert out["t2v"] == pytest.approx(_dense_metrics(texts @ videos.T, text_ids, keys, (1, 3)))


def test_temporal_task_restricts_videos_and_texts(cache_dir, tmp_path):
    cache = Cache(cache_dir)
    templates = cache.read_split("validation", ["template_idx"])["template_idx"]
    in_first_two = np.isin([cache.texts[t] for t in templates], TEMPLATES[:2]).sum()
    out = run_task(cache, BackboneScorer(temporal=False), "temporal")
    assert (out["v2t"]["n"], out["t2v"]["n"]) == (in_first_two, 2)
    one = run_task(cache, BackboneScorer(temporal=False), "temporal", classes=[TEMPLATES[3]])
    assert one["t2v"] == {"r1": 100.0, "r5": 100.0, "r10": 100.0, "medr": 1.0, "n": 1}
    assert one["v2t"]["r1"] == 100.0  # a single candidate text is always first


class _ProjectedScorer:
    """A stand-in trained model: the pooled embedding through a fixed random matrix, temperature 1/100."""

    scale = 100.0

    def __init__(self, dim):
        self.matrix = torch.from_numpy(np.random.default_rng(3).normal(size=(dim, dim)))

    def video_fields(self, *, reverse=False):
        return ("pooled",)

    def encode_video(self, batch, *, reverse=False):
        out = batch["pooled"].double() @ self.matrix
        return (out / out.norm(dim=-1, keepdim=True))[:, None].float()

    def encode_text(self, text_emb):
        return text_emb / text_emb.norm(dim=-1, keepdim=True)


def test_zeroshot_with_and_without_backbone_ensemble(cache_dir):
    cache = Cache(cache_dir)
    data = cache.read_split("validation", ["pooled", "label"])
    classes = _unit(cache.text_emb[[cache.texts.index(t) for t in TEMPLATES]].astype(np.float64))
    model = _ProjectedScorer(classes.shape[1])
    model_videos = _unit(data["pooled"].astype(np.float64) @ model.matrix.numpy())
    model_scores, backbone_scores = model_videos @ classes.T, _unit(data["pooled"].astype(np.float64)) @ classes.T
    alone = run_task(cache, model, "zeroshot")
    assert alone["accuracy"] == pytest.approx(100.0 * np.mean(model_scores.argmax(1) == data["label"]))
    both = run_task(cache, model, "zeroshot", ensemble_with=BackboneScorer(temporal=False))
    summed = ensemble_probabilities(model_scores, 100.0, backbone_scores, 100.0)
    # two confident models that disagree sum to ~1 on two classes: a tie (1e-6), half credit if one is right
    top = summed >= summed.max(axis=1, keepdims=True) - 1e-6
    assert (top.sum(axis=1) == 2).any()
    assert both["accuracy"] == pytest.approx(100.0 * np.mean(top[np.arange(60), data["label"]] / top.sum(axis=1)))
    assert alone["n"] == both["n"] == 60
    backbone_alone = run_task(cache, BackboneScorer(temporal=False), "zeroshot")
    assert both["accuracy"] not in (alone["accuracy"], backbone_alone["accuracy"])  # both models count


@pytest.fixture(scope="module")
def mc_cache_dir(tmp_path_factory):
    """The tiny cache with NExT-QA fields: candidates [own caption, antonym caption, other object], answer 0/1/2."""
    root = make_cache(tmp_path_factory.mktemp("mc"), clips={"validation": 30}, shard_size=30)
    cache = Cache(root)
    shard = cache.read_shard("validation", 0)
    answer = np.arange(30) % 3
    candidates = np.stack([shard["aa_idx"], shard["or_idx"]], axis=1)
    shard["mc_idx"] = np.array(
        [np.insert(c, a, own) for c, a, own in zip(candidates, answer, shard["caption_idx"])], dtype=np.int32
    )
    shard["mc_answer"] = answer.astype(np.int32)
    replace_shard(root, "validation", 0, shard)
    return root


def test_multiple_choice_accuracy_matches_per_clip_reference(mc_cache_dir):
    cache = Cache(mc_cache_dir)
    data = cache.read_split("validation", ["pooled", "mc_idx", "mc_answer"])
    right = [
        np.argmax(_unit(cache.text_emb[idx].astype(np.float64)) @ _unit(video.astype(np.float64))) == answer
        for video, idx, answer in zip(data["pooled"], data["mc_idx"], data["mc_answer"])
    ]
    out = run_task(cache, BackboneScorer(temporal=False), "mc")
    assert (out["accuracy"], out["n"]) == (pytest.approx(100.0 * np.mean(right)), 30)


def test_bad_requests_raise_one_line_errors(cache_dir, tmp_path):
    cache, scorer = Cache(cache_dir), BackboneScorer(temporal=False)
    with pytest.raises(CacheError, match="mc_idx"):
        run_task(cache, scorer, "mc")
    with pytest.raises(PaxionError, match="has no {}"):
        run_task(cache, scorer, "zeroshot", prompt="a video of")
    with pytest.raises(PaxionError, match="add-texts"):
        run_task(cache, scorer, "zeroshot", prompt="a video of {}")
    with pytest.raises(PaxionError, match="not in the cache's text table"):
        run_task(cache, scorer, "temporal", classes=["Juggling something"])
    with pytest.raises(CacheError, match="no split"):
        run_task(cache, scorer, "label", split="test")


def test_cli_writes_json_with_the_requested_cut_offs(cache_dir, tmp_path):
    out = tmp_path / "r.json"
    result = CliRunner().invoke(cli_module.cli, ["retrieve", "--cache", str(cache_dir), "--task", "template",
                                                 "--k", "1,2", "--json", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert set(written) == {"v2t", "t2v"}
    assert set(written["v2t"]) == set(written["t2v"]) == {"r1", "r2", "medr", "n"}
    assert written["t2v"]["n"] == 4 and 0.0 <= written["v2t"]["r1"] <= written["v2t"]["r2"] <= 100.0
    classes = tmp_path / "classes.txt"
    classes.write_text(f"{TEMPLATES[0]}\n\n{TEMPLATES[2]}\n")
    result = CliRunner().invoke(cli_module.cli, ["retrieve", "--cache", str(cache_dir), "--task", "temporal",
                                                 "--classes", str(classes), "--json", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["t2v"]["n"] == 2


@pytest.mark.parametrize("args,message", [
    (["--task", "mc"], "mc_idx"),
    (["--task", "label", "--k", "0,5"], "at least 1"),
    (["--task", "zeroshot", "--prompt", "a video"], "has no {}"),
    (["--task", "zeroshot", "--classes", "no-such-list"], "not a shipped list name"),
    (["--task", "zeroshot", "--prompt", "a video of {}"], "add-texts"),
])
def test_cli_errors_are_one_line(cache_dir, monkeypatch, capsys, args, message):
    monkeypatch.setattr(sys, "argv", ["paxion", "retrieve", "--cache", str(cache_dir), "--device", "cpu", *args])
    with pytest.raises(SystemExit) as exit_info:
        cli_module.main()
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_retrieval_imports_nothing_from_the_trainer():
    code = "import sys, paxion.retrieval.tasks; print(sorted(m for m in sys.modules if m.startswith('paxion.trainer')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def _zeroshot_reference(cache, names, texts=None):
    """Accuracy and n of backbone zero-shot over class `names` (candidate texts `texts`, default the names)."""
    data = cache.read_split("validation", ["pooled", "class_idx"])
    classes = [cache.texts[i] for i in data["class_idx"]]
    listed = np.array([c in names for c in classes])
    candidates = _unit(cache.text_emb[[cache.texts.index(t) for t in texts or names]].astype(np.float64))
    predicted = np.argmax(_unit(data["pooled"][listed].astype(np.float64)) @ candidates.T, axis=1)
    answers = np.array([names.index(c) for c, keep in zip(classes, listed) if keep])
    return 100.0 * np.mean(predicted == answers), int(listed.sum())


def test_zeroshot_is_the_same_in_any_class_order_and_counts_listed_classes_only(cache_dir):
    cache, scorer = Cache(cache_dir), BackboneScorer(temporal=False)
    four = run_task(cache, scorer, "zeroshot", classes=TEMPLATES)
    assert four["n"] == 60 and four["accuracy"] == pytest.approx(_zeroshot_reference(cache, TEMPLATES)[0])
    for order in ([3, 1, 0, 2], [2, 3, 1, 0], [1, 0, 3, 2]):
        shuffled = run_task(cache, scorer, "zeroshot", classes=[TEMPLATES[i] for i in order])
        assert (shuffled["accuracy"], shuffled["n"]) == (pytest.approx(four["accuracy"]), 60)
    two = [TEMPLATES[2], TEMPLATES[0]]
    accuracy, n = _zeroshot_reference(cache, two)
    assert 0 < n < 60
    for classes in (two, two[::-1]):
        out = run_task(cache, scorer, "zeroshot", classes=classes)
        assert (out["accuracy"], out["n"]) == (pytest.approx(accuracy), n)
    with pytest.raises(PaxionError, match="no clip"):  # a text of the table that is no clip's class
        run_task(cache, scorer, "zeroshot", classes=["action 0 on object 0"])


def test_zeroshot_prompt_wraps_the_candidates_but_clips_match_by_name(tmp_path):
    root = make_cache(tmp_path / "c", clips={"validation": 40}, shard_size=40)
    prompts = [f"a video of {t}" for t in TEMPLATES]
    rng = np.random.default_rng(5)
    texts = Cache(root).texts + prompts
    emb = np.concatenate([Cache(root).text_emb, rng.normal(size=(4, Cache(root).text_emb.shape[1]))])
    manifest = read_json(root / "manifest.json")
    write_manifest(root, manifest | {"texts": write_texts(root / "texts.h5", texts, emb)})
    cache = Cache(root)
    out = run_task(cache, BackboneScorer(temporal=False), "zeroshot", prompt="a video of {}")
    accuracy, n = _zeroshot_reference(cache, TEMPLATES, prompts)
    assert (out["accuracy"], out["n"]) == (pytest.approx(accuracy), n) and n == 40
    assert accuracy != pytest.approx(_zeroshot_reference(cache, TEMPLATES)[0])  # the prompts were scored


def test_run_task_encodes_missing_zeroshot_texts_itself(made_by_fake, monkeypatch):
    """The library, not only `paxion retrieve`, encodes prompted class texts the cache lacks (once)."""
    root, backbone = made_by_fake
    loaded = []
    monkeypatch.setattr(backbones, "load_backbone", lambda spec, device: loaded.append(spec) or backbone)
    out = run_task(Cache(root), BackboneScorer(temporal=False), "zeroshot", prompt="a video of {}")
    prompts = [f"a video of {t}" for t in TEMPLATES]
    cache = Cache(root)
    assert loaded == [backbone.name] and cache.texts[-4:] == prompts
    accuracy, n = _zeroshot_reference(cache, TEMPLATES, prompts)
    assert (out["accuracy"], out["n"]) == (pytest.approx(accuracy), n) and n == 20
    assert tasks.zeroshot_cache(cache, prompt="a video of {}") == (cache, [])  # nothing missing: same cache
    assert loaded == [backbone.name]


def _softmax(x, scale):
    z = np.exp(scale * (x - x.max(axis=1, keepdims=True)))
    return z / z.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("task,field", [("label", "caption_idx"), ("template", "template_idx")])
def test_retrieval_ensemble_sums_softmax_probabilities_both_ways(cache_dir, task, field):
    cache = Cache(cache_dir)
    data = cache.read_split("validation", ["pooled", field])
    keys, text_ids = data[field], np.unique(data[field])
    texts = _unit(cache.text_emb[text_ids].astype(np.float64))
    model = _ProjectedScorer(texts.shape[1])
    model_scores = _unit(data["pooled"].astype(np.float64) @ model.matrix.numpy()) @ texts.T
    backbone_scores = _unit(data["pooled"].astype(np.float64)) @ texts.T
    v2t = _softmax(model_scores, 100.0) + _softmax(backbone_scores, 100.0)
    t2v = _softmax(model_scores.T, 100.0) + _softmax(backbone_scores.T, 100.0)
    out = run_task(cache, model, task, ks=(1, 3), ensemble_with=BackboneScorer(temporal=False))
    assert out["v2t"] == pytest.approx(_dense_metrics(v2t, keys, text_ids, (1, 3)))
    assert out["t2v"] == pytest.approx(_dense_metrics(t2v, text_ids, keys, (1, 3)))
    assert out != run_task(cache, model, task, ks=(1, 3))  # the backbone counts


def test_clip_mask_restricts_retrieval_and_choice_tasks(cache_dir):
    cache, scorer = Cache(cache_dir), BackboneScorer(temporal=False)
    data = cache.read_split("validation", ["pooled", "template_idx"])
    mask = np.arange(60) % 3 != 0
    videos, keys = _unit(data["pooled"][mask].astype(np.float64)), data["template_idx"][mask]
    text_ids = np.unique(keys)
    texts = _unit(cache.text_emb[text_ids].astype(np.float64))
    out = run_task(cache, scorer, "template", clips=mask, ks=(1, 2))
    assert out["v2t"] == pytest.approx(_dense_metrics(videos @ texts.T, keys, text_ids, (1, 2)))
    assert out["v2t"]["n"] == 40
    assert run_task(cache, scorer, "zeroshot", clips=mask)["n"] == 40


def test_cli_zeroshot_with_class_files_in_two_orders_and_a_shipped_list(cache_dir, tmp_path, monkeypatch):
    def zeroshot(*args):
        out = tmp_path / "z.json"
        result = CliRunner().invoke(cli_module.cli, ["retrieve", "--cache", str(cache_dir), "--task", "zeroshot",
                                                     "--json", str(out), "--device", "cpu", *args])
        assert result.exit_code == 0, result.output
        return json.loads(out.read_text())

    forward, backward, two = tmp_path / "f.txt", tmp_path / "b.txt", tmp_path / "two.txt"
    forward.write_text("\n".join(TEMPLATES) + "\n")
    backward.write_text("\n".join(TEMPLATES[::-1]) + "\n")
    two.write_text(f"{TEMPLATES[1]}\n{TEMPLATES[3]}\n")
    assert zeroshot("--classes", str(forward)) == zeroshot("--classes", str(backward))
    listed = (Cache(cache_dir).read_split("validation", ["template_idx"])["template_idx"] % 2 == 1).sum()
    assert zeroshot("--classes", str(two))["n"] == listed  # templates 1 and 3: the odd actions
    shipped = tmp_path / "lists"
    shipped.mkdir()
    (shipped / "odd-templates.txt").write_text(two.read_text())
    monkeypatch.setattr(subsets, "CLASS_LISTS", shipped)
    assert subsets.known_class_lists() == ["odd-templates"]
    assert zeroshot("--classes", "odd-templates") == zeroshot("--classes", str(two))
    ids = tmp_path / "ids.txt"
    ids.write_text("validation0\nvalidation1\nvalidation2\n")
    assert zeroshot("--ids", str(ids))["n"] == 3


def test_choice_scores_in_small_blocks_and_the_ensemble_size_limit(cache_dir, monkeypatch):
    cache, scorer = Cache(cache_dir), BackboneScorer(temporal=False)
    whole = run_task(cache, scorer, "zeroshot")
    monkeypatch.setattr(tasks, "RESCORE_ELEMENTS", 100)  # 1 clip per block
    assert run_task(cache, scorer, "zeroshot") == whole
    monkeypatch.setattr(tasks, "ENSEMBLE_MAX_SCORES", 59 * 4)
    with pytest.raises(PaxionError, match="60 clips x 4 texts.*--ids"):
        run_task(cache, scorer, "template", ensemble_with=scorer)
    assert run_task(cache, scorer, "template", ensemble_with=scorer, clips=np.arange(60) < 59)["v2t"]["n"] == 59


class _ConditionedScorer(BackboneScorer):
    """X-CLIP's kind of scorer (texts conditioned on each clip: dense scores) on the tiny cache; the conditioning
    leaves the texts as they are, so its scores are the backbone's."""

    conditioned = True

    def condition(self, texts, batch, *, reverse=False):
        return texts


def test_conditioned_retrieval_refuses_the_same_dense_size_in_run_task_and_predictions(cache_dir, monkeypatch):
    cache, scorer = Cache(cache_dir), _ConditionedScorer(temporal=False)
    fewer = np.arange(60) < 59
    plain = run_task(cache, BackboneScorer(temporal=False), "template", clips=fewer)
    monkeypatch.setattr(tasks, "ENSEMBLE_MAX_SCORES", 59 * 4)  # 60 clips x 4 templates is over, 59 x 4 is not
    messages = []
    for run in (run_task, task_predictions):
        with pytest.raises(PaxionError, match="'template' scores 60 clips x 4 texts densely.*--ids") as refused:
            run(cache, scorer, "template")
        messages.append(str(refused.value))
    assert messages[0] == messages[1]
    dense = run_task(cache, scorer, "template", clips=fewer)
    assert all(dense[way] == pytest.approx(plain[way]) for way in ("v2t", "t2v"))
    records = task_predictions(cache, scorer, "template", clips=fewer)
    assert len(records) == 59 and recall_summary(records, ks=(1, 5, 10)) == pytest.approx(plain["v2t"])
    # zero-shot over the 4 class texts scores 60 x 4 too, but is no retrieval task: not refused
    assert run_task(cache, scorer, "zeroshot")["n"] == len(task_predictions(cache, scorer, "zeroshot")) == 60
