"""The real-dataset loaders, each on fixture files written here in the dataset's published layout."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from flip.data.formats import DataError, LoadReport, decode_image, write_dataset
from flip.data.loaders import LOADERS, detect_dataset, load_lfw_pairs, load_records
from flip.data.loaders.celeba import CELEBA_ATTRIBUTES
from flip.data.records import FaceRecord


def _png(path, seed=0, size=8):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _broken(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return path


# --------------------------------------------------------------------------- CelebA


def _celeba_row(**positive):
    return {name: positive.get(name, False) for name in CELEBA_ATTRIBUTES}


CELEBA_ROWS = {
    "000001.jpg": _celeba_row(Eyeglasses=True, Smiling=True, Wearing_Hat=True, Black_Hair=True, Young=True,
                              No_Beard=True, Wearing_Lipstick=True, Pale_Skin=True, Oval_Face=True),
    "000002.jpg": _celeba_row(Goatee=True, Bald=True, Wearing_Earrings=True, Male=True),  # No_Beard -1
    "000003.jpg": _celeba_row(No_Beard=True, Mustache=True, Blond_Hair=True, Brown_Hair=True, Heavy_Makeup=True),
    "000004.jpg": _celeba_row(No_Beard=True, **{"5_o_Clock_Shadow": True}, Gray_Hair=True),
}


def make_celeba(root, rows=CELEBA_ROWS, anno=""):
    lines = [str(len(rows)), " ".join(CELEBA_ATTRIBUTES)]
    for name, attrs in rows.items():
        lines.append(name + " " + " ".join(" 1" if attrs[a] else "-1" for a in CELEBA_ATTRIBUTES))
        _png(root / "img_align_celeba" / name, seed=len(lines))
    (root / anno).mkdir(parents=True, exist_ok=True)
    (root / anno / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (root / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 0\n000003.jpg 1\n000004.jpg 2\n")
    (root / "identity_CelebA.txt").write_text("000001.jpg 2880\n000002.jpg 2937\n000003.jpg 8692\n000004.jpg 5805\n")
    return root


def test_celeba_all_40_attributes_and_the_flip_mapping(tmp_path):
    root = make_celeba(tmp_path)
    records = list(load_records(root, "celeba"))
    assert [r.file_name for r in records] == list(CELEBA_ROWS)
    for record in records:
        assert record.extra == CELEBA_ROWS[record.file_name]  # all 40, as bools
        assert record.image == str(root / "img_align_celeba" / record.file_name)
    first, second, third, fourth = records
    assert [r.identity for r in records] == ["2880", "2937", "8692", "5805"]
    assert (first.eyewear, first.emotion, first.hat, first.earrings, first.makeup) == ("eyeglasses", "happy", True, False, True)
    assert (first.hair_color, first.hair_style, first.age_group, first.facial_hair) == ("black", None, "young adult", "none")
    assert (first.skin_tone, first.face_shape) == ("pale", "oval")
    assert (second.eyewear, second.emotion, second.hat, second.earrings, second.makeup) == ("none", None, False, True, False)
    assert (second.hair_style, second.facial_hair, second.age_group, second.skin_tone) == ("bald", "goatee", None, None)
    assert (third.hair_color, third.facial_hair, third.makeup) == (None, "moustache", True)  # two hair colours: unknown
    assert (fourth.hair_color, fourth.facial_hair) == ("grey", "stubble")
    assert [r.file_name for r in load_records(root, "celeba", "train")] == ["000001.jpg", "000002.jpg"]
    assert [r.file_name for r in load_records(root, "celeba", "test")] == ["000004.jpg"]


def test_celeba_bad_value_missing_and_unreadable_images(tmp_path):
    root = make_celeba(tmp_path, anno="Anno")  # the archive's Anno/ folder
    attr_file = root / "Anno" / "list_attr_celeba.txt"
    lines = attr_file.read_text().splitlines()
    lines[3] = lines[3].replace("-1", "0", 1)  # line 4: 000002.jpg
    attr_file.write_text("\n".join(lines) + "\n")
    (root / "img_align_celeba" / "000003.jpg").unlink()
    _broken(root / "img_align_celeba" / "000004.jpg")
    with pytest.raises(DataError, match=r"list_attr_celeba.txt, line 4: 000002.jpg: attribute 5_o_Clock_Shadow must be 1 or -1, got '0'"):
        list(load_records(root, "celeba"))
    records = load_records(root, "celeba", on_error="skip")
    with pytest.warns(UserWarning, match="skipped 3"):
        assert [r.file_name for r in records] == ["000001.jpg"]
    images = root / "img_align_celeba"
    assert [(p.row, p.message.split(": ")[0]) for p in records.report.problems] == [
        ("line 4", "000002.jpg"), ("line 5", "image file not found"), ("line 6", f"unreadable image {images / '000004.jpg'}")]
    assert records.report.problems[1].message == f"image file not found: {images / '000003.jpg'}"
    assert all(p.file == str(attr_file) for p in records.report.problems)


# --------------------------------------------------------------------------- FairFace


def make_fairface(root):
    (root).mkdir(parents=True, exist_ok=True)
    (root / "fairface_label_train.csv").write_text(
        "file,age,gender,race,service_test\n"
        "train/1.jpg,50-59,Male,East Asian,True\n"
        "train/2.jpg,3-9,Female,Latino_Hispanic,False\n"
        "train/3.jpg,10-19,Female,Middle Eastern,True\n")
    (root / "fairface_label_val.csv").write_text(
        "file,age,gender,race,service_test\nval/1.jpg,more than 70,Male,Black,False\n")
    for name in ("train/1.jpg", "train/2.jpg", "train/3.jpg", "val/1.jpg"):
        _png(root / name)
    return root


def test_fairface_labels(tmp_path):
    root = make_fairface(tmp_path)
    records = list(load_records(root, "fairface"))
    assert [r.file_name for r in records] == ["train/1.jpg", "train/2.jpg", "train/3.jpg", "val/1.jpg"]
    assert [r.extra for r in records] == [
        {"age": "50-59", "gender": "Male", "race": "East Asian", "service_test": True},
        {"age": "3-9", "gender": "Female", "race": "Latino_Hispanic", "service_test": False},
        {"age": "10-19", "gender": "Female", "race": "Middle Eastern", "service_test": True},
        {"age": "more than 70", "gender": "Male", "race": "Black", "service_test": False},
    ]
    assert [r.age_group for r in records] == ["middle-aged", "child", None, "senior"]
    assert [r.file_name for r in load_records(root, "fairface", "val")] == ["val/1.jpg"]


def test_fairface_bad_label_and_missing_column(tmp_path):
    root = make_fairface(tmp_path)
    csv_file = root / "fairface_label_train.csv"
    csv_file.write_text(csv_file.read_text().replace("Latino_Hispanic", "Hispanic"))
    with pytest.raises(DataError, match=r"fairface_label_train.csv, line 3: bad race 'Hispanic'"):
        list(load_records(root, "fairface", "train"))
    report = LoadReport()
    with pytest.warns(UserWarning, match="skipped 1"):
        kept = list(load_records(root, "fairface", "train", on_error="skip", report=report))
    assert [r.file_name for r in kept] == ["train/1.jpg", "train/3.jpg"] and report.problems[0].row == "line 3"

    csv_file.write_text("file,age,gender\ntrain/1.jpg,50-59,Male\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['race'\]; columns found: \['file', 'age', 'gender'\]"):
        list(load_records(csv_file, "fairface"))
    with pytest.warns(UserWarning):
        assert list(load_records(csv_file, "fairface", on_error="skip")) == []


# --------------------------------------------------------------------------- UTKFace


def make_utkface(root):
    for name in ("25_0_2_20170116174525125.jpg.chip.jpg", "8_1_0_20170109150557335.jpg.chip.jpg",
                 "part2/70_1_3_20170110182418818.jpg"):
        _png(root / name)
    return root


def test_utkface_names_to_labels_and_bad_names(tmp_path):
    root = make_utkface(tmp_path)
    records = list(load_records(root, "utkface"))
    by_name = {r.file_name: r for r in records}
    assert by_name["25_0_2_20170116174525125.jpg.chip.jpg"].extra == {"age": 25, "gender": "Male", "race": "Asian"}
    assert by_name["8_1_0_20170109150557335.jpg.chip.jpg"].extra == {"age": 8, "gender": "Female", "race": "White"}
    assert by_name["part2/70_1_3_20170110182418818.jpg"].extra == {"age": 70, "gender": "Female", "race": "Indian"}
    assert [by_name[n].age_group for n in sorted(by_name)] == ["young adult", "child", "senior"]

    _png(root / "61_1_20170109142408075.jpg.chip.jpg")  # published with a missing field
    _png(root / "30_0_7_20170109142408075.jpg")
    with pytest.raises(DataError, match=r"30_0_7_20170109142408075.jpg: file name .* race must be 0-4"):
        list(load_records(root, "utkface"))
    records = load_records(root, "utkface", on_error="skip")
    with pytest.warns(UserWarning, match="skipped 2"):
        assert len(list(records)) == 3
    assert "61_1_20170109142408075.jpg.chip.jpg" in records.report.problems[1].file
    assert "is not [age]_[gender]_[race]_[date&time].jpg" in records.report.problems[1].message


# --------------------------------------------------------------------------- LFW


def make_lfw(root):
    for name, count in (("Abel_Pacheco", 2), ("George_W_Bush", 3), ("Zoe_Ball", 1)):
        for i in range(1, count + 1):
            _png(root / "lfw" / name / f"{name}_{i:04d}.jpg", seed=i)
    (root / "pairs.txt").write_text(
        "2\t1\n"
        "Abel_Pacheco\t1\t2\n"
        "Abel_Pacheco\t1\tZoe_Ball\t1\n"
        "George_W_Bush\t2\t3\n"
        "George_W_Bush\t1\tZoe_Ball\t1\n")
    (root / "peopleDevTest.txt").write_text("1\nZoe_Ball\t1\n")
    return root


def test_lfw_records_and_pairs(tmp_path):
    root = make_lfw(tmp_path)
    records = list(load_records(root, "lfw"))
    assert [r.file_name for r in records] == [
        "Abel_Pacheco/Abel_Pacheco_0001.jpg", "Abel_Pacheco/Abel_Pacheco_0002.jpg",
        "George_W_Bush/George_W_Bush_0001.jpg", "George_W_Bush/George_W_Bush_0002.jpg",
        "George_W_Bush/George_W_Bush_0003.jpg", "Zoe_Ball/Zoe_Ball_0001.jpg"]
    assert [(r.identity, r.name, r.extra["image_number"]) for r in records][2] == ("George_W_Bush", "George W Bush", 1)
    assert [r.name for r in load_records(root, "lfw", "test")] == ["Zoe Ball"]

    pairs = load_lfw_pairs(root / "pairs.txt")
    assert [(p.same, p.fold, p.name_a, p.name_b) for p in pairs] == [
        (True, 0, "Abel_Pacheco", "Abel_Pacheco"), (False, 0, "Abel_Pacheco", "Zoe_Ball"),
        (True, 1, "George_W_Bush", "George_W_Bush"), (False, 1, "George_W_Bush", "Zoe_Ball")]
    assert pairs[2].image_b == str(root / "lfw" / "George_W_Bush" / "George_W_Bush_0003.jpg")


def test_lfw_bad_names_and_pairs(tmp_path):
    root = make_lfw(tmp_path)
    _png(root / "lfw" / "Zoe_Ball" / "zoe.jpg")
    with pytest.raises(DataError, match="file 'zoe.jpg' is not named Zoe_Ball_<4 digits>"):
        list(load_records(root, "lfw"))
    pairs_file = root / "pairs.txt"
    pairs_file.write_text(pairs_file.read_text().replace("George_W_Bush\t2\t3", "George_W_Bush\t2\t9"))
    with pytest.raises(DataError, match=r"pairs.txt, line 4: image file not found: .*George_W_Bush_0009.jpg"):
        load_lfw_pairs(pairs_file)
    report = LoadReport()
    with pytest.warns(UserWarning, match="skipped 1"):
        pairs = load_lfw_pairs(pairs_file, on_error="skip", report=report)
    assert [p.name_a for p in pairs] == ["Abel_Pacheco", "Abel_Pacheco", "George_W_Bush"]
    assert [p.row for p in report.problems] == ["line 4"]
    pairs_file.write_text("\n".join(pairs_file.read_text().splitlines()[:3]) + "\n")  # a truncated list
    with pytest.raises(DataError, match=r"line 1: header says 2 fold\(s\) of 1 .* \(4\), but the file lists 2"):
        load_lfw_pairs(pairs_file)


# --------------------------------------------------------------------------- anti-spoofing


def make_antispoof(root):
    _png(root / "live" / "subject1" / "frame1.jpg")
    _png(root / "live" / "frame2.jpg")
    _png(root / "attack" / "print" / "p1.jpg")
    _png(root / "spoof" / "replay" / "r1.png")
    _png(root / "attack" / "unknown1.jpg")
    return root


def test_antispoof_folders(tmp_path):
    root = make_antispoof(tmp_path / "oulu")
    got = [(r.file_name, r.live, r.attack) for r in load_records(root, "antispoof", attack_map={"replay": "screen"})]
    assert got == [("live/frame2.jpg", True, None), ("live/subject1/frame1.jpg", True, None),
                   ("attack/print/p1.jpg", False, "print"), ("attack/unknown1.jpg", False, None),
                   ("spoof/replay/r1.png", False, "screen")]
    make_antispoof(tmp_path / "split" / "test")
    assert len(list(load_records(tmp_path / "split", "antispoof", "test"))) == 5


def test_antispoof_list_labels(tmp_path):
    make_antispoof(tmp_path)
    table = tmp_path / "list.csv"
    table.write_text("path,label,attack\nlive/frame2.jpg,real,\nattack/print/p1.jpg,attack,print\n"
                     "spoof/replay/r1.png,1,replay\n")
    with pytest.raises(DataError, match=r"list.csv, line 4: bad label '1'.*numeric labels need label_map="):
        list(load_records(table, "antispoof"))
    got = [(r.file_name, r.live, r.attack) for r in load_records(table, "antispoof", label_map={"1": "attack"})]
    assert got == [("live/frame2.jpg", True, None), ("attack/print/p1.jpg", False, "print"),
                   ("spoof/replay/r1.png", False, "replay")]
    jsonl = tmp_path / "list.jsonl"
    jsonl.write_text(json.dumps({"file": "live/frame2.jpg", "label": "live"}) + "\n"
                     + json.dumps({"file": "missing.jpg", "label": "spoof", "attack": "mask"}) + "\n")
    records = load_records(jsonl, "antispoof", on_error="skip")
    with pytest.warns(UserWarning, match="skipped 1"):
        assert [(r.live, r.attack) for r in records] == [(True, None)]
    assert records.report.problems[0].row == "line 2" and "missing.jpg" in records.report.problems[0].message


# --------------------------------------------------------------------------- FaceCaption-15M


def make_facecaption_parquet(path):
    """Columns and value types as public code reading FaceCaption-v2.parquet uses them."""
    table = pa.table({
        "_id": ["a1", "a2", "a3"],
        "caption": [["This woman has long blond hair and is smiling."], ["A man with a beard."],
                    ["A child.", "A young child with red hair."]],
        "url": ["http://example.com/1.jpg", "http://example.com/2.jpg, http://mirror/2.jpg", "UNKNOWN"],
        "laion_caption": [["Actress at the premiere"], [], None],
        "box": ["[10, 20, 110, 140]", "[0, 0, 64, 64]", "[5, 5, 50, 60]"],
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def test_facecaption_parquet(tmp_path):
    path = make_facecaption_parquet(tmp_path / "FaceCaption-v2.parquet")
    records = list(load_records(path, "facecaption"))
    assert [r.caption for r in records] == ["This woman has long blond hair and is smiling.", "A man with a beard.",
                                            "A child."]
    assert [r.faces for r in records] == [[{"box": [10.0, 20.0, 110.0, 140.0], "name": None}],
                                          [{"box": [0.0, 0.0, 64.0, 64.0], "name": None}],
                                          [{"box": [5.0, 5.0, 50.0, 60.0], "name": None}]]
    assert [r.extra for r in records] == [
        {"id": "a1", "url": "http://example.com/1.jpg", "laion_caption": "Actress at the premiere"},
        {"id": "a2", "url": "http://example.com/2.jpg, http://mirror/2.jpg", "laion_caption": None},
        {"id": "a3", "url": "UNKNOWN", "laion_caption": None, "captions": ["A child.", "A young child with red hair."]},
    ]
    assert [r.file_name for r in records] == ["a1", "a2", "a3"] and all(r.image is None for r in records)
    # images fetched by id beside the file
    for i in (1, 2, 3):
        _png(tmp_path / "images" / f"a{i}.jpg", seed=i)
    records = list(load_records(path, "facecaption", image_root=tmp_path / "images"))
    assert records[1].image == str(tmp_path / "images" / "a2.jpg")


def test_facecaption_parquet_other_names_bad_box_and_missing_caption(tmp_path):
    png = _png(tmp_path / "x.png").read_bytes()
    table = pa.table({"face_caption": ["A smiling face.", "A frowning face."], "URL": ["u1", "u2"],
                      "face_box": [[1.0, 2.0, 30.0, 40.0], [30.0, 2.0, 1.0, 40.0]],
                      "image": [{"bytes": png, "path": "0.png"}, {"bytes": png, "path": "1.png"}]})
    pq.write_table(table, tmp_path / "renamed.parquet")
    with pytest.raises(DataError, match=r"renamed.parquet, row 2: bad face box"):
        list(load_records(tmp_path / "renamed.parquet", "facecaption"))
    records = load_records(tmp_path / "renamed.parquet", "facecaption", on_error="skip")
    with pytest.warns(UserWarning, match="skipped 1"):
        (only,) = records
    assert (only.caption, only.faces[0]["box"], only.extra["url"]) == ("A smiling face.", [1.0, 2.0, 30.0, 40.0], "u1")
    np.testing.assert_array_equal(np.asarray(decode_image(only.image)), np.asarray(Image.open(tmp_path / "x.png")))

    pq.write_table(pa.table({"url": ["u"], "box": ["[0, 0, 1, 1]"], "title": ["t"]}), tmp_path / "nocap.parquet")
    with pytest.raises(DataError, match=r"missing a caption column .*columns found: \['url', 'box', 'title'\]"):
        list(load_records(tmp_path / "nocap.parquet", "facecaption"))


def make_facecaption_annotations(root):
    """The authors' layout: FaceCa/caption/<part>/*.json and FaceCa/images/, paths with an 'images/' prefix."""
    parts = {
        "caption/part0/00.json": [{"image": "images/0/1.jpg", "image_id": "images/1", "caption": ["A man smiling."]},
                                  {"image": "images/0/2.jpg", "image_id": "images/2", "caption": ["A woman."]}],
        "caption/part1/01.json": [{"image": "images/1/3.jpg", "image_id": "images/3",
                                   "caption": ["A senior.", "An old man with grey hair."]}],
    }
    for rel, items in parts.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(json.dumps(items))
    for name in ("0/1.jpg", "0/2.jpg", "1/3.jpg"):
        _png(root / "images" / name)
    return root / "caption"


def test_facecaption_annotation_folders(tmp_path):
    ann_root = make_facecaption_annotations(tmp_path / "FaceCa")
    train = list(load_records(ann_root, "facecaption", "train"))
    assert [(r.file_name, r.caption, r.extra["image_id"]) for r in train] == [
        ("0/1.jpg", "A man smiling.", "images/1"), ("0/2.jpg", "A woman.", "images/2")]
    assert train[0].image == str(tmp_path / "FaceCa" / "images" / "0" / "1.jpg")
    (test,) = load_records(ann_root, "facecaption", "test")  # the last file
    assert test.caption == "A senior." and test.extra["captions"] == ["A senior.", "An old man with grey hair."]
    # image paths given relative to a root that holds them as they are
    assert len(list(load_records(ann_root, "facecaption", image_root=tmp_path / "FaceCa"))) == 3


def test_facecaption_annotation_errors(tmp_path):
    ann_root = make_facecaption_annotations(tmp_path / "FaceCa")
    bad = ann_root / "part0" / "00.json"
    items = json.loads(bad.read_text())
    items[1].pop("caption")
    bad.write_text(json.dumps(items))
    with pytest.raises(DataError, match=r"00.json, item 1: missing key\(s\) \['caption'\]"):
        list(load_records(ann_root, "facecaption"))
    (tmp_path / "FaceCa" / "images" / "1" / "3.jpg").unlink()
    records = load_records(ann_root, "facecaption", on_error="skip")
    with pytest.warns(UserWarning, match="skipped 2"):
        assert [r.file_name for r in records] == ["0/1.jpg"]
    assert "3.jpg" in records.report.problems[1].message


# --------------------------------------------------------------------------- generic tables and folders


def test_generic_csv_jsonl_and_imagefolder(tmp_path):
    for name in ("a.png", "b.png", "cats/c.png", "dogs/d.png"):
        _png(tmp_path / "imgs" / name)
    table = tmp_path / "imgs" / "table.csv"
    table.write_text('file_name,caption,hat,eyes_open,names,source\n'
                     'a.png,a face,true,,"[""Ann""]",web\n'
                     'b.png,another,0,yes,,scan\n')
    records = list(load_records(table, "csv"))
    assert [(r.file_name, r.caption, r.hat, r.eyes_open, r.names, r.extra) for r in records] == [
        ("a.png", "a face", True, None, ["Ann"], {"source": "web"}),
        ("b.png", "another", False, True, None, {"source": "scan"})]
    table.write_text("image,hat\na.png,maybe\n")
    with pytest.raises(DataError, match=r"table.csv, line 2: field 'hat': expected true/false, got 'maybe'"):
        list(load_records(table, "csv"))
    table.write_text("caption\nhello\n")
    with pytest.raises(DataError, match=r"missing column 'file_name'.*columns found: \['caption'\]"):
        list(load_records(table, "csv"))

    jsonl = tmp_path / "imgs" / "t.jsonl"
    jsonl.write_text(json.dumps({"path": "cats/c.png", "live": False, "attack": "print"}) + "\n"
                     + json.dumps({"path": "dogs/d.png", "live": "no"}) + "\n")
    records = load_records(jsonl, "jsonl", on_error="skip")
    with pytest.warns(UserWarning):
        assert [(r.file_name, r.live, r.attack) for r in records] == [("cats/c.png", False, "print")]
    assert records.report.problems[0].row == "line 2"

    folder = list(load_records(tmp_path / "imgs", "imagefolder"))
    assert [(r.file_name, r.extra.get("label")) for r in folder] == [
        ("a.png", None), ("b.png", None), ("cats/c.png", "cats"), ("dogs/d.png", "dogs")]
    (tmp_path / "imgs" / "metadata.csv").write_text("file_name,caption,makeup\na.png,hello,false\n")
    (only,) = load_records(tmp_path / "imgs", "imagefolder")
    assert (only.caption, only.makeup) == ("hello", False)


def test_flip_formats_through_load_records(tmp_path):
    image = Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8))
    records = [FaceRecord(image=image, caption="c", live=False, attack="print", hat=True)]
    write_dataset(records, tmp_path, "webdataset", "train")
    write_dataset(records, tmp_path, "parquet", "test")
    assert detect_dataset(tmp_path) == "flip"
    (back,) = load_records(tmp_path, split="test")
    assert (back.caption, back.live, back.attack, back.hat) == ("c", False, "print", True)
    assert isinstance(back.image, bytes)


@pytest.mark.parametrize("make, path, expected", [
    (make_celeba, "", "celeba"),
    (make_fairface, "", "fairface"),
    (make_utkface, "", "utkface"),
    (make_lfw, "", "lfw"),
    (make_antispoof, "", "antispoof"),
    (make_facecaption_annotations, "caption", "facecaption"),
    (lambda root: make_facecaption_parquet(root / "FaceCaption-v2.parquet"), "FaceCaption-v2.parquet", "facecaption"),
])
def test_auto_detection(tmp_path, make, path, expected):
    make(tmp_path)
    assert detect_dataset(tmp_path / path) == expected
    assert len(list(load_records(tmp_path / path))) > 0


def test_entry_point_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no dataset at"):
        load_records(tmp_path / "nothing")
    with pytest.raises(ValueError, match=r"unknown dataset 'imagenet'; choose one of \["):
        load_records(tmp_path, "imagenet")
    with pytest.raises(TypeError, match="unexpected keyword argument 'labelmap'"):
        load_records(tmp_path, "antispoof", labelmap={})
    with pytest.raises(ValueError, match="cannot tell which dataset"):
        detect_dataset(tmp_path)
    with pytest.raises(ValueError, match="on_error"):
        load_records(tmp_path, "celeba", on_error="warn")
    assert set(LOADERS) == {"celeba", "fairface", "utkface", "lfw", "antispoof", "facecaption", "flip",
                            "imagefolder", "csv", "jsonl"}


def test_records_can_be_iterated_again(tmp_path):
    root = make_fairface(tmp_path)
    records = load_records(root, "fairface")
    assert [r.file_name for r in records] == [r.file_name for r in records]
