"""`flip app`: the handlers on a tiny random model (messages, never tracebacks), and the page in a
real browser (headless Chromium driven by playwright) on the embedded default."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

pytest.importorskip("faiss", reason='the search tab needs FAISS: pip install "flip-face[search]"')
pytest.importorskip("gradio", reason='the app needs Gradio: pip install "flip-face[app]"')

CHROMIUM = os.environ.get("FLIP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def tiny_app(checkpoint, tmp_path_factory):
    from flip.cli.app import FlipApp
    from flip.hub import load

    model, processor = load(checkpoint)
    return FlipApp(model, processor, workdir=tmp_path_factory.mktemp("app"), model_name=checkpoint, n_faces=3)


@pytest.fixture
def not_an_image(tmp_path):
    path = tmp_path / "holiday.png"
    path.write_text("this is not an image")
    return str(path)


def test_handlers_answer_on_the_examples(tiny_app):
    image, text, bars = tiny_app.classify(tiny_app.faces[0], "emotion")
    assert image is not None and text.startswith("**emotion: ")
    assert "| hair_color |" in text and len(bars) == 12
    assert set(bars["class"]) <= set(tiny_app.classifier.heads["emotion"].classes)
    assert list(bars["similarity"]) == sorted(bars["similarity"], reverse=True)
    _, text, probs = tiny_app.liveness(tiny_app.faces[1])
    assert text.startswith("**live**") or text.startswith("**attack**")
    assert abs(sum(probs.values()) - 1) < 1e-4
    drawn, text = tiny_app.name_faces(*tiny_app.scene)
    assert drawn is not None and text.startswith("- [")
    gallery, text = tiny_app.search("a happy person", None, "", 2)
    assert len(gallery) == 2 and text == "2 face(s) of 3 in the index"
    gallery, _ = tiny_app.search("", tiny_app.faces[2], "", 1)
    assert len(gallery) == 1


@pytest.mark.parametrize("call, message", [
    (lambda app, bad: app.classify(bad, "emotion")[1], "holiday.png: not an image flip can read"),
    (lambda app, bad: app.classify(None, "emotion")[1], "upload an image first"),
    (lambda app, bad: app.classify(app.faces[0], "mood")[1], "task: choose one of"),
    (lambda app, bad: app.liveness(bad)[1], "holiday.png: not an image flip can read"),
    (lambda app, bad: app.name_faces(bad, "Ada Obi", "")[1], "holiday.png: not an image flip can read"),
    (lambda app, bad: app.name_faces(app.scene[0], "", "")[1], "caption: give the photo's caption"),
    (lambda app, bad: app.name_faces(app.scene[0], "Ada Obi", "1,2,3")[1], "--boxes: each box is 4 numbers"),
    (lambda app, bad: app.search("", None, "", 3)[1], "give a description or a face image"),
    (lambda app, bad: app.search("", bad, "", 3)[1], "holiday.png"),
    (lambda app, bad: app.search("x", None, "emotion=ecstatic", 3)[1], "not a class of emotion"),
    (lambda app, bad: app.ask(app.faces[0], "why?"), "no VQA model"),
])
def test_bad_input_is_one_line_in_the_page(tiny_app, not_an_image, call, message):
    text = call(tiny_app, not_an_image)
    assert text.startswith("**Error:**") and message in text, text
    assert "Traceback" not in text and "\n" not in text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_classify_in_a_real_browser(tmp_path, not_an_image):
    """Upload a face, click classify, read the answer from the page; a bad upload gives a message.
    `FLIP_SCREENSHOT=docs/app-classify.png` keeps the screenshot (the README shows it)."""
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)) and not shutil.which("chromium"):
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; .ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright: pip install playwright")
    from flip.cli.app import FlipApp, build_app
    from flip.hub import load

    model, processor = load()  # the embedded default: the screenshot shows real answers
    app = FlipApp(model, processor, workdir=tmp_path / "app", model_name="flip-tiny-synth", n_faces=4)
    page_app = build_app(app)
    port = _free_port()
    page_app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, ssr_mode=False,
                    quiet=True)
    try:
        with sync_api.sync_playwright() as pw:
            executable = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
            browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle", timeout=120_000)

            def classify(path: str) -> str:
                page.locator("#classify-input input[type=file]").set_input_files(path)
                page.locator("#classify-input").get_by_text(Path(path).name).first.wait_for(timeout=60_000)
                page.locator("#classify-button").click()
                page.wait_for_function(  # an answer, or a message, appears in the page
                    "/^(emotion:|Error:)/.test(document.querySelector('#classify-result').innerText.trim())",
                    timeout=120_000)
                return page.locator("#classify-result").inner_text()

            text = classify(app.faces[0])
            assert text.startswith("emotion: "), text
            answer = text.split("\n")[0].removeprefix("emotion: ").split(" (")[0]
            assert answer in app.classifier.heads["emotion"].classes
            assert "hair_color" in text and "Traceback" not in text
            try:  # the bar chart draws asynchronously; the screenshot waits for it a while
                page.locator("#classify-bars canvas, #classify-bars svg").first.wait_for(timeout=30_000)
            except sync_api.TimeoutError:
                pass
            shot = Path(os.environ.get("FLIP_SCREENSHOT") or tmp_path / "app-classify.png")
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000

            page.reload(wait_until="networkidle")
            text = classify(not_an_image)
            assert text.startswith("Error: holiday.png: not an image flip can read"), text
            assert "Traceback" not in text
            browser.close()
    finally:
        page_app.close()


def test_app_command_refuses_a_missing_index(checkpoint, tmp_path, capsys):
    from flip.cli import main

    assert main(["app", "--model", checkpoint, "--index", str(tmp_path / "nowhere"), "--faces", "0"]) == 2
    err = capsys.readouterr().err
    assert "flip app:" in err and "not a flip index" in err and "Traceback" not in err


def test_the_liveness_tab_answers_with_its_own_model(checkpoint, tmp_path):
    import copy

    import torch

    from flip.cli.app import FlipApp
    from flip.hub import load
    from flip.liveness import LivenessClassifier

    model, processor = load(checkpoint)
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.vision_proj.weight.mul_(-1)  # another model: its image embeddings point the other way
    app = FlipApp(model, processor, workdir=tmp_path / "app", model_name=checkpoint, n_faces=1,
                  liveness_model=(other, processor))
    image, _, probs = app.liveness(app.faces[0])
    expected = LivenessClassifier(other, processor).score([image]).record(0)["scores"]
    base = LivenessClassifier(model, processor).score([image]).record(0)["scores"]
    assert probs == pytest.approx(expected) and probs != pytest.approx(base)


def test_app_command_refuses_a_missing_liveness_model(checkpoint, tmp_path, capsys):
    from flip.cli import main

    assert main(["app", "--model", checkpoint, "--liveness-model", str(tmp_path / "nowhere"), "--faces", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("flip app:") and "nowhere" in err and len(err.splitlines()) == 1
