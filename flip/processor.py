"""FLIPProcessor: images (any source, any mode) and texts -> the tensors a FLIPModel takes.

Design choices:
- A plain class holding a transformers tokenizer and a small `ProcessorSettings` dataclass; it saves
  next to every checkpoint (`preprocessor_config.json` plus the tokenizer's files) and reloads with no
  network. transformers' ProcessorMixin is not used: it expects an image-processor object of its own
  and would add nothing here.
- Images follow CLIP's recipe by default: resize the shorter side to `image_size` (bicubic), center
  crop, normalise with CLIP's mean and std. The crop arithmetic is torchvision's (which open_clip's
  transform uses), so with `resize_backend="pil"` pixel values match open_clip's preprocessing.
  `resize_mode="squash"` is FLIP's: the authors resize to 224x224 (bicubic) with no crop.
- Decoding is strict: EXIF orientation applied; every PIL mode converted to RGB on purpose (alpha
  composited on white, 16-bit scaled rather than clipped); a truncated JPEG always raises, whatever
  PIL's global `ImageFile.LOAD_TRUNCATED_IMAGES` says (it is read, never changed); PIL's
  decompression-bomb limit (`PIL.Image.MAX_IMAGE_PIXELS`) applies and its warning becomes an error.
  ICC colour profiles are not applied (neither open_clip nor transformers applies them).
  Every bad input is one exception naming the file (or the index of the item).
- Texts for CLIP tokenizers are cleaned as open_clip cleans them (`flip.tokenization.clean_clip_text`)
  and padded with id 0 as open_clip pads, so `texts(..., padding="max_length")` equals
  `open_clip.tokenize`. Truncation always keeps the end-of-text token. Special-token strings inside a
  text ("[SEP]", "<|endoftext|>") are tokenized as plain text. This holds for a transformers CLIP
  directory's own tokenizer too, by choice: OpenAI's CLIP (and the checkpoints converted from it) was
  trained on text cleaned this way, while `CLIPProcessor` skips the cleaning, so the two give other ids
  for HTML entities ("&amp;"), Turkish/Greek capitals and a literal "<|endoftext|>".
- Speed: PIL decodes; torch resizes (`resize_backend="torch"`: its antialiased uint8 kernels, a port of
  Pillow's, faster than Pillow and close to it on photographs: the README gives the figures; `"pil"` is
  bit-exact with open_clip and transformers' slow processors). `pixels` stops at uint8, which is what
  DataLoader workers send (a quarter of float32's bytes) and `normalize` finishes on the model's
  device, as timm's prefetcher does.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ._files import read_json_object
from .download import download
from .tokenization import clean_clip_text, is_clip_tokenizer, load_saved_tokenizer, load_tokenizer

logger = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
RESIZE_MODES = ("shortest", "squash")
RESAMPLE = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")
RESIZE_BACKENDS = ("torch", "pil")
#: Filters torch resizes with antialiasing as Pillow does; the others always go through PIL.
TORCH_RESAMPLE = ("bilinear", "bicubic")
PADDING = ("longest", "max_length")
#: How the face stage (flip.faces) cuts a detected face: the box grown by box_margin, or five-point aligned.
FACE_CROPS = ("box", "aligned")
CONFIG_NAME = "preprocessor_config.json"
PROCESSOR_CLASS = "FLIPProcessor"
#: Files `from_pretrained` fetches from a Hub repository: the settings and any tokenizer's files.
HUB_PATTERNS = [CONFIG_NAME, "tokenizer*", "special_tokens_map.json", "added_tokens.json", "vocab*", "merges.txt",
                "*.model"]


@dataclasses.dataclass
class ProcessorSettings:
    """Everything but the tokenizer; saved as `preprocessor_config.json`. The field names are the keys of
    the presets' `processor=dict(...)` in flip/config.py."""

    image_size: int = 224  # side of the square model input, in pixels
    image_mean: tuple[float, float, float] = CLIP_MEAN  # per RGB channel, on [0, 1] values
    image_std: tuple[float, float, float] = CLIP_STD
    resize_mode: str = "shortest"  # "shortest": shorter side to resize_size, then center crop; "squash": no crop
    resize_size: int | None = None  # "shortest": the shorter side before the crop (None: image_size); CLIP
    # processors whose size.shortest_edge exceeds crop_size (e.g. 256 then 224) resize, then crop
    resample: str = "bicubic"  # PIL filter: one of RESAMPLE
    resize_backend: str = "torch"  # "torch" (fast; bilinear/bicubic only, else PIL) or "pil" (bit-exact with
    # open_clip); they differ by 1-2 levels of 255 on photographs
    max_length: int = 77  # tokens per text, special tokens included; longer texts are truncated
    padding: str = "longest"  # or "max_length": always pad to max_length (SigLIP pools the last position)
    return_attention_mask: bool = True  # False for towers trained attending to their padding (SigLIP)
    enc_token_id: int | None = None  # BLIP's [ENC] id, put first by `itm_texts`; found in the vocabulary if None
    pad_token_id: int | None = None  # None: 0 for CLIP tokenizers (as open_clip), else the tokenizer's own
    box_margin: float = 0.0  # face boxes grow by this fraction of their width/height on each side
    face_crop: str = "box"  # what the checkpoint was trained on: "box" (detector crops) or "aligned" (five points
    # on insightface's template, flip.faces.align); the face stage cuts photos this way
    tokenizer: str | None = None  # the spec the tokenizer was built from ("clip", "minilm", a path); a record only

    def __post_init__(self):
        if not _is_int(self.image_size) or self.image_size < 1:
            raise ValueError(f"ProcessorSettings.image_size must be a positive integer, got {self.image_size!r}")
        for name in ("image_mean", "image_std"):
            value = getattr(self, name)
            try:
                value = tuple(float(v) for v in value)
            except (TypeError, ValueError):
                value = ()
            if len(value) != 3 or not all(map(math.isfinite, value)):
                raise ValueError(
                    f"ProcessorSettings.{name} must be 3 finite numbers (R, G, B), got {getattr(self, name)!r}"
                )
            setattr(self, name, value)
        if min(self.image_std) <= 0:
            raise ValueError(f"ProcessorSettings.image_std must be positive, got {self.image_std}")
        if self.resize_size is not None and (not _is_int(self.resize_size) or self.resize_size < self.image_size):
            raise ValueError(f"ProcessorSettings.resize_size must be None or an integer >= image_size "
                             f"({self.image_size}), got {self.resize_size!r}")
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"ProcessorSettings.resize_mode must be one of {RESIZE_MODES}, got {self.resize_mode!r}")
        if self.resample not in RESAMPLE:
            raise ValueError(f"ProcessorSettings.resample must be one of {RESAMPLE}, got {self.resample!r}")
        if self.resize_backend not in RESIZE_BACKENDS:
            raise ValueError(
                f"ProcessorSettings.resize_backend must be one of {RESIZE_BACKENDS}, got {self.resize_backend!r}"
            )
        if not _is_int(self.max_length) or self.max_length < 2:
            raise ValueError(f"ProcessorSettings.max_length must be an integer >= 2, got {self.max_length!r}")
        if self.padding not in PADDING:
            raise ValueError(f"ProcessorSettings.padding must be one of {PADDING}, got {self.padding!r}")
        if not isinstance(self.return_attention_mask, bool):
            raise ValueError(
                f"ProcessorSettings.return_attention_mask must be true or false, got {self.return_attention_mask!r}"
            )
        for name in ("enc_token_id", "pad_token_id"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 0):
                raise ValueError(f"ProcessorSettings.{name} must be None or a token id >= 0, got {value!r}")
        if not _is_margin(self.box_margin):
            raise ValueError(f"ProcessorSettings.box_margin must be a finite number >= 0, got {self.box_margin!r}")
        if self.face_crop not in FACE_CROPS:
            raise ValueError(f"ProcessorSettings.face_crop must be one of {FACE_CROPS}, got {self.face_crop!r}")
        if self.tokenizer is not None and not isinstance(self.tokenizer, str):
            raise ValueError(f"ProcessorSettings.tokenizer must be None or a string, got {self.tokenizer!r}")

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        if out["resize_size"] is None:  # saved only when used, so folders stay readable by older flips
            del out["resize_size"]
        out["image_mean"], out["image_std"] = list(self.image_mean), list(self.image_std)
        return out


class FLIPProcessor:
    """Turns images and texts into `pixel_values` (N, 3, S, S) and `input_ids` / `attention_mask` (N, L).

        processor = FLIPProcessor("minilm", image_size=112, max_length=64)
        batch = processor(images=["face.jpg"], text=["a smiling woman"])
        out = model(**batch)

    `tokenizer` is a transformers tokenizer or a spec for `flip.tokenization.load_tokenizer`; the other
    keyword arguments are the fields of `ProcessorSettings`.
    """

    def __init__(self, tokenizer, **settings):
        if isinstance(tokenizer, str):
            settings = ProcessorSettings(tokenizer=tokenizer, **settings)
            tokenizer = load_tokenizer(tokenizer)
        else:
            from transformers import PreTrainedTokenizerBase

            if not isinstance(tokenizer, PreTrainedTokenizerBase):
                raise TypeError(
                    f"FLIPProcessor: tokenizer must be a transformers tokenizer or a spec string, got {tokenizer!r}"
                )
            settings = ProcessorSettings(**settings)
        self._setup(tokenizer, settings)

    def _setup(self, tokenizer, settings: ProcessorSettings) -> None:
        self.tokenizer = tokenizer
        self._clean_text = is_clip_tokenizer(tokenizer)
        vocab_size = len(tokenizer)
        if settings.enc_token_id is None:
            settings.enc_token_id = _find_enc_token(tokenizer)
        if settings.pad_token_id is None:
            settings.pad_token_id = 0 if self._clean_text else tokenizer.pad_token_id
        if tokenizer.pad_token_id is None or settings.pad_token_id is None:
            raise ValueError(f"FLIPProcessor: the tokenizer ({type(tokenizer).__name__}) has no padding token")
        for name in ("enc_token_id", "pad_token_id"):
            value = getattr(settings, name)
            if value is not None and value >= vocab_size:
                raise ValueError(
                    f"ProcessorSettings.{name}={value} is outside the tokenizer's vocabulary ({vocab_size})"
                )
        self.settings = settings

    @classmethod
    def from_settings(cls, tokenizer: str, **settings) -> FLIPProcessor:
        """A processor from a tokenizer spec ("clip", "minilm", "bert-blip", a directory or Hub id) and
        `ProcessorSettings` fields: the form presets and converters describe processors in."""
        if not isinstance(tokenizer, str):
            raise TypeError(
                f"FLIPProcessor.from_settings: tokenizer must be a spec string, got {type(tokenizer).__name__}"
            )
        return cls(tokenizer, **settings)

    # -- images ------------------------------------------------------------------------------------
    def images(self, images, boxes=None, box_margin: float | None = None) -> torch.Tensor:
        """Pixel values, float32 (N, 3, image_size, image_size): `normalize(pixels(...))`.

        Each image is a path, bytes, a PIL image or a numpy array (H, W), (H, W, 1|3|4) of uint8, uint16
        or floats in [0, 1]; a single image may be passed without a list. `boxes`, one per image (or
        None), crops a face (x0, y0, x1, y1) in pixels of the upright image before resizing, grown by
        `box_margin` (default: the settings') on each side and clipped to the image.
        """
        return self.normalize(self.pixels(images, boxes=boxes, box_margin=box_margin))

    def pixels(self, images, boxes=None, box_margin: float | None = None) -> torch.Tensor:
        """The images decoded, cropped and resized but not normalised: uint8 (N, 3, image_size,
        image_size). Arguments as `images`."""
        items = _as_list(images, "images")
        if boxes is not None:
            boxes = list(boxes)
            if len(boxes) != len(items):
                raise ValueError(f"boxes: got {len(boxes)} boxes for {len(items)} images")
        margin = self.settings.box_margin if box_margin is None else box_margin
        if not _is_margin(margin):
            raise ValueError(f"box_margin must be a finite number >= 0, got {margin!r}")
        import torch

        size = self.settings.image_size
        out = torch.empty((len(items), 3, size, size), dtype=torch.uint8)
        for index, item in enumerate(items):
            out[index] = self._resize(load_face(item, index, None if boxes is None else boxes[index], margin))
        return out

    def _resize(self, image) -> torch.Tensor:
        """An RGB PIL image -> uint8 (3, S, S): resized as the settings say, center-cropped if "shortest"
        (the shorter side to `resize_size`, default S, then the central S x S)."""
        import torch

        resample = self.settings.resample
        new_size, box = _resize_plan(image.size, self.settings)
        if new_size != image.size and (self.settings.resize_backend == "pil" or resample not in TORCH_RESAMPLE):
            return torch.from_numpy(resize_array(image, self.settings))
        pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1)  # (3, H, W), channels-last in memory
        if new_size != image.size:
            pixels = torch.nn.functional.interpolate(pixels[None], size=new_size[::-1], mode=resample,
                                                     antialias=True)[0]
        left, top, right, bottom = box
        return pixels[:, top:bottom, left:right]

    def normalize(self, pixels: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        """uint8 pixels (N, 3, H, W) from `pixels` -> normalised `dtype` (default float32), on their device
        (computed in float32, in torchvision's order of operations: /255, -mean, /std)."""
        import torch

        if not isinstance(pixels, torch.Tensor) or pixels.dtype != torch.uint8 or pixels.ndim != 4 \
                or pixels.shape[1] != 3:
            what = f"{pixels.dtype} {tuple(pixels.shape)}" if isinstance(pixels, torch.Tensor) else type(pixels).__name__
            raise ValueError(f"normalize: expected uint8 pixels (N, 3, H, W) from FLIPProcessor.pixels, got {what}")
        mean = torch.tensor(self.settings.image_mean, device=pixels.device).view(1, 3, 1, 1)
        std = torch.tensor(self.settings.image_std, device=pixels.device).view(1, 3, 1, 1)
        x = pixels.to(torch.float32).div_(255).sub_(mean).div_(std)
        return x.to(dtype or torch.float32)

    # -- texts -------------------------------------------------------------------------------------
    def texts(self, texts, max_length: int | None = None, padding: str | None = None, return_tensors: str = "pt"):
        """`BatchEncoding` with `input_ids` and `attention_mask` (unless the settings say no), int64 (N, L).

        Padded to the longest text or, with `padding="max_length"`, to `max_length` (defaults: the
        settings'); longer texts are truncated, keeping the end-of-text token. `return_tensors="np"`
        gives numpy arrays (what onnxruntime takes).
        """
        items = _as_list(texts, "texts")
        for index, text in enumerate(items):
            if not isinstance(text, str):
                raise TypeError(f"texts[{index}]: expected a string, got {type(text).__name__}")
        if max_length is None:
            max_length = self.settings.max_length
        if not _is_int(max_length) or max_length < 2:
            raise ValueError(f"max_length must be an integer >= 2, got {max_length!r}")
        padding = self.settings.padding if padding is None else padding
        if padding not in PADDING:
            raise ValueError(f"padding must be one of {PADDING}, got {padding!r}")
        if self._clean_text:
            items = [clean_clip_text(t) for t in items]
        batch = self.tokenizer(
            items,
            padding=padding,
            truncation=True,
            max_length=max_length,
            return_tensors=return_tensors,
            return_token_type_ids=False,
            return_attention_mask=True,
            split_special_tokens=True,
        )
        if self.settings.pad_token_id != self.tokenizer.pad_token_id:
            batch["input_ids"][batch["attention_mask"] == 0] = self.settings.pad_token_id
        if not self.settings.return_attention_mask:
            del batch["attention_mask"]
        return batch

    def itm_texts(self, texts, max_length: int | None = None, padding: str | None = None):
        """`texts` with the first token replaced by BLIP's [ENC] token: the input of FLIP's image-text
        matching (`FLIPModel.match`)."""
        if self.settings.enc_token_id is None:
            raise ValueError(
                "FLIPProcessor.itm_texts: this processor has no enc_token_id; image-text matching needs a "
                "tokenizer with BLIP's [ENC] token (tokenizer='bert-blip') or enc_token_id set explicitly"
            )
        batch = self.texts(texts, max_length=max_length, padding=padding)
        batch["input_ids"][:, 0] = self.settings.enc_token_id
        return batch

    def __call__(self, images=None, text=None, *, boxes=None, max_length: int | None = None):
        """A `BatchFeature` (a dict) with `pixel_values` and/or `input_ids` and `attention_mask`, so that
        `model(**processor(images=..., text=...))` works."""
        from transformers import BatchFeature

        if images is None and text is None:
            raise ValueError("FLIPProcessor: pass images, text, or both")
        data = {}
        if images is not None:
            data["pixel_values"] = self.images(images, boxes=boxes)
        if text is not None:
            data.update(self.texts(text, max_length=max_length))
        return BatchFeature(data)

    # -- saving and loading ------------------------------------------------------------------------
    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write `preprocessor_config.json` and the tokenizer's files into `save_directory`."""
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {"processor_class": PROCESSOR_CLASS, **self.settings.to_dict()}
        (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        self.tokenizer.save_pretrained(directory)
        return directory

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, *, revision: str | None = None) -> FLIPProcessor:
        """Reload a saved processor from a directory, or from a Hub repository (only its processor files)."""
        path = Path(name_or_path).expanduser()
        if not path.is_dir():
            name = str(name_or_path)
            if path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:  # not owner/name
                raise FileNotFoundError(f"FLIPProcessor.from_pretrained: no such directory: {name}")
            path = download(name, revision, HUB_PATTERNS, what="FLIPProcessor.from_pretrained: a local directory")
        config_file = path / CONFIG_NAME
        if not config_file.is_file():
            raise FileNotFoundError(f"{path}: no {CONFIG_NAME}; not a directory saved by FLIPProcessor.save_pretrained")
        config = read_json_object(config_file)
        processor_class = config.pop("processor_class", None)
        if processor_class != PROCESSOR_CLASS:
            raise ValueError(f"{config_file}: processor_class is {processor_class!r}, expected {PROCESSOR_CLASS!r}")
        known = {f.name for f in dataclasses.fields(ProcessorSettings)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"{config_file}: unknown settings {unknown}; known: {sorted(known)}")
        try:
            settings = ProcessorSettings(**config)
        except ValueError as err:
            raise ValueError(f"{config_file}: {err}") from None
        tokenizer = load_saved_tokenizer(path)
        processor = cls.__new__(cls)
        processor._setup(tokenizer, settings)
        return processor

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in dataclasses.asdict(self.settings).items())
        return f"FLIPProcessor(tokenizer={type(self.tokenizer).__name__}(vocab={len(self.tokenizer)}), {fields})"


# -- image decoding ------------------------------------------------------------------------------------

def load_image(source, index: int = 0):
    """An upright RGB PIL image from a path, bytes, a PIL image or an (H, W[, C]) numpy array.

    Errors name the file, or `images[index]` for a source in memory.
    """
    from PIL import Image, ImageOps

    name = _source_name(source, index)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: {missing_file_reason(path)}")
        with open(path, "rb") as fp:
            image = _decode(fp, name)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        image = _decode(io.BytesIO(bytes(source)), name)
    elif isinstance(source, Image.Image):
        image = source
    elif isinstance(source, np.ndarray):
        return _array_to_rgb(source, name)
    else:
        raise TypeError(
            f"{name}: unsupported type {type(source).__name__}; pass a path, bytes, a PIL image or "
            "an (H, W[, C]) numpy array"
        )
    try:
        if image.getexif().get(0x0112, 1) != 1:  # EXIF orientation
            image = ImageOps.exif_transpose(image)
    except Exception as err:  # a malformed EXIF block must not lose the image
        logger.warning("%s: EXIF orientation ignored (%s)", name, err)
    return _to_rgb(image, name)


def missing_file_reason(path: Path) -> str:
    """Why a path that is not a file cannot be read: a folder, a symbolic link that leads nowhere
    (a loop, or a missing target), or nothing there."""
    if path.is_dir():
        return "is a folder, not an image file"
    if path.is_symlink():
        return "a symbolic link that leads to no file (a loop, or its target is missing)"
    return "no such file"


def load_face(source, index: int = 0, box=None, margin: float = 0.0):
    """`load_image`, then the crop of a face `box` (x0, y0, x1, y1) grown by `margin` if one is given."""
    image = load_image(source, index)
    if box is not None:
        image = image.crop(crop_box(box, image.size, margin, _source_name(source, index)))
    return image


def _source_name(source, index: int) -> str:
    """How error messages name an image: its path, or its place in the batch and its kind."""
    if isinstance(source, (str, os.PathLike)):
        return str(Path(source).expanduser())
    kind = {bytes: "bytes", bytearray: "bytes", memoryview: "bytes", np.ndarray: "numpy array"}.get(type(source))
    if kind is None:
        kind = "PIL image" if type(source).__module__.startswith("PIL.") else type(source).__name__
    return f"images[{index}] ({kind})"


class _TruncatedError(Exception):
    pass


class _StrictReader:
    """A file wrapper that raises once armed and read at its end: decoding a JPEG never reads past the
    end of a complete file, so this makes truncated JPEGs fail whatever LOAD_TRUNCATED_IMAGES says."""

    def __init__(self, fp):
        self._fp = fp
        self.armed = False

    def read(self, size=-1):
        data = self._fp.read(size)
        if self.armed and not data and size != 0:
            raise _TruncatedError("image file is truncated")
        return data

    def __getattr__(self, name):
        return getattr(self._fp, name)


def _decode(fp, name: str):
    from PIL import Image, UnidentifiedImageError

    reader = _StrictReader(fp)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(reader)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ValueError(
            f"{name}: refused as a possible decompression bomb: {err} Raise PIL.Image.MAX_IMAGE_PIXELS "
            f"(now {Image.MAX_IMAGE_PIXELS}) if the image is trusted."
        ) from None
    except UnidentifiedImageError:
        raise ValueError(f"{name}: not an image (PIL cannot identify the format)") from None
    except Exception as err:
        raise ValueError(f"{name}: not a readable image ({type(err).__name__}: {err})") from None
    reader.armed = image.format in ("JPEG", "MPO")
    try:
        image.load()
    except (_TruncatedError, OSError, SyntaxError, ValueError, EOFError) as err:
        raise ValueError(f"{name}: truncated or corrupt {image.format} image ({err})") from None
    return image


#: Modes whose pixel values are not 8-bit and go through numpy to be scaled, not clipped.
_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def _to_rgb(image, name: str):
    from PIL import Image

    if image.mode == "RGB":
        return image
    if image.mode in _WIDE_MODES:
        return _array_to_rgb(np.asarray(image), name)
    try:
        if image.mode in ("RGBA", "LA", "La", "PA", "RGBa") or "transparency" in image.info:
            rgba = image.convert("RGBA")
            return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
        return image.convert("RGB")
    except (ValueError, OSError) as err:
        raise ValueError(f"{name}: cannot convert mode {image.mode!r} to RGB ({err})") from None


def _array_to_rgb(array: np.ndarray, name: str):
    """(H, W) or (H, W, 1|3|4) of bool, uint8, other integers in [0, 65535] or floats in [0, 1] -> RGB."""
    from PIL import Image

    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)) or 0 in array.shape:
        hint = " (channels first? pass (H, W, C))" if array.ndim == 3 and array.shape[0] in (1, 3, 4) else ""
        raise ValueError(f"{name}: expected shape (H, W) or (H, W, 1|3|4), got {array.shape}{hint}")
    array = _to_uint8(array, name)
    if array.ndim == 2:
        return Image.fromarray(array, "L").convert("RGB")
    if array.shape[-1] == 3:
        return Image.fromarray(np.ascontiguousarray(array), "RGB")
    rgba = Image.fromarray(np.ascontiguousarray(array), "RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")


def _to_uint8(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        low, high = float(np.min(array)), float(np.max(array))
        if not (0.0 <= low and high <= 1.0):  # also rejects NaN
            raise ValueError(f"{name}: float pixel values must lie in [0, 1], got [{low}, {high}]")
        return np.rint(array * 255.0).astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        low, high = int(np.min(array)), int(np.max(array))
        if low >= 0 and (array.dtype.kind == "u" and array.dtype.itemsize == 2 or 255 < high <= 65535):
            return np.rint(array.astype(np.float32) / 257.0).astype(np.uint8)  # 65535 -> 255
        if 0 <= low and high <= 255:
            return array.astype(np.uint8)
        raise ValueError(f"{name}: integer pixel values must lie in [0, 65535], got [{low}, {high}]")
    raise ValueError(f"{name}: unsupported pixel type {array.dtype}")


def crop_box(box, size: tuple[int, int], margin: float, name: str) -> tuple[int, int, int, int]:
    """Pixel crop (left, top, right, bottom) of a face box grown by `margin` and clipped to the image."""
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: a box must be 4 numbers (x0, y0, x1, y1), got {box!r}") from None
    if not all(map(math.isfinite, (x0, y0, x1, y1))):
        raise ValueError(f"{name}: box {box!r} has a non-finite coordinate")
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"{name}: box {(x0, y0, x1, y1)} is inverted or empty (need x0 < x1 and y0 < y1)")
    width, height = size
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        raise ValueError(f"{name}: box {(x0, y0, x1, y1)} lies outside the {width}x{height} image")
    dx, dy = margin * (x1 - x0), margin * (y1 - y0)
    left, top = max(0, math.floor(x0 - dx)), max(0, math.floor(y0 - dy))
    right, bottom = min(width, math.ceil(x1 + dx)), min(height, math.ceil(y1 + dy))
    return left, top, right, bottom


def _resize_plan(size: tuple[int, int], settings: ProcessorSettings) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """Where an image of `size` (W, H) is resized to, and the crop (left, top, right, bottom) of that:
    torchvision's arithmetic (open_clip's transform): the longer side is truncated, the crop rounded."""
    side = settings.image_size
    short = settings.resize_size or side  # "shortest": the shorter side before the crop
    width, height = size
    if settings.resize_mode == "squash":
        new_size = (side, side)
    elif width <= height:
        new_size = (short, int(short * height / width))
    else:
        new_size = (int(short * width / height), short)
    left, top = int(round((new_size[0] - side) / 2.0)), int(round((new_size[1] - side) / 2.0))
    return new_size, (left, top, left + side, top + side)


def resize_array(image, settings: ProcessorSettings) -> np.ndarray:
    """An RGB PIL image -> uint8 numpy (3, S, S), resized by PIL (bit-exact with open_clip) and cropped as
    `settings` say. The torch-free path (`flip.onnx_backend`) uses it whatever `resize_backend` says."""
    from PIL import Image

    new_size, box = _resize_plan(image.size, settings)
    if new_size != image.size:
        image = image.resize(new_size, Image.Resampling[settings.resample.upper()])
    if box != (0, 0) + image.size:
        image = image.crop(box)
    return np.ascontiguousarray(np.asarray(image).transpose(2, 0, 1))


def normalize_array(pixels: np.ndarray, settings: ProcessorSettings) -> np.ndarray:
    """uint8 (N, 3, H, W) -> float32 normalised as `FLIPProcessor.normalize` does (/255, -mean, /std)."""
    mean = np.asarray(settings.image_mean, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(settings.image_std, dtype=np.float32).reshape(1, 3, 1, 1)
    return (pixels.astype(np.float32) / np.float32(255) - mean) / std


# -- helpers ----------------------------------------------------------------------------------------------

def _as_list(items, what: str) -> list:
    """A batch as a list; a single item (a string, a path, bytes, an image, an array) as a batch of one."""
    if isinstance(items, Sequence) and not isinstance(items, (str, bytes, bytearray, memoryview)):
        items = list(items)
    else:
        items = [items]
    if not items:
        raise ValueError(f"{what}: got an empty list")
    return items


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_margin(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < math.inf


def _find_enc_token(tokenizer) -> int | None:
    from .tokenization import BLIP_ENC_TOKEN

    token_id = tokenizer.convert_tokens_to_ids(BLIP_ENC_TOKEN)
    return token_id if token_id is not None and token_id != tokenizer.unk_token_id else None
