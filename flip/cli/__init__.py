"""`flip <command>`: the command-line entry point.

Each command is a module of this package with `main(argv=None)`; it parses its own arguments and
calls the library. Commands are imported only when run, so `flip --help` stays fast.
"""

from __future__ import annotations

import importlib
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
    "liveness-train": ("liveness_train", "fine-tune a checkpoint for liveness on (image, category description) pairs"),
    "ask": ("ask", "ask a (LoRA fine-tuned) vision-language model a question about a face (VQA)"),
}

#: Commands that decode images in DataLoader workers while the model runs on the CPU's threads.
WORKER_COMMANDS = ("demo", "classify", "probe", "liveness")


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
    return module.main(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
