"""`flip ask`: ask a (LoRA fine-tuned) vision-language model a question about each face of a photo.

    flip ask face.png "What emotion does this face show?" --model runs/vqa-lora/adapter
    flip ask group.jpg "Is this person wearing a hat?" --faces all --json --model MODEL
    flip ask a.png b.png -q "What colour is this person's hair?" --model MODEL

Without --model, an embedded `vqa-toy-synth` answers where the install ships one
(flip/assets/vqa-toy-synth: the toy LLaVA-style base with its LoRA merged in, trained on the
synthetic world alone); otherwise the command says to pass --model. --model is a LoRA adapter
folder (its base model is loaded first: the one the adapter names, or --base), a merged model, or
any PaliGemma / LLaVA / Idefics3 / SmolVLM checkpoint. Photos go through the face stage
(`--faces`, default auto) and each face is asked; JSON Lines records are {"path", "face", "box",
"detector_score", "whole_image", "ask": {"question", "answer"}, "model"}. Answers are greedy and
short. An unreadable image is reported by path and skipped (exit code 1; `--skip-bad`: 0); an
unsupported model is one error line naming it.
"""

from __future__ import annotations

import argparse
import json
import sys

from flip.cli._common import add_skip_bad, partial_exit, printable, skipped_line
from flip.cli._faces import REAL_VLMS, PhotoNotes, add_face_arguments, face_stage


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="flip ask", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]), allow_abbrev=False)
    p.add_argument("inputs", nargs="+", metavar="IMAGE [QUESTION]",
                   help="image file(s); the last argument is the question unless -q is given")
    p.add_argument("-q", "--question", default=None, help="the question (asked of every face)")
    p.add_argument("--model", default=None, help="adapter folder, model folder or Hub id (default: the embedded "
                   "vqa-toy-synth)")
    p.add_argument("--base", default=None, help="base model under an adapter (default: the one it names)")
    p.add_argument("--template", default=None, help="prompt template with {question} (default: the saved one)")
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--json", action="store_true", help="JSON Lines, one object per face")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cpu)")
    add_face_arguments(p, draw=False)
    add_skip_bad(p)
    return p


def _fail(message: str) -> int:
    print(f"flip ask: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    inputs = list(args.inputs)
    question = args.question
    if question is None:
        if len(inputs) < 2:
            parser.error("give IMAGE and QUESTION (or -q QUESTION)")
        question = inputs.pop()
    if not question.strip():
        parser.error("the question is empty")
    from flip.vqa.model import EMBEDDED_VQA, embedded_vqa_path, load_vqa

    name = args.model or EMBEDDED_VQA
    model_path = args.model or embedded_vqa_path()
    if model_path is None:
        return _fail(f"this install has no embedded {EMBEDDED_VQA} model; pass --model: a LoRA adapter folder, "
                     "a merged model, or a PaliGemma / LLaVA / Idefics3 / SmolVLM checkpoint (`flip vqa-train --config "
                     "YOUR.yaml` trains an adapter)")
    from flip.vqa.prompting import QAExample

    try:
        stage = face_stage(args)
        vqa = load_vqa(model_path, base=args.base, template=args.template, device=args.device,
                       max_new_tokens=args.max_new_tokens)
        size = int(getattr(getattr(vqa.model.config, "vision_config", None), "image_size", 224) or 224)
        notes = PhotoNotes("ask", name, size, REAL_VLMS)
        rows, crops, skipped = [], [], 0
        for path in inputs:
            try:
                faces, images = stage.crops(path, size)
            except (ValueError, OSError) as err:  # an unreadable image: reported, the others are asked
                skipped += 1
                print(skipped_line(path, err), file=sys.stderr)
                continue
            notes.faces(faces)
            if not faces or faces[0].index is None:
                notes.no_face(path, whole=bool(faces))
            rows += [{"path": path, **face.record()} for face in faces]
            crops += images
        answers = vqa.answer([QAExample(image, question) for image in crops]) if crops else []
    except (ValueError, FileNotFoundError, TypeError, ImportError, OSError) as err:
        return _fail(str(err))
    for row, answer in zip(rows, answers):
        if args.json:
            print(json.dumps({**row, "ask": {"question": question, "answer": answer}, "model": name}))
        elif len(rows) == 1:
            print(answer)
        else:
            face = "" if row["whole_image"] else f"#{row['face']}"
            print(f"{printable(row['path'])}{face}\t{answer}")
    return partial_exit(len(inputs) - skipped if rows else 0, skipped, args.skip_bad)
