"""Question answering about faces with a (LoRA fine-tuned) vision-language model.

    from flip.vqa import load_vqa
    vqa = load_vqa("runs/vqa-lora/adapter")
    vqa.ask("face.png", "What emotion does this face show?")   # "happy"

Rooms: `prompting` (families, prompts, batches with the prompt masked out of the loss),
`examples` (QA and caption examples from labelled records), `answers` (normalisation for exact
match), `scoring` (exact match per attribute, confusion matrices), `toy` and `tokenizer` (the
offline toy VLM: FLIP's image tower + a small Llama), `model` (loading and asking). Training lives in the training wing:
`flip.train.vqa_loop` (LoRA through peft, the loop) and the recipes `flip.train.vqa_base` and
`flip.train.vqa_lora` (`flip vqa-base-train`, `flip vqa-train`).
"""

from flip.vqa.answers import normalize_answer
from flip.vqa.prompting import FAMILIES, PromptFormat, QAExample, model_family
from flip.vqa.model import VQAModel, load_vqa

__all__ = ["FAMILIES", "PromptFormat", "QAExample", "VQAModel", "load_vqa", "model_family", "normalize_answer"]
