"""The VQA LoRA recipe end to end on a tiny random model of each supported family, built from config
(no downloads): train a few steps, save the adapter, reload it, get the same answers; plus the toy
base recipe, `flip ask` and the eval table."""

from __future__ import annotations

import json

import pytest
import torch

from flip.vqa.tokenizer import train_sentencepiece_tokenizer

pytestmark = pytest.mark.slow

ATTRIBUTES = ["emotion", "hat", "eyewear"]
TINY_LM = dict(vocab_size=None, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=4, pad_token_id=0, bos_token_id=2, eos_token_id=3)
TINY_VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=32,
                   patch_size=8)
IDEFICS3_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] | capitalize }}:{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<image>{% else %}{{ item['text'] }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """A tiny synthetic QA dataset on disk (32 px): train and test splits."""
    from flip.data.synthetic.world import SynthConfig, write_synthetic

    out = tmp_path_factory.mktemp("synth-qa")
    cfg = SynthConfig(kind="qa", n=30, size=32, images_per_identity=2, seed=0,
                      split_fractions={"train": 0.8, "test": 0.2})
    write_synthetic(cfg, out, workers=1, progress=False)
    return out


def _texts(synth):
    from flip.data.loaders import load_records
    from flip.vqa.examples import corpus

    return corpus(load_records(synth, split="train", check_images=False)) + ["USER: ASSISTANT: User: Assistant:"]


def build_llava(synth):
    from conftest import tiny_config
    from flip.model import FLIPModel
    from flip.processor import FLIPProcessor
    from flip.vqa.toy import IMAGE_TOKEN, ToyVLMConfig, build_toy_vlm

    flip_model = FLIPModel(tiny_config()).eval()
    flip_processor = FLIPProcessor.from_settings(tokenizer="minilm", image_size=32, max_length=32)
    tokenizer = train_sentencepiece_tokenizer(_texts(synth), 400, [IMAGE_TOKEN])
    return build_toy_vlm(flip_model.vision_model, flip_processor, tokenizer,
                         ToyVLMConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64))


def build_paligemma(synth):
    from transformers import (PaliGemmaConfig, PaliGemmaForConditionalGeneration, PaliGemmaProcessor,
                              SiglipImageProcessor)

    tokenizer = train_sentencepiece_tokenizer(_texts(synth), 400, ["<image>"])
    image_processor = SiglipImageProcessor(size={"height": 32, "width": 32})
    image_processor.image_seq_length = 16
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tokenizer)
    config = PaliGemmaConfig(
        vision_config=dict(model_type="siglip_vision_model", **TINY_VISION),
        text_config=dict(model_type="gemma", **{**TINY_LM, "vocab_size": len(tokenizer)}, head_dim=8),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"), projection_dim=32)
    return PaliGemmaForConditionalGeneration(config).eval(), processor


def build_idefics3(synth):
    from transformers import (Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessor,
                              Idefics3Processor)

    tokenizer = train_sentencepiece_tokenizer(
        _texts(synth), 400, ["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"])
    image_processor = Idefics3ImageProcessor(do_image_splitting=False, size={"longest_edge": 32},
                                             max_image_size={"longest_edge": 32})
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=4,
                                  chat_template=IDEFICS3_TEMPLATE)
    config = Idefics3Config(vision_config=TINY_VISION, text_config=dict(model_type="llama", **{**TINY_LM, "vocab_size": len(tokenizer)}),
                            image_token_id=tokenizer.convert_tokens_to_ids("<image>"), scale_factor=2)
    return Idefics3ForConditionalGeneration(config).eval(), processor


BUILDERS = {"llava": build_llava, "paligemma": build_paligemma, "idefics3": build_idefics3}


@pytest.fixture(scope="module")
def runs(synth, tmp_path_factory):
    """{family: (base dir, run dir)} after a 3-step recipe run on each family's tiny random model."""
    from flip.cli.vqa_train import main

    out = {}
    for family, build in BUILDERS.items():
        torch.manual_seed(0)
        model, processor = build(synth)
        base = tmp_path_factory.mktemp(f"{family}-base")
        model.save_pretrained(base)
        processor.save_pretrained(base)
        run = tmp_path_factory.mktemp(f"{family}-run")
        argv = ["--model.base", str(base), "--data.source", str(synth), "--data.eval_split", "test",
                "--data.attributes", json.dumps(ATTRIBUTES), "--data.eval_images", "2", "--data.per_image", "2",
                "--train.steps", "3", "--train.batch_size", "4", "--train.lr", "0.05", "--train.warmup", "0",
                "--lora.rank", "2", "--lora.alpha", "4", "--lora.target_modules", '["q_proj", "v_proj"]',
                "--eval.max_new_tokens", "3", "--run.output_dir", str(run), "--run.merge", str(family == "llava").lower()]
        assert main(argv) == 0, family
        out[family] = (base, run)
    return out


@pytest.mark.parametrize("family", list(BUILDERS))
def test_recipe_saves_an_adapter_that_reloads_to_the_same_answers(runs, family):
    from safetensors.torch import load_file

    from flip.vqa.prompting import QAExample
    from flip.vqa.model import load_vqa

    base, run = runs[family]
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 < metrics["trained_fraction"] < 0.5
    assert set(metrics["eval"]["per_attribute"]) <= set(ATTRIBUTES) and metrics["eval"]["n"] > 0
    weights = load_file(run / "adapter" / "adapter_model.safetensors")
    assert any("lora_B" in k for k in weights)
    assert any(v.abs().sum() > 0 for k, v in weights.items() if "lora_B" in k)  # the adapter learned something
    assert sorted(p.name for p in (run / "confusion").glob("*.png")) == [f"{a}.png" for a in sorted(
        {json.loads(line)["attribute"] for line in (run / "predictions.jsonl").read_text().splitlines()})]

    # the held-out examples, rebuilt exactly as the run built them, answered by the reloaded adapter
    import yaml

    from flip.vqa.examples import qa_examples, read_records

    rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    config = yaml.safe_load((run / "config.yaml").read_text())
    d = config["data"]
    examples = qa_examples(read_records(d["source"], d["dataset"], d["eval_split"], False, d["eval_images"]),
                           d["attributes"], d["questions"], None, seed=config["train"]["seed"] + 1)
    vqa = load_vqa(run / "adapter")
    assert [e.question for e in examples] == [r["question"] for r in rows]
    assert vqa.answer(examples) == [r["prediction"] for r in rows]

    # the reloaded adapter changes the base model's output
    example = [QAExample(examples[0].image, examples[0].question)]
    batch = vqa.format.generation_batch(example)
    with torch.no_grad():
        tuned = vqa.model(**batch).logits[:, -1]
        with vqa.model.disable_adapter():
            plain = vqa.model(**batch).logits[:, -1]
    assert not torch.allclose(tuned, plain, atol=1e-5)


def test_merged_model_gives_the_adapters_logits(runs):
    from flip.vqa.model import load_vqa

    _, run = runs["llava"]
    from PIL import Image

    from flip.vqa.prompting import QAExample

    adapter, merged = load_vqa(run / "adapter"), load_vqa(run / "merged")

    batch = adapter.format.generation_batch([QAExample(Image.new("RGB", (32, 32), (90, 60, 30)), "Is this person wearing a hat?")])
    with torch.no_grad():
        assert torch.allclose(adapter.model(**batch).logits, merged.model(**batch).logits, atol=1e-4)


def test_recipe_refuses_target_modules_that_match_nothing(runs, synth, tmp_path, capsys):
    from flip.cli.vqa_train import main

    base, _ = runs["llava"]
    code = main(["--model.base", str(base), "--data.source", str(synth), "--data.attributes", '["hat"]',
                 "--lora.target_modules", '["query", "value"]', "--run.output_dir", str(tmp_path / "r")])
    assert code == 2
    assert "target_modules=['query', 'value'] matches no linear layer" in capsys.readouterr().err


def test_recipe_refuses_an_attribute_the_data_does_not_label(runs, synth, tmp_path, capsys):
    from flip.cli.vqa_train import main

    base, _ = runs["llava"]
    code = main(["--model.base", str(base), "--data.source", str(synth), "--data.attributes", '["hat", "gender"]',
                 "--data.questions", '{gender: ["What is the gender?"]}', "--run.output_dir", str(tmp_path / "r")])
    assert code == 2
    assert "['gender'] not labelled in this data" in capsys.readouterr().err


def test_flip_ask_answers_and_names_a_bad_image(runs, synth, tmp_path, capsys):
    from flip.cli import main

    _, run = runs["llava"]
    image = next((synth / "test").glob("*.png"))
    assert main(["ask", str(image), "Is this person wearing a hat?", "--model", str(run / "adapter"), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["ask"]["question"] == "Is this person wearing a hat?" and isinstance(row["ask"]["answer"], str)
    assert row["face"] == 0 and row["whole_image"] and row["model"] == str(run / "adapter")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 truncated")
    assert main(["ask", str(bad), "What emotion?", "--model", str(run / "adapter")]) == 1  # bad data: exit 1
    assert "bad.jpg" in capsys.readouterr().err


def test_eval_task_writes_the_table(runs, synth, checkpoint, tmp_path):
    from eval.tasks.vqa import main

    base, run = runs["llava"]
    out = tmp_path / "report"
    assert main(["--base", str(base), "--adapter", str(run / "adapter"), "--flip-model", checkpoint,
                 "--config", str(run / "config.yaml"), "--data", str(synth), "--split", "test", "--limit", "2", "--attributes", *ATTRIBUTES,
                 "--max-new-tokens", "3", "--out", str(out)]) == 0
    report = json.loads((out / "vqa.json").read_text())
    assert [r["attribute"] for r in report["rows"]] == sorted(ATTRIBUTES)
    for row in report["rows"]:
        assert {"zero-shot", "base", "lora"} <= set(row)
        assert 0 <= row["lora"] <= 1 and 0 <= row["zero-shot"] <= 1
    assert 0 < report["trained_fraction"] < 0.5
    assert "| attribute |" in (out / "vqa.md").read_text()
    assert len(list((out / "confusion").glob("*.png"))) == len(ATTRIBUTES)


def test_toy_base_recipe_pretrains_around_the_frozen_flip_tower(synth, checkpoint, tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from flip.cli.vqa_base_train import main
    from flip.hub import load

    out = tmp_path / "base"
    assert main(["--vision.model", checkpoint, "--data.source", str(synth), "--language.hidden_size", "32",
                 "--language.num_hidden_layers", "2", "--language.intermediate_size", "64",
                 "--language.vocab_size", "400", "--train.steps", "2", "--train.batch_size", "4",
                 "--train.warmup", "0", "--run.output_dir", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["trainable_parameters"] < metrics["parameters"]
    model = AutoModelForImageTextToText.from_pretrained(out / "model")
    processor = AutoProcessor.from_pretrained(out / "model")
    assert type(model).__name__ == "LlavaForConditionalGeneration" and "<image>" in processor.tokenizer.get_vocab()
    flip_vision = load(checkpoint)[0].vision_model.state_dict()
    tower = model.model.vision_tower.state_dict()
    assert tower.keys() == flip_vision.keys()
    assert all(torch.equal(tower[k], flip_vision[k]) for k in tower)  # frozen: still FLIP's weights
    assert "USER:" in processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe this face."}]}],
        add_generation_prompt=True, tokenize=False)
    assert load_file(out / "model" / "model.safetensors")  # weights are written as safetensors


@pytest.mark.parametrize("command", ["vqa-train", "vqa-base-train"])
def test_vqa_recipes_are_flip_commands_that_name_a_missing_config(command, tmp_path, capsys):
    from flip.cli import main

    assert main([command, "--config", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"flip {command}: ") and "missing.yaml" in err and "\n" not in err


def test_shipped_toy_recipes_are_valid_configs():
    """The YAML files the README's commands name load into their recipes' configs, overrides applied."""
    from pathlib import Path

    from flip.train.config import load_config
    from flip.train.vqa_base import VQABaseConfig
    from flip.train.vqa_lora import VQALoRAConfig

    configs = Path(__file__).parent.parent / "finetune" / "configs"
    base = load_config(configs / "vqa_toy_base.yaml", ["--train.steps", "3"], cls=VQABaseConfig)
    lora = load_config(configs / "vqa_lora_toy.yaml", ["--lora.rank", "4"], cls=VQALoRAConfig)
    assert base.train.steps == 3 and base.language.hidden_size % base.language.num_attention_heads == 0
    assert base.run.output_dir + "/model" == lora.model.base  # the LoRA recipe adapts what the base recipe writes
    assert lora.lora.rank == 4 and "multi_modal_projector" in lora.lora.modules_to_save
    assert lora.eval.synonyms["grey"] == ["gray"]


def test_toy_base_recipe_refuses_a_resnet_towered_flip_in_one_line(synth, tmp_path, capsys):
    """LLaVA reads a ViT's token sequence: a ResNet-towered FLIP (the embedded default's kind) is refused
    up front, naming vision.model, before any tokenizer is trained or anything is written."""
    from conftest import TINY_RESNET, tiny_config

    from flip.cli.vqa_base_train import main
    from flip.hub import save
    from flip.model import FLIPModel
    from flip.processor import FLIPProcessor

    model = FLIPModel(tiny_config(vision_config=TINY_RESNET)).eval()
    resnet = save(model, FLIPProcessor.from_settings(tokenizer="minilm", image_size=32, max_length=32),
                  tmp_path / "resnet")
    out = tmp_path / "base"
    assert main(["--vision.model", str(resnet), "--data.source", str(synth), "--run.output_dir", str(out)]) != 0
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "vision.model" in err and "resnet" in err and "--model.name flip-tiny" in err
    assert not out.exists()
