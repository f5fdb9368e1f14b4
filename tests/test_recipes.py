"""The training wing's recipes have one shape: a config dataclass that validates itself with errors
naming the field and round-trips through its saved YAML, `run(config)`, and a `flip` command."""

from __future__ import annotations

import dataclasses
import importlib
import inspect

import pytest

from flip.train.config import load_config, save_config

#: recipe module, its config class, a minimal valid config, a bad field and what the error must name
RECIPES = [
    ("pretrain", "TrainConfig", "train", {"data": {"train": "pairs"}}, {"optim": {"lr": -1}}, "optim.lr"),
    ("liveness", "LivenessTrainConfig", "liveness-train", {"liveness": {"data": "spoof"}},
     {"liveness": {"max_samples": 0}}, "liveness.max_samples"),
    ("naming", "NameFacesTrainConfig", "name-faces-train", {"data": "scenes"}, {"steps": 0}, "steps=0"),
    ("vqa_base", "VQABaseConfig", "vqa-base-train", {}, {"data": {"images": 0}}, "data.images"),
    ("vqa_lora", "VQALoRAConfig", "vqa-train", {}, {"eval": {"max_new_tokens": 0}}, "eval.max_new_tokens"),
]


@pytest.mark.parametrize("module, cls, command, valid, bad, named", RECIPES, ids=[r[0] for r in RECIPES])
def test_every_recipe_is_a_config_and_run_behind_a_command(module, cls, command, valid, bad, named, tmp_path):
    from flip.cli import COMMANDS
    from flip.train.config import merge

    recipe = importlib.import_module(f"flip.train.{module}")
    config_cls = getattr(recipe, cls)
    assert dataclasses.is_dataclass(config_cls)
    assert list(inspect.signature(recipe.run).parameters)[0] == "config"
    config = load_config(None, valid, cls=config_cls)
    assert load_config(save_config(config, tmp_path / "config.yaml"), cls=config_cls) == config
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        load_config(None, merge(valid, bad), cls=config_cls)
    assert command in COMMANDS


def test_liveness_config_writes_its_pairs_in_the_run_folder():
    from flip.train.liveness import LivenessTrainConfig

    config = load_config(None, {"liveness": {"data": "spoof"}, "run": {"output_dir": "runs/l"}}, cls=LivenessTrainConfig)
    assert (config.data.train, config.data.split) == ("runs/l/pairs", "train")
    with pytest.raises(ValueError, match="data.split"):
        load_config(None, {"liveness": {"data": "spoof"}, "data": {"split": "val"}}, cls=LivenessTrainConfig)
