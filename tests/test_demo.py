"""`flip demo`, the README's main job: renders labelled faces and classifies them by description."""

from flip.cli import main as cli_main
from flip.cli.demo import render_demo_faces


def test_demo_faces_are_labelled_pngs(tmp_path):
    faces = render_demo_faces(tmp_path, n=3, seed=1)
    assert len(faces) == 3
    for path, labels in faces:
        assert path.is_file() and path.suffix == ".png"
        assert {"emotion", "age_group", "hair_color"} <= set(labels)
    (tmp_path / "again").mkdir()
    again = render_demo_faces(tmp_path / "again", n=3, seed=1)
    assert [p.read_bytes() for p, _ in again] == [p.read_bytes() for p, _ in faces]


def test_demo_classifies_synthetic_and_user_images(tmp_path, capsys):
    from PIL import Image

    mine = tmp_path / "mine.png"
    Image.new("RGB", (50, 60), (180, 140, 120)).save(mine)
    assert cli_main(["demo", str(mine), "--n", "2", "--model", "flip-tiny", "--task", "emotion"]) == 0
    out = capsys.readouterr().out
    assert "True labels of the synthetic faces" in out
    assert "synthetic_00.png" in out and "synthetic_01.png" in out and "mine.png" in out
    assert out.count("emotion") >= 3  # one answer per image, under the task's name
