"""The synthetic face world: determinism, balanced sampling, identities, visible attributes, spoofs,
scenes, captions, QA and the `flip data synth` command."""

from __future__ import annotations

import io
import json
import re
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from flip.data.records import ATTRIBUTES
from flip.data.synthetic.attributes import (
    COUPLINGS,
    SOFT_COUPLINGS,
    IDENTITY_ATTRIBUTES,
    IMAGE_ATTRIBUTES,
    VOCABULARIES,
    AttributeSampler,
    visible_attributes,
)
from flip.data.synthetic.captions import build_caption
from flip.data.synthetic.faces import Face, load_names, make_identities
from flip.data.synthetic.qa import QUESTIONS, answer_to_label, sample_qa
from flip.data.synthetic.render import Nuisance, render_face
from flip.data.synthetic.spoof import ATTACKS, render_spoof
from flip.data.synthetic.world import KINDS, SynthConfig, generate, identity_pools, make_record


def _png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _arr(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("kind", KINDS)
def test_one_seed_repeats_byte_for_byte_two_seeds_differ(kind):
    cfg = SynthConfig(kind=kind, n=20, size=64, seed=3)
    pools = identity_pools(cfg)
    a = [make_record(cfg, "train", i, pools) for i in range(3)]
    b = [make_record(cfg, "train", i, identity_pools(cfg)) for i in range(3)]
    assert [_png(r.image) for r in a] == [_png(r.image) for r in b]
    assert [r.to_dict() for r in a] == [r.to_dict() for r in b]
    other = SynthConfig(kind=kind, n=20, size=64, seed=4)
    c = [make_record(other, "train", i, identity_pools(other)) for i in range(3)]
    assert all(_png(x.image) != _png(y.image) for x, y in zip(a, c))
    assert [x.caption for x in a] != [y.caption for y in c]


def test_worker_pool_gives_the_same_records_as_one_process():
    cfg = SynthConfig(kind="captions", n=80, size=64, seed=1, split_fractions={"train": 1.0})
    one = list(generate(cfg, "train", workers=1, encode="png"))
    two = list(generate(cfg, "train", workers=2, encode="png"))
    assert len(one) == len(two) == 80
    assert [r.image for r in one] == [r.image for r in two]
    assert [r.to_dict() for r in one] == [r.to_dict() for r in two]


# --------------------------------------------------------------------------- sampling


def test_attribute_sampling_is_balanced_and_couplings_hold():
    sampler = AttributeSampler()
    rng = np.random.default_rng(0)
    samples = [sampler.sample(rng) for _ in range(2000)]
    coupled = {c[3] for c in COUPLINGS}
    softly = {c[3]: {c2[2] for c2 in SOFT_COUPLINGS if c2[3] == c[3]} for c in SOFT_COUPLINGS}
    for attr, vocab in VOCABULARIES.items():
        rows = samples if attr not in coupled else [s for s in samples if s["age_group"] != "child"]
        rows = [s for s in rows if s["age_group"] not in softly.get(attr, ())]
        counts = Counter(s[attr] for s in rows)
        for value in vocab:
            assert abs(counts[value] / len(rows) - 1 / len(vocab)) < 0.05, (attr, value, counts)
    children = [s for s in samples if s["age_group"] == "child"]
    assert len(children) > 400
    for _, cond, val, attr, allowed in COUPLINGS:
        held = [s[attr] for s in samples if s[cond] == val]
        assert set(held) <= set(allowed), (attr, set(held))
    for _, cond, val, attr, values, p in SOFT_COUPLINGS:  # uniform share, plus p of the rest
        rows = [s[attr] for s in samples if s[cond] == val]
        expected = len(values) / len(VOCABULARIES[attr]) * (1 - p) + p
        assert abs(sum(v in values for v in rows) / len(rows) - expected) < 0.06, (val, attr)


def test_sampler_overrides_and_bad_values():
    sampler = AttributeSampler({"eyewear": {"sunglasses": 1}, "hat": {True: 3, False: 1}})
    rng = np.random.default_rng(1)
    samples = [sampler.sample(rng) for _ in range(400)]
    assert {s["eyewear"] for s in samples} == {"sunglasses"}
    assert 0.65 < np.mean([s["hat"] for s in samples]) < 0.85
    from_json = SynthConfig(distributions=json.loads('{"hat": {"true": 1}, "makeup": {"False": 1}}')).sampler()
    assert all(s["hat"] and not s["makeup"] for s in (from_json.sample(rng) for _ in range(50)))
    with pytest.raises(ValueError, match="eyewear.*monocle"):
        AttributeSampler({"eyewear": {"monocle": 1}})
    with pytest.raises(ValueError, match="unknown attributes.*gender"):
        AttributeSampler({"gender": {"x": 1}})
    with pytest.raises(ValueError, match="kind='portraits'"):
        SynthConfig(kind="portraits")


def test_names_are_many_and_identities_distinct():
    first, last = load_names()
    assert len(first) >= 250 and len(last) >= 250
    people = make_identities(300, seed=0)
    assert len({p.name for p in people}) == 300
    assert len({p.identity for p in people}) == 300


def test_identity_stable_attributes_persist_across_images():
    cfg = SynthConfig(kind="captions", n=48, size=64, seed=2, images_per_identity=8, split_fractions={"train": 1})
    records = list(generate(cfg, "train"))
    by_person = defaultdict(list)
    for r in records:
        by_person[r.identity].append(r)
    assert len(by_person) == 6
    varied = set()
    for rs in by_person.values():
        assert len(rs) == 8
        for attr in (*IDENTITY_ATTRIBUTES, "name"):
            assert len({getattr(r, attr) for r in rs}) == 1, attr
        varied |= {a for a in IMAGE_ATTRIBUTES if len({getattr(r, a) for r in rs}) > 1}
    assert varied == set(IMAGE_ATTRIBUTES)  # per-image labels do vary within a person


# --------------------------------------------------------------------------- what the renderer draws


def _base_face() -> Face:
    person = make_identities(1, seed=11)[0]
    person = replace(person, hair_style="short", age_group="young adult", hair_color="brown", skin_tone="fair",
                     face_shape="oval", eye_color="brown", hair_part=0.0)
    return Face(person=person, emotion="neutral", eyes_open=True, eyewear="none", facial_hair="none",
                hat=False, earrings=False, makeup=False, yaw=0.0, roll=0.0)


# attribute, value, region where the change must fall, least changed pixels (of 112 x 112)
VISIBLE_CASES = [
    ("hat", True, "above_eyes", 300),
    ("facial_hair", "beard", "below_nose", 300),
    ("facial_hair", "moustache", "nose_to_mouth", 30),
    ("facial_hair", "goatee", "below_nose", 60),
    ("facial_hair", "stubble", "below_nose", 200),
    ("eyewear", "eyeglasses", "eye_band", 60),
    ("eyewear", "sunglasses", "eye_band", 150),
    ("eyes_open", False, "eye_band", 30),
    ("eye_color", "blue", "eye_band", 8),
    ("emotion", "happy", "face_box", 60),
    ("emotion", "surprised", "face_box", 60),
    ("emotion", "sad", "face_box", 20),
    ("emotion", "angry", "face_box", 20),
    ("makeup", True, "face_box", 40),
    ("earrings", True, "at_ears", 10),
    ("hair_color", "red", "above_eyes", 300),
    ("hair_style", "long", "at_sides", 300),
    ("hair_style", "short with bangs", "above_eyes", 60),
    ("skin_tone", "dark", "skin", 2000),
    ("age_group", "senior", "head", 50),
    ("face_shape", "square", "head", 40),
    ("face_shape", "long", "head", 40),
]


def _region(name: str, layout, size: int) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] + 0.5
    x0, y0, x1, y1 = layout.box
    eye_y = layout.eyes[:, 1].mean()
    mouth_y = layout.mouth[1]
    unit = mouth_y - eye_y
    inside_x = (x >= x0) & (x <= x1)
    return {
        "above_eyes": y < eye_y - 0.1 * unit,
        "below_nose": y > eye_y + 0.4 * unit,
        "nose_to_mouth": (y > eye_y + 0.4 * unit) & (y < mouth_y + 0.2 * unit),
        "eye_band": np.abs(y - eye_y) < 0.35 * unit,
        "face_box": inside_x & (y >= y0) & (y <= y1),
        "at_sides": (x < x0 + 0.2 * (x1 - x0)) | (x > x1 - 0.2 * (x1 - x0)) | (y > y1),
        "skin": (x >= x0 - 0.3 * unit) & (x <= x1 + 0.3 * unit) & (y >= y0),
        "at_ears": ((x < x0 + 0.2 * (x1 - x0)) | (x > x1 - 0.2 * (x1 - x0))) & (y > eye_y),
        "head": (x >= x0 - 0.3 * unit) & (x <= x1 + 0.3 * unit) & (y <= y1 + 0.3 * unit),
    }[name]


@pytest.mark.parametrize("attr,value,region,least", VISIBLE_CASES, ids=lambda v: str(v))
def test_each_attribute_changes_the_pixels_where_it_is_drawn(attr, value, region, least):
    base = _base_face()
    size = 112
    before, layout = render_face(base, size, Nuisance())
    after, _ = render_face(base.with_labels(**{attr: value}), size, Nuisance())
    changed = np.abs(_arr(before) - _arr(after)).max(axis=2) > 12
    inside = _region(region, layout, size)
    assert changed.sum() >= least, f"{attr}={value!r} changed only {changed.sum()} pixels"
    share = changed[inside].sum() / changed.sum()
    assert share > 0.85, f"{attr}={value!r}: only {share:.0%} of the change is in {region}"


def test_nuisances_change_the_image_but_not_the_face():
    base = _base_face()
    clean, _ = render_face(base, 112, Nuisance())
    lit, _ = render_face(base, 112, Nuisance(light_strength=0.3, light_angle=0.0))
    turned, lay = render_face(replace(base, yaw=25.0), 112, Nuisance())
    _, lay0 = render_face(base, 112, Nuisance())
    assert np.abs(_arr(clean) - _arr(lit)).mean() > 5
    # yaw moves the eyes sideways more than the face box centre
    assert lay.eyes[:, 0].mean() - lay0.eyes[:, 0].mean() > 3
    with pytest.raises(ValueError, match="size=8"):
        render_face(base, 8)


# --------------------------------------------------------------------------- spoofs


def test_every_spoof_category_differs_from_live_and_from_each_other():
    face = _base_face()
    live = _arr(render_spoof(face, None, 96, np.random.default_rng(5)))
    images = {a: _arr(render_spoof(face, a, 96, np.random.default_rng(5))) for a in ATTACKS}
    assert len(ATTACKS) == 8
    for a, img in images.items():
        assert img.shape == live.shape == (96, 96, 3)
        assert np.abs(img - live).mean() > 10, a
    names = list(images)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert np.abs(images[a] - images[b]).mean() > 8, (a, b)
    assert images["dark_environment"].mean() < 0.5 * live.mean()
    again = _arr(render_spoof(face, "printed_photo", 96, np.random.default_rng(5)))
    assert np.array_equal(again, images["printed_photo"])
    with pytest.raises(ValueError, match="attack='selfie'"):
        render_spoof(face, "selfie", 96, np.random.default_rng(0))


def test_spoof_records_balance_live_and_attacks():
    cfg = SynthConfig(kind="spoof", n=60, size=48, seed=0, split_fractions={"train": 1})
    records = list(generate(cfg, "train"))
    assert all((r.live is True) == (r.attack is None) for r in records)
    assert 15 < sum(r.live for r in records) < 45
    assert {r.attack for r in records if not r.live} <= set(ATTACKS)
    for r in records:
        assert bool(re.search(r"\b(live|genuine)\b", r.caption.lower())) == r.live, r.caption


# --------------------------------------------------------------------------- scenes


def test_scenes_boxes_names_and_faceless_names():
    cfg = SynthConfig(kind="scenes", n=40, size=96, seed=0, split_fractions={"train": 1})
    pool = {p.name for p in identity_pools(cfg)["train"]}
    records = list(generate(cfg, "train"))
    counts = Counter(len(r.faces) for r in records)
    assert set(counts) <= {1, 2, 3, 4} and len(counts) >= 3
    unnamed = faceless = 0
    for r in records:
        assert r.names and set(r.names) <= pool
        for name in r.names:
            assert name in r.caption
        for face in r.faces:
            x0, y0, x1, y1 = face["box"]
            assert 0 <= x0 < x1 <= 96 and 0 <= y0 < y1 <= 96
            assert face["name"] is None or face["name"] in r.names
        unnamed += sum(f["name"] is None for f in r.faces)
        faceless += len(set(r.names) - {f["name"] for f in r.faces})
        assert len(r.extra["identities"]) == len(r.faces)
    assert unnamed > 0 and faceless > 0


def test_test_seen_draws_new_images_of_the_training_people():
    cfg = SynthConfig(kind="scenes", n=24, size=48, seed=2,
                      split_fractions={"train": 0.5, "test_seen": 0.25, "test": 0.25})
    pools = identity_pools(cfg)
    assert pools["test_seen"] is pools["train"] and not {p.identity for p in pools["train"]} & {
        p.identity for p in pools["test"]}
    same = SynthConfig(kind="scenes", n=12, size=48, seed=2, split_fractions={"train": 0.5, "test": 0.25})
    assert identity_pools(same)["train"] == pools["train"]  # asking for test_seen adds no one to train
    train = list(generate(cfg, "train", pools=pools))
    seen = list(generate(cfg, "test_seen", pools=pools))
    people = {p.identity for p in pools["train"]}
    names = {p.name for p in pools["train"]}
    assert len(seen) == 6 and all(set(r.extra["identities"]) <= people and set(r.names) <= names for r in seen)
    assert {i for r in seen for i in r.extra["identities"]} & {i for r in train for i in r.extra["identities"]}
    train_pixels = {r.image.tobytes() for r in train}
    assert not any(r.image.tobytes() in train_pixels for r in seen)  # new images, own seeds
    with pytest.raises(ValueError, match="'test_seen' shows the 'train' split's people"):
        SynthConfig(kind="scenes", split_fractions={"test": 1, "test_seen": 1})


# --------------------------------------------------------------------------- captions and QA

#: words in a caption -> the label they commit to
KEYWORDS = [
    (r"\bsunglasses\b|\bshades\b", "eyewear", "sunglasses"),
    (r"\b(?<!no )(?<!sun)glasses\b|spectacles", "eyewear", "eyeglasses"),
    (r"\bbald\b", "hair_style", "bald"),
    (r"\bbeard\b", "facial_hair", "beard"),
    (r"\bgoatee\b", "facial_hair", "goatee"),
    (r"\bmoustache\b|\bmustache\b", "facial_hair", "moustache"),
    (r"\bstubble|stubbly\b", "facial_hair", "stubble"),
    (r"(?<!no )\bhat\b", "hat", True),
    (r"\bcurly\b", "hair_style", "curly"),
    (r"\bsmiling\b|\bgrinning\b|\bsmile\b", "emotion", "happy"),
    (r"\bclosed\b|\bshut\b", "eyes_open", False),
    (r"\bkid\b|\bchild\b", "age_group", "child"),
    (r"\belderly\b|\bsenior\b|\bolder person\b", "age_group", "senior"),
]


def test_captions_mention_only_what_the_labels_say():
    sampler = AttributeSampler()
    rng = np.random.default_rng(7)
    lengths = []
    for _ in range(400):
        labels = sampler.sample(rng)
        cap = build_caption(labels, rng)
        shown = visible_attributes(labels)
        assert cap.mentioned and all(shown[a] == v for a, v in cap.mentioned.items()), (cap, labels)
        text = re.sub(r"\b(no|not wearing|wears no) [\w-]+", "", cap.text.lower())  # stated absences
        for pattern, attr, value in KEYWORDS:
            if re.search(pattern, text):
                assert labels[attr] == value, (cap.text, attr, labels[attr])
        assert " he " not in f" {text} " and " she " not in f" {text} "
        lengths.append(len(cap.mentioned))
    assert 2 <= np.mean(lengths) <= 9 and min(lengths) >= 2  # incomplete, never empty


def test_qa_answers_match_the_labels():
    sampler = AttributeSampler()
    rng = np.random.default_rng(3)
    asked = Counter()
    for _ in range(600):
        labels = sampler.sample(rng)
        qa = sample_qa(labels, rng)
        assert qa.attribute in visible_attributes(labels)
        assert answer_to_label(qa.attribute, qa.answer) == labels[qa.attribute]
        assert qa.question in QUESTIONS[qa.attribute]
        asked[qa.attribute] += 1
    assert set(asked) == set(ATTRIBUTES)
    hidden = {**labels, "eyewear": "sunglasses"}
    with pytest.raises(ValueError, match="eye_color"):
        sample_qa(hidden, rng, attribute="eye_color")
    with pytest.raises(ValueError, match="'maybe'"):
        answer_to_label("hat", "maybe")


# --------------------------------------------------------------------------- the command


def _split_identities(records) -> set[str]:
    ids = set()
    for r in records:
        ids |= {r.identity} if r.faces is None else set(r.extra["identities"]) | set(r.names)
        if r.name:
            ids.add(r.name)
    return ids


@pytest.mark.parametrize("fmt", ["imagefolder", "parquet", "webdataset"])
@pytest.mark.parametrize("kind", KINDS)
def test_command_writes_each_kind_in_each_format(tmp_path, kind, fmt):
    from flip.cli.data import main
    from flip.data.formats import decode_image, read_dataset

    out = tmp_path / f"{kind}-{fmt}"
    rc = main(["synth", "--kind", kind, "--n", "12", "--size", "48", "--seed", "5", "--out", str(out),
               "--format", fmt, "--workers", "1", "--quiet", "--images-per-identity", "2"])
    assert rc == 0
    card = (out / "README.md").read_text()
    assert "seed: 5" in card and "generator version" in card and "children have no facial hair" in card
    cfg = SynthConfig(**json.loads((out / "synth_config.json").read_text()))
    pools = identity_pools(cfg)
    seen = {}
    for split, count in cfg.split_counts().items():
        records = list(read_dataset(out, split=split))
        assert len(records) == count
        for r in records:
            index = int(Path(r.file_name).stem)
            expected = make_record(cfg, split, index, pools)
            got = r.to_dict()
            want = expected.to_dict()
            for key in ("file_name", "extra"):
                got.pop(key), want.pop(key)
            assert got == want
            assert decode_image(r.image).size == (48, 48)
        seen[split] = _split_identities(records)
    splits = list(seen)
    assert len(splits) == 3
    for i, a in enumerate(splits):
        for b in splits[i + 1:]:
            assert not seen[a] & seen[b], (a, b)


def test_command_output_repeats_byte_for_byte(tmp_path):
    from flip.cli.data import main

    def files(seed, name):
        out = tmp_path / name
        assert main(["synth", "--n", "10", "--size", "48", "--seed", str(seed), "--out", str(out), "--quiet",
                     "--workers", "1"]) == 0
        return {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*"))
                if p.is_file() and p.name != "README.md"}

    a, b, c = files(0, "a"), files(0, "b"), files(1, "c")
    assert a == b
    assert a[Path("train/metadata.jsonl")] != c[Path("train/metadata.jsonl")]


def test_command_reports_bad_input(tmp_path, capsys):
    from flip.cli.data import main

    assert main(["synth", "--out", str(tmp_path / "x"), "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"kind": "captions", "colour": "blue"}))
    assert main(["synth", "--out", str(tmp_path / "y"), "--config", str(bad)]) == 2
    assert "colour" in capsys.readouterr().err
    assert main(["synth", "--out", str(tmp_path / "z"), "--n", "0"]) == 2
    assert "n=0" in capsys.readouterr().err


def test_command_takes_a_config_file_plus_overrides(tmp_path):
    from flip.cli.data import main
    from flip.data.formats import read_dataset

    config = tmp_path / "synth.yaml"
    config.write_text("kind: qa\nn: 500\nsize: 48\ndistributions:\n  eyewear: {sunglasses: 1}\n  hat: {true: 1}\n")
    out = tmp_path / "qa"
    assert main(["synth", "--config", str(config), "--n", "9", "--out", str(out), "--quiet", "--workers", "1"]) == 0
    saved = json.loads((out / "synth_config.json").read_text())
    assert saved["kind"] == "qa" and saved["n"] == 9
    records = [r for split in ("train", "val", "test") for r in read_dataset(out, split=split)]
    assert len(records) == 9
    assert all(r.eyewear == "sunglasses" and r.hat is True and r.attribute != "eye_color" for r in records)
