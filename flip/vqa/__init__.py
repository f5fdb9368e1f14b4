"""Question answering about faces with a (LoRA fine-tuned) vision-language model.

    from flip.vqa import load_vqa
    vqa = load_vqa("runs/vqa-lora/adapter")
    vqa.ask("face.png", "What emotion does this face show?")   # "happy"

Rooms: `formats` (families, prompts, batches with the prompt masked out of the loss), `data` (QA
and caption examples from labelled records), `answers` (normalisation for exact match), `training`
(LoRA through peft, the loop), `toy` and `tokenizer` (the offline toy VLM: FLIP's image tower +
a small Llama), `model` (loading and asking). The recipe lives in `finetune/vqa_lora.py`.
"""

from flip.vqa.answers import normalize_answer
from flip.vqa.formats import FAMILIES, PromptFormat, QAExample, model_family
from flip.vqa.model import VQAModel, load_vqa

__all__ = ["FAMILIES", "PromptFormat", "QAExample", "VQAModel", "load_vqa", "model_family", "normalize_answer"]
