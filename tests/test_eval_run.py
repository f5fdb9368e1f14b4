"""The evaluation harness (eval/run.py) and its report (eval/report.py): data discovery, figure
flattening, the report's curves on hand-computed inputs, and the harness end to end on tiny
synthetic data with the tiny checkpoint (results.json with provenance, one self-contained page)."""

from __future__ import annotations

import base64
import html
import io
import json
import re
from argparse import Namespace

import numpy as np
import pytest

from eval import run
from eval.report import confusion_matrix, error_rates


def _args(**kw):
    base = dict(data=None, captions=None, spoof=None, scenes=None, qa=None)
    return Namespace(**{**base, **kw})


def test_find_data_looks_for_each_kind_by_its_names(tmp_path):
    (tmp_path / "synth-captions").mkdir()
    (tmp_path / "spoof").mkdir()
    (tmp_path / "synth-naming").mkdir()
    args = _args(data=str(tmp_path))
    assert run.find_data("captions", args) == tmp_path / "synth-captions"
    assert run.find_data("spoof", args) == tmp_path / "spoof"
    assert run.find_data("naming", args) == tmp_path / "synth-naming"
    assert run.find_data("qa", args) == tmp_path / "synth-captions"  # VQA asks about any labelled faces
    for fresh in ("synth-fresh", "synth-qa-fresh"):  # the test sets of new people before the training sets
        (tmp_path / fresh).mkdir()
    assert run.find_data("captions", args) == tmp_path / "synth-fresh"
    assert run.find_data("qa", args) == tmp_path / "synth-qa-fresh"
    with pytest.raises(run.SuiteSkipped, match=r"no spoof data under .*empty \(looked for spoof/ or synth-spoof-fresh/ "
                                               r"or synth-spoof/"):
        (tmp_path / "empty").mkdir()
        run.find_data("spoof", _args(data=str(tmp_path / "empty")))
    with pytest.raises(run.SuiteSkipped, match="pass --data DIR"):
        run.find_data("captions", _args())
    assert run.find_data("captions", _args(data=str(tmp_path), captions=str(tmp_path / "spoof"))) == tmp_path / "spoof"
    with pytest.raises(FileNotFoundError, match="--captions: no such dataset"):
        run.find_data("captions", _args(captions=str(tmp_path / "nowhere")))
    # --data pointing at one synthetic dataset of the right kind
    (tmp_path / "spoof" / "synth_config.json").write_text(json.dumps({"kind": "spoof"}))
    assert run.find_data("spoof", _args(data=str(tmp_path / "spoof"))) == tmp_path / "spoof"
    assert run.is_synthetic(tmp_path / "spoof") and not run.is_synthetic(tmp_path / "synth-captions")


def test_a_missing_task_module_is_a_skip():
    with pytest.raises(run.SuiteSkipped, match="eval/tasks/no_such_task.py does not exist"):
        run.task_module("no_such_task")


def test_flatten_keys_rows_by_their_first_string_field():
    obj = {"config": {"lr": 1.0}, "pairs": 3, "ok": True, "recall": {"r1": 0.5},
           "rows": [{"attribute": "hat", "n": 4, "descriptors": 0.75}, {"category": "live", "bpcer": 0.1}],
           "curve": {"k": [1, 2]}, "list": [7]}
    assert run.flatten(obj) == [("pairs", 3.0), ("recall/r1", 0.5), ("rows/hat/n", 4.0), ("rows/hat/descriptors", 0.75),
                                ("rows/live/bpcer", 0.1), ("list/0", 7.0)]


def test_a_run_is_dirty_when_the_tree_or_the_commit_changed_while_it_ran():
    clean = {"commit": "a1", "dirty": False}
    assert run.run_revision(clean, clean) == clean
    assert run.run_revision(clean, {"commit": "b2", "dirty": False}) == {"commit": "a1", "dirty": True}
    assert run.run_revision(clean, {"commit": "a1", "dirty": True})["dirty"] is True
    assert run.run_revision({"commit": "a1", "dirty": True}, clean)["dirty"] is True
    outside = {"commit": None, "dirty": None}  # an installed package, no git checkout
    assert run.run_revision(outside, outside) == outside


def test_error_rates_by_hand():
    # live 0.9, 0.4; attacks 0.6, 0.1. Thresholds 0.1, 0.4, 0.6, 0.9, inf; accepted as live when >= t.
    apcer, bpcer = error_rates([0.9, 0.6, 0.4, 0.1], ["live", "print", "live", "replay"])
    assert apcer.tolist() == [1.0, 0.5, 0.5, 0.0, 0.0]
    assert bpcer.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    with pytest.raises(ValueError, match="both live and attack"):
        error_rates([0.1, 0.2], ["live", "live"])


def test_confusion_matrix_by_hand():
    m = confusion_matrix(["a", "a", "b", "c"], ["a", "b", "b", "a"], ["a", "b", "c"])
    assert m.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Synthetic captions and spoof data at 32 px, as `flip data synth` writes them."""
    from flip.data.synthetic import SynthConfig, write_synthetic

    root = tmp_path_factory.mktemp("harness")
    write_synthetic(SynthConfig(kind="captions", n=48, size=32, seed=0), root / "synth-captions", progress=False,
                    workers=1)
    write_synthetic(SynthConfig(kind="spoof", n=72, size=32, seed=0), root / "synth-spoof", progress=False, workers=1)
    return root


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(d) for d in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def test_harness_end_to_end_on_the_quick_suites(world, checkpoint, tmp_path):
    from PIL import Image

    out = tmp_path / "report"
    status = run.main(["--suite", "retrieval", "attributes", "liveness", "naming", "vqa", "--model", checkpoint,
                       "--data", str(world), "--split", "train", "--limit", "24", "--min-group", "2",
                       "--workers", "0", "--out", str(out)])
    assert status == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results) >= {"model", "seed", "package_version", "created", "command", "suites", "figures"}
    suites = results["suites"]
    assert list(suites) == ["retrieval", "attributes", "fairness", "liveness", "naming", "vqa"]
    for name in ("retrieval", "attributes", "fairness", "liveness"):
        assert suites[name]["status"] == "ok", suites[name]
        assert suites[name]["synthetic"] is True and suites[name]["split"] == "train"
    assert suites["liveness"]["dataset"] == str(world / "synth-spoof")
    for name in ("naming", "vqa"):  # no scenes or qa data here (and perhaps no module yet)
        assert suites[name]["status"] == "skipped" and suites[name]["reason"]

    figures = results["figures"]
    assert {f["suite"] for f in figures} == {"retrieval", "attributes", "fairness", "liveness"}
    for f in figures:
        assert f["model"] == checkpoint and f["seed"] == 0 and f["package_version"] == results["package_version"]
        assert f["dataset"] and f["split"] == "train" and isinstance(f["value"], float)
    by_name = {(f["suite"], f["name"]): f["value"] for f in figures}
    attributes = json.loads((out / "attributes.json").read_text())
    assert by_name[("attributes", "mean/descriptors")] == attributes["mean"]["descriptors"]
    hat = next(r for r in attributes["rows"] if r["attribute"] == "hat")
    assert by_name[("attributes", "rows/hat/baseline")] == hat["baseline"]
    retrieval = json.loads((out / "retrieval.json").read_text())
    assert retrieval["pairs"] == by_name[("retrieval", "pairs")] and retrieval["curve"]["k"][-1] == retrieval["pairs"]
    assert by_name[("retrieval", "recall/t2i_r5")] == retrieval["recall"]["t2i_r5"]
    audit = json.loads((out / "fairness.json").read_text())["runs"][0]["audit"]
    e = audit[0]
    assert by_name[("fairness", f"{e['attribute']}/{e['group_field']}/gap")] == e["gap"]

    page = (out / "index.html").read_text()
    assert not re.search(r'(src|href)="(https?:|file:|/)', page)  # self-contained
    for heading in ("retrieval", "attributes", "fairness", "liveness"):
        assert f"<h2>{heading}</h2>" in page
    assert "synthetic face world" in page
    assert all(html.escape(suites[n]["reason"]) in page for n in ("naming", "vqa"))  # why they were skipped
    images = _images(page)
    assert len(images) >= 5  # recall curves, accuracy bars, confusion matrices, group accuracy, ROC/DET
    assert all(Image.open(io.BytesIO(png)).format == "PNG" for png in images)

    # the report rebuilds from results.json alone
    from eval.report import main as report_main

    (out / "index.html").unlink()
    assert report_main([str(out)]) == 0 and len(_images((out / "index.html").read_text())) == len(images)


def test_a_failing_suite_is_recorded_and_the_others_still_run(world, checkpoint, tmp_path):
    out = tmp_path / "report"
    status = run.main(["--suite", "retrieval", "liveness", "--model", checkpoint, "--data", str(world),
                       "--captions", str(world / "missing"), "--split", "train", "--limit", "30", "--workers", "0",
                       "--out", str(out)])
    assert status == 1
    suites = json.loads((out / "results.json").read_text())["suites"]
    assert suites["retrieval"]["status"] == "failed" and "no such dataset" in suites["retrieval"]["reason"]
    assert suites["liveness"]["status"] == "ok"
    assert "<h2>liveness</h2>" in (out / "index.html").read_text()


def test_speed_suite_reduced_sizes(checkpoint, tmp_path, capsys):
    out = tmp_path / "report"
    assert run.main(["--suite", "speed", "--quick", "--benchmarks", "classify", "synth", "--model", checkpoint,
                     "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"end-to-end / bare encoder at batch 8 over 32 images: \d+\.\d{3}", printed)
    results = json.loads((out / "results.json").read_text())
    speed = results["suites"]["speed"]["result"]
    assert set(speed["machine"]) >= {"cpu", "cores", "torch"} and speed["quick"] is True
    classify = speed["benchmarks"]["classify"]
    assert classify["status"] == "ok" and classify["model"] == checkpoint
    assert classify["headline"]["ratio"] == pytest.approx(classify["rows"][-1]["ratio"])
    assert classify["headline"]["ratio"] > 0
    assert speed["benchmarks"]["synth"]["headline"]["value"] > 0
    figures = [f for f in results["figures"] if f["suite"] == "speed"]
    assert figures and all(f["machine"] == speed["machine"] for f in figures)
    page = (out / "index.html").read_text()
    assert "<h2>speed</h2>" in page and speed["machine"]["cpu"] in page


@pytest.mark.slow
def test_speed_suite_runs_the_training_benchmark(tmp_path):
    out = tmp_path / "report"
    assert run.main(["--suite", "speed", "--quick", "--benchmarks", "train", "--out", str(out)]) == 0
    train = json.loads((out / "results.json").read_text())["suites"]["speed"]["result"]["benchmarks"]["train"]
    assert train["status"] == "ok" and train["headline"]["ratio"] > 0
    assert train["first_loss"]["flip"] == pytest.approx(train["first_loss"]["open_clip"], abs=1e-4)


def test_recall_curve_ks():
    from eval.tasks.retrieval import curve_ks

    assert curve_ks(1) == [1] and curve_ks(20) == [1, 2, 5, 10, 20] and curve_ks(7) == [1, 2, 5, 7]
    assert np.all(np.diff(curve_ks(1000)) > 0) and curve_ks(1000)[-2:] == [500, 1000]
