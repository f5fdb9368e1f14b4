"""`flip ask`: ask a (LoRA fine-tuned) vision-language model a question about a face.

    flip ask face.png "What emotion does this face show?"                  # runs/vqa-lora/adapter
    flip ask face.png "Is this person wearing a hat?" --model runs/vqa-lora/merged
    flip ask a.png b.png -q "What colour is this person's hair?" --json

--model is a LoRA adapter folder from `flip vqa-train` (its base model is loaded
first: the one the adapter names, or --base), a merged model, or any PaliGemma / LLaVA /
Idefics3 / SmolVLM checkpoint. Answers are greedy and short. An unreadable image or an
unsupported model is one error line naming it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_MODEL = "runs/vqa-lora/adapter"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="flip ask", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]), allow_abbrev=False)
    p.add_argument("inputs", nargs="+", metavar="IMAGE [QUESTION]",
                   help="image file(s); the last argument is the question unless -q is given")
    p.add_argument("-q", "--question", default=None, help="the question (asked of every image)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"adapter folder, model folder or Hub id (default: {DEFAULT_MODEL})")
    p.add_argument("--base", default=None, help="base model under an adapter (default: the one it names)")
    p.add_argument("--template", default=None, help="prompt template with {question} (default: the saved one)")
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--json", action="store_true", help="JSON Lines: image, question, answer")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cpu)")
    return p


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
    model_path = Path(args.model)
    if args.model == DEFAULT_MODEL and not model_path.exists():
        print(f"flip ask: no model at {DEFAULT_MODEL}; train one with `flip vqa-train --config "
              "finetune/configs/vqa_lora_toy.yaml` or pass --model", file=sys.stderr)
        return 2
    from flip.processor import load_image
    from flip.vqa.model import load_vqa

    try:
        images = [load_image(path) for path in inputs]
        vqa = load_vqa(args.model, base=args.base, template=args.template, device=args.device,
                       max_new_tokens=args.max_new_tokens)
        from flip.vqa.prompting import QAExample

        answers = vqa.answer([QAExample(image, question) for image in images])
    except (ValueError, FileNotFoundError, TypeError) as err:
        print(f"flip ask: {err}", file=sys.stderr)
        return 2
    for path, answer in zip(inputs, answers):
        if args.json:
            print(json.dumps({"image": path, "question": question, "answer": answer}))
        else:
            print(answer if len(inputs) == 1 else f"{path}\t{answer}")
    return 0
