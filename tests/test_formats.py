"""Round trips through the three on-disk formats, their layouts, and how bad rows are reported."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
from PIL import Image

from flip.data.formats import (
    FIELD_KINDS,
    FORMATS,
    DataError,
    LoadReport,
    decode_image,
    list_splits,
    read_dataset,
    resolve_dataset,
    write_dataset,
)
from flip.data.records import ATTRIBUTES, FaceRecord


def _image(seed: int, size: int = 12) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size + 2, 3), dtype=np.uint8))


def _records() -> list[FaceRecord]:
    """One record of each kind, every field set at least once, with None, True and False all present."""
    caption = FaceRecord(
        file_name="alice/0001.png", image=_image(0), caption="A smiling young woman with red hair.",
        face_shape="oval", skin_tone="III", eye_color="green", hair_color="red", hair_style="long",
        emotion="happy", eyes_open=True, age_group="young adult", eyewear="none", facial_hair="none",
        hat=False, earrings=True, makeup=True, identity="id-0001", name="Alice Moreau",
        extra={"seed": 7, "pose": {"yaw": -12.5}})
    spoof = FaceRecord(image=_image(1), caption="a printed photo", hair_color="black", eyes_open=False,
                       hat=True, identity="id-0002", live=False, attack="print")
    live = FaceRecord(image=_image(2), caption="a live face", live=True, attack=None)
    scene = FaceRecord(image=_image(3, 20), caption="Alice Moreau and Bo Chen at the summit.",
                       faces=[{"box": [0, 1, 9.5, 10], "name": "Alice Moreau"}, {"box": [10, 2, 18, 11], "name": None}],
                       names=["Alice Moreau", "Bo Chen", "Zoë Ünal"])
    empty_scene = FaceRecord(image=_image(4), caption="an empty street", faces=[], names=[])
    qa = FaceRecord(image=_image(5), question="Is this person wearing a hat?", answer="no", attribute="hat", hat=False)
    return [caption, spoof, live, scene, empty_scene, qa]


def _expected_file_names(records, ext=".png"):
    return [r.file_name.rsplit(".", 1)[0] + ext if r.file_name else f"{i:08d}{ext}" for i, r in enumerate(records)]


@pytest.mark.parametrize("format", FORMATS)
def test_round_trip_keeps_every_field_and_pixel(tmp_path, format):
    records = _records()
    opts = {"shard_size": 4} if format == "webdataset" else {"row_group_size": 4} if format == "parquet" else {}
    path = write_dataset(iter(records), tmp_path, format, "train", **opts)
    back = list(read_dataset(tmp_path, split="train"))
    assert [r.file_name for r in back] == _expected_file_names(records)
    assert len(back) == len(records)
    for original, restored in zip(records, back):
        for name, kind in FIELD_KINDS.items():
            if name == "file_name":
                continue
            value = getattr(restored, name)
            expected = getattr(original, name)
            if name == "faces" and expected is not None:
                expected = [{"box": [float(v) for v in f["box"]], "name": f["name"]} for f in expected]
            assert value == expected, (format, name)
            assert type(value) is type(expected), (format, name)  # bools stay bools, None stays None
        assert restored.extra == original.extra
        assert isinstance(restored.image, bytes)
        np.testing.assert_array_equal(np.asarray(decode_image(restored.image)), np.asarray(original.image))
    # the same records read back through the split path itself
    assert len(list(read_dataset(path))) == len(records)


def test_layouts_on_disk(tmp_path):
    records = _records()
    folder = write_dataset(records, tmp_path / "if", "imagefolder", "train")
    assert folder == tmp_path / "if" / "train"
    lines = (folder / "metadata.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    assert first["file_name"] == "alice/0001.png" and (folder / "alice" / "0001.png").is_file()
    assert set(FIELD_KINDS) <= set(first) and set(ATTRIBUTES) <= set(first)
    assert "extra" not in json.loads(lines[1])  # left out when empty

    parquet = write_dataset(records, tmp_path / "pq", "parquet", "test", row_group_size=4)
    assert parquet == tmp_path / "pq" / "test.parquet"
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(parquet)
    assert meta.metadata.num_row_groups == 2
    schema = meta.schema_arrow
    assert str(schema.field("image").type) == "struct<bytes: binary, path: string>"
    assert str(schema.field("faces").type) == "list<element: struct<box: list<element: double>, name: string>>"
    assert str(schema.field("hat").type) == "bool"

    many = write_dataset(records, tmp_path / "pq2", "parquet", "train", rows_per_file=4)
    assert sorted(p.name for p in many.iterdir()) == ["part-00000.parquet", "part-00001.parquet"]
    assert len(list(read_dataset(tmp_path / "pq2", split="train"))) == len(records)

    shards = write_dataset(records, tmp_path / "wds", "webdataset", "val", shard_size=4)
    assert sorted(p.name for p in shards.iterdir()) == ["shard-00000.tar", "shard-00001.tar"]
    with tarfile.open(shards / "shard-00001.tar") as tar:
        assert tar.getnames() == ["00000004.png", "00000004.json", "00000005.png", "00000005.json"]
        assert json.loads(tar.extractfile("00000005.json").read())["question"] == "Is this person wearing a hat?"


def test_writing_is_deterministic_and_refuses_to_overwrite(tmp_path):
    for name in ("a", "b"):
        write_dataset(_records(), tmp_path / name, "webdataset", "train", shard_size=100)
        write_dataset(_records(), tmp_path / name, "parquet", "train")
    for rel in ("train/shard-00000.tar", "train.parquet"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_dataset(_records(), tmp_path / "a", "parquet", "train")
    write_dataset(_records()[:2], tmp_path / "a", "parquet", "train", overwrite=True)
    assert len(list(read_dataset(tmp_path / "a" / "train.parquet"))) == 2


def test_jpeg_and_byte_passthrough(tmp_path):
    records = _records()[:2]
    gradient = np.linspace(0, 255, 32 * 32 * 3).reshape(32, 32, 3).astype(np.uint8)
    records[0].image = Image.fromarray(gradient)  # smooth, so JPEG keeps it close
    write_dataset(records, tmp_path, "imagefolder", "train", image_format="jpg", quality=98)
    back = list(read_dataset(tmp_path / "train"))
    assert [r.file_name for r in back] == ["alice/0001.jpg", "00000001.jpg"]
    assert back[0].image[:2] == b"\xff\xd8"  # JPEG magic
    err = np.abs(np.asarray(decode_image(back[0].image), float) - np.asarray(records[0].image, float)).mean()
    assert err < 3  # lossy, but the same picture
    # re-writing records read back (image = JPEG bytes) copies the bytes instead of re-encoding
    write_dataset(back, tmp_path / "copy", "webdataset", "train", image_format="jpg")
    again = list(read_dataset(tmp_path / "copy"))
    assert [r.image for r in again] == [r.image for r in back]


def test_write_errors_name_the_record_and_field(tmp_path):
    bad = _records()[:3]
    bad[2].hat = "yes"
    with pytest.raises(ValueError, match=r"record 2 .*'hat'"):
        write_dataset(bad, tmp_path, "imagefolder", "train")
    with pytest.raises(ValueError, match="record 0 .*has no image"):
        write_dataset([FaceRecord(caption="x")], tmp_path, "parquet", "x")
    with pytest.raises(ValueError, match=r"faces\[0\].box"):
        write_dataset([FaceRecord(image=_image(0), faces=[{"box": [1, 2], "name": None}])], tmp_path, "parquet", "y")
    with pytest.raises(TypeError, match="shard_size"):
        write_dataset(_records(), tmp_path, "parquet", "z", shard_size=3)
    with pytest.raises(ValueError, match="format must be one of"):
        write_dataset(_records(), tmp_path, "csv", "train")
    with pytest.raises(ValueError, match="used twice"):
        write_dataset([FaceRecord(file_name="a.png", image=_image(0))] * 2, tmp_path, "imagefolder", "dup")


def _folder_with_bad_rows(tmp_path):
    folder = write_dataset(_records()[:3], tmp_path, "imagefolder", "train")
    lines = (folder / "metadata.jsonl").read_text().splitlines()
    row = json.loads(lines[1])
    row["live"] = "no"  # a bad label on line 2
    lines[1] = json.dumps(row)
    (folder / "00000002.png").write_bytes(b"not an image")  # line 3
    lines.append(json.dumps({"file_name": "missing.png", "caption": "gone"}))  # line 4
    lines.append("{not json")  # line 5
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_read_raises_with_file_and_line(tmp_path):
    folder = _folder_with_bad_rows(tmp_path)
    with pytest.raises(DataError, match=r"metadata.jsonl, line 2: field 'live' must be true, false or null, got 'no'"):
        list(read_dataset(folder))


def test_read_skips_and_reports_every_bad_row(tmp_path):
    folder = _folder_with_bad_rows(tmp_path)
    report = LoadReport()
    with pytest.warns(UserWarning, match="skipped 4 bad row"):
        good = list(read_dataset(folder, on_error="skip", report=report))
    assert [r.file_name for r in good] == ["alice/0001.png"]
    assert [p.row for p in report.problems] == ["line 2", "line 3", "line 4", "line 5"]
    assert all(p.file.endswith("metadata.jsonl") for p in report.problems)
    assert "unreadable image" in report.problems[1].message
    assert "missing.png" in report.problems[2].message
    assert "4 skipped" in str(report)
    with pytest.raises(ValueError, match="on_error"):
        read_dataset(folder, on_error="ignore")


def test_parquet_bad_rows_and_missing_image_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    png = io.BytesIO()
    _image(0).save(png, format="PNG")
    table = pa.table({"image": [{"bytes": png.getvalue(), "path": "a.png"}, {"bytes": b"junk", "path": "b.png"}],
                      "caption": ["ok", "broken"], "eyes_open": [True, None], "source_id": [1, 2]})
    pq.write_table(table, tmp_path / "train.parquet")
    with pytest.raises(DataError, match=r"train.parquet, row 2: unreadable image"):
        list(read_dataset(tmp_path / "train.parquet"))
    report = LoadReport()
    with pytest.warns(UserWarning):
        (only,) = read_dataset(tmp_path, on_error="skip", report=report)
    assert (only.file_name, only.caption, only.eyes_open, only.extra) == ("a.png", "ok", True, {"source_id": 1})
    pq.write_table(pa.table({"caption": ["x"]}), tmp_path / "noimage.parquet")
    with pytest.raises(DataError, match=r"missing column 'image'; columns found: \['caption'\]"):
        list(read_dataset(tmp_path / "noimage.parquet"))


def test_webdataset_sample_without_image_and_txt_caption(tmp_path):
    png = io.BytesIO()
    _image(0).save(png, format="PNG")
    with tarfile.open(tmp_path / "shard-00000.tar", "w") as tar:
        for name, data in [("a.jpg.unused", b""), ("k1.png", png.getvalue()), ("k1.txt", b"a caption\n"),
                           ("k2.json", b'{"caption": "no picture"}')]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(DataError, match=r"shard-00000.tar, sample 'a': no image member"):
        list(read_dataset(tmp_path))
    report = LoadReport()
    with pytest.warns(UserWarning, match="skipped 2"):
        (only,) = read_dataset(tmp_path, on_error="skip", report=report)
    assert (only.file_name, only.caption) == ("k1.png", "a caption")
    assert [p.row for p in report.problems] == ["sample 'a'", "sample 'k2'"]


def test_resolving_a_dataset_path(tmp_path):
    write_dataset(_records()[:2], tmp_path, "imagefolder", "train")
    write_dataset(_records()[:1], tmp_path, "parquet", "test")
    assert list_splits(tmp_path) == ["train", "test"]
    assert resolve_dataset(tmp_path, split="test") == ("parquet", [tmp_path / "test.parquet"])
    assert resolve_dataset(tmp_path / "train") == ("imagefolder", [tmp_path / "train"])
    assert resolve_dataset(tmp_path / "train" / "metadata.jsonl") == ("imagefolder", [tmp_path / "train"])
    with pytest.raises(ValueError, match=r"several splits \['train', 'test'\]"):
        read_dataset(tmp_path)
    with pytest.raises(FileNotFoundError, match="no split 'val'"):
        read_dataset(tmp_path, split="val")
    with pytest.raises(ValueError, match="no parquet found"):
        read_dataset(tmp_path / "train", format="parquet")
    with pytest.raises(FileNotFoundError):
        read_dataset(tmp_path / "nowhere")


def test_hugging_face_datasets_reads_what_we_write(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    records = _records()[:3]
    write_dataset(records, tmp_path / "if", "imagefolder", "train")
    write_dataset(records, tmp_path / "pq", "parquet", "train")
    for kind, data_dir in (("imagefolder", tmp_path / "if"), ("parquet", tmp_path / "pq")):
        ds = datasets.load_dataset(kind, data_dir=str(data_dir), split="train", cache_dir=str(tmp_path / "cache"))
        assert ds["caption"] == [r.caption for r in records]
        assert ds["live"] == [None, False, True]
        image = ds[0]["image"] if kind == "imagefolder" else decode_image(ds[0]["image"]["bytes"])
        np.testing.assert_array_equal(np.asarray(image.convert("RGB")), np.asarray(records[0].image))
