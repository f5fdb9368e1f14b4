"""flip.train.naming and `flip name-faces-train`: SECLA and SECLA-B learn a hidden face-name pairing
from pairs alone; the command writes heads that `flip name-faces --heads` reads."""

from __future__ import annotations

import json

import pytest
import torch

from flip.naming.pipeline import load_heads
from flip.naming.secla import SECLAConfig, SECLAHeads
from flip.naming.corpus import PairFeatures, label_pairs
from flip.train.naming import NameFacesTrainConfig, build_heads, pad_batch, save_heads, train_heads


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def corpus(n_pairs=60, people=10, d=12, seed=0):
    """Pairs of 1-3 faces; each face named with probability 0.7, 0-1 extra names of absent people."""
    g = torch.Generator().manual_seed(seed)
    face_feat, name_feat = torch.randn(people, d, generator=g), torch.randn(people, d, generator=g)
    names = [f"Person {chr(65 + i)}" for i in range(people)]
    pairs = []
    for _ in range(n_pairs):
        order = torch.randperm(people, generator=g).tolist()
        k = int(torch.randint(1, 4, (), generator=g))
        shown, others = order[:k], order[k:]
        named = [i for i in shown if torch.rand((), generator=g) < 0.7] or shown[:1]
        absent = others[:1] if torch.rand((), generator=g) < 0.4 else []
        mentioned = named + absent
        faces = face_feat[shown] + 0.05 * torch.randn(k, d, generator=g)
        pairs.append(PairFeatures(faces, [names[i] for i in mentioned], name_feat[mentioned],
                                  [names[i] if i in named else None for i in shown]))
    return pairs


def accuracy(heads, pairs):
    predicted = label_pairs(heads, pairs)
    right = sum(p == t for pred, pair in zip(predicted, pairs) for p, t in zip(pred, pair.face_names) if t is not None)
    return right / sum(t is not None for pair in pairs for t in pair.face_names)


@pytest.mark.parametrize("method, names", [("secla", "text"), ("secla-b", "text"), ("secla", "table")])
def test_training_learns_who_is_who(one_thread, method, names):
    pairs = corpus()
    config = NameFacesTrainConfig(method=method, names=names, steps=120, stage1_steps=40, batch_size=16, lr=1e-2,
                                  heads={"dim": 16, "hidden": 32})
    torch.manual_seed(1)
    untrained = accuracy(build_heads(config, pairs).eval(), pairs)
    trained = accuracy(train_heads(config, pairs), pairs)
    assert trained >= 0.9 > untrained


def test_secla_b_needs_easy_pairs():
    pairs = [p for p in corpus() if len(p.faces) > 1]
    with pytest.raises(ValueError, match="stage 1 needs at least 2 easy pairs"):
        train_heads(NameFacesTrainConfig(method="secla-b", steps=10, stage1_steps=5), pairs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(method="clip"), "method='clip'"),
    (dict(names="bert"), "names='bert'"),
    (dict(faces="facenet"), "faces='facenet'"),
    (dict(steps=0), "steps=0"),
    (dict(method="secla-b", steps=10, stage1_steps=10), "stage1_steps=10"),
    (dict(heads={"depth": 3}), "heads: unknown key"),
    (dict(save_every=-1), "save_every=-1"),
])
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NameFacesTrainConfig(**kwargs)


@pytest.mark.parametrize("method", ["secla", "secla-b"])
def test_resume_gives_the_uninterrupted_result(one_thread, tmp_path, method):
    pairs = corpus(n_pairs=20)
    base = dict(method=method, steps=8, stage1_steps=3, batch_size=4, heads={"dim": 8, "hidden": 8}, save_every=5)
    straight = train_heads(NameFacesTrainConfig(**base), pairs)
    first = NameFacesTrainConfig(**{**base, "steps": 8})
    train_heads(first, pairs, checkpoint_dir=tmp_path)  # writes checkpoint-last.pt at step 5
    resumed = train_heads(NameFacesTrainConfig(**base, resume="auto"), pairs, checkpoint_dir=tmp_path)
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train_heads(NameFacesTrainConfig(**base, resume=str(tmp_path / "missing.pt")), pairs, checkpoint_dir=tmp_path)


def test_pad_batch():
    out, mask = pad_batch([torch.ones(1, 2), 2 * torch.ones(3, 2)])
    assert out.shape == (2, 3, 2) and mask.tolist() == [[True, False, False], [True, True, True]]
    assert out[0, 1:].abs().sum() == 0 and out[1].sum() == 12


def test_heads_checkpoint_round_trip(tmp_path):
    heads = train_heads(NameFacesTrainConfig(steps=2, heads={"dim": 8, "hidden": 8}), corpus(n_pairs=8))
    loaded = load_heads(save_heads(heads, tmp_path / "heads.pt"))
    x = torch.randn(3, 12)
    assert torch.equal(loaded.faces(x), heads.faces(x)) and torch.equal(loaded.noname, heads.noname)


def test_command_end_to_end(tmp_path, capsys):
    from conftest import tiny_config
    from flip.cli.name_faces import main as name_faces
    from flip.cli.name_faces_train import main
    from flip.data.synthetic.world import SynthConfig, write_synthetic
    from flip.hub import save
    from flip.model import FLIPModel
    from flip.processor import FLIPProcessor

    torch.manual_seed(0)
    model_dir = save(FLIPModel(tiny_config()).eval(),
                     FLIPProcessor.from_settings(tokenizer="minilm", image_size=32, max_length=16), tmp_path / "tiny")
    write_synthetic(SynthConfig(kind="scenes", n=12, size=48, seed=2, split_fractions={"train": 1}),
                    tmp_path / "scenes", progress=False, workers=1)
    config = tmp_path / "naming.yaml"
    config.write_text("method: secla-b\nsteps: 6\nstage1_steps: 2\nbatch_size: 4\nheads: {dim: 8, hidden: 8}\n")
    out = tmp_path / "run"
    rc = main(["--config", str(config), "--data", str(tmp_path / "scenes"), "--model", str(model_dir),
               "--output_dir", str(out)])
    assert rc == 0 and (out / "heads.pt").is_file() and "method: secla-b" in (out / "config.yaml").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"baseline", "secla-b"} and all(0 <= v <= 1 for m in metrics.values() for v in m.values())
    image = next((tmp_path / "scenes").rglob("*.png"))
    capsys.readouterr()
    rc = name_faces([str(image), "--caption", "Ana Silva and Kofi Mensah.", "--boxes", "2,2,20,20;24,2,46,20",
                     "--model", str(model_dir), "--heads", str(out / "heads.pt"), "--json"])
    faces = [json.loads(line)["naming"] for line in capsys.readouterr().out.splitlines()]
    assert rc == 0 and len(faces) == 2
    assert {f["name"] for f in faces} <= {"Ana Silva", "Kofi Mensah", None}
    other = save_heads(SECLAHeads(SECLAConfig(face_dim=7, name_dim=7, dim=4, hidden=4)), tmp_path / "other.pt")
    rc = name_faces([str(image), "--caption", "Ana Silva.", "--boxes", "2,2,20,20", "--model", str(model_dir),
                     "--heads", str(other)])
    assert rc == 2 and "trained on 7-d features" in capsys.readouterr().err


def test_command_refuses_a_previous_run_unless_resume_or_overwrite(tmp_path, capsys):
    """As `flip train` does (claim_output_dir): checked before the model loads."""
    from flip.cli.name_faces_train import main

    out = tmp_path / "run"
    out.mkdir()
    (out / "heads.pt").write_bytes(b"a previous run's heads")
    (out / "notes.txt").write_text("the user's notes")
    argv = ["--data", str(tmp_path / "scenes"), "--model", str(tmp_path / "no-model"), "--output_dir", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "output_dir " + str(out) + ": holds a previous run (heads.pt" in err and "--overwrite" in err
    assert (out / "heads.pt").read_bytes() == b"a previous run's heads"
    assert main([*argv, "--resume"]) == 2 and "resume: nothing to resume" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 2  # the run files go; then the missing model stops it
    assert "no-model" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_command_errors(tmp_path, capsys):
    from flip.cli.name_faces_train import main

    assert main(["--method", "clip", "--data", "x"]) == 2 and "method='clip'" in capsys.readouterr().err
    assert main([]) == 2 and "data: give the scenes dataset" in capsys.readouterr().err
    assert main(["--config", str(tmp_path / "nope.yaml")]) == 2 and "no config file" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["naming_secla.yaml", "naming_secla_b.yaml"])
def test_shipped_configs_parse(name):
    from pathlib import Path

    import yaml

    from flip.train.config import from_dict

    path = Path(__file__).parent.parent / "finetune" / "configs" / name
    config = from_dict(NameFacesTrainConfig, yaml.safe_load(path.read_text()))
    assert config.method == ("secla-b" if "_b" in name else "secla")


def test_evaluation_of_baseline_and_trained_heads(one_thread):
    """Frozen features that already align (face = name feature + noise): the untrained baseline
    is perfect; random features: it is not, and SECLA fixes that."""
    from flip.naming.corpus import evaluate_pairs

    aligned = corpus()
    for pair in aligned:
        lookup = dict(zip(pair.names, pair.name_features))
        for f, name in enumerate(pair.face_names):
            if name is not None:
                pair.faces[f] = lookup[name] + 0.01 * torch.randn(len(lookup[name]))
    scores = evaluate_pairs(None, aligned, threshold=0.9)
    assert scores["precision"] == 1.0 and scores["recall"] == 1.0
    pairs = corpus()
    baseline = evaluate_pairs(None, pairs, threshold=-1.0)
    heads = train_heads(NameFacesTrainConfig(steps=120, batch_size=16, lr=1e-2, heads={"dim": 16, "hidden": 32}), pairs)
    trained = evaluate_pairs(heads, pairs)
    assert trained["f1"] > 0.85 > baseline["f1"]
    assert set(trained) == {"precision", "recall", "f1", "precision_noname", "recall_noname", "f1_noname"}
    assert trained["precision_noname"] == trained["recall_noname"] == trained["f1_noname"]
