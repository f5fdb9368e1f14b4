"""`flip <command>`: the command-line entry point.

Each command is a module of this package with `main(argv=None)`; it parses its own arguments and
calls the library. Commands are imported only when run, so `flip --help` stays fast.

The error contract, kept here once for every command: a user error (bad input, a missing or
unwritable file, a missing optional package: the library raises ValueError, OSError or ImportError
with a message naming the file, field or argument) prints one line `flip <command>: <message>` and
exits 2, and so does a bad argument (argparse's message, also on one line). An input image that is
missing or unreadable is data, not a user error: it is reported (`skipped <file>: <why>`), the others
are processed, and the run exits 1 (`--skip-bad`: 0; see `flip.cli._common`). Anything else is a bug
and keeps its traceback; `FLIP_DEBUG=1` shows the traceback of every error.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import sys

#: command name -> (module under flip.cli, one-line help). One line per command.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "the main job on a fresh install: classify synthetic faces (and yours) by description"),
    "embed": ("embed", "embed images and/or texts with a model and print or save the embeddings"),
    "export": ("export", "export a model's towers to ONNX (optionally int8) for the onnxruntime backend"),
    "convert": ("convert", "convert a foreign checkpoint (open_clip, OpenAI CLIP, HF CLIP/SigLIP, FLIP .pth) to flip"),
    "info": ("info", "show what a model name or path resolves to, its config and parameter counts"),
    "classify": ("classify", "zero-shot facial attribute classification by description (the main job)"),
    "train": ("train", "pretrain a FLIP model on image-caption pairs (YAML config plus --section.key overrides)"),
    "probe": ("probe", "linear probe on frozen image embeddings per attribute, against zero-shot by description"),
    "data": ("data", "generate datasets: `flip data synth` writes the synthetic face world (captions, spoof, scenes, qa)"),
    "name-faces": ("name_faces", "label each face of a photo with a name from its caption, or no name (SECLA)"),
    "name-faces-train": ("name_faces_train", "learn SECLA / SECLA-B face-naming heads from image-caption pairs alone"),
    "liveness": ("liveness", "live person or presentation attack (and which attack), from text prompts (CLIPC8)"),
    "liveness-calibrate": ("liveness_calibrate", "choose a checkpoint's liveness threshold on a dev split and ship it in its config"),
    "liveness-train": ("liveness_train", "fine-tune a checkpoint for liveness on (image, category description) pairs"),
    "vqa-base-train": ("vqa_base_train", "build and pretrain the offline toy vision-language model (the base vqa-train adapts)"),
    "vqa-train": ("vqa_train", "fine-tune a vision-language model with LoRA to answer questions about faces (VQA)"),
    "ask": ("ask", "ask a (LoRA fine-tuned) vision-language model a question about a face (VQA)"),
    "index": ("index", "index the faces of images (embedding, box, predicted attributes) for `flip search`"),
    "search": ("search", "find faces in an index by description or by a face, filtered by attributes"),
    "app": ("app", "the face tasks in a web page (Gradio): classify, liveness, name faces, search, ask"),
}

#: Commands that decode images in DataLoader workers while the model runs on the CPU's threads.
WORKER_COMMANDS = ("demo", "classify", "probe", "liveness", "liveness-calibrate", "index")


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: flip <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `flip <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from importlib.metadata import version

        print(version("flip-face"))
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"flip: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    if name in WORKER_COMMANDS:
        from flip.runtime import sleep_idle_openmp_threads

        sleep_idle_openmp_threads()
    module = importlib.import_module(f"flip.cli.{COMMANDS[name][0]}")
    try:
        with _one_line_usage_errors():
            return module.main(rest) or 0
    except USER_ERRORS as err:
        if os.environ.get("FLIP_DEBUG") == "1":
            raise
        print(error_line(name, err), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if os.environ.get("FLIP_DEBUG") == "1":
            raise
        print(f"flip {name}: interrupted", file=sys.stderr)
        return 130


#: What a user's input or machine can cause (the library's messages name the file, field or argument).
USER_ERRORS = (ValueError, OSError, ImportError)


@contextlib.contextmanager
def _one_line_usage_errors():
    """argparse's usage errors as one line too (`flip classify: argument --workers: ...`), exit 2."""
    def error(parser: argparse.ArgumentParser, message: str):
        if os.environ.get("FLIP_DEBUG") == "1":
            parser.print_usage(sys.stderr)
        parser.exit(2, f"{parser.prog}: {' '.join(message.split())} (`{parser.prog} --help` lists the options)\n")

    original = argparse.ArgumentParser.error
    argparse.ArgumentParser.error = error
    try:
        yield
    finally:
        argparse.ArgumentParser.error = original


def error_line(command: str, err: BaseException) -> str:
    """One line for the user: `flip <command>: <message>`, without errno codes or line breaks. The
    library speaks to Python callers (`pass overwrite=True`); on the command line that is `--overwrite`."""
    message = re.sub(r"^\[Errno \d+\] ", "", str(err))
    message = " ".join(message.split()) or type(err).__name__
    message = message.replace("overwrite=True", "--overwrite")
    return f"flip {command}: {message}"


if __name__ == "__main__":
    sys.exit(main())
