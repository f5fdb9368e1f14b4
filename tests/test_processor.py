"""FLIPProcessor: pixel values checked against hand-computed ones (every PIL mode, EXIF, boxes) and
against open_clip's transform; texts, ITM texts, save/load round trip; one clear error per bad input."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from flip.config import PRESETS
from flip.processor import CLIP_MEAN, CLIP_STD, FLIPProcessor, ProcessorSettings, crop_box, load_image

MEAN = np.asarray(CLIP_MEAN, dtype=np.float32)
STD = np.asarray(CLIP_STD, dtype=np.float32)
RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


@pytest.fixture(scope="module")
def minilm():
    from flip.tokenization import load_tokenizer

    return load_tokenizer("minilm")


@pytest.fixture
def processor(minilm):
    return FLIPProcessor(minilm, image_size=16, max_length=16)


@pytest.fixture
def raw(minilm):
    """A processor with mean 0 and std 1: pixel values are the RGB values / 255."""
    return FLIPProcessor(minilm, image_size=8, image_mean=(0, 0, 0), image_std=(1, 1, 1))


def rgb_of(pixel_values: torch.Tensor) -> np.ndarray:
    """The mean RGB (0-255) of each image of a mean-0/std-1 batch, (N, 3)."""
    return pixel_values.mean(dim=(2, 3)).numpy() * 255


def stripes(colors, width=20, height=20) -> Image.Image:
    """Vertical stripes of the given colours, left to right."""
    array = np.concatenate([np.full((height, width, 3), c, np.uint8) for c in colors], axis=1)
    return Image.fromarray(array)


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


# -- settings --------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "field, value",
    [
        ("image_size", 0),
        ("image_size", 22.5),
        ("image_mean", (0.5, 0.5)),
        ("image_std", (0.5, 0.0, 0.5)),
        ("resize_mode", "crop"),
        ("resample", "cubic"),
        ("resize_backend", "cv2"),
        ("max_length", 1),
        ("padding", "both"),
        ("return_attention_mask", "yes"),
        ("enc_token_id", -1),
        ("pad_token_id", "0"),
        ("box_margin", -0.1),
    ],
)
def test_bad_settings_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        ProcessorSettings(**{field: value})


def test_tokenizer_must_be_a_transformers_tokenizer():
    from open_clip.tokenizer import SimpleTokenizer

    with pytest.raises(TypeError, match="transformers tokenizer or a spec string"):
        FLIPProcessor(SimpleTokenizer())


def test_token_ids_must_be_in_the_vocabulary(minilm):
    with pytest.raises(ValueError, match="enc_token_id=40000"):
        FLIPProcessor(minilm, enc_token_id=40000)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_build_their_processor(name):
    preset = PRESETS[name]
    processor = FLIPProcessor.from_settings(**preset["processor"])
    assert processor.settings.image_size == preset["config"]["vision_config"]["image_size"]
    assert len(processor.tokenizer) == preset["config"]["text_config"]["vocab_size"]
    assert processor.settings.tokenizer == preset["processor"]["tokenizer"]


# -- images: values ---------------------------------------------------------------------------------

def test_solid_red_rgba_gives_normalised_red(processor):
    image = Image.new("RGBA", (20, 30), (255, 0, 0, 255))
    pixels = processor.images([image])
    expected = (np.array([1.0, 0.0, 0.0], np.float32) - MEAN) / STD
    assert pixels.shape == (1, 3, 16, 16) and pixels.dtype == torch.float32
    assert torch.allclose(pixels[0], torch.from_numpy(expected)[:, None, None].expand(3, 16, 16), atol=1e-6)


# Each mode converts to the RGB a viewer shows: alpha over white, 16-bit scaled, palettes resolved.
MODE_CASES = [
    ("RGBA half-transparent red", lambda: Image.new("RGBA", (9, 9), (255, 0, 0, 128)), (255, 127, 127)),
    ("RGBA transparent", lambda: Image.new("RGBA", (9, 9), (0, 0, 0, 0)), WHITE),
    ("LA transparent black", lambda: Image.new("LA", (9, 9), (0, 0)), WHITE),
    ("L", lambda: Image.new("L", (9, 9), 77), (77, 77, 77)),
    ("1", lambda: Image.new("1", (9, 9), 1), WHITE),
    ("P", lambda: Image.new("RGB", (9, 9), BLUE).convert("P"), BLUE),
    ("CMYK cyan", lambda: Image.new("CMYK", (9, 9), (255, 0, 0, 0)), (0, 255, 255)),
    ("I;16 mid-grey", lambda: Image.fromarray(np.full((9, 9), 32768, np.uint16)), (128, 128, 128)),
    ("I;16 white", lambda: Image.fromarray(np.full((9, 9), 65535, np.uint16)), WHITE),
    ("I 16-bit range", lambda: Image.fromarray(np.full((9, 9), 32768, np.int32)), (128, 128, 128)),
    ("F in [0, 1]", lambda: Image.fromarray(np.full((9, 9), 0.5, np.float32)), (128, 128, 128)),
]


@pytest.mark.parametrize("label, make, expected", MODE_CASES, ids=[c[0] for c in MODE_CASES])
def test_every_mode_converts_to_the_rgb_a_viewer_shows(raw, label, make, expected):
    assert np.allclose(rgb_of(raw.images([make()]))[0], expected, atol=0.6)


def test_palette_with_transparency_is_composited_on_white(raw):
    image = Image.new("P", (9, 9), 0)
    image.putpalette([0, 0, 0] * 256)
    image.info["transparency"] = 0
    assert np.allclose(rgb_of(raw.images([image]))[0], WHITE)


def test_grey_image_has_equal_channels(raw):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 30), dtype=np.uint8), "L")
    pixels = raw.images([image])[0]
    assert torch.equal(pixels[0], pixels[1]) and torch.equal(pixels[1], pixels[2])
    assert pixels.std() > 0.05  # the content survived


ARRAY_CASES = [
    ("uint8 HxW", np.full((6, 6), 200, np.uint8), (200, 200, 200)),
    ("uint8 HxWx1", np.full((6, 6, 1), 10, np.uint8), (10, 10, 10)),
    ("uint8 HxWx3", np.tile(np.array(GREEN, np.uint8), (6, 6, 1)), GREEN),
    ("uint8 HxWx4 opaque", np.tile(np.array([0, 0, 255, 255], np.uint8), (6, 6, 1)), BLUE),
    ("uint8 HxWx4 clear", np.zeros((6, 6, 4), np.uint8), WHITE),
    ("float [0,1]", np.full((6, 6, 3), 1.0, np.float64), WHITE),
    ("uint16", np.full((6, 6), 65535, np.uint16), WHITE),
    ("big-endian uint16", np.full((6, 6), 32768, ">u2"), (128, 128, 128)),
    ("bool", np.ones((6, 6), bool), WHITE),
]


@pytest.mark.parametrize("label, array, expected", ARRAY_CASES, ids=[c[0] for c in ARRAY_CASES])
def test_numpy_arrays(raw, label, array, expected):
    assert np.allclose(rgb_of(raw.images(array))[0], expected, atol=0.6)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_exif_orientation_is_applied(raw, tmp_path, fmt):
    # Stored 40x20 red | blue; orientation 6 says "rotate 90 degrees clockwise to display": red on top.
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / f"rotated.{fmt.lower()}"
    quality = {"quality": 95} if fmt == "JPEG" else {}
    path.write_bytes(encode(stripes([RED, BLUE]), fmt, exif=exif.tobytes(), **quality))
    squash = FLIPProcessor(raw.tokenizer, image_size=8, image_mean=(0, 0, 0), image_std=(1, 1, 1),
                           resize_mode="squash")
    pixels = squash.images([path])[0].numpy() * 255
    top, bottom = pixels[:, :2].mean(axis=(1, 2)), pixels[:, -2:].mean(axis=(1, 2))
    assert np.allclose(top, RED, atol=12) and np.allclose(bottom, BLUE, atol=12)


def test_shortest_crops_the_centre_and_squash_keeps_everything(minilm):
    image = stripes([RED, GREEN, BLUE])  # 60x20
    kwargs = dict(image_size=12, image_mean=(0, 0, 0), image_std=(1, 1, 1))
    shortest = FLIPProcessor(minilm, **kwargs).images(image)[0].numpy() * 255
    squash = FLIPProcessor(minilm, resize_mode="squash", **kwargs).images(image)[0].numpy() * 255
    # Only the middle 20x20 survives the crop (bicubic ringing aside at its edges).
    assert np.allclose(shortest[:, :, 2:10].mean(axis=(1, 2)), GREEN, atol=1) and shortest[0].max() < 20
    assert np.allclose(squash[:, :, 0], np.array(RED)[:, None], atol=1)
    assert np.allclose(squash[:, :, 5:7].mean(axis=(1, 2)), GREEN, atol=1)
    assert np.allclose(squash[:, :, -1], np.array(BLUE)[:, None], atol=1)


def test_pixels_match_open_clip_preprocessing(minilm):
    from open_clip.transform import image_transform

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)) for shape in [(37, 50, 3), (64, 29, 3)]]
    theirs = torch.stack([image_transform(24, is_train=False)(image) for image in images])
    ours = FLIPProcessor(minilm, image_size=24, resize_backend="pil").images(images)
    assert torch.allclose(ours, theirs, atol=1e-5)


@pytest.mark.parametrize("resample", ["bicubic", "bilinear"])
def test_torch_resize_stays_within_two_levels_of_pil(minilm, resample):
    """The default backend (torch's antialiased uint8 resize) against PIL's, on faces (smooth images, as
    photographs are) shrunk and enlarged, square and not, in both resize modes."""
    from flip.data.synthetic import make_identities, render_face, sample_face

    rng = np.random.default_rng(0)
    face = render_face(sample_face(rng, make_identities(1, seed=0)[0]), size=128)[0]
    images = [face, face.resize((50, 37)), face.resize((29, 64)), face.resize((20, 24)), face.resize((300, 500))]
    for mode in ("shortest", "squash"):
        fast, exact = (FLIPProcessor(minilm, image_size=112, resize_mode=mode, resample=resample,
                                     resize_backend=backend).pixels(images) for backend in ("torch", "pil"))
        diff = (fast.int() - exact.int()).abs()
        assert fast.dtype == torch.uint8 and fast.shape == (5, 3, 112, 112)
        assert diff.max() <= 2 and (diff > 0).float().mean() < 0.02, (mode, diff.max(), (diff > 0).float().mean())


def test_pixels_then_normalize_is_images(processor):
    image = Image.fromarray(np.random.default_rng(2).integers(0, 256, (20, 24, 3), dtype=np.uint8))
    pixels = processor.pixels([image, image])
    assert pixels.dtype == torch.uint8 and pixels.shape == (2, 3, 16, 16)
    assert torch.equal(processor.normalize(pixels), processor.images([image, image]))
    assert processor.normalize(pixels, dtype=torch.bfloat16).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="normalize: expected uint8 pixels"):
        processor.normalize(processor.images([image]))


def test_sources_give_identical_pixels(processor, tmp_path):
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (20, 24, 3), dtype=np.uint8))
    path = tmp_path / "face.png"
    image.save(path)
    sources = [image, path, str(path), path.read_bytes(), memoryview(path.read_bytes()), np.asarray(image)]
    pixels = processor.images(sources)
    for i in range(1, len(sources)):
        assert torch.equal(pixels[0], pixels[i])


def test_load_image_gives_upright_rgb(tmp_path):
    path = tmp_path / "grey.png"
    Image.new("LA", (5, 7), (10, 255)).save(path)
    image = load_image(path)
    assert image.mode == "RGB" and image.size == (5, 7) and image.getpixel((0, 0)) == (10, 10, 10)


def test_boxes_crop_the_face_before_resizing(raw):
    image = stripes([RED, BLUE])  # 40x20
    pixels = raw.images([image, image, image], boxes=[(20, 0, 40, 20), None, (0, 5, 10, 15)])
    rgb = rgb_of(pixels)
    assert np.allclose(rgb[0], BLUE, atol=0.6)
    assert np.allclose(rgb[1], (127.5, 0, 127.5), atol=2)  # no box: centre crop, half red half blue
    assert np.allclose(rgb[2], RED, atol=0.6)


@pytest.mark.parametrize(
    "box, margin, expected",
    [
        ((10, 10, 20, 20), 0.0, (10, 10, 20, 20)),
        ((10, 10, 20, 20), 0.5, (5, 5, 25, 25)),
        ((10.2, 10.7, 19.5, 19.1), 0.0, (10, 10, 20, 20)),  # grown to whole pixels
        ((-5, 2, 30, 50), 0.0, (0, 2, 30, 40)),  # partly outside: clipped
        ((2, 2, 30, 30), 1.0, (0, 0, 58, 40)),
    ],
)
def test_crop_box_with_margin(box, margin, expected):
    assert crop_box(box, (60, 40), margin, "img") == expected


# -- images: errors -------------------------------------------------------------------------------

def truncated_jpeg(tmp_path):
    data = encode(Image.fromarray(np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)), "JPEG")
    path = tmp_path / "truncated.jpg"
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("load_truncated", [False, True])
def test_truncated_jpeg_raises_whatever_pil_global_says(processor, tmp_path, monkeypatch, load_truncated):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", load_truncated)
    path = truncated_jpeg(tmp_path)
    with pytest.raises(ValueError, match=f"{path}.*truncated"):
        processor.images([path])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is load_truncated  # read, never changed
    with pytest.raises(ValueError, match=r"images\[0\] \(bytes\).*truncated"):
        processor.images([path.read_bytes()])


@pytest.mark.parametrize("factor", [1.5, 3])  # over PIL's warning limit; over its error limit (2x)
def test_decompression_bomb_names_file_and_pixels(processor, tmp_path, monkeypatch, factor):
    path = tmp_path / "bomb.png"
    Image.new("L", (100, 100)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", int(10000 / factor))
    with pytest.raises(ValueError, match=f"{path}.*decompression bomb.*10000 pixels"):
        processor.images([path])


def not_an_image(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not an image")
    return path


IMAGE = Image.new("RGB", (40, 30))
# (label, the arguments of `images` given tmp_path, the exception, a pattern its message must match)
BAD_IMAGES = [
    ("missing file", lambda d: dict(images=[d / "missing.jpg"]), FileNotFoundError, "missing.jpg"),
    ("not an image", lambda d: dict(images=[not_an_image(d)]), ValueError, "notes.txt.*not an image"),
    ("garbage bytes", lambda d: dict(images=[b"\x00" * 10]), ValueError, r"images\[0\] \(bytes\).*not an image"),
    ("empty list", lambda d: dict(images=[]), ValueError, "images: got an empty list"),
    ("wrong type", lambda d: dict(images=[IMAGE, torch.zeros(3, 4, 4)]), TypeError, r"images\[1\].*Tensor"),
    ("channels first", lambda d: dict(images=[np.zeros((3, 8, 8), np.uint8)]), ValueError, "channels first"),
    ("float out of range", lambda d: dict(images=[np.full((4, 4), 2.0)]), ValueError, r"\[0, 1\]"),
    ("NaN", lambda d: dict(images=[np.full((4, 4), np.nan)]), ValueError, r"\[0, 1\]"),
    ("negative int", lambda d: dict(images=[np.full((4, 4), -1)]), ValueError, r"\[0, 65535\]"),
    ("F out of range", lambda d: dict(images=[Image.fromarray(np.full((4, 4), 7.0, np.float32))]), ValueError,
     r"\[0, 1\]"),
    ("inverted box", lambda d: dict(images=[IMAGE], boxes=[(30, 5, 10, 20)]), ValueError, r"images\[0\].*inverted"),
    ("box outside", lambda d: dict(images=[IMAGE], boxes=[(50, 5, 60, 20)]), ValueError, "outside the 40x30 image"),
    ("box of 3", lambda d: dict(images=[IMAGE], boxes=[(1, 2, 3)]), ValueError, "4 numbers"),
    ("box count", lambda d: dict(images=[IMAGE, IMAGE], boxes=[(1, 2, 3, 4)]), ValueError, "1 boxes for 2 images"),
    ("negative margin", lambda d: dict(images=[IMAGE], box_margin=-1), ValueError, "box_margin"),
]


@pytest.mark.parametrize("label, arguments, error, pattern", BAD_IMAGES, ids=[c[0] for c in BAD_IMAGES])
def test_bad_images_raise_one_clear_error(processor, tmp_path, label, arguments, error, pattern):
    with pytest.raises(error, match=pattern):
        processor.images(**arguments(tmp_path))


# -- texts ------------------------------------------------------------------------------------------

def test_texts_pad_to_longest_and_truncate_keeping_sep(processor):
    batch = processor.texts(["a face", "a smiling woman with short hair " * 10])
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert set(batch) == {"input_ids", "attention_mask"}
    assert ids.shape == (2, 16) and ids.dtype == torch.long
    assert ids[0, :4].tolist() == [101, 1037, 2227, 102] and ids[0, 4:].eq(0).all()
    assert mask[0].tolist() == [1] * 4 + [0] * 12 and mask[1].eq(1).all()
    assert ids[1, 0] == 101 and ids[1, -1] == 102  # [SEP] kept at the cut
    assert processor.texts(["a face"], padding="max_length")["input_ids"].shape == (1, 16)
    assert processor.texts("a face", max_length=3)["input_ids"].tolist() == [[101, 1037, 102]]


def test_siglip_style_fixed_padding_without_mask(minilm, tmp_path):
    # SigLIP pools the last position and was trained attending to its padding.
    processor = FLIPProcessor(minilm, max_length=8, padding="max_length", return_attention_mask=False)
    processor.save_pretrained(tmp_path)
    for p in (processor, FLIPProcessor.from_pretrained(tmp_path)):
        batch = p.texts(["a face"])
        assert set(batch) == {"input_ids"}
        assert batch["input_ids"].tolist() == [[101, 1037, 2227, 102, 0, 0, 0, 0]]


def test_clip_texts_pad_with_zero_as_open_clip(processor):
    clip = FLIPProcessor("clip")
    ids = clip.texts(["a face", "a smiling man"])["input_ids"]
    assert ids[0].tolist() == [49406, 320, 1710, 49407, 0]


@pytest.mark.parametrize(
    "texts, error, pattern",
    [
        ([], ValueError, "texts: got an empty list"),
        (["a face", 3], TypeError, r"texts\[1\]: expected a string, got int"),
        (["a face", None], TypeError, r"texts\[1\]"),
    ],
)
def test_bad_texts(processor, texts, error, pattern):
    with pytest.raises(error, match=pattern):
        processor.texts(texts)


def test_itm_texts_start_with_enc():
    processor = FLIPProcessor.from_settings("bert-blip", max_length=8)
    plain, itm = processor.texts(["a face"]), processor.itm_texts(["a face"])
    assert plain["input_ids"][0, 0] == 101 and itm["input_ids"][0, 0] == 30523
    assert torch.equal(plain["input_ids"][:, 1:], itm["input_ids"][:, 1:])


def test_itm_texts_need_an_enc_token(processor):
    with pytest.raises(ValueError, match="enc_token_id"):
        processor.itm_texts(["a face"])


# -- call, save, load -------------------------------------------------------------------------------

def test_call_feeds_the_model(tiny_model, minilm):
    processor = FLIPProcessor(minilm, image_size=32)
    images = [Image.new("RGB", (40, 32), RED), np.zeros((32, 32), np.uint8)]
    batch = processor(images=images, text=["a red square", "a black square"])
    assert set(batch) == {"pixel_values", "input_ids", "attention_mask"}
    with torch.no_grad():
        out = tiny_model(**batch)
    assert out.logits_per_image.shape == (2, 2)
    assert set(processor(text="a face")) == {"input_ids", "attention_mask"}
    with pytest.raises(ValueError, match="images, text"):
        processor()


@pytest.mark.parametrize("spec", ["clip", "minilm", "bert-blip"])
def test_save_and_reload_give_identical_tensors(tmp_path, spec):
    processor = FLIPProcessor.from_settings(spec, image_size=20, max_length=12, resize_mode="squash", box_margin=0.2)
    (tmp_path / "config.json").write_text('{"model_type": "flip"}')  # as beside a saved model
    processor.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert config["processor_class"] == "FLIPProcessor" and config["tokenizer"] == spec
    reloaded = FLIPProcessor.from_pretrained(tmp_path)
    assert reloaded.settings == processor.settings
    image = Image.fromarray(np.random.default_rng(3).integers(0, 256, (30, 41, 3), dtype=np.uint8))
    texts = ["a smiling woman", "café déjà vu with a very long caption " * 5]
    boxes = [(5, 5, 25, 25)]
    a, b = processor(images=[image], text=texts, boxes=boxes), reloaded(images=[image], text=texts, boxes=boxes)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_from_pretrained_errors(tmp_path, processor):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        FLIPProcessor.from_pretrained(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="preprocessor_config.json"):
        FLIPProcessor.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE"):
        FLIPProcessor.from_pretrained("nobody/no-such-processor")
    processor.save_pretrained(tmp_path)
    config_file = tmp_path / "preprocessor_config.json"
    config = json.loads(config_file.read_text())
    for change, pattern in [
        (dict(processor_class="CLIPProcessor"), "processor_class"),
        (dict(crop_pct=0.9), r"unknown settings \['crop_pct'\]"),
        (dict(resize_mode="zoom"), "preprocessor_config.json: ProcessorSettings.resize_mode"),
    ]:
        config_file.write_text(json.dumps({**config, **change}))
        with pytest.raises(ValueError, match=pattern):
            FLIPProcessor.from_pretrained(tmp_path)
    config_file.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        FLIPProcessor.from_pretrained(tmp_path)
