"""flip.vqa's parts on tiny inputs: answer normalisation, the metric, QA examples, prompt masking,
the toy VLM keeping FLIP's image tower, LoRA errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from flip.data.records import FaceRecord
from flip.vqa.answers import normalize_answer, synonym_table
from flip.vqa.examples import qa_examples
from flip.vqa.prompting import IGNORE_INDEX, PromptFormat, QAExample, model_family

ROOT = Path(__file__).resolve().parents[1]
TEXTS = ["What emotion does this face show?", "Is this person wearing a hat?", "happy", "sad", "yes", "no",
         "USER: ASSISTANT:", "a smiling person with short grey hair"] * 10


@pytest.mark.parametrize("prediction, reference, synonyms, same", [
    ("Happy.", "happy", None, True),
    ("  the HAPPY ", "happy", None, True),
    ("Middle aged", "middle-aged", None, True),
    ("gray", "grey", {"grey": ["gray"]}, True),
    ("gray", "grey", None, False),
    ("glasses", "eyeglasses", {"eyeglasses": ["glasses"]}, True),
    ("sunglasses", "eyeglasses", {"eyeglasses": ["glasses"]}, False),
    ("no", "yes", None, False),
])
def test_normalize_answer(prediction, reference, synonyms, same):
    assert (normalize_answer(prediction, synonyms) == normalize_answer(reference, synonyms)) is same


def test_synonym_table_refuses_a_variant_for_two_answers():
    with pytest.raises(ValueError, match="'gray' is listed for both"):
        synonym_table({"grey": ["gray"], "silver": ["gray"]})


def test_vqa_accuracy_metric_overall_and_per_attribute():
    from eval.tasks.vqa import metric

    scores = metric(["Happy.", "gray", "no", "beard"], ["happy", "grey", "yes", "goatee"],
                    ["emotion", "hair_color", "hat", "facial_hair"], {"grey": ["gray"]})
    assert scores["exact_match"] == pytest.approx(0.5)
    assert scores["per_attribute"] == {"emotion": 1.0, "hair_color": 1.0, "hat": 0.0, "facial_hair": 0.0}
    assert scores["n"] == 4
    assert metric(["a"], ["b"])["per_attribute"] == {}
    with pytest.raises(ValueError, match="no predictions"):
        metric([], [])


def _record(**labels):
    return FaceRecord(image=Image.new("RGB", (8, 8)), **labels)


def test_qa_examples_ask_only_visible_labelled_attributes():
    records = [_record(emotion="happy", eyewear="sunglasses", eye_color="blue", hat=True),
               _record(emotion="sad", eyewear="none", eye_color="green", hat=False)]
    examples = qa_examples(records)
    asked = [(e.attribute, e.answer) for e in examples]
    assert ("eye_color", "blue") not in asked  # hidden behind sunglasses
    assert ("eye_color", "green") in asked
    assert ("hat", "yes") in asked and ("hat", "no") in asked
    assert len(examples) == 3 + 4
    one = qa_examples(records, per_image=1, seed=3)
    assert len(one) == 2


def test_qa_examples_use_extra_labels_with_questions_and_refuse_unlabelled_ones():
    records = [FaceRecord(image="x.jpg", age_group="senior", extra={"gender": "Female", "race": "Indian"})]
    examples = qa_examples(records, ["gender", "age_group"], {"gender": ["What is the gender?"]})
    assert [(e.question, e.answer) for e in examples][0] == ("What is the gender?", "Female")
    with pytest.raises(ValueError, match=r"\['emotion'\] not labelled in this data"):
        qa_examples(records, ["emotion", "age_group"])
    with pytest.raises(ValueError, match=r"attributes \[.race.\]: no question phrasings"):
        qa_examples(records, ["race"])


@pytest.fixture(scope="module")
def toy():
    """A toy LLaVA from a tiny random FLIP image tower (32 px, patch 8: 16 patches + CLS)."""
    from conftest import tiny_config
    from flip.model import FLIPModel
    from flip.processor import FLIPProcessor
    from flip.vqa.tokenizer import train_sentencepiece_tokenizer
    from flip.vqa.toy import IMAGE_TOKEN, ToyVLMConfig, build_toy_vlm

    torch.manual_seed(0)
    flip_model = FLIPModel(tiny_config()).eval()
    flip_processor = FLIPProcessor.from_settings(tokenizer="minilm", image_size=32, max_length=32)
    tokenizer = train_sentencepiece_tokenizer(TEXTS, 400, [IMAGE_TOKEN])
    config = ToyVLMConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    model, processor = build_toy_vlm(flip_model.vision_model, flip_processor, tokenizer, config)
    return flip_model, flip_processor, model, processor


def test_toy_vlm_sees_through_the_flip_image_tower_unchanged(toy):
    flip_model, flip_processor, model, processor = toy
    image = Image.new("RGB", (40, 30), (180, 90, 60))
    pixels = processor.image_processor(images=[image], return_tensors="pt")["pixel_values"]
    assert torch.allclose(pixels, flip_processor.images([image]), atol=1e-5)
    with torch.no_grad():
        ours = model.model.vision_tower(pixels, output_hidden_states=True).hidden_states[-2]
        theirs = flip_model.vision_model(pixels, output_hidden_states=True).hidden_states[-2]
    assert torch.equal(ours, theirs)
    assert model.config.image_seq_length == 17 and model_family(model) == "llava"


def test_training_batch_masks_every_prompt_token(toy):
    *_, model, processor = toy
    fmt = PromptFormat(processor, "llava")
    examples = [QAExample(Image.new("RGB", (32, 32)), "What emotion does this face show?", "happy"),
                QAExample(Image.new("RGB", (32, 32)), "Is this person wearing a hat?", "no")]
    batch = fmt.training_batch(examples)
    tokenizer = processor.tokenizer
    for i, example in enumerate(examples):
        answer = fmt.answer_ids(example.answer)
        kept = batch["labels"][i][batch["labels"][i] != IGNORE_INDEX].tolist()
        assert kept == answer and answer[-1] == tokenizer.eos_token_id
        assert tokenizer.decode(kept, skip_special_tokens=True).strip() == example.answer
        length = int(batch["attention_mask"][i].sum())
        # the answer is the last tokens of the sequence; everything before it (image, prompt) is -100
        assert (batch["labels"][i][: length - len(answer)] == IGNORE_INDEX).all()
        assert (batch["labels"][i][length:] == IGNORE_INDEX).all()
    assert (batch["input_ids"] == model.config.image_token_index).sum(1).tolist() == [17, 17]
    generation = fmt.generation_batch(examples)
    assert generation["attention_mask"][:, -1].tolist() == [1, 1]  # left-padded: prompts end together
    assert "labels" not in generation


def test_apply_lora_names_target_modules_that_match_nothing(toy):
    from flip.train.vqa_loop import apply_lora

    *_, model, _ = toy
    with pytest.raises(ValueError, match=r"target_modules=\['query'\] matches no linear layer.*q_proj"):
        apply_lora(model, target_modules=["query"])
    with pytest.raises(ValueError, match="modules_to_save.*no module named"):
        apply_lora(model, target_modules=["q_proj"], modules_to_save=["projector_that_is_not"])


def test_prompt_format_errors_name_the_problem(toy):
    *_, processor = toy
    with pytest.raises(ValueError, match="must contain '{question}'"):
        PromptFormat(processor, "llava", template="USER: <image> ASSISTANT:")
    with pytest.raises(ValueError, match="family='blip'"):
        PromptFormat(processor, "blip")


def test_unsupported_base_model_is_refused_by_name(tmp_path):
    from transformers import CLIPVisionConfig

    from flip.vqa.model import check_supported

    CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="unsupported base model: model_type 'clip_vision_model'"):
        check_supported(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="cannot read a model config"):
        check_supported(str(tmp_path / "nothing"))


def test_unreadable_image_is_one_error_naming_the_file(toy, tmp_path):
    *_, processor = toy
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match="broken.png: not an image"):
        PromptFormat(processor, "llava").generation_batch([QAExample(str(bad), "What emotion?")])


def test_library_does_not_import_finetune_or_eval():
    for path in (ROOT / "flip" / "vqa").glob("*.py"):
        text = path.read_text()
        assert "import finetune" not in text and "from finetune" not in text, path
        assert "from eval" not in text and "import eval" not in text, path
