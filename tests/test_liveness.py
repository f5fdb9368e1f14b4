"""Face liveness (flip/liveness.py): prompts, zero-shot scores with known values, the probe, pairs, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from flip.data.records import FaceRecord
from flip.data.synthetic.spoof import ATTACKS
from flip.liveness import (
    LivenessClassifier,
    LivenessProbe,
    LivenessResult,
    category_descriptions,
    check_liveness_prompts,
    liveness_pairs,
    record_category,
)
from flip.prompts import PromptSet, load_prompts


def test_public_api_exports_the_classifier():
    import flip

    assert flip.LivenessClassifier is LivenessClassifier and "LivenessClassifier" in flip.__all__


def test_shipped_prompts_have_live_and_the_eight_attacks():
    p = load_prompts("liveness")
    assert set(p.classes) == {"live", *ATTACKS}
    assert all(len(d) >= 3 for d in p.descriptors.values())
    assert check_liveness_prompts(p) is p
    texts = category_descriptions(p)
    assert texts["printed_photo"][0] == "a printed photo of a face, which has a white paper border"
    assert len(texts["live"]) == len(p.descriptors["live"]) + len(p.templates)


def test_prompts_without_live_are_refused():
    p = PromptSet.from_dict({"print": ["halftone"], "replay": ["moire"]}, task="x")
    with pytest.raises(ValueError, match="needs a 'live' class"):
        check_liveness_prompts(p)


# -- known values through a hand-made model -------------------------------------------------------
SMALL = {"live": ["pores"], "print": ["halftone", "has a border"], "replay": ["moire"]}
TABLE = {"live, which has pores": [1, 0, 0, 0], "print, which has halftone": [0, 1, 0, 0],
         "print, which has a border": [0, 0, 1, 0], "replay, which has moire": [0, 0, 0, 1]}


class LookupModel(nn.Module):
    def __init__(self, scale: float = 10.0):
        super().__init__()
        self.ids = {s: i for i, s in enumerate(TABLE)}
        self.text_model = nn.Embedding.from_pretrained(torch.tensor(list(TABLE.values()), dtype=torch.float))
        self._scale = scale

    def scale(self):
        return torch.tensor(self._scale)

    def encode_text(self, batch):
        return F.normalize(self.text_model(batch["input_ids"]), dim=-1)

    def encode_image(self, pixel_values):
        return F.normalize(pixel_values, dim=-1)


class LookupProcessor:
    def __init__(self, model):
        self.model = model

    def texts(self, texts):
        return {"input_ids": torch.tensor([self.model.ids[t] for t in texts])}


def test_zero_shot_live_score_is_live_against_the_best_attack_at_the_model_temperature():
    model = LookupModel(scale=10.0)
    clf = LivenessClassifier(model, LookupProcessor(model), PromptSet.from_dict(SMALL, task="small"))
    images = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 1.0, 0], [0, 0, 0, 1.0]])
    r = clf.score(images)
    # category scores (mean cosine): [1, 0, 0]; [0, 1/sqrt2, 0] (print's two sentences 1/sqrt2 and 1/sqrt2); [0, 0, 1]
    e = math.exp
    # live against the best attack: p_live / (p_live + p_best) = sigmoid(scale * (s_live - s_best))
    assert float(r.live_score[0]) == pytest.approx(e(10) / (e(10) + 1))
    s = 10 / math.sqrt(2)
    assert float(r.live_score[1]) == pytest.approx(1 / (1 + e(s)))
    assert r.probs[1].tolist() == pytest.approx([1 / (2 + e(s)), e(s) / (2 + e(s)), 1 / (2 + e(s))])
    assert r.attacks == ["print", "print", "replay"]  # image 0's best attack: print and replay tie, first wins
    assert r.is_live(0.5) == [True, False, False]
    rec = r.record(0, threshold=0.99999)
    assert rec["decision"] == "attack" and rec["attack"] == "print"
    assert set(rec["scores"]) == {"live", "print", "replay"}


def test_a_tie_at_the_threshold_is_live():
    r = LivenessResult(("live", "print"), torch.tensor([[0.5, 0.5], [0.25, 0.75]]))
    assert r.is_live(0.5) == [True, False]
    assert r.record(0, 0.5)["decision"] == "live"


def test_a_face_whose_top_category_is_live_is_live_at_the_default_threshold():
    """With many attack categories the live share can be under 0.5 while live still scores best
    (the rule before world v3 called such a face an attack)."""
    probs = torch.tensor([[0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], [0.2, 0.3, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05]])
    r = LivenessResult(("live", *[f"a{i}" for i in range(7)]), probs)
    assert r.live_score.tolist() == pytest.approx([0.75, 0.4])
    assert r.is_live() == [True, False]


# -- the probe --------------------------------------------------------------------------------------
def test_probe_separates_linearly_separable_categories():
    g = torch.Generator().manual_seed(0)
    centres = torch.eye(3, 8) * 4
    labels = ["live", "print", "replay"] * 10
    x = torch.stack([centres[["live", "print", "replay"].index(c)] for c in labels])
    x = x + 0.3 * torch.randn(30, 8, generator=g)
    probe = LivenessProbe.fit(x, labels)
    assert probe.classes == ("live", "print", "replay")
    r = probe.predict(x)
    assert r.method == "probe"
    assert r.is_live(0.5) == [c == "live" for c in labels]
    assert [a for a, c in zip(r.attacks, labels) if c != "live"] == [c for c in labels if c != "live"]
    torch.testing.assert_close(r.probs.sum(-1), torch.ones(30))


@pytest.mark.parametrize("labels", [["live", "live"], ["print", "print"]])
def test_probe_needs_both_classes(labels):
    with pytest.raises(ValueError, match="live and attack"):
        LivenessProbe.fit(torch.zeros(2, 4), labels)


# -- pairs for fine-tuning ---------------------------------------------------------------------------
def spoof_records():
    return [FaceRecord(file_name=f"{i}.png", image=b"x", caption="orig", live=(a is None), attack=a)
            for i, a in enumerate([None, "printed_photo", "face_swap", None, "screen_replay"])]


def test_liveness_pairs_caption_each_image_with_its_category_and_hold_out_excluded():
    p = load_prompts("liveness")
    texts = category_descriptions(p)
    pairs = liveness_pairs(spoof_records(), p, exclude=["face_swap"], seed=1)
    assert [r.file_name for r in pairs] == ["0.png", "1.png", "3.png", "4.png"]
    for r in pairs:
        assert r.caption in texts[record_category(r)]
    assert [r.caption for r in liveness_pairs(spoof_records(), p, exclude=["face_swap"], seed=1)] == \
        [r.caption for r in pairs]  # deterministic


def test_liveness_pairs_errors_name_the_problem():
    p = load_prompts("liveness")
    with pytest.raises(ValueError, match="exclude"):
        liveness_pairs(spoof_records(), p, exclude=["cartoon"])
    with pytest.raises(ValueError, match="7.png: category 'cartoon'"):
        liveness_pairs([FaceRecord(file_name="7.png", live=False, attack="cartoon")], p)
    with pytest.raises(ValueError, match="8.png: no live/attack label"):
        liveness_pairs([FaceRecord(file_name="8.png")], p)


# -- the real tiny model, files and the command ------------------------------------------------------
@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name in ("a.png", "b.jpg"):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / name)
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    return folder


def test_score_files_on_a_tiny_model_reports_unreadable_files(checkpoint, images):
    from flip.hub import load

    model, processor = load(checkpoint)
    clf = LivenessClassifier(model, processor)
    paths = sorted(str(p) for p in images.iterdir())
    batches = list(clf.score_files(paths, batch_size=8, num_workers=0))
    done = [p for b in batches for p in b.paths]
    assert [p.split("/")[-1] for p in done] == ["a.png", "b.jpg"]
    assert [f[0].split("/")[-1] for b in batches for f in b.failed] == ["broken.png"]
    r = LivenessResult.cat([b.result for b in batches if b.result is not None])
    torch.testing.assert_close(r.probs.sum(-1), torch.ones(2))
    direct = clf.score(done)
    torch.testing.assert_close(direct.probs, r.probs)


def _write_antispoof(root, live: int, attacks: dict[str, int], seed: int = 0):
    rng = np.random.default_rng(seed)
    for folder, n in [("live", live), *[(f"attack/{a}", n) for a, n in attacks.items()]]:
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (36, 36, 3), dtype=np.uint8)).save(root / folder / f"{i}.png")
    return root


def test_liveness_command_calibrates_on_dev_and_writes_json(checkpoint, images, tmp_path, capsys):
    from flip.cli import main as flip_main
    from flip.data.loaders import load_records
    from flip.hub import load
    from flip.liveness import calibrate

    dev = _write_antispoof(tmp_path / "dev", 3, {"printed_photo": 2, "screen_replay": 2})
    (dev / "live" / "broken.png").write_bytes(b"\x89PNG not really")
    assert flip_main(["liveness", str(images), "--model", checkpoint, "--calibrate", str(dev), "--json",
                      "--workers", "0"]) == 1  # faces/broken.png was skipped: a partial failure
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["path"].split("/")[-1] for line in lines] == ["a.png", "b.jpg"]
    model, processor = load(checkpoint)
    expected, failed = calibrate(LivenessClassifier(model, processor), load_records(dev, check_images=False),
                                 num_workers=0)
    assert [name.split("/")[-1] for name, _ in failed] == ["broken.png"]
    # 40 px squares are face crops for a 32 px model: taken whole under --faces auto, one record each
    assert all(line["face"] == 0 and line["whole_image"] and line["model"] == checkpoint for line in lines)
    live = [line["liveness"] for line in lines]
    assert all(x["threshold"] == pytest.approx(expected) for x in live)
    assert all(x["decision"] == ("live" if x["live_score"] >= expected else "attack") for x in live)
    assert "skipped (dev)" in err and "broken.png" in err and "skipped 1" in err


def test_liveness_command_bad_input(checkpoint, images, tmp_path, capsys):
    from flip.cli.liveness import main

    def flip_liveness(argv):
        from flip.cli import main as flip_main

        return flip_main(["liveness", *argv])

    dev = _write_antispoof(tmp_path / "dev", 2, {})
    assert flip_liveness([str(images), "--model", checkpoint, "--calibrate", str(dev), "--dataset", "antispoof",
                 "--workers", "0"]) == 2
    assert "only live" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.png"), "--model", checkpoint]) == 1  # a missing input: skipped
    with pytest.raises(SystemExit):
        main([str(images), "--threshold", "0.5", "--calibrate", str(dev)])


def test_liveness_train_runs_the_trainer_on_category_description_pairs(checkpoint, tmp_path, capsys):
    import yaml

    from flip.cli import main as flip_main
    from flip.data.loaders import load_records

    spoof = _write_antispoof(tmp_path / "spoof", 4, {"printed_photo": 2, "screen_replay": 2, "face_swap": 2})
    config = {
        "liveness": {"data": str(spoof), "split": None, "exclude": ["face_swap"]},
        "model": {"name": checkpoint},
        "data": {"eval_size": 0, "batch_size": 4, "num_workers": 0},
        "optim": {"lr": 1e-3, "warmup_steps": 0},
        "towers": {"vision": "lora", "text": "lock", "lora_rank": 2},
        "run": {"output_dir": str(tmp_path / "run"), "max_steps": 2, "progress": False, "save_every": 0,
                "precision": "fp32"},
    }
    path = tmp_path / "liveness.yaml"
    path.write_text(yaml.safe_dump(config))
    assert flip_main(["liveness-train", "--config", str(path)]) == 0
    pairs = list(load_records(tmp_path / "run" / "pairs", split="train"))
    texts = category_descriptions(load_prompts("liveness"))
    assert len(pairs) == 8 and {record_category(r) for r in pairs} == {"live", "printed_photo", "screen_replay"}
    assert all(r.caption in texts[record_category(r)] for r in pairs)
    from flip.hub import load

    model, processor = load(str(tmp_path / "run" / "final"))
    assert LivenessClassifier(model, processor).score(torch.zeros(1, 3, 32, 32)).probs.shape == (1, 9)
    assert flip_main(["liveness-train", "--config", str(path), "--liveness.exclude", "[cartoon]"]) == 2
    assert "cartoon" in capsys.readouterr().err


def test_liveness_train_refuses_a_previous_run_unless_resume_or_overwrite(checkpoint, tmp_path, capsys):
    """As `flip train` does (claim_output_dir), and before the pairs are rewritten."""
    import hashlib

    import yaml

    from flip.cli import main as flip_main

    run = tmp_path / "run"
    (run / "pairs" / "train").mkdir(parents=True)
    (run / "pairs" / "train" / "previous.txt").write_text("the previous run's pairs")
    (run / "checkpoint-last.pt").write_bytes(b"a previous run's checkpoint")
    (run / "notes.txt").write_text("the user's notes")
    spoof = _write_antispoof(tmp_path / "spoof", 2, {"printed_photo": 2})
    path = tmp_path / "liveness.yaml"
    path.write_text(yaml.safe_dump({
        "liveness": {"data": str(spoof), "split": None}, "model": {"name": checkpoint},
        "data": {"eval_size": 0, "batch_size": 4, "num_workers": 0}, "optim": {"warmup_steps": 0},
        "towers": {"vision": "lora", "text": "lock", "lora_rank": 2},
        "run": {"output_dir": str(run), "max_steps": 1, "progress": False, "save_every": 0, "precision": "fp32"}}))

    def tree():
        return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run.rglob("*")) if p.is_file()}

    before = tree()
    assert flip_main(["liveness-train", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds a previous run (checkpoint-last.pt" in err and "--overwrite" in err
    assert tree() == before  # nothing written, the pairs included
    (run / "checkpoint-last.pt").unlink()
    assert flip_main(["liveness-train", "--config", str(path), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    (run / "config.yaml").write_text("a previous run's config")
    assert flip_main(["liveness-train", "--config", str(path), "--overwrite"]) == 0
    assert (run / "notes.txt").read_text() == "the user's notes" and (run / "final" / "config.json").is_file()


def test_liveness_train_names_a_bad_config_file(tmp_path, capsys):
    from flip.cli import main as flip_main

    missing, bad, listed = tmp_path / "missing.yaml", tmp_path / "bad.yaml", tmp_path / "list.yaml"
    bad.write_text("liveness: [unclosed")
    listed.write_text("- liveness\n")
    for path, why in ((missing, "no config file"), (bad, "not valid YAML"), (listed, "must be a mapping")):
        assert flip_main(["liveness-train", "--config", str(path)]) == 2
        err = capsys.readouterr().err
        assert str(path) in err and why in err, err


# -- the evaluation task (plumbing only; the lead runs the real measurement) -------------------------
def test_eval_task_tables_zero_shot_probe_and_finetuned_with_an_unseen_attack(checkpoint, tmp_path):
    import yaml

    from eval.tasks.liveness import load_examples, main
    from flip.data.synthetic.world import SynthConfig, write_synthetic
    from flip.hub import load
    from flip.attack_metrics import calibrate_threshold, pad_report

    data = tmp_path / "spoof"
    write_synthetic(SynthConfig(kind="spoof", n=60, size=32, seed=0, images_per_identity=4), data, workers=1,
                    progress=False)
    images, labels = load_examples(data, "train", exclude=["face_swap"])
    assert "face_swap" not in labels and "live" in labels
    config = tmp_path / "ft.yaml"
    config.write_text(yaml.safe_dump({
        "model": {"name": checkpoint}, "data": {"eval_size": 0, "batch_size": 8, "num_workers": 0},
        "towers": {"vision": "train", "text": "lock"}, "optim": {"warmup_steps": 0},
        "run": {"max_steps": 1, "progress": False, "save_every": 0, "precision": "fp32"}}))
    out = tmp_path / "report"
    assert main(["--model", checkpoint, "--data", str(data), "--unseen", "face_swap", "--finetune-config", str(config),
                 "--methods", "zeroshot", "probe", "finetuned",
                 "--out", str(out), "--workers", "0", "--batch-size", "16"]) == 0
    report = json.loads((out / "liveness.json").read_text())
    rows = {r["category"]: r for r in report["rows"]}
    _, test_labels = load_examples(data, "test")
    assert set(rows) == set(test_labels) and "face_swap" in rows  # the test split's categories
    seen = sorted(set(rows) - {"live", "face_swap"})
    assert rows["face_swap"]["seen"] is False and rows[seen[0]]["seen"] is True and rows["live"]["metric"] == "BPCER"
    assert set(report["summary"]) == {"zeroshot", "probe", "finetuned"}
    assert report["summary"]["zeroshot"]["auc_unseen"] is not None
    assert report["config"]["finetune_recipe"]["liveness"]["exclude"] == ["face_swap"]  # the run's saved config

    # the zero-shot column equals flip.attack_metrics on independently computed scores, threshold from dev
    model, processor = load(checkpoint)
    clf = LivenessClassifier(model, processor)
    dev_images, dev_labels = load_examples(data, "val", exclude=["face_swap"])
    test_images, test_labels = load_examples(data, "test")
    t = calibrate_threshold(clf.score(dev_images).live_score.tolist(), dev_labels)
    expected = pad_report(clf.score(test_images).live_score.tolist(), test_labels, t)
    zs = report["summary"]["zeroshot"]
    assert zs["threshold"] == pytest.approx(t, abs=1e-6) and zs["acer"] == pytest.approx(expected.acer)
    assert rows["face_swap"]["zeroshot"] == pytest.approx(expected.apcer["face_swap"])
    assert rows["live"]["zeroshot"] == pytest.approx(expected.bpcer)
    assert "| **acer** |" in (out / "liveness.md").read_text()


def test_eval_task_scores_the_shipped_model_with_the_training_config_it_carries(checkpoint, tmp_path, capsys):
    import shutil

    import yaml

    from eval.tasks.liveness import TRAINING_CONFIG, main
    from flip.data.synthetic.world import SynthConfig, write_synthetic

    data = tmp_path / "spoof"
    write_synthetic(SynthConfig(kind="spoof", n=60, size=32, seed=0, images_per_identity=4), data, workers=1,
                    progress=False)
    shipped = shutil.copytree(checkpoint, tmp_path / "shipped")  # the same weights as --model: the same figures
    (shipped / TRAINING_CONFIG).write_text(yaml.safe_dump({"liveness": {"exclude": ["face_swap"]}}))
    args = ["--model", checkpoint, "--data", str(data), "--unseen", "face_swap", "--methods", "zeroshot", "shipped",
            "shipped_no_unseen_text", "zeroshot_no_unseen_text", "--shipped", str(shipped), "--out", str(tmp_path / "out"),
            "--workers", "0"]
    assert main(args) == 0
    report = json.loads((tmp_path / "out" / "liveness.json").read_text())
    assert report["config"]["shipped_recipe"] == {"liveness": {"exclude": ["face_swap"]}}
    zs, sh = report["summary"]["zeroshot"], report["summary"]["shipped"]
    assert sh["acer"] == pytest.approx(zs["acer"]) and sh["acer_default"] == pytest.approx(zs["acer_default"])
    control = report["summary"]["shipped_no_unseen_text"]  # no face_swap prompt: never named as the attack
    assert control["auc_unseen"] is not None and control["apcer_face_swap"] is not None
    scores = json.loads((tmp_path / "out" / "liveness_scores.json").read_text())
    assert scores["shipped_no_unseen_text"]["test"]["live_score"] != scores["shipped"]["test"]["live_score"]
    # the same weights, so the zero-shot control scores as the shipped one does
    assert scores["zeroshot_no_unseen_text"]["test"] == scores["shipped_no_unseen_text"]["test"]

    (shipped / TRAINING_CONFIG).write_text(yaml.safe_dump({"liveness": {"exclude": []}}))  # trained on face_swap
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert TRAINING_CONFIG in err and "trained on ['face_swap']" in err and len(err.splitlines()) == 1


def test_the_control_prompts_drop_only_the_unseen_categories():
    from eval.tasks.liveness import without_categories
    from flip.prompts import load_prompts

    full = load_prompts("liveness")
    control = without_categories("liveness", ["3d_mask", "face_swap"])
    assert control.classes == tuple(c for c in full.classes if c not in ("3d_mask", "face_swap"))
    assert all(control.descriptors[c] == full.descriptors[c] for c in control.classes)
    assert control.sha256 != full.sha256  # a model's shipped threshold does not carry over to it
    with pytest.raises(ValueError, match="selfie"):
        without_categories("liveness", ["selfie"])


def test_eval_task_refuses_a_finetuned_model_that_trained_on_an_unseen_attack(tmp_path, capsys):
    import yaml

    from eval.tasks.liveness import finetuned_recipe

    (tmp_path / "run" / "final").mkdir(parents=True)
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump({"liveness": {"exclude": ["3d_mask"]}}))
    assert finetuned_recipe(tmp_path / "run" / "final", ["3d_mask"])["liveness"]["exclude"] == ["3d_mask"]
    with pytest.raises(ValueError, match=r"trained on \['face_swap'\]"):
        finetuned_recipe(tmp_path / "run" / "final", ["3d_mask", "face_swap"])
    assert finetuned_recipe(tmp_path / "elsewhere", ["3d_mask"]) is None
    assert "cannot check" in capsys.readouterr().err


def test_eval_task_bad_input_is_one_clear_error(checkpoint, tmp_path, capsys):
    from eval.tasks.liveness import main

    data = _write_antispoof(tmp_path / "spoof" / "train", 2, {"printed_photo": 2})
    _write_antispoof(tmp_path / "spoof" / "val", 2, {"face_swap": 2})  # only live once face_swap is held out
    _write_antispoof(tmp_path / "spoof" / "test", 2, {"face_swap": 2})
    args = ["--model", checkpoint, "--data", str(data.parent), "--dataset", "antispoof", "--methods", "zeroshot",
            "--unseen", "face_swap",
            "--out", str(tmp_path / "out"), "--workers", "0"]
    assert main(args) == 2
    assert "only live" in capsys.readouterr().err
    assert main([*args[:1], str(tmp_path / "nothing"), *args[2:]]) == 2
    assert "nothing" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*args, "--run.max_steps", "1"])  # an override without --finetune-config
