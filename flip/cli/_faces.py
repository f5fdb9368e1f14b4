"""The face-stage options every photo command shares (`--faces`, `--detector`, `--min-face-size`,
`--max-faces`, `--if-no-face`, `--draw`), the model's name in records, and the one honest note
about the synthetic default on photos."""

from __future__ import annotations

import argparse
import sys

from flip.cli._common import printable

#: What the note names instead of the synthetic default (see the README's loading matrix).
REAL_CHECKPOINTS = ("a FLIP-80M checkpoint (transformers CLIP layout: --model DIR_OR_HUB_ID)",
                    "the FaceCaption-15M authors' FLIP-base.pth (--model FLIP-base.pth)",
                    "FaRL's state dict (--model FaRL-Base-Patch16-LAIONFace20M-ep64.pth)",
                    "any open_clip model (--model open_clip:ViT-B-32/openai)")

#: The embedded models trained on the synthetic world alone (flip.hub.DEFAULT_MODEL, flip.vqa's EMBEDDED_VQA).
SYNTHETIC_MODELS = ("flip-tiny-synth", "flip-tiny-synth-liveness", "vqa-toy-synth")
#: What `flip ask`'s note names instead.
REAL_VLMS = ("a PaliGemma, LLaVA, Idefics3 or SmolVLM checkpoint, or a LoRA adapter on one (--model DIR_OR_HUB_ID)",)


def add_face_arguments(parser: argparse.ArgumentParser, draw: bool = True, modes: bool = True) -> None:
    """The face-stage options; `modes=False` leaves out --faces, --detector and --if-no-face (for a
    command that always detects and has its own --detector)."""
    from flip.faces.stage import FACE_MODES, IF_NONE, FaceStageConfig

    defaults = FaceStageConfig()
    g = parser.add_argument_group("faces (flip.faces)")
    if modes:
        g.add_argument("--faces", choices=FACE_MODES, default=defaults.mode,
                       help="auto: a face crop the size of the model input is taken whole, faces are detected in "
                            "anything else; all / largest: detect; none: the whole image (default: %(default)s)")
        g.add_argument("--detector", choices=("mtcnn", "haar"), default=defaults.detector,
                       help="face detector (default: %(default)s)")
    g.add_argument("--min-face-size", type=int, default=defaults.min_face_size, metavar="PX",
                   help="drop faces whose box is smaller than this (default: %(default)s px)")
    g.add_argument("--max-faces", type=int, default=None, metavar="N",
                   help="keep the N most confident faces per image (default: all)")
    if modes:
        g.add_argument("--if-no-face", choices=IF_NONE, default=defaults.if_none,
                       help="no face found: answer on the whole image (flagged whole_image) or skip it "
                            "(default: %(default)s)")
    if draw:
        g.add_argument("--draw", default=None, metavar="DIR",
                       help="write each image with its face boxes and answers to DIR/<name>.faces.png")


def face_stage(args):
    """The `FaceStage` the arguments ask for; ValueError names the bad option."""
    from flip.faces.stage import FaceStage, FaceStageConfig

    if args.min_face_size < 1:
        raise ValueError(f"--min-face-size must be >= 1, got {args.min_face_size}")
    if args.max_faces is not None and args.max_faces < 1:
        raise ValueError(f"--max-faces must be >= 1, got {args.max_faces}")
    return FaceStage(FaceStageConfig(mode=getattr(args, "faces", "all"), detector=args.detector,
                                     min_face_size=args.min_face_size, max_faces=args.max_faces,
                                     if_none=getattr(args, "if_no_face", "whole")))


def one_line(err: BaseException) -> str:
    """An error as one line: a DataLoader worker's re-raised error carries the worker's traceback
    in its message; its last line is the error itself."""
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def model_name(given: str | None) -> str:
    """How records name the model: what --model said, or the embedded default's name."""
    if given is not None:
        return str(given)
    from flip.hub import DEFAULT_MODEL  # imports torch: not for the onnx backend, which always names its folder

    return DEFAULT_MODEL


class PhotoNotes:
    """Tells stderr, once per run, what the face stage did that a user should know: images with no
    face, and that the synthetic default's answers on photos mean little."""

    def __init__(self, command: str, model: str, input_size: int, instead: tuple[str, ...] = REAL_CHECKPOINTS):
        self.command, self.model, self.input_size, self.instead = command, model, input_size, instead
        self.synthetic = model in SYNTHETIC_MODELS
        self.warned = False

    def _photo(self, face) -> bool:
        from flip.faces.stage import is_face_crop

        x0, y0, x1, y1 = face.box
        return not face.whole_image or face.index is None or not is_face_crop((x1 - x0, y1 - y0), self.input_size)

    def faces(self, faces) -> None:
        """Call with each row's `Face`: a detected face, or a whole image that is no face crop, means
        the input is a photo (flip cannot tell a photo from a rendering otherwise)."""
        if self.synthetic and not self.warned and any(self._photo(f) for f in faces):
            self.warned = True
            print(f"flip {self.command}: note: the default model {self.model} knows only flip's synthetic "
                  "faces; its answers on real photos mean little. Use a real checkpoint instead: "
                  + "; ".join(self.instead) + ".", file=sys.stderr)

    def no_face(self, path: str, whole: bool) -> None:
        what = "answered on the whole image" if whole else "skipped"
        print(f"{printable(path)}: no face found; {what}", file=sys.stderr)


def draw_image(directory: str, path: str, faces, labels: list[str]) -> str:
    """Draw one image's faces with their labels into `directory`; returns the written path."""
    from flip.faces.draw import draw_faces, drawing_path, save_drawing

    canvas = draw_faces(path, [f.box for f in faces], labels)
    return str(save_drawing(canvas, drawing_path(directory, path)))


def per_image(notes: PhotoNotes, paths: list[str], faces: list, no_face: list[str]):
    """The rows of one batch grouped by image, in order, as (path, [row indices]); tells `notes`
    about the faces and about each image without one."""
    notes.faces(faces)
    start = 0
    for end in range(1, len(paths) + 1):
        if end == len(paths) or paths[end] != paths[start]:
            if faces[start].index is None:
                notes.no_face(paths[start], whole=True)
            yield paths[start], list(range(start, end))
            start = end
    for path in no_face:
        notes.no_face(path, whole=False)


def face_cell(record: dict) -> str:
    """A face in a table: its index and box, "whole", or "whole (no face)"."""
    if record["face"] is None:
        return "whole (no face)"
    return "whole" if record["whole_image"] else f"{record['face']} " + ",".join(f"{v:.0f}" for v in record["box"])
