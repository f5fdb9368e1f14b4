"""Training under faults: a run owns its output folder, and SIGTERM or kill -9 at any step (also in the
middle of a checkpoint write) followed by `--resume` ends with the uninterrupted run's weights, metrics
without repeated steps, and no temporary files."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from test_train import _records, tiny_settings

from flip.cli import main as cli_main
from flip.train.checkpoint import LAST
from flip.train.config import load_config
from flip.train.metric_log import read_metrics

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from flip.data.formats import write_dataset

    root = tmp_path_factory.mktemp("pairs")
    write_dataset(_records(28), root, "imagefolder", "train")
    return root


def _settings(dataset, out, **run):
    """Deterministic, 2 epochs of 6 steps, a checkpoint every 2 steps."""
    return tiny_settings(dataset, out, run={"deterministic": True, "epochs": 2, "seed": 3, "save_every": 2, **run})


def _write_config(settings, path: Path) -> Path:
    path.write_text(yaml.safe_dump(settings))
    return path


def _one_line(capsys, *words):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for word in words:
        assert word in err, (word, err)


@pytest.fixture(scope="module")
def straight(dataset, tmp_path_factory):
    """The uninterrupted run: its final checkpoint, metric rows and folder."""
    from flip.train import train

    out = tmp_path_factory.mktemp("straight") / "run"
    result = train(load_config(None, _settings(dataset, out)))
    assert result.status == "finished" and result.step == 12
    return torch.load(out / LAST, weights_only=True)["objective"], read_metrics(out / "metrics.jsonl"), out


# -- a run owns its output folder -----------------------------------------------------------------
def test_a_new_run_refuses_a_folder_holding_a_previous_run(dataset, tmp_path, capsys):
    out = tmp_path / "run"
    config = _write_config(_settings(dataset, out, max_steps=2), tmp_path / "c.yaml")
    assert cli_main(["train", "--config", str(config)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    assert cli_main(["train", "--config", str(config)]) == 2
    _one_line(capsys, "flip train:", "run.output_dir", "--resume", "--overwrite")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before  # nothing touched


def test_overwrite_starts_afresh_and_keeps_the_users_files(dataset, tmp_path):
    out = tmp_path / "run"
    config = _write_config(_settings(dataset, out, max_steps=4), tmp_path / "c.yaml")
    assert cli_main(["train", "--config", str(config)]) == 0
    (out / "notes.txt").write_text("mine")
    (out / "final" / "eval.csv").write_text("mine too")
    assert cli_main(["train", "--config", str(config), "--run.max_steps", "2", "--overwrite"]) == 0
    steps = [row["step"] for row in read_metrics(out / "metrics.jsonl") if "loss" in row]
    assert steps == [1, 2]  # only the new run's rows, not appended to the old ones
    assert torch.load(out / LAST, weights_only=True)["step"] == 2
    assert (out / "notes.txt").read_text() == "mine" and (out / "final" / "eval.csv").read_text() == "mine too"
    assert load_config(out / "config.yaml").run.overwrite is False  # the saved recipe does not overwrite


def test_resume_with_nothing_to_resume_is_an_error(dataset, tmp_path, capsys):
    config = _write_config(_settings(dataset, tmp_path / "empty"), tmp_path / "c.yaml")
    assert cli_main(["train", "--config", str(config), "--resume"]) == 2
    _one_line(capsys, "flip train:", "run.resume", "nothing to resume", "empty")
    assert not (tmp_path / "empty").exists()
    assert cli_main(["train", "--config", str(config), "--resume", "--overwrite"]) == 2
    _one_line(capsys, "run.resume and run.overwrite")


def test_a_file_as_output_dir_is_one_line(dataset, tmp_path, capsys):
    (tmp_path / "out").write_text("a file")
    config = _write_config(_settings(dataset, tmp_path / "out"), tmp_path / "c.yaml")
    assert cli_main(["train", "--config", str(config)]) == 2
    _one_line(capsys, "run.output_dir", "is a file")
    assert (tmp_path / "out").read_text() == "a file"


# -- killed and resumed ---------------------------------------------------------------------------
#: Run in a child process: SIGKILL (or SIGTERM) the trainer after the metric row of step AT, or in
#: the middle of writing the checkpoint of step AT (some bytes written, then killed).
KILLER = """
import os, signal, sys
import torch
import flip.train.metric_log as metrics
from flip.cli import main
how, at = sys.argv[1], int(sys.argv[2])
sig = signal.SIGTERM if how == "term" else signal.SIGKILL
if how == "kill-in-save":
    save = torch.save
    def killed_save(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("step") == at:
            f.write(b"half a checkpoint"); f.flush(); os.kill(os.getpid(), signal.SIGKILL)
        return save(obj, f, *args, **kwargs)
    torch.save = killed_save
else:
    write = metrics.MetricWriter.write
    def killed_write(self, step, values):
        write(self, step, values)
        if step == at and "loss" in values:
            os.kill(os.getpid(), sig)
    metrics.MetricWriter.write = killed_write
sys.exit(main(["train", "--config", sys.argv[3]]))
"""


def _interrupt(how: str, at: int, config: Path) -> int:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", KILLER, how, str(at), str(config)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    return proc.returncode


def _check_resumed_run(out: Path, straight):
    weights, rows, _ = straight
    resumed = torch.load(out / LAST, weights_only=True)
    assert resumed["step"] == 12
    assert weights.keys() == resumed["objective"].keys()
    assert all(torch.equal(weights[k], resumed["objective"][k]) for k in weights)  # bit for bit
    got = read_metrics(out / "metrics.jsonl")
    keys = [(r["step"], "loss" in r) for r in got]
    assert len(keys) == len(set(keys)), keys  # no step twice
    assert [r["step"] for r in got] == [r["step"] for r in rows]
    assert [r.get("loss") for r in got] == [r.get("loss") for r in rows]
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert leftovers == [], leftovers
    assert (out / "final" / "model.safetensors").is_file()


def test_resuming_a_finished_run_repeats_nothing(dataset, tmp_path, straight):
    """What a SIGTERM after the last step leaves (the run finishes): --resume then neither evaluates
    again nor writes a metric row twice."""
    out = tmp_path / "run"
    shutil.copytree(straight[2], out)
    config = _write_config(_settings(dataset, out), tmp_path / "c.yaml")
    assert cli_main(["train", "--config", str(config), "--resume"]) == 0
    _check_resumed_run(out, straight)


@pytest.mark.parametrize("how, at", [("kill", 5), ("kill-in-save", 4), ("term", 3)])
def test_interrupted_then_resumed_equals_the_uninterrupted_run(dataset, tmp_path, straight, how, at):
    out = tmp_path / "run"
    config = _write_config(_settings(dataset, out), tmp_path / "c.yaml")
    code = _interrupt(how, at, config)
    assert code == (0 if how == "term" else -signal.SIGKILL)
    if how == "kill-in-save":
        assert any(p.name.startswith(f".{LAST}.tmp-") for p in out.iterdir())  # the killed write's file
    if how == "kill":  # rows past the last checkpoint (step 4) were written before the kill
        assert read_metrics(out / "metrics.jsonl")[-1]["step"] == 5
    assert cli_main(["train", "--config", str(config), "--resume"]) == 0
    _check_resumed_run(out, straight)


#: Every step of the 12 (the last one too), and every checkpoint write (every 2 steps and the last).
EVERY_STEP = ([(how, at) for how in ("kill", "term") for at in range(1, 13)]
              + [("kill-in-save", at) for at in range(2, 13, 2)])


@pytest.mark.slow  # 30 runs in child processes: part of `make test` and CI, skipped by `make test-fast`
@pytest.mark.parametrize("how, at", EVERY_STEP)
def test_interrupted_at_every_step_then_resumed(dataset, tmp_path, straight, how, at):
    out = tmp_path / "run"
    config = _write_config(_settings(dataset, out), tmp_path / "c.yaml")
    assert _interrupt(how, at, config) == (0 if how == "term" else -signal.SIGKILL)
    if (out / LAST).is_file():
        assert cli_main(["train", "--config", str(config), "--resume"]) == 0
    else:  # killed before the first checkpoint: nothing to resume, start over
        assert cli_main(["train", "--config", str(config), "--overwrite"]) == 0
    _check_resumed_run(out, straight)
