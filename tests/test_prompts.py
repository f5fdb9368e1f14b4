"""Prompt files: the shipped set, the reference files, and one clear error per kind of bad file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flip.prompts import (
    PROMPT_DIR,
    PromptSet,
    available_tasks,
    label_key,
    load_prompts,
    load_templates,
)
from flip.zeroshot import build_descriptor_prompts

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
REPO = Path(__file__).resolve().parents[1]
RECORD_TASKS = ("face_shape", "skin_tone", "eye_color", "hair_color", "hair_style", "emotion", "eyes_open",
                "age_group", "eyewear", "facial_hair", "hat", "earrings", "makeup")
CELEBA_40 = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair Blond_Hair "
    "Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup High_Cheekbones "
    "Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline "
    "Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick "
    "Wearing_Necklace Wearing_Necktie Young"
).split()


def write(tmp_path: Path, data, name: str = "task.json") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


# -- the shipped files ----------------------------------------------------------------------------
def test_every_shipped_file_loads_and_the_required_tasks_exist():
    tasks = available_tasks()
    required = list(RECORD_TASKS) + [f"celeba/{a}" for a in CELEBA_40] + ["fairface/race", "fairface/gender", "fairface/age"]
    assert sorted(set(required) - set(tasks)) == []
    for task in tasks:
        prompts = load_prompts(task)
        assert prompts.task == task and prompts.meta.get("task") == task
        assert prompts.version is not None and prompts.meta["format"] == 1
        assert len(prompts.templates) >= 3  # flip's files use the face template list, not the bare name


def test_the_shipped_record_tasks_classes_equal_the_synthetic_world_vocabularies():
    vocab = pytest.importorskip("flip.data.synthetic.attributes").VOCABULARIES
    from flip.data.records import ATTRIBUTES

    assert set(vocab) == set(ATTRIBUTES) == set(RECORD_TASKS)
    for attr, values in vocab.items():
        expected = [label_key(v) for v in values]
        for task in (attr, f"rephrased/{attr}"):
            assert sorted(load_prompts(task).classes) == sorted(expected), task


def test_binary_and_fairface_label_sets():
    for attr in CELEBA_40:
        assert load_prompts(f"celeba/{attr}").classes == ("true", "false")
    assert set(load_prompts("fairface/race").classes) == {
        "White", "Black", "Latino_Hispanic", "East Asian", "Southeast Asian", "Indian", "Middle Eastern"}
    assert set(load_prompts("fairface/gender").classes) == {"Male", "Female"}
    assert list(load_prompts("fairface/age").classes) == [
        "0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70"]


def test_shipped_sentences_read_as_english():
    # A descriptor must be a noun phrase without an article or start with has/may/often/typically/can:
    # "who is a broad smile" or "which has is ..." would be nonsense fed to the text encoder.
    for task in available_tasks():
        prompts = load_prompts(task)
        for cls, items in prompts.descriptors.items():
            for d in items:
                assert d.split()[0].lower() not in {"a", "an", "the", "is", "are", "used", "who", "which"}, (task, cls, d)
        sentences, _, _ = build_descriptor_prompts(prompts)
        assert all(f", {prompts.relative} " in s for s in sentences)


def test_the_top_level_prompts_folder_is_the_packaged_one():
    # One source of truth: prompts/ in the repository is a link to the package data folder.
    assert (REPO / "prompts").resolve() == PROMPT_DIR.resolve()
    assert '"assets/**/*"' in (REPO / "pyproject.toml").read_text()  # packaged with the wheel


def test_label_key_spells_labels_as_json():
    assert [label_key(v) for v in (True, False, "senior", None)] == ["true", "false", "senior", None]


# -- the reference files, unchanged ---------------------------------------------------------------
@pytest.mark.parametrize("name,classes,descriptors", [("descriptors_pets.json", 37, 246),
                                                       ("descriptors_eurosat.json", 10, 25)])
def test_reference_descriptor_files_load_unchanged(name, classes, descriptors):
    path = REFERENCE / name
    if not path.is_file():
        pytest.skip(f"{path} not present (needs ../shared beside the checkout)")
    raw = json.loads(path.read_text())
    prompts = load_prompts(path)
    assert prompts.classes == tuple(raw) and (prompts.num_classes, prompts.num_descriptors) == (classes, descriptors)
    assert {c: list(d) for c, d in prompts.descriptors.items()} == raw
    assert prompts.names == {c: c for c in raw} and prompts.relative == "which" and prompts.templates == ("{}",)


# -- validation: one error naming the file and the key --------------------------------------------
BAD_FILES = [
    ({"a": ["x"], "b": []}, "class 'b' has no descriptors"),
    ({"a": ["x", "y", " X "], "b": ["z"]}, "class 'a': descriptor 2 ' X ' duplicates descriptor 0"),
    ({"a": ["x", 3], "b": ["z"]}, "class 'a', descriptor 1 must be a string, got int"),
    ({"a": ["x", "  "], "b": ["z"]}, "class 'a', descriptor 1 is empty"),
    ({"a": "x", "b": ["z"]}, "class 'a': descriptors must be a list of strings, got str"),
    ({"a": ["x"]}, "at least two classes, found 1"),
    ({"a": ["x"], "b": ["z"], "_templates": ["{}"]}, "unknown key '_templates'"),
    ({"_meta": {"colour": 1}, "a": ["x"], "b": ["z"]}, "unknown key '_meta.colour'"),
    ({"_meta": {"format": 2}, "a": ["x"], "b": ["z"]}, "_meta.format = 2 is not one this flip reads"),
    ({"_meta": {"task": "other"}, "a": ["x"], "b": ["z"]}, "_meta.task = 'other' but the file is task 'task'"),
    ({"_meta": {"names": {"c": "a c"}}, "a": ["x"], "b": ["z"]}, "_meta.names has unknown class 'c'"),
    ({"_meta": {"names": {"a": 5}}, "a": ["x"], "b": ["z"]}, "_meta.names['a'] must be a string"),
    ({"_meta": {"relative": "that"}, "a": ["x"], "b": ["z"]}, "_meta.relative = 'that'"),
    ({"_meta": {"templates": ["a photo"]}, "a": ["x"], "b": ["z"]}, "_meta.templates[0] = 'a photo' must hold exactly one '{}'"),
    ({"_meta": {"templates": "nope"}, "a": ["x"], "b": ["z"]}, "no template list 'nope'"),
    ({"A": ["x"], "a ": ["z"]}, "class 'a ' duplicates class 'A'"),
    (["x"], "must be a JSON object of class -> descriptors, got list"),
    ('{"a": ["x"], "a": ["y"]}', "duplicate key 'a'"),
    ('{"a": ["x"],', "not valid JSON (line 1"),
]


@pytest.mark.parametrize("data,message", BAD_FILES)
def test_bad_files_give_one_error_naming_file_and_key(tmp_path, data, message):
    write(tmp_path, {"face": ["{}"]}, "_templates.json")
    path = write(tmp_path, data)
    with pytest.raises(ValueError) as err:
        load_prompts(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value)


def test_unknown_task_lists_the_tasks_and_missing_file_is_named(tmp_path):
    with pytest.raises(KeyError, match="unknown task 'emotions'.*emotion, eye_color"):
        load_prompts("emotions")
    with pytest.raises(FileNotFoundError, match="no such prompt file: .*nope.json"):
        load_prompts(tmp_path / "nope.json")
    with pytest.raises(KeyError, match="unknown task '_templates'"):
        load_prompts("_templates")


def test_meta_fields_and_named_templates(tmp_path):
    write(tmp_path, {"_meta": {"format": 1}, "short": ["{}!", "a {} face"]}, "_templates.json")
    path = write(tmp_path, {
        "_meta": {"format": 1, "version": 3, "task": "mood", "names": {"up": "a cheerful person"},
                  "relative": "who", "templates": "short", "note": "test"},
        "up": ["has a grin"], "down_cast": ["droopy lips"],
    }, "mood.json")
    p = load_prompts(path)
    assert (p.task, p.classes, p.version, p.relative, p.note) == ("mood", ("up", "down_cast"), "3", "who", "test")
    assert p.names == {"up": "a cheerful person", "down_cast": "down cast"}  # default: the paper's wordify
    assert p.templates == ("{}!", "a {} face") == load_templates("short", tmp_path)
    # By task name under a root, the same file; the hash is of the file's bytes.
    assert load_prompts("mood", root=tmp_path) == p and len(p.sha256) == 64
    # Nested task names and the FLIP_PROMPTS override.
    write(tmp_path, {"a": ["x"], "b": ["y"]}, "sub/two.json")
    assert available_tasks(tmp_path) == ["mood", "sub/two"]


def test_from_dict_validates_like_a_file():
    p = PromptSet.from_dict({"a": ["x"], "b": ["y"]}, task="t")
    assert p.classes == ("a", "b") and p.path is None and len(p.sha256) == 64
    with pytest.raises(ValueError, match="<dict>: class 'b' has no descriptors"):
        PromptSet.from_dict({"a": ["x"], "b": []})


def test_flip_prompts_environment_variable_moves_the_root(tmp_path, monkeypatch):
    write(tmp_path, {"a": ["x"], "b": ["y"]}, "only.json")
    monkeypatch.setenv("FLIP_PROMPTS", str(tmp_path))
    assert available_tasks() == ["only"] and load_prompts("only").classes == ("a", "b")


#: Words that carry no attribute; the rephrased set may share these with the captions. Body-part
#: nouns are shared too: a rephrasing still has to say where on the face a cue is.
FUNCTION_WORDS = {"a", "an", "the", "and", "or", "with", "has", "have", "no", "not", "of", "on", "in", "at", "their",
                  "they", "this", "who", "is", "are", "up", "someone", "like", "over", "under", "above", "across", "to",
                  "without", "top", "lip", "lips", "lids", "brow", "chin", "jaw", "lines", "nose", "cheeks", "neck", "mouth"}


@pytest.fixture(scope="module")
def training_captions():
    """Every phrase the training captions can use: many captions with every attribute and cue named,
    plus each training phrasing family whole."""
    synthetic = pytest.importorskip("flip.data.synthetic")
    from flip.data.synthetic.captions import ATTACK_PHRASES
    from flip.data.synthetic.cues import CUE_PHRASES, HELDOUT
    from flip.data.synthetic.world import identity_pools

    cfg = synthetic.SynthConfig(kind="captions", n=2500, seed=11, p_mention=1.0, p_cue=1.0, attack_fraction=0.2)
    pools = identity_pools(cfg)
    texts = [synthetic.make_record(cfg, "train", i, pools).caption for i in range(2000)]
    texts += [p for fams in CUE_PHRASES.values() for fam in fams[:HELDOUT] for p in fam]
    texts += [p for fams in ATTACK_PHRASES.values() for fam in fams[:-1] for p in fam]
    return [t.lower() for t in texts]


def test_rephrased_set_uses_no_word_of_the_training_captions(training_captions):
    import re

    words = {w for t in training_captions for w in re.findall(r"[a-z]+", t)}
    assert {"smiling", "sunglasses", "bald", "complexion", "wrinkles", "printed"} <= words  # really sampled
    for task in available_tasks():
        if task.startswith("rephrased/"):
            p = load_prompts(task)
            for cls in p.classes:
                for text in (p.names[cls], *p.descriptors[cls]):
                    shared = set(re.findall(r"[a-z]+", text.lower())) & words - FUNCTION_WORDS
                    assert not shared, f"{task}, class {cls!r}: {text!r} uses caption words {sorted(shared)}"


def test_no_shipped_descriptor_occurs_verbatim_in_the_captions(training_captions):
    """Descriptors are written as a person would, not copied from the caption grammar (issue 15)."""
    tasks = [t for t in available_tasks() if "/" not in t or t.startswith("rephrased/")]
    assert "emotion" in tasks and "liveness" in tasks
    for task in tasks:
        p = load_prompts(task)
        for cls in p.classes:
            for d in p.descriptors[cls]:
                d = d.lower().removeprefix("has ")
                hits = [t for t in training_captions if d in t]
                assert not hits, f"{task}, class {cls!r}: descriptor {d!r} is in the captions, e.g. {hits[0]!r}"


def test_real_dataset_label_sets_equal_the_loaders():
    celeba = pytest.importorskip("flip.data.loaders.celeba")
    fairface = pytest.importorskip("flip.data.loaders.fairface")
    assert sorted(celeba.CELEBA_ATTRIBUTES) == sorted(CELEBA_40)
    assert {t.split("/")[1] for t in available_tasks() if t.startswith("celeba/")} == set(celeba.CELEBA_ATTRIBUTES)
    # CelebA's booleans live in record.extra; label_key spells them as the prompt classes.
    assert {label_key(v) for v in (True, False)} == set(load_prompts("celeba/Smiling").classes)
    for task, labels in (("race", fairface.RACES), ("gender", fairface.GENDERS), ("age", fairface.AGES)):
        assert list(load_prompts(f"fairface/{task}").classes) == list(labels)


def test_to_dict_round_trips_and_without_drops_classes():
    full = load_prompts("liveness")
    again = PromptSet.from_dict(full.to_dict(), task=full.task)
    assert (again.classes, again.descriptors, again.names, again.templates, again.relative) == \
        (full.classes, full.descriptors, full.names, full.templates, full.relative)
    less = full.without(["3d_mask"], task="liveness_seen")
    assert less.task == "liveness_seen" and "3d_mask" not in less.classes and "3d_mask" not in less.names
    assert less.classes == tuple(c for c in full.classes if c != "3d_mask") and less.sha256 != full.sha256
    with pytest.raises(ValueError, match="selfie"):
        full.without(["selfie"])
