"""`flip.export`: a FLIPModel's two towers as ONNX files for onnxruntime, optionally int8.

    model, processor = flip.load("flip-tiny-synth")
    export_onnx(model, processor, "flip-onnx/", int8=True)
    # then: flip.onnx_backend.OnnxFLIP("flip-onnx/"), or `flip classify --backend onnx --model flip-onnx/`

An export folder holds:
- `image.onnx`: pixel_values (N, 3, S, S) float32 -> image_embeds (N, D), L2-normalised.
- `text.onnx`: input_ids (N, L) int64 [, attention_mask (N, L) int64] -> text_embeds (N, D), L2-normalised.
- `flip_onnx.json` (`ExportInfo`): the processor settings, the logit scale, bias and temperature, the
  text fingerprint of the torch model (so both backends share one text cache) and a fingerprint of all
  its weights.
- the processor's own files (`preprocessor_config.json`, tokenizer), read only when a text must be
  tokenized (a text-cache miss).

Design choices:
- torch's TorchScript exporter (`dynamo=False`): it needs nothing beyond torch and onnx, and traces
  every tower family flip builds (CLIP and SigLIP vision; BERT, BLIP text, CLIP and SigLIP text).
  Each export is checked against torch on its example inputs before it is written.
- `int8=True` quantises the image tower with onnxruntime's quantisation: dynamic (weights int8,
  activations quantised per batch) by default, static when calibration images are given. The text
  tower stays float32: it runs once per prompt file, its embeddings are cached, and keeping it exact
  keeps the cache shared with the float32 export and the torch model.
- The folder is written beside its destination and renamed into place (`flip.hub.writing_folder`); an
  existing one is written into only with `overwrite=True`, which replaces an earlier export's files
  and keeps any other file there. A file at the destination is always refused.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .hub import FLIP_FILES, writing_folder
from .zeroshot import config_identity, text_fingerprint
from .onnx_backend import FORMAT, IMAGE_FILE, INFO_NAME, TEXT_FILE, ExportInfo

DEFAULT_OPSET = 17
#: Largest |onnx - torch| accepted on the example inputs at export (float32); the tests hold 1e-4.
EXPORT_TOLERANCE = 1e-4
#: What an export folder holds that `export_onnx` wrote (besides the processor's files, in FLIP_FILES).
EXPORT_FILES = frozenset({IMAGE_FILE, TEXT_FILE, INFO_NAME, IMAGE_FILE + ".fp32"})


class _ImageTower(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model.encode_image(pixel_values)


class _TextTower(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask=None):
        return self.model.encode_text(input_ids, attention_mask)


def model_fingerprint(model) -> str:
    """A hash of a model's config and every weight and buffer (in state-dict order)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(config_identity(model.config).encode())
    for name, tensor in model.state_dict().items():
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def export_onnx(model, processor, out_dir: str | os.PathLike, *, int8: bool = False, opset: int = DEFAULT_OPSET,
                calibration_images: Sequence | None = None, overwrite: bool = False) -> Path:
    """Write `model`'s image and text towers, each ending at its normalised embedding, to `out_dir`.

    int8: quantise the image tower (dynamic; static when `calibration_images`, paths or anything
    `processor.images` reads, are given). Returns the folder.
    """
    import onnxruntime  # noqa: F401  (fail before any work when the extra is missing)

    out_dir = check_export_destination(out_dir, overwrite)
    if not isinstance(opset, int) or not 14 <= opset <= 21:
        raise ValueError(f"opset must be an integer in [14, 21] (scaled dot-product attention needs 14), got {opset!r}")
    if calibration_images is not None and not int8:
        raise ValueError("calibration images are for static int8 quantisation: pass int8=True too")
    device, dtype, was_training = model.device, model.dtype, model.training
    model.to("cpu", torch.float32).eval()  # traced in float32 on the CPU; put back as it was afterwards
    replaces = FLIP_FILES | EXPORT_FILES if (out_dir / INFO_NAME).is_file() else frozenset()
    try:
        with writing_folder(out_dir, replaces) as tmp:
            _write(model, processor, tmp, int8, opset, calibration_images)
    finally:
        model.to(device, dtype).train(was_training)
    return out_dir


def check_export_destination(out_dir: str | os.PathLike, overwrite: bool = False,
                             flag: str = "overwrite=True") -> Path:
    """Refuse a file, or a non-empty folder unless `overwrite` (`flag`: how the caller's user says so)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir}: is a file, not a folder (choose another destination)")
    if out_dir.is_dir() and not overwrite and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir}: exists and is not empty (choose a new folder, or pass {flag} to write "
                              "into it: an earlier export's files are replaced, others kept)")
    return out_dir


def _write(model, processor, folder: Path, int8: bool, opset: int, calibration_images) -> None:
    size = processor.settings.image_size
    pixels = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    texts = processor.texts(["a photo of a face", "a smiling woman with short grey hair and round glasses"])
    text_inputs = ["input_ids"] + (["attention_mask"] if "attention_mask" in texts else [])
    text_args = tuple(texts[k] for k in text_inputs)
    image_file = folder / (IMAGE_FILE + ".fp32" if int8 else IMAGE_FILE)
    errors = {
        "image": _export(_ImageTower(model), (pixels,), ["pixel_values"], "image_embeds", image_file, opset),
        "text": _export(_TextTower(model), text_args, text_inputs, "text_embeds", folder / TEXT_FILE, opset),
    }
    mode = None
    if int8:
        mode = "static" if calibration_images is not None else "dynamic"
        _quantize(image_file, folder / IMAGE_FILE, processor, calibration_images)
        image_file.unlink()
    with torch.no_grad():
        bias = float(model.logit_bias) if model.logit_bias is not None else None
        info = ExportInfo(FORMAT, opset, mode, model.config.embed_dim, text_inputs, float(model.scale()), bias,
                          text_fingerprint(model, processor), model_fingerprint(model),
                          processor.settings.to_dict(), errors, getattr(model.config, "liveness_calibration", None))
    processor.save_pretrained(folder)
    (folder / INFO_NAME).write_text(info.to_json())


def _export(module: nn.Module, args: tuple, input_names: list[str], output_name: str, file: Path,
            opset: int) -> float:
    """Trace `module` (in eval mode) to `file` with a dynamic batch (and sequence) axis; returns the largest
    |onnx - torch| on `args`, and refuses an export above `EXPORT_TOLERANCE`."""
    import onnxruntime as ort

    module.eval()
    axes = {name: {0: "batch", 1: "sequence"} if name != "pixel_values" else {0: "batch"} for name in input_names}
    axes[output_name] = {0: "batch"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's notes on Python control flow, and its deprecation notice
        torch.onnx.export(module, args, str(file), input_names=input_names, output_names=[output_name],
                          dynamic_axes=axes, opset_version=opset, dynamo=False)
        expected = module(*args).numpy()
    module.eval()  # the exporter restores the wrapper's mode, which was eval
    session = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
    got = session.run(None, {name: arg.numpy() for name, arg in zip(input_names, args)})[0]
    error = float(np.abs(got - expected).max())
    if not error <= EXPORT_TOLERANCE:
        raise ValueError(f"the exported {file.name} differs from torch by {error:.2e} (> {EXPORT_TOLERANCE})")
    return error


def _quantize(src: Path, dst: Path, processor, calibration_images: Sequence | None) -> None:
    """onnxruntime's int8 quantisation of the image tower: dynamic, or static on calibration images."""
    from onnxruntime.quantization import QuantType, quantize_dynamic, quantize_static

    if calibration_images is None:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
        return
    images = list(calibration_images)
    if not images:
        raise ValueError("calibration_images: got none; give a few dozen representative face images")
    quantize_static(str(src), str(dst), _Calibration(images, processor), per_channel=True,
                    weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)


class _Calibration:
    """onnxruntime's CalibrationDataReader over images, 8 at a time."""

    def __init__(self, images: list, processor, batch_size: int = 8):
        self.batches = [images[i:i + batch_size] for i in range(0, len(images), batch_size)]
        self.processor = processor
        self.rewind()

    def get_next(self):
        batch = next(self._batches, None)
        return None if batch is None else {"pixel_values": self.processor.images(batch).numpy()}

    def rewind(self):
        self._batches = iter(self.batches)
