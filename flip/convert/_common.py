"""Small pieces every converter shares: safe reading, wrapper unwrapping, the temperature range,
layer counting, the key-list messages, and `build_model` (the strict load every format ends in).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from ..config import FLIPConfig
from ..model import FLIPModel

#: OpenAI CLIP's image normalisation, also used by FLIP's authors and FaRL.
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)

#: Keys under which training checkpoints nest their state dict ({"model": ...} for BLIP/FLIP,
#: {"state_dict": ...} for FaRL and Lightning, {"module": ...} for DeepSpeed).
_WRAPPER_KEYS = ("model", "state_dict", "module")


def describe_keys(keys: Iterable[str], shown: int = 5) -> str:
    """"a, b, c, ... (12 in all)": a few sorted names, then the count."""
    keys = sorted(map(str, keys))
    text = ", ".join(keys[:shown])
    return text + (f", ... ({len(keys)} in all)" if len(keys) > shown else "")


def unwrap(obj: Mapping, source: str = "state dict") -> dict[str, torch.Tensor]:
    """The flat name -> tensor mapping inside a checkpoint, without DDP's `module.` prefix."""
    for key in _WRAPPER_KEYS:
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not obj:
        raise ValueError(f"{source}: does not hold a state dict (a non-empty mapping of names to tensors)")
    not_tensors = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise ValueError(f"{source}: entries that are not tensors: {describe_keys(not_tensors)}")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return dict(obj)


def read_state_dict(file: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a weights file, read safely: safetensors, or `torch.load(weights_only=True)`.

    No code stored in a checkpoint is ever executed; a pickle that needs more than plain tensors and
    containers is refused with an error naming the file.
    """
    file = Path(file)
    if not file.is_file():
        raise FileNotFoundError(f"no such weights file: {file}")
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(file)
        except Exception as err:
            raise ValueError(f"{file}: not a readable safetensors file ({err})") from None
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(
            f"{file}: cannot be read as a weights-only torch checkpoint ({type(err).__name__}: {err}). "
            "flip never unpickles arbitrary objects; re-save the state dict with torch.save(state_dict)."
        ) from None
    return unwrap(obj, source=str(file))


def temperature_fields(logit_scale: float) -> dict[str, float]:
    """FLIPConfig temperature fields that keep a checkpoint's own `logit_scale` unclamped.

    FLIP clamps the temperature to [0.001, 0.5]; a CLIP or SigLIP checkpoint may sit outside that
    range, so the range is widened to include it and converted logits stay exactly the source's.
    """
    temperature = math.exp(-float(logit_scale))
    return dict(
        temperature_init=temperature,
        temperature_min=min(0.001, temperature),
        temperature_max=max(0.5, temperature),
    )


def count_layers(state_dict: Mapping[str, torch.Tensor], prefix: str) -> int:
    """Number of blocks `prefix{i}.` in the state dict, checked to be numbered 0..n-1."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    found = {int(m.group(1)) for key in state_dict if (m := pattern.match(key))}
    if not found:
        raise ValueError(f"no layers named {prefix}N.* in the state dict")
    if found != set(range(len(found))):
        raise ValueError(f"layers {prefix}N.* are not numbered 0..{len(found) - 1}: {sorted(found)}")
    return len(found)


def require(state_dict: Mapping[str, torch.Tensor], *keys: str, layout: str) -> None:
    """Raise one error naming every key the layout needs but the state dict lacks."""
    missing = [k for k in keys if k not in state_dict]
    if missing:
        raise ValueError(f"not a complete {layout} state dict: missing {describe_keys(missing)}")


def scalar(tensor: torch.Tensor) -> torch.Tensor:
    """A one-element tensor as a 0-d tensor (SigLIP stores its scale and bias with shape (1,))."""
    if tensor.numel() != 1:
        raise ValueError(f"expected a single number, got a tensor of shape {tuple(tensor.shape)}")
    return tensor.reshape(())


def build_model(config: FLIPConfig, state_dict: Mapping[str, torch.Tensor], source: str = "state dict") -> FLIPModel:
    """A FLIPModel of `config` holding exactly `state_dict`, in eval mode.

    Strict: keys the model needs but the state dict lacks, keys it has but the model does not know,
    and tensors of the wrong shape are all reported in one error naming `source`.
    """
    from transformers.initialization import no_init_weights

    with no_init_weights():  # every weight is overwritten below
        model = FLIPModel(config)
    expected = model.state_dict()
    problems = []
    missing = expected.keys() - state_dict.keys()
    unexpected = state_dict.keys() - expected.keys()
    mis_shaped = [
        f"{k} {tuple(state_dict[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    if missing:
        problems.append(f"missing keys: {describe_keys(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {describe_keys(unexpected)}")
    if mis_shaped:
        problems.append(f"wrong shapes (checkpoint != model): {describe_keys(mis_shaped)}")
    if problems:
        raise ValueError(f"{source}: the converted weights do not fit the FLIP model: " + "; ".join(problems))
    model.load_state_dict(state_dict, strict=True)
    return model.eval()
