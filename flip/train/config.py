"""The pretraining recipe as one dataclass: `TrainConfig`, loaded from YAML plus dotted overrides.

Design choices:
- One dataclass with a nested section per concern (model, data, loss, optim, towers, run), each
  field documented once by its comment; every section validates itself in `__post_init__` with a
  message naming the field, and `TrainConfig` checks what spans sections.
- A YAML file holds any subset of the fields; `--section.field value` overrides are applied on top
  (values read as YAML scalars, so `--run.epochs 3`, `--loss.momentum null`,
  `--towers.text lora` all work). Unknown keys and wrong types are errors naming the key.
- The resolved config (`to_dict`) is written beside the checkpoints as `config.yaml`, and loading
  that file gives the same config back.
- Defaults are CLIP's (InfoNCE, no momentum); `finetune/configs/pretrain_*.yaml` holds FLIP's
  recipe (momentum 0.995, queue, alpha 0.4, ITM) and the small-CPU recipe.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TOWER_MODES = ("train", "lock", "lora")
LOSSES = ("itc", "sigmoid")
PRECISIONS = ("auto", "fp32", "bf16")
TEXT_INITS = ("minilm",)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass
class ModelSection:
    name: str = "flip-tiny"  # a preset (random init) or anything flip.load accepts (continue training it)
    overrides: dict = field(default_factory=dict)  # FLIPConfig fields merged into the preset; nested dicts merge
    processor: dict = field(default_factory=dict)  # FLIPProcessor.from_settings overrides (image_size, max_length...)
    text_init: str | None = None  # "minilm": start the text tower from the pretrained all-MiniLM-L6-v2

    def __post_init__(self):
        _check(bool(self.name), "model.name must name a preset or a checkpoint")
        _check(self.text_init in (None, *TEXT_INITS), f"model.text_init must be one of {TEXT_INITS} or null, "
               f"got {self.text_init!r}")


@dataclass
class DataSection:
    train: str = ""  # the training pairs: a dataset folder or file that flip.data.loaders reads
    dataset: str = "auto"  # its layout: a flip.data.loaders name (flip, facecaption, imagefolder, ...) or auto
    options: dict = field(default_factory=dict)  # the loader's own options (e.g. image_root, format)
    split: str | None = None  # the split of `train` to read, when the folder holds several
    eval: str | None = None  # held-out pairs (same layout and options); None: `eval_size` pairs split off `train`
    eval_split: str | None = None  # the split of `eval` to read
    eval_size: int = 1000  # held-out pairs: split off `train` when `eval` is None, else the first of `eval`; 0: none
    max_samples: int | None = None  # use only the first N training pairs (quick runs)
    batch_size: int = 64  # pairs per process and micro-batch; the loss sees batch_size x processes
    num_workers: int = 2  # DataLoader worker processes decoding images
    check_images: bool = True  # verify every image while reading the dataset (one pass at start)
    low_res: float = 0.0  # share of training images shrunk and scaled back up (small faces in photos); 0: none
    low_res_min: int = 16  # the smallest side, in pixels, such an image is shrunk to

    def __post_init__(self):
        _check(self.batch_size >= 1, f"data.batch_size must be >= 1, got {self.batch_size}")
        _check(0.0 <= self.low_res <= 1.0, f"data.low_res must be in [0, 1], got {self.low_res}")
        _check(self.low_res_min >= 4, f"data.low_res_min must be >= 4 pixels, got {self.low_res_min}")
        _check(self.num_workers >= 0, f"data.num_workers must be >= 0, got {self.num_workers}")
        _check(self.eval_size >= 0, f"data.eval_size must be >= 0, got {self.eval_size}")
        _check(self.max_samples is None or self.max_samples >= 1,
               f"data.max_samples must be >= 1 or null, got {self.max_samples}")


@dataclass
class LossSection:
    kind: str = "itc"  # "itc": symmetric InfoNCE (CLIP, FLIP); "sigmoid": SigLIP's pairwise loss
    momentum: float | None = None  # EMA decay of the momentum encoders (FLIP: 0.995); null: none
    queue_size: int = 0  # momentum embeddings of past batches kept as extra keys (FLIP: 57600); needs momentum
    alpha: float = 0.0  # weight of the momentum model's soft targets (FLIP: 0.4); needs momentum
    alpha_ramp_epochs: float = 2.0  # alpha grows linearly from 0 over this many epochs (FLIP: 2)
    itm_weight: float = 0.0  # weight of image-text matching on mined hard negatives (FLIP: 1.0)

    def __post_init__(self):
        _check(self.kind in LOSSES, f"loss.kind must be one of {LOSSES}, got {self.kind!r}")
        _check(self.momentum is None or 0.0 < self.momentum < 1.0,
               f"loss.momentum must be in (0, 1) or null, got {self.momentum}")
        _check(self.queue_size >= 0, f"loss.queue_size must be >= 0, got {self.queue_size}")
        _check(0.0 <= self.alpha <= 1.0, f"loss.alpha must be in [0, 1], got {self.alpha}")
        _check(self.alpha_ramp_epochs >= 0, f"loss.alpha_ramp_epochs must be >= 0, got {self.alpha_ramp_epochs}")
        _check(self.itm_weight >= 0, f"loss.itm_weight must be >= 0, got {self.itm_weight}")
        if self.momentum is None:
            _check(self.queue_size == 0, "loss.queue_size needs loss.momentum (the queue holds momentum embeddings)")
            _check(self.alpha == 0, "loss.alpha needs loss.momentum (the soft targets come from the momentum model)")
        if self.kind == "sigmoid":
            _check(self.momentum is None, "loss.momentum, queue and soft targets belong to loss.kind 'itc', "
                   "not 'sigmoid'")


@dataclass
class OptimSection:
    lr: float = 5e-4  # peak learning rate of AdamW
    weight_decay: float = 0.1  # off for norms, biases, embeddings, temperature and logit bias
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    warmup_steps: int = 100  # linear warm-up from 0, in optimiser steps; then cosine decay
    min_lr_ratio: float = 0.0  # the cosine ends at lr * min_lr_ratio
    accumulate: int = 1  # micro-batches per optimiser step (each micro-batch is its own contrastive batch)
    clip_grad_norm: float | None = 1.0  # max global gradient norm; null: no clipping

    def __post_init__(self):
        self.betas = tuple(self.betas)
        _check(self.lr > 0, f"optim.lr must be > 0, got {self.lr}")
        _check(self.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {self.weight_decay}")
        _check(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
               f"optim.betas must be two numbers in [0, 1), got {self.betas}")
        _check(self.warmup_steps >= 0, f"optim.warmup_steps must be >= 0, got {self.warmup_steps}")
        _check(0 <= self.min_lr_ratio <= 1, f"optim.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        _check(self.accumulate >= 1, f"optim.accumulate must be >= 1, got {self.accumulate}")
        _check(self.clip_grad_norm is None or self.clip_grad_norm > 0,
               f"optim.clip_grad_norm must be > 0 or null, got {self.clip_grad_norm}")


@dataclass
class TowersSection:
    vision: str = "train"  # "train", "lock" (frozen, eval mode: LiT) or "lora" (peft adapters; the
    #   temperature then stays the base's, and a run whose other tower is locked also saves `adapter/`)
    text: str = "train"
    lock_projection: bool = False  # also freeze a locked tower's projection (LiT locks the whole tower)
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    cache_locked_text: bool = True  # a locked text tower encodes each caption once, before training (not with ITM)
    text_cache_dir: str | None = None  # where those rows are kept for a resume or another run on the same
    #   captions and tower (safetensors, keyed); None: <run.output_dir>/text-cache; "": not kept

    def __post_init__(self):
        for name in ("vision", "text"):
            mode = getattr(self, name)
            _check(mode in TOWER_MODES, f"towers.{name} must be one of {TOWER_MODES}, got {mode!r}")
        _check(not (self.vision == self.text == "lock"), "towers.vision and towers.text cannot both be 'lock'")
        _check(self.lora_rank >= 1, f"towers.lora_rank must be >= 1, got {self.lora_rank}")
        _check(0 <= self.lora_dropout < 1, f"towers.lora_dropout must be in [0, 1), got {self.lora_dropout}")


@dataclass
class RunSection:
    output_dir: str = "runs/flip"  # checkpoints, config.yaml, metrics.jsonl and the final model
    epochs: int = 1
    max_steps: int | None = None  # stop after this many optimiser steps (the schedule spans them)
    seed: int = 0
    deterministic: bool = False  # torch.use_deterministic_algorithms: resumed runs repeat losses exactly
    device: str = "auto"  # "auto": cuda when available, else cpu
    precision: str = "auto"  # "auto": bf16 autocast where the device supports it, else fp32
    compile: bool = False  # torch.compile the towers
    gradient_checkpointing: bool = False  # recompute tower activations in backward (less memory)
    log_every: int = 10  # optimiser steps between metric lines
    save_every: int = 500  # optimiser steps between checkpoints (and at each epoch end); 0: epoch ends only
    eval_every_epoch: bool = True  # held-out retrieval and zero-shot figures after each epoch (always at the end)
    progress: bool = True  # a tqdm bar on the first process
    tensorboard: bool = False  # also write TensorBoard events (needs the tensorboard package)
    resume: str | None = None  # a checkpoint to continue, or "auto": output_dir/checkpoint-last.pt (an error if none)
    overwrite: bool = False  # start afresh in a non-empty output_dir, removing the run files there (others stay)
    find_unused_parameters: bool = False  # DDP's option, for towers whose parameters go partly unused

    def __post_init__(self):
        _check(bool(self.output_dir), "run.output_dir must be set")
        _check(self.epochs >= 1, f"run.epochs must be >= 1, got {self.epochs}")
        _check(self.max_steps is None or self.max_steps >= 1, f"run.max_steps must be >= 1 or null, got {self.max_steps}")
        _check(self.precision in PRECISIONS, f"run.precision must be one of {PRECISIONS}, got {self.precision!r}")
        _check(self.log_every >= 1, f"run.log_every must be >= 1, got {self.log_every}")
        _check(self.save_every >= 0, f"run.save_every must be >= 0, got {self.save_every}")
        _check(not (self.resume is not None and self.overwrite),
               "run.resume and run.overwrite contradict each other: continue the run, or start it over")


@dataclass
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    loss: LossSection = field(default_factory=LossSection)
    optim: OptimSection = field(default_factory=OptimSection)
    towers: TowersSection = field(default_factory=TowersSection)
    run: RunSection = field(default_factory=RunSection)

    def __post_init__(self):
        _check(bool(self.data.train), "data.train must name the training dataset")
        if self.loss.itm_weight > 0:
            _check(self.towers.text != "lock", "loss.itm_weight > 0 trains the text tower's cross-attention; "
                   "towers.text cannot be 'lock'")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------
# Building from plain data


def from_dict(cls, data: dict, where: str = ""):
    """Build dataclass `cls` from a nested dict, checking keys and value types (errors name the key)."""
    if not isinstance(data, dict):
        raise ValueError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown config key(s) {[_join(where, k) for k in unknown]}; "
                         f"known keys{' of ' + where if where else ''}: {sorted(names)}")
    kwargs = {name: _coerce(hints[name], value, _join(where, name)) for name, value in data.items()}
    return cls(**kwargs)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _coerce(tp, value: Any, key: str):
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value if value is not None else {}, key)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, key)
            except ValueError as err:
                errors.append(str(err))
        raise ValueError(errors[0] if len(errors) == 1 else f"{key}: {value!r} fits none of {tp}")
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ValueError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"{key}: expected a string, got {value!r}")
    if tp is dict or origin is dict:
        if isinstance(value, dict):
            return value
        raise ValueError(f"{key}: expected a mapping, got {value!r}")
    if origin in (tuple, list) or tp in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{key}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ValueError(f"{key}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        return (tuple if (origin or tp) is tuple else list)(_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    raise TypeError(f"{key}: unsupported config type {tp}")  # a bug in the dataclass, not in the input


# ---------------------------------------------------------------------------------------------
# Files and overrides


def parse_overrides(args: list[str]) -> dict:
    """`["--optim.lr", "1e-4", "--run.epochs=3"]` -> {"optim": {"lr": "1e-4"}, "run": {"epochs": 3}}.

    Values are read as YAML scalars or flow collections (`null`, `true`, `[0.9, 0.99]`, `{a: 1}`).
    """
    import yaml

    out: dict = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise ValueError(f"expected an override --section.key VALUE, got {arg!r}")
        key, eq, raw = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(args):
                raise ValueError(f"override --{key} has no value")
            raw = args[i + 1]
            i += 1
        i += 1
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError as err:
            raise ValueError(f"override --{key}: cannot read {raw!r} ({err})") from None
        parts = key.split(".")
        if not all(parts):
            raise ValueError(f"override --{key}: empty key part")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override --{key} conflicts with another override")
        node[parts[-1]] = value
    return out


def merge(base: dict, update: dict) -> dict:
    """Recursive dict merge: mappings merge key by key, anything else in `update` replaces."""
    out = dict(base)
    for key, value in update.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_yaml(path: str | Path) -> dict:
    """A config file's mapping; a missing file, bad YAML or a non-mapping is an error naming the file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no config file {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the config must be a mapping of sections, got {type(data).__name__}")
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | dict | None = None, cls: type = None):
    """The `cls` (default: TrainConfig) of a YAML file (optional) with overrides applied (a list of CLI
    args or a dict); other recipes (e.g. flip.train.vqa_lora) pass their own config dataclass."""
    data = read_yaml(path) if path is not None else {}
    if overrides:
        data = merge(data, parse_overrides(overrides) if isinstance(overrides, list) else overrides)
    try:
        return from_dict(cls or TrainConfig, data)
    except ValueError as err:
        raise ValueError(f"{path}: {err}" if path else str(err)) from None


def config_yaml(config) -> str:
    """A resolved config dataclass (TrainConfig, or any recipe's) as YAML text, fields in order."""
    import yaml

    def plain(value):  # YAML's safe dumper knows lists, not tuples
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return [plain(v) for v in value] if isinstance(value, (list, tuple)) else value

    return yaml.safe_dump(plain(dataclasses.asdict(config)), sort_keys=False)


def save_config(config, path: str | Path) -> Path:
    """Write a resolved config dataclass as YAML (`config_yaml`), atomically;
    `load_config(path, cls=type(config))` reads it back. Every recipe saves its config through this."""
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(config_yaml(config))
    os.replace(tmp, path)
    return path
