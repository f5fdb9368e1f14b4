"""`flip app`: flip's face tasks in a web page (Gradio), on a fresh install with no network.

    flip app                                  # http://127.0.0.1:7860: the embedded default model
    flip app --index faces.index --port 8080  # search your own index (from `flip index`)
    flip app --vqa runs/vqa-lora/adapter      # adds the "ask" tab

Tabs: classify (by description, with a bar chart of the descriptor similarities behind the
answer), liveness, name faces (the photo drawn with boxes and names), search over an index, and
ask (when a VQA model is present). A few synthetic faces and a group scene are rendered at start
as examples, and indexed for the search tab unless `--index` is given. A bad upload or input is
answered with one line in the page; the handlers never show a stack trace.

`FlipApp` holds the models and the handlers (plain Python, testable without a browser);
`build_app` lays them out as Gradio Blocks. Needs `pip install "flip-face[app]"`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

#: Descriptors in the classify tab's bar chart.
BAR_DESCRIPTORS = 12


def _message(err: Exception) -> str:
    """One line for the page: the library's own message, never a traceback."""
    if isinstance(err, KeyError) and err.args:
        return str(err.args[0])
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if isinstance(err, (ValueError, FileNotFoundError, OSError, TypeError, ImportError)):
        return text
    return f"something went wrong ({type(err).__name__}: {text})"


def _path(upload) -> str | None:
    """A Gradio file value (a path string, or an object with .name) as a path; None when empty."""
    if upload is None or upload == "":
        return None
    return str(getattr(upload, "name", upload))


class FlipApp:
    """The models and the handlers behind the page. Each handler returns the values of its outputs,
    and on bad input a status line starting with "**Error:**" instead of raising."""

    def __init__(self, model, processor, *, workdir: str | os.PathLike, model_name: str | None = None,
                 index: str | os.PathLike | None = None, vqa: str | os.PathLike | None = None,
                 n_faces: int = 8, seed: int = 0, detector: str = "haar", cache=None, liveness_model=None):
        from flip.liveness import LivenessClassifier
        from flip.tasks.search import default_tasks, model_fingerprint
        from flip.zeroshot import FLIPClassifier

        self.model, self.processor, self.model_name = model, processor, model_name
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.tasks = default_tasks()
        self.cache = cache
        self.classifier = FLIPClassifier(model, processor, self.tasks, cache=cache)
        # liveness_model: (model, processor) of the liveness tab (the shipped liveness fine-tune), else this model
        self.liveness_classifier = LivenessClassifier(*(liveness_model or (model, processor)))
        self.fingerprint = model_fingerprint(model, processor)
        self.detector = detector
        self.vqa_path = Path(vqa) if vqa is not None and Path(vqa).exists() else None
        self._vqa = None
        self.faces = self._render_faces(n_faces, seed)
        self.scene = self._render_scene(seed)
        self.index_path = Path(index) if index is not None else self._build_index()

    # -- examples rendered at start ----------------------------------------------------------------
    def _render_faces(self, n: int, seed: int) -> list[str]:
        from flip.cli.demo import render_demo_faces

        folder = self.workdir / "faces"
        folder.mkdir(exist_ok=True)
        return [str(p) for p, _ in render_demo_faces(folder, n, seed, size=112)] if n else []

    def _render_scene(self, seed: int) -> tuple[str, str, str] | None:
        """One synthetic group scene: (image path, caption, boxes as 'x0,y0,x1,y1;...')."""
        from flip.data.synthetic import SynthConfig, generate

        for record in generate(SynthConfig(kind="scenes", n=40, size=224, seed=seed), "test"):
            path = self.workdir / "scene.png"
            record.image.save(path)
            boxes = ";".join(",".join(f"{v:.0f}" for v in face["box"]) for face in record.faces)
            return str(path), record.caption, boxes
        return None

    def _build_index(self) -> Path:
        from flip.tasks.search import FaceIndex

        path = self.workdir / "faces.index"
        index = FaceIndex.create(path, self.model, self.processor, self.tasks, model_name=self.model_name)
        index.add_files(self.model, self.processor, self.faces, num_workers=0, cache=self.cache)
        index.close()
        return path

    # -- handlers -----------------------------------------------------------------------------------
    def classify(self, upload, task: str):
        """-> (image, summary markdown, bar-chart rows {descriptor, similarity, class})."""
        import pandas as pd

        empty = pd.DataFrame({"descriptor": [], "similarity": [], "class": []})
        try:
            image = self._image(upload)
            if task not in self.tasks:
                raise ValueError(f"task: choose one of {', '.join(self.tasks)}")
            results = self.classifier.classify([image])
        except Exception as err:
            return None, self._error(err), empty
        lines = ["| task | prediction | score |", "| --- | --- | --- |"]
        for name, res in results.items():
            rec = res.record(0, k=0)
            mark = "**" if name == task else ""
            lines.append(f"| {mark}{name}{mark} | {mark}{rec['prediction']}{mark} | {rec['scores'][rec['prediction']]:.3f} |")
        res = results[task]
        sims = res.similarities[0].float().tolist()
        order = sorted(range(len(sims)), key=lambda j: -sims[j])[:BAR_DESCRIPTORS]
        bars = pd.DataFrame({
            "descriptor": [_short(res.head.texts[j]) for j in order],
            "similarity": [sims[j] for j in order],
            "class": [res.head.classes[int(res.head.class_index[j])] for j in order],
        })
        top = ", ".join(t for t, _ in res.top_descriptors(0, 2))
        head = f"**{task}: {res.predictions[0]}** (decided by: {top})"
        return image, head + "\n\n" + "\n".join(lines), bars

    def liveness(self, upload):
        """-> (image, summary markdown, {category: probability})."""
        try:
            image = self._image(upload)
            rec = self.liveness_classifier.score([image]).record(0)
        except Exception as err:
            return None, self._error(err), None
        text = (f"**{rec['decision']}** (live score {rec['live_score']:.3f}, threshold {rec['threshold']:.2f}); "
                f"most likely attack: {rec['attack']}")
        return image, text, rec["scores"]

    def name_faces(self, upload, caption: str, boxes: str):
        """-> (the image drawn with boxes and names, markdown list of faces)."""
        try:
            from flip.cli.name_faces import parse_boxes
            from flip.faces.draw import draw_faces
            from flip.naming.detect import build_detector
            from flip.naming.pipeline import FaceNamer

            image = self._image(upload)
            if not (caption or "").strip():
                raise ValueError("caption: give the photo's caption (the names are found in it)")
            given = parse_boxes(boxes) if (boxes or "").strip() else None
            namer = FaceNamer(self.model, self.processor, None if given is not None else build_detector(self.detector))
            faces = namer(image, caption, boxes=given)
            out = draw_faces(image, [f.box for f in faces], [f.name or "(no name)" for f in faces])
        except Exception as err:
            return None, self._error(err)
        if not faces:
            return image, "no faces found (give boxes, or try another detector)"
        rows = [f"- [{', '.join(f'{v:.0f}' for v in f.box)}] **{f.name or '(no name)'}**"
                + ("" if f.score is None else f" ({f.score:.3f})") for f in faces]
        return out, "\n".join(rows)

    def search(self, text: str, upload, where: str, k: float):
        """-> (gallery items [(image, caption)], status markdown)."""
        try:
            from flip.processor import load_image
            from flip.tasks.search import FaceIndex, encode_query, parse_where

            path = _path(upload)
            text = (text or "").strip()
            if bool(text) == bool(path):
                raise ValueError("give a description or a face image (one of them)")
            conditions = parse_where([w for w in (where or "").replace(";", " ").split() if w])
            with FaceIndex.open(self.index_path) as index:
                index.check_model(self.model, self.processor, self.fingerprint)
                query = encode_query(self.model, self.processor, text=text or None,
                                     image=None if text else load_image(path))
                hits = index.search(query, k=int(k), where=conditions)
                total = len(index)
            gallery = []
            for hit in hits:
                shown = ", ".join(hit.predictions[t] for t in ("emotion", "age_group", "hair_color") if t in hit.predictions)
                gallery.append((load_image(hit.path), f"{hit.score:+.3f} · {shown}"))
        except Exception as err:
            return [], self._error(err)
        return gallery, f"{len(hits)} face(s) of {total} in the index"

    def ask(self, upload, question: str) -> str:
        try:
            if self.vqa_path is None:
                raise ValueError("no VQA model: start the app with --vqa PATH")
            if not (question or "").strip():
                raise ValueError("question: ask something about the face")
            image = self._image(upload)
            if self._vqa is None:
                from flip.vqa.model import load_vqa

                self._vqa = load_vqa(self.vqa_path)
            from flip.vqa.prompting import QAExample

            return self._vqa.answer([QAExample(image, question)])[0]
        except Exception as err:
            return self._error(err)

    def _image(self, upload):
        from flip.processor import load_image

        path = _path(upload)
        if path is None:
            raise ValueError("upload an image first")
        try:
            return load_image(path)
        except (ValueError, OSError) as err:
            raise ValueError(f"{Path(path).name}: not an image flip can read ({_message(err)})") from None

    @staticmethod
    def _error(err: Exception) -> str:
        if not isinstance(err, (ValueError, FileNotFoundError, OSError, TypeError, KeyError, ImportError)):
            logger.exception("flip app: unexpected error")  # the operator's console, not the page
        return f"**Error:** {_message(err)}"


def _short(text: str, width: int = 48) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def build_app(app: FlipApp):
    """The page: one tab per task, wired to `app`'s handlers. Element ids (`classify-input`,
    `classify-button`, `classify-result`, ...) are stable for tests."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    title = f"flip: face tasks on {app.model_name or 'the embedded default'}"
    with gr.Blocks(title=title, analytics_enabled=False) as page:
        gr.Markdown(f"## {title}\nModels trained on flip's synthetic faces only. Upload a face image or pick an example.")
        with gr.Tab("classify", id="classify"):
            with gr.Row():
                with gr.Column():
                    up = gr.File(label="face image", type="filepath", elem_id="classify-input")
                    task = gr.Dropdown(app.tasks, value="emotion" if "emotion" in app.tasks else app.tasks[0],
                                       label="task for the chart", elem_id="classify-task")
                    go = gr.Button("classify", variant="primary", elem_id="classify-button")
                    gr.Examples([[p] for p in app.faces], inputs=[up], label="synthetic faces")
                with gr.Column():
                    shown = gr.Image(label="image", interactive=False, height=160)
                    result = gr.Markdown(elem_id="classify-result")
            bars = gr.BarPlot(x="descriptor", y="similarity", color="class", label="descriptor similarity",
                              x_label_angle=-35, sort="-y", elem_id="classify-bars")
            go.click(app.classify, [up, task], [shown, result, bars])
        with gr.Tab("liveness", id="liveness"):
            with gr.Row():
                with gr.Column():
                    up = gr.File(label="face image", type="filepath", elem_id="liveness-input")
                    go = gr.Button("check liveness", variant="primary", elem_id="liveness-button")
                    gr.Examples([[p] for p in app.faces[:4]], inputs=[up], label="synthetic faces")
                with gr.Column():
                    shown = gr.Image(label="image", interactive=False, height=160)
                    result = gr.Markdown(elem_id="liveness-result")
                    probs = gr.Label(label="category probabilities", num_top_classes=5)
            go.click(app.liveness, [up], [shown, result, probs])
        with gr.Tab("name faces", id="name"):
            with gr.Row():
                with gr.Column():
                    up = gr.File(label="photo", type="filepath", elem_id="name-input")
                    caption = gr.Textbox(label="caption", elem_id="name-caption")
                    boxes = gr.Textbox(label=f"face boxes x0,y0,x1,y1;... (empty: detect with {app.detector})")
                    go = gr.Button("name the faces", variant="primary", elem_id="name-button")
                    if app.scene is not None:
                        gr.Examples([list(app.scene)], inputs=[up, caption, boxes], label="synthetic scene")
                with gr.Column():
                    drawn = gr.Image(label="named faces", interactive=False)
                    result = gr.Markdown(elem_id="name-result")
            go.click(app.name_faces, [up, caption, boxes], [drawn, result])
        with gr.Tab("search", id="search"):
            with gr.Row():
                with gr.Column():
                    text = gr.Textbox(label="describe the face", placeholder="a smiling woman with glasses",
                                      elem_id="search-text")
                    up = gr.File(label="or a face image", type="filepath", elem_id="search-input")
                    where = gr.Textbox(label="filters attr=value (space-separated)", placeholder="hair_color=grey",
                                       elem_id="search-where")
                    k = gr.Slider(1, 50, value=8, step=1, label="k")
                    go = gr.Button("search", variant="primary", elem_id="search-button")
                with gr.Column():
                    status = gr.Markdown(elem_id="search-result")
                    gallery = gr.Gallery(label="results", columns=4, height="auto")
            go.click(app.search, [text, up, where, k], [gallery, status])
        if app.vqa_path is not None:
            with gr.Tab("ask", id="ask"):
                up = gr.File(label="face image", type="filepath", elem_id="ask-input")
                question = gr.Textbox(label="question", elem_id="ask-question")
                go = gr.Button("ask", variant="primary", elem_id="ask-button")
                answer = gr.Markdown(elem_id="ask-result")
                go.click(app.ask, [up, question], [answer])
    return page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flip app", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--model", default=None, help="model name, Hub id, directory or file (default: the embedded model)")
    parser.add_argument("--liveness-model", default=None,
                        help="the liveness tab's model (default: flip-tiny-synth-liveness, the shipped liveness "
                             "fine-tune, when --model is not given; else --model)")
    parser.add_argument("--index", default=None, help="an index from `flip index` for the search tab "
                        "(default: the synthetic faces rendered at start)")
    parser.add_argument("--vqa", default="runs/vqa-lora/adapter", help="VQA model for the ask tab (shown if it exists)")
    parser.add_argument("--faces", type=int, default=8, help="synthetic example faces to render (default 8)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args(argv)
    try:
        import gradio  # noqa: F401
    except ImportError:
        print('flip app: needs Gradio: pip install "flip-face[app]"', file=sys.stderr)
        return 2
    from flip.hub import DEFAULT_MODEL, load

    try:
        model, processor = load(args.model)
        from flip.liveness import DEFAULT_LIVENESS_MODEL

        liveness_name = args.liveness_model or (DEFAULT_LIVENESS_MODEL if args.model is None else None)
        liveness_model = load(liveness_name) if liveness_name is not None else None
        workdir = tempfile.mkdtemp(prefix="flip-app-")
        from flip.zeroshot import TextCache, default_cache_dir

        app = FlipApp(model, processor, workdir=workdir, model_name=args.model or DEFAULT_MODEL,
                      index=args.index, vqa=args.vqa, n_faces=args.faces, cache=TextCache(default_cache_dir()),
                      liveness_model=liveness_model)
        if args.index is not None:
            from flip.tasks.search import FaceIndex

            with FaceIndex.open(args.index) as index:
                index.check_model(model, processor, app.fingerprint)
    except (FileNotFoundError, ValueError, KeyError, ImportError) as err:
        print(f"flip app: {_message(err)}", file=sys.stderr)
        return 2
    build_app(app).launch(server_name=args.host, server_port=args.port, ssr_mode=False, show_error=False)
    return 0
