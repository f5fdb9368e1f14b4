"""The trainer: config, data order, optimiser, objective, towers, evaluation, and whole runs on a tiny model."""

import copy
import math
import os
import signal

import numpy as np
import pytest
import torch
import yaml
from conftest import TINY_RESNET, TINY_TEXT, TINY_VISION, tiny_config

from flip.model import FLIPModel
from flip.train.config import LossSection, OptimSection, TowersSection, TrainConfig, load_config, parse_overrides, save_config

# ------------------------------------------------------------------------------------------------
# Fixtures: a tiny dataset on disk and a tiny-model config


COLORS = ("red", "green", "blue", "yellow")


def _records(n):
    from PIL import Image

    from flip.data.records import FaceRecord

    rng = np.random.default_rng(0)
    records = []
    for i in range(n):
        c = i % len(COLORS)
        pixels = rng.integers(0, 60, (32, 32, 3), dtype=np.uint8)
        pixels[..., c % 3] += 150
        records.append(FaceRecord(file_name=f"{i:03d}.png", image=Image.fromarray(pixels),
                                  caption=f"a face with {COLORS[c]} hair, number {i}", hair_color=COLORS[c],
                                  hat=bool(i % 2)))
    return records


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from flip.data.formats import write_dataset

    root = tmp_path_factory.mktemp("pairs")
    write_dataset(_records(28), root, "imagefolder", "train")
    return root


def tiny_settings(dataset, output_dir, text="bert", **sections):
    """A TrainConfig dict for a hidden-32 model on the tiny dataset: 24 training pairs, 4 held out."""
    overrides = {"vision_config": dict(TINY_VISION), "text_config": dict(TINY_TEXT[text]), "projection_dim": 16}
    processor = {"max_length": 16}
    if text == "blip_text_model":
        overrides["use_itm_head"] = True
        processor["tokenizer"] = "bert-blip"
    data = {
        "model": {"name": "flip-tiny", "overrides": overrides, "processor": processor},
        "data": {"train": str(dataset), "eval_size": 4, "batch_size": 4, "num_workers": 0},
        "optim": {"lr": 1e-3, "warmup_steps": 2},
        "run": {"output_dir": str(output_dir), "epochs": 1, "log_every": 1, "progress": False, "save_every": 0},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return data


# ------------------------------------------------------------------------------------------------
# Config


def test_config_from_yaml_with_dotted_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"data": {"train": "somewhere"}, "optim": {"lr": 1e-3}}))
    config = load_config(path, ["--optim.lr", "1e-4", "--run.epochs=3", "--loss.momentum", "0.995",
                                "--optim.betas", "[0.9, 0.99]", "--run.max_steps", "null"])
    assert config.optim.lr == pytest.approx(1e-4)  # YAML reads "1e-4" as a string: coerced
    assert config.run.epochs == 3 and config.loss.momentum == 0.995 and config.run.max_steps is None
    assert config.optim.betas == (0.9, 0.99)
    assert config.data.train == "somewhere" and config.towers.vision == "train"  # defaults kept
    # the resolved config round-trips through the file saved beside the checkpoints
    assert load_config(save_config(config, tmp_path / "out" / "config.yaml")) == config


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["--optim.lrr", "1"], "optim.lrr"),
        (["--run.epochs", "two"], "run.epochs: expected an integer"),
        (["--loss.alpha", "0.4"], "loss.alpha needs loss.momentum"),
        (["--loss.queue_size", "64"], "loss.queue_size needs loss.momentum"),
        (["--towers.text", "frozen"], "towers.text must be one of"),
        (["--towers.text", "lock", "--towers.vision", "lock"], "cannot both be 'lock'"),
        (["--loss.kind", "sigmoid", "--loss.momentum", "0.99"], "loss.momentum"),
        (["--run.precision", "fp16"], "run.precision"),
        (["--data.batch_size", "0"], "data.batch_size"),
        (["--data.low_res", "1.5"], "data.low_res must be in"),
        (["--data.low_res_min", "2"], "data.low_res_min must be >= 4"),
        (["--run.deterministic", "maybe"], "run.deterministic: expected true or false"),
        (["optim.lr", "1"], "expected an override"),
        (["--optim.lr"], "has no value"),
    ],
)
def test_config_errors_name_the_field(overrides, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        load_config(None, ["--data.train", "x", *overrides])


def test_config_needs_training_data_and_reports_the_file(tmp_path):
    with pytest.raises(ValueError, match="data.train"):
        load_config(None, [])
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {train: x}\nmodle: {}\n")
    with pytest.raises(ValueError, match=r"bad.yaml.*modle"):
        load_config(bad)
    with pytest.raises(FileNotFoundError, match="no config file"):
        load_config(tmp_path / "missing.yaml")


def test_parse_overrides_nests_dotted_keys():
    assert parse_overrides(["--a.b.c", "1", "--a.d=x", "--e", "{k: [1, 2]}"]) == {
        "a": {"b": {"c": 1}, "d": "x"}, "e": {"k": [1, 2]}
    }


# ------------------------------------------------------------------------------------------------
# Data order


def test_sampler_ranks_split_the_single_process_batches():
    from flip.train.pairs import ResumableBatchSampler

    single = ResumableBatchSampler(50, 8, seed=3)
    ranks = [ResumableBatchSampler(50, 4, seed=3, rank=r, world_size=2) for r in range(2)]
    for epoch in (0, 1):
        for s in (single, *ranks):
            s.set_epoch(epoch)
        together = [sorted(a + b) for a, b in zip(*ranks)]
        assert together == [sorted(b) for b in single] and len(together) == 50 // 8
    single.set_epoch(0)
    first = list(single)
    single.set_epoch(1)
    assert list(single) != first  # a new permutation each epoch
    single.set_epoch(0, start=2)
    assert list(single) == first[2:] and len(single) == len(first) - 2  # resumed mid-epoch


def test_sampler_trims_to_whole_optimiser_steps_and_rejects_tiny_data():
    from flip.train.pairs import ResumableBatchSampler

    assert ResumableBatchSampler(50, 4, seed=0, multiple_of=3).batches_per_epoch == 12
    with pytest.raises(ValueError, match="smaller than one optimiser step"):
        ResumableBatchSampler(10, 4, seed=0, world_size=2, multiple_of=2)


def test_held_out_split_keeps_captions_of_one_image_together():
    from flip.data.records import FaceRecord
    from flip.train.pairs import image_ids, split_held_out

    records = [FaceRecord(file_name=f"{i // 2}.png", caption=f"c{i}") for i in range(20)]  # 2 captions per image
    assert image_ids(records)[:4] == [0, 0, 1, 1]
    train, held = split_held_out(records, 5, seed=0)
    assert len(held) == 6 and len(train) == 14  # whole images: 3 images of 2 captions
    assert not {r.file_name for r in train} & {r.file_name for r in held}
    assert split_held_out(records, 5, seed=0) == (train, held)  # seeded
    with pytest.raises(ValueError, match="eval_size"):
        split_held_out(records, 20, seed=0)


def test_pair_dataset_packs_encoded_images_and_returns_them_unchanged():
    from flip.data.records import FaceRecord
    from flip.train.pairs import PairDataset

    records = [FaceRecord(file_name=f"{i % 3}.png", image=bytes([i]) * (i + 1), caption=f"c{i}") for i in range(5)]
    dataset = PairDataset(records)
    assert dataset._blob is not None and len(dataset) == 5
    assert [dataset[i] for i in range(5)] == [(bytes([i]) * (i + 1), f"c{i}", i % 3) for i in range(5)]
    mixed = PairDataset([FaceRecord(image="a.png", caption="x"), FaceRecord(image=b"png", caption="y")])
    assert mixed._blob is None and mixed[0] == ("a.png", "x", 0) and mixed[1] == (b"png", "y", 1)


def test_low_res_shrinks_the_drawn_share_of_a_batch_and_repeats_for_the_same_batch():
    from flip.processor import FLIPProcessor
    from flip.train.pairs import PairCollator, lower_resolution

    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (64, 3, 32, 32), generator=g, dtype=torch.uint8)
    out = lower_resolution(pixels, 0.5, 8, np.random.default_rng(0))
    changed = [not torch.equal(a, b) for a, b in zip(out, pixels)]
    assert out.dtype == torch.uint8 and out.shape == pixels.shape and 20 < sum(changed) < 44
    # a shrunk image has lost detail: neighbouring pixels differ less than in the noise it came from
    rough = lambda x: (x[:, :, 1:].float() - x[:, :, :-1].float()).abs().mean()  # noqa: E731
    assert all(rough(out[i]) < 0.8 * rough(pixels[i]) for i in range(64) if changed[i])
    assert torch.equal(lower_resolution(pixels, 0.0, 8, np.random.default_rng(0)), pixels)

    processor = FLIPProcessor.from_settings(tokenizer="minilm", image_size=32, max_length=8)
    images = [np.asarray(p.permute(1, 2, 0)) for p in pixels[:8]]
    items = [(im, "a face", i) for i, im in enumerate(images)]
    plain = PairCollator(processor)(items)["pixel_values"]
    assert torch.equal(plain, processor.images(images))  # no augmentation unless asked
    low = PairCollator(processor, low_res=1.0, low_res_min=8, seed=3)
    assert torch.equal(low(items)["pixel_values"], low(items)["pixel_values"])  # the seed and the ids decide
    assert not torch.equal(low(items)["pixel_values"], plain)


# ------------------------------------------------------------------------------------------------
# Optimiser


def test_weight_decay_skips_norms_biases_embeddings_and_temperature():
    from flip.train.optim import parameter_groups

    model = FLIPModel(tiny_config(logit_bias_init=-10.0))
    decay, no_decay = parameter_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    skipped = set(no_decay["names"])
    for name in ("logit_scale", "logit_bias", "vision_proj.bias", "text_model.embeddings.word_embeddings.weight",
                 "text_model.embeddings.position_embeddings.weight", "vision_model.embeddings.class_embedding",
                 "vision_model.embeddings.position_embedding.weight", "text_model.embeddings.LayerNorm.weight"):
        assert name in skipped, name
    assert "vision_proj.weight" in decay["names"]
    assert "text_model.encoder.layer.0.attention.self.query.weight" in decay["names"]
    assert len(decay["names"]) + len(skipped) == len(list(model.parameters()))


def test_schedule_warms_up_then_decays_to_the_floor():
    from flip.train.optim import build_optimizer, build_scheduler

    model = torch.nn.Linear(2, 2)
    optim = OptimSection(lr=1.0, warmup_steps=4, min_lr_ratio=0.1)
    optimizer = build_optimizer(model, optim)
    scheduler = build_scheduler(optimizer, optim, total_steps=14)
    lrs = []
    for _ in range(14):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[:5] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])  # transformers' warm-up starts at 0
    assert all(a > b for a, b in zip(lrs[4:], lrs[5:]))  # decreasing after warm-up
    assert lrs[-1] > 0.1 and lrs[-2] > lrs[-1] and optimizer.param_groups[0]["lr"] == pytest.approx(0.1)  # ends on the floor
    with pytest.raises(ValueError, match="nothing to train"):
        build_optimizer(torch.nn.Linear(2, 2).requires_grad_(False), optim)


# ------------------------------------------------------------------------------------------------
# Objective: momentum encoders, queue, ITM, sigmoid


def _batch(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(pixel_values=torch.randn(n, 3, 32, 32, generator=g), input_ids=torch.randint(1000, 2000, (n, 6), generator=g),
                attention_mask=torch.ones(n, 6, dtype=torch.long), ids=torch.arange(n))


def test_momentum_encoder_follows_flip_ema_and_queue_wraps_around():
    from flip.train.objective import PretrainObjective

    torch.manual_seed(0)
    model = FLIPModel(tiny_config())
    objective = PretrainObjective(model, LossSection(momentum=0.9, queue_size=6, alpha=0.4))
    before_queue = objective.image_queue.clone()
    out = objective(**_batch(), alpha=0.4)
    assert torch.isfinite(out.loss) and set(out.parts) == {"itc"}
    # first update copies the online weights; the batch's 4 momentum embeddings fill slots 0-3
    for p, q in zip(model.parameters(), objective.momentum.module.parameters()):
        torch.testing.assert_close(p, q)
    assert int(objective.queue_ptr) == 4
    torch.testing.assert_close(objective.image_queue[4:], before_queue[4:])
    momentum_now = [q.clone() for q in objective.momentum.module.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    objective(**_batch(seed=1), alpha=0.4)
    for p, q, m in zip(model.parameters(), objective.momentum.module.parameters(), momentum_now):
        torch.testing.assert_close(q, 0.9 * m + 0.1 * p)  # m <- 0.9 m + 0.1 p
    assert int(objective.queue_ptr) == 2  # 4 + 4 wrapped around 6 slots
    assert not any(q.requires_grad for q in objective.momentum.module.parameters())


def test_itm_objective_mines_negatives_and_trains_the_matching_head():
    from flip.train.objective import PretrainObjective, freeze_unused

    torch.manual_seed(0)
    model = FLIPModel(tiny_config("blip_text_model"))
    loss = LossSection(itm_weight=1.0)
    assert freeze_unused(model, loss) == []
    objective = PretrainObjective(model, loss, enc_token_id=30523)
    out = objective(**_batch())
    assert set(out.parts) == {"itc", "itm"}
    torch.testing.assert_close(out.loss.detach(), out.parts["itc"] + out.parts["itm"])
    out.loss.backward()
    assert model.itm_head.weight.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "crossattention" in n)
    # without ITM the head and the cross-attention are frozen (DDP then needs no unused-parameter search)
    model = FLIPModel(tiny_config("blip_text_model"))
    frozen = freeze_unused(model, LossSection())
    assert "itm_head.weight" in frozen and any("crossattention" in n for n in frozen)
    with pytest.raises(ValueError, match="use_itm_head"):
        PretrainObjective(FLIPModel(tiny_config()), loss)
    # CLS pooling skips CLIP's post-layernorm for the features; it still norms the ITM tokens
    assert "vision_model.post_layernorm.weight" in freeze_unused(FLIPModel(tiny_config(vision_pooling="cls")), LossSection())
    assert freeze_unused(FLIPModel(tiny_config("blip_text_model", vision_pooling="cls")), loss) == []


def test_sigmoid_objective_uses_the_logit_bias():
    from flip.losses import sigmoid_loss
    from flip.train.objective import PretrainObjective

    with pytest.raises(ValueError, match="logit_bias_init"):
        PretrainObjective(FLIPModel(tiny_config()), LossSection(kind="sigmoid"))
    torch.manual_seed(0)
    model = FLIPModel(tiny_config(logit_bias_init=-10.0, temperature_init=0.1)).eval()
    out = PretrainObjective(model, LossSection(kind="sigmoid"))(**_batch())
    b = _batch()
    expected = sigmoid_loss(model(pixel_values=b["pixel_values"], input_ids=b["input_ids"],
                                  attention_mask=b["attention_mask"]).logits_per_image)
    torch.testing.assert_close(out.loss, expected)
    out.loss.backward()
    assert model.logit_bias.grad is not None and model.logit_bias.grad != 0


# ------------------------------------------------------------------------------------------------
# Towers


def test_locked_tower_is_frozen_and_stays_in_eval_mode():
    from flip.train.modeling import setup_towers
    from flip.train.objective import PretrainObjective

    model = FLIPModel(tiny_config())
    trainable = setup_towers(model, None, TowersSection(vision="lock"))
    assert trainable.locked == ("vision_model",) and trainable.peft_model is None
    assert not any(p.requires_grad for p in model.vision_model.parameters())
    assert model.vision_proj.weight.requires_grad  # LiT keeps training the projection unless asked
    objective = PretrainObjective(model, LossSection(), locked=trainable.locked).train()
    assert not model.vision_model.training and model.text_model.training


def test_pool_captions_encodes_each_distinct_caption_once_as_the_tower_would():
    from contextlib import nullcontext

    from flip.processor import FLIPProcessor
    from flip.train.pairs import pool_captions

    torch.manual_seed(0)
    model = FLIPModel(tiny_config())  # nn.Module starts in training mode: dropout would make rows differ
    processor = FLIPProcessor.from_settings(tokenizer="minilm", image_size=32, max_length=16)
    captions = ["a face with red hair", "a smiling face with a long grey beard", "a face with red hair", "blue"]
    calls = []
    model.text_model.register_forward_hook(lambda module, args, out: calls.append(1))
    table = pool_captions(model, processor, captions, torch.device("cpu"), nullcontext, batch_size=2)
    assert table.shape == (4, model.config.text_config.hidden_size) and len(calls) == 2  # 3 distinct, batches of 2
    assert model.text_model.training  # its mode is given back
    model.eval()
    for caption, row in zip(captions, table):
        text = processor.texts([caption])
        torch.testing.assert_close(row, model.pool_text(text["input_ids"], text["attention_mask"])[0],
                                   atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.text_proj(table[:1]), model.get_text_features(**processor.texts(captions[:1])),
                               atol=1e-5, rtol=1e-5)


def test_pool_captions_keeps_its_rows_for_the_next_run_of_the_same_tower_and_captions(tmp_path):
    from contextlib import nullcontext

    from flip.processor import FLIPProcessor
    from flip.train.pairs import pool_captions
    from flip.zeroshot import TextCache

    torch.manual_seed(0)
    model = FLIPModel(tiny_config())
    processor = FLIPProcessor.from_settings(tokenizer="minilm", image_size=32, max_length=16)
    captions = ["a face with red hair", "a bearded face", "a face with red hair"]
    calls = []
    model.text_model.register_forward_hook(lambda module, args, out: calls.append(1))
    pool = lambda caps, precision="float32": pool_captions(  # noqa: E731
        model, processor, caps, torch.device("cpu"), nullcontext, cache=TextCache(tmp_path), precision=precision)
    first = pool(captions)
    assert len(calls) == 1 and len(list(tmp_path.glob("captions-*.safetensors"))) == 1
    again = pool(captions)  # a resume, or another run on the same captions: read, not encoded
    assert len(calls) == 1 and torch.equal(again, first)
    torch.nn.init.normal_(model.text_proj.weight)  # the projection trains: it is not part of the key
    assert torch.equal(pool(captions[::-1]), first.flip(0)) and len(calls) == 1
    pool(captions + ["a new caption"])
    pool(captions, precision="bfloat16")
    with torch.no_grad():
        model.text_model.embeddings.word_embeddings.weight.add_(1.0)  # another tower
    pool(captions)
    assert len(calls) == 4 and len(list(tmp_path.glob("captions-*.safetensors"))) == 4


def test_locked_text_tower_cached_once_trains_as_if_encoded_every_step(dataset, tmp_path):
    from flip.train import load_config, train

    results = {}
    for cache in (True, False):
        settings = tiny_settings(dataset, tmp_path / f"run-{cache}", towers={"text": "lock", "cache_locked_text": cache},
                                 run={"max_steps": 4, "deterministic": True, "precision": "fp32"})
        results[cache] = train(load_config(None, settings))
    assert len(list((tmp_path / "run-True" / "text-cache").glob("captions-*.safetensors"))) == 1  # for a resume
    assert not (tmp_path / "run-False" / "text-cache").exists()
    assert results[True].losses == pytest.approx(results[False].losses, rel=1e-5, abs=1e-6)
    assert results[True].metrics == pytest.approx(results[False].metrics, rel=1e-4, abs=1e-4)
    with pytest.raises(ValueError, match="either input_ids or text_pooled"):
        from flip.train.objective import PretrainObjective

        PretrainObjective(FLIPModel(tiny_config()), LossSection())(pixel_values=torch.zeros(2, 3, 32, 32))


def test_eval_size_takes_the_first_pairs_of_a_separate_eval_set(dataset, tmp_path):
    from flip.train import load_config, train

    settings = tiny_settings(dataset, tmp_path / "run", data={"eval": str(dataset), "eval_size": 6},
                             run={"max_steps": 1})
    result = train(load_config(None, settings))
    assert "- held-out pairs: 6" in (result.final_dir / "README.md").read_text()
    assert "eval/t2i_r1" in result.metrics


def test_lora_adapts_a_resnet_towers_block_convolutions_and_merges_back():
    from flip.train.modeling import setup_towers

    torch.manual_seed(0)
    model = FLIPModel(tiny_config(vision_config=TINY_RESNET))
    trainable = setup_towers(model, None, TowersSection(vision="lora", text="lock", lora_rank=4))
    base = trainable.model
    adapted = {n.split(".lora_")[0] for n, _ in base.named_parameters() if "lora_A" in n}
    # the 3x3 convolutions of each basic block (two per block, two stages); not the stem or shortcuts
    assert len(adapted) == 4 and all(n.endswith(".convolution") and ".layer." in n for n in adapted)
    with torch.no_grad():
        for name, param in base.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.1)
    base.eval()
    pixels = torch.randn(2, 3, 32, 32)
    want = base.encode_image(pixels)
    merged = trainable.final_model().eval()
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    torch.testing.assert_close(merged.encode_image(pixels), want, atol=1e-5, rtol=1e-5)


def test_lora_adapts_one_towers_attention_and_merges_back():
    from flip.train.modeling import count_parameters, setup_towers

    torch.manual_seed(0)
    model = FLIPModel(tiny_config())
    reference = copy.deepcopy(model).eval()
    trainable = setup_towers(model, None, TowersSection(text="lora", lora_rank=4))
    base = trainable.model
    lora = [n for n, p in base.named_parameters() if "lora_" in n]
    assert lora and all(n.startswith("text_model.") for n in lora)
    assert {n.rsplit(".", 3)[0].rsplit(".", 1)[1] for n in lora} >= {"query", "key", "value"}
    for name, param in base.named_parameters():
        if "lora_" in name:
            assert param.requires_grad
        elif name.startswith("text_model.") or ".original_module." in name:
            assert not param.requires_grad, name  # the adapted tower's own weights are frozen
        elif name == "logit_scale":
            assert not param.requires_grad  # the temperature stays the base's (an adapter cannot hold it)
        else:
            assert param.requires_grad, name  # the other tower and the projections train
    assert not trainable.adapter_is_whole  # the vision tower trains in full: only the merged model holds it
    assert count_parameters(base)[0] < count_parameters(reference)[0]
    # LoRA starts as the identity (B = 0); after a change to B, the merged model equals the adapted one
    with torch.no_grad():
        for name, param in base.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.1)
    base.eval()
    ids = torch.randint(1000, 2000, (2, 5))
    adapted = base.encode_text(ids)
    assert not torch.allclose(adapted, reference.encode_text(ids))
    merged = trainable.final_model()
    assert isinstance(merged, FLIPModel) and not any("lora_" in n for n, _ in merged.named_parameters())
    torch.testing.assert_close(merged.encode_text(ids), adapted, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------------
# Evaluation


def test_retrieval_recall_counts_any_positive_in_the_top_k():
    from flip.train.evaluate import retrieval_recall

    sim = torch.tensor([[0.9, 0.1, 0.0], [0.8, 0.7, 0.0], [0.0, 0.75, 0.4]])
    r = retrieval_recall(sim, ks=(1, 2))
    # images: 0 finds text 0 first; 1 ranks text 1 second; 2 ranks text 2 second
    assert r["i2t_r1"] == pytest.approx(1 / 3) and r["i2t_r2"] == pytest.approx(1.0)
    # texts: 0 -> image 0 first; 1 -> image 1 second (after image 2); 2 -> image 2 first
    assert r["t2i_r1"] == pytest.approx(2 / 3) and r["t2i_r2"] == pytest.approx(1.0)
    positives = torch.eye(3, dtype=torch.bool)
    positives[1, 0] = True  # text 0 also describes image 1
    assert retrieval_recall(sim, positives, ks=(1,))["i2t_r1"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="positives"):
        retrieval_recall(torch.zeros(2, 3))


def test_zero_shot_accuracy_and_class_sentences():
    from flip.train.evaluate import class_sentence, zero_shot_accuracy

    classes = torch.eye(3)
    images = torch.tensor([[1.0, 0.1, 0.0], [0.0, 0.2, 0.9], [0.6, 0.5, 0.0], [0.0, 1.0, 0.0]])
    assert zero_shot_accuracy(images, classes, torch.tensor([0, 2, 1, 1])) == pytest.approx(0.75)
    assert class_sentence("hair_color", "blond") == "a photo of a person with blond hair."
    assert class_sentence("hat", True) == "a photo of a person wearing a hat."
    assert class_sentence("facial_hair", "none") == "a photo of a person with no facial hair."


# ------------------------------------------------------------------------------------------------
# Whole runs


def test_flip_train_command_trains_evaluates_and_saves_a_loadable_model(dataset, tmp_path, capsys):
    import flip
    from flip.cli.train import main
    from flip.train.metric_log import read_metrics

    out = tmp_path / "run"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(tiny_settings(dataset, out)))
    assert main(["--config", str(path), "--run.epochs", "2", "--loss.momentum", "0.995", "--loss.queue_size", "8",
                 "--loss.alpha", "0.4"]) == 0
    assert "model saved" in capsys.readouterr().out
    rows = read_metrics(out / "metrics.jsonl")
    steps = [r for r in rows if "loss" in r]
    evals = [r for r in rows if "eval/i2t_r1" in r]
    assert [r["step"] for r in steps] == list(range(1, 13))  # 24 pairs / batch 4 = 6 steps, 2 epochs
    assert all(math.isfinite(r["loss"]) and r["samples_per_s"] > 0 for r in steps)
    assert steps[0]["lr"] < steps[1]["lr"]  # warm-up
    assert [r["epoch"] for r in evals] == [0, 1] and evals[-1]["eval/pairs"] == 4
    assert 0 <= evals[-1]["eval/zeroshot_mean"] <= 1 and evals[-1]["eval/chance_hair_color"] == pytest.approx(0.25)
    assert load_config(out / "config.yaml").loss.queue_size == 8
    model, processor = flip.load(str(out / "final"))
    assert model.config.vision_config.hidden_size == 32 and processor.settings.max_length == 16
    card = (out / "final" / "README.md").read_text()
    assert "12 optimiser steps" in card and "image to text" in card and f"--config {out / 'config.yaml'}" in card
    # the saved model is the trained one
    state = torch.load(out / "checkpoint-last.pt", weights_only=True)
    assert state["step"] == 12 and state["epoch"] == 2 and state["batch_in_epoch"] == 0
    torch.testing.assert_close(model.vision_proj.weight, state["objective"]["model.vision_proj.weight"])


def test_flip_train_reports_bad_configs(tmp_path, capsys):
    from flip.cli import main as flip_main

    def main(argv):  # through the entry point, which turns a user error into one line and exit 2
        return flip_main(["train", *argv])

    assert main(["--data.train", str(tmp_path / "nowhere"), "--run.output_dir", str(tmp_path / "o"),
                 "--run.progress", "false"]) == 2
    assert "no dataset at" in capsys.readouterr().err
    assert main(["--data.train", "x", "--optim.lr", "-1"]) == 2
    assert "optim.lr must be > 0" in capsys.readouterr().err
    assert main(["--data.train", "x", "--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["data"]["train"] == "x"


def test_resume_after_sigterm_repeats_the_uninterrupted_losses_exactly(dataset, tmp_path):
    """FLIP's full recipe (momentum, queue, soft targets, ITM sampling, dropout) in deterministic mode:
    stopping by SIGTERM mid-epoch and resuming gives bit-identical losses and weights."""
    from flip.train import train

    recipe = dict(loss={"momentum": 0.99, "queue_size": 12, "alpha": 0.4, "alpha_ramp_epochs": 1.0, "itm_weight": 1.0},
                  run={"deterministic": True, "epochs": 2, "seed": 7}, data={"low_res": 0.5})
    straight = train(load_config(None, tiny_settings(dataset, tmp_path / "a", "blip_text_model", **recipe)))
    assert straight.status == "finished" and len(straight.losses) == 12

    def sigterm_at_step_4(info):
        if info.step == 4:
            os.kill(os.getpid(), signal.SIGTERM)

    settings = tiny_settings(dataset, tmp_path / "b", "blip_text_model", **recipe)
    previous_handler = signal.getsignal(signal.SIGTERM)
    first = train(load_config(None, settings), on_step=sigterm_at_step_4)
    # the flag is read once per step, before the optimiser step: a signal after step 4's check stops
    # the run after step 5, mid-epoch (6 steps per epoch)
    assert first.status == "interrupted" and first.step == 5 and first.final_dir is None
    assert signal.getsignal(signal.SIGTERM) is previous_handler  # the trainer's handler is removed
    state = torch.load(first.checkpoint, weights_only=True)
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (5, 0, 5)
    second = train(load_config(None, {**settings, "run": {**settings["run"], "resume": "auto"}}))
    assert second.status == "finished" and second.step == 12
    assert load_config(tmp_path / "b" / "config.yaml").run.resume is None  # the saved recipe starts afresh
    assert first.losses + second.losses == straight.losses  # exactly, not approximately
    a = torch.load(straight.checkpoint, weights_only=True)["objective"]
    b = torch.load(second.checkpoint, weights_only=True)["objective"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_non_finite_loss_stops_with_a_clear_message_and_keeps_the_last_checkpoint(dataset, tmp_path, monkeypatch,
                                                                                  capsys):
    from flip.cli.train import main
    from flip.train import NonFiniteLossError, train
    from flip.train.objective import PretrainObjective

    forward = PretrainObjective.forward
    calls = []

    def poisoned(self, *args, **kwargs):
        out = forward(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 3:
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(PretrainObjective, "forward", poisoned)
    settings = tiny_settings(dataset, tmp_path / "run", run={"save_every": 1})
    with pytest.raises(NonFiniteLossError, match=r"loss became nan at step 3.*checkpoint-last.pt"):
        train(load_config(None, settings))
    state = torch.load(tmp_path / "run" / "checkpoint-last.pt", weights_only=True)
    assert state["step"] == 2  # the step that produced NaN was never applied nor saved
    assert all(torch.isfinite(v).all() for v in state["objective"].values() if v.is_floating_point())
    assert not (tmp_path / "run" / "final").exists()
    calls.clear()
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tiny_settings(dataset, tmp_path / "run2")))
    assert main(["--config", str(path)]) == 1
    assert "loss became nan" in capsys.readouterr().err


def test_training_reads_the_facecaption_authors_annotation_layout(tmp_path):
    """ann_root/<part>/*.json (the last file is the test split) + images/, as FLIP's authors train."""
    import json

    from flip.train import train

    root = tmp_path / "facecaption"
    (root / "images").mkdir(parents=True)
    items = []
    for i, record in enumerate(_records(20)):
        record.image.save(root / "images" / f"{i:03d}.png")
        items.append({"image": f"images/{i:03d}.png", "image_id": i, "caption": [record.caption]})
    for part, chunk in (("part0", items[:8]), ("part1", items[8:16]), ("part2", items[16:])):
        (root / "ann" / part).mkdir(parents=True)
        (root / "ann" / part / "ann.json").write_text(json.dumps(chunk))
    settings = tiny_settings(root / "ann", tmp_path / "run",
                             data={"dataset": "facecaption", "split": "train", "eval": str(root / "ann"),
                                   "eval_split": "test"})
    result = train(load_config(None, settings))
    assert result.status == "finished" and result.step == 4  # 16 training pairs, batch 4
    assert result.metrics["eval/pairs"] == 4


def test_pairs_without_a_caption_are_an_error_naming_the_row(tmp_path):
    import json

    from flip.train.pairs import read_pairs

    _records(1)[0].image.save(tmp_path / "a.png")
    rows = [{"file_name": "a.png", "caption": "a face"}, {"file_name": "a.png"}]
    (tmp_path / "pairs.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(ValueError, match=r"a.png has no caption"):
        read_pairs(str(tmp_path / "pairs.jsonl"), dataset="jsonl")
    with pytest.raises(ValueError, match="data.options"):
        read_pairs(str(tmp_path / "pairs.jsonl"), dataset="jsonl", unknown_option=1)


@pytest.mark.parametrize("name", ["pretrain_flip_tiny.yaml", "pretrain_flip_base.yaml"])
def test_shipped_recipes_are_valid_configs(name):
    from pathlib import Path

    path = Path(__file__).parent.parent / "finetune" / "configs" / name
    config = load_config(path, ["--data.train", "elsewhere"])
    assert config.loss.momentum == 0.995 and config.loss.alpha == 0.4 and config.data.train == "elsewhere"


def test_training_with_a_locked_vision_tower_and_lora_on_text(dataset, tmp_path):
    import flip
    from flip.train import train
    from flip.train.modeling import build_model

    settings = tiny_settings(dataset, tmp_path / "run", towers={"vision": "lock", "text": "lora", "lora_rank": 4},
                             optim={"lr": 1e-2, "warmup_steps": 0})
    config = load_config(None, settings)
    result = train(config)
    assert result.status == "finished"
    start, _ = build_model(config.model, seed=config.run.seed)  # the same seeded initialisation
    trained, _ = flip.load(str(result.final_dir))
    assert not any("lora_" in k for k in trained.state_dict())  # adapters merged into plain weights
    for name, value in start.vision_model.state_dict().items():
        torch.testing.assert_close(trained.vision_model.state_dict()[name], value)  # locked: unchanged
    query = "encoder.layer.0.attention.self.query.weight"
    assert not torch.allclose(trained.text_model.state_dict()[query], start.text_model.state_dict()[query])
    assert not torch.allclose(trained.vision_proj.weight, start.vision_proj.weight)  # the projection trains


def test_activation_checkpointing_gives_the_same_loss_and_gradients():
    from flip.train.loop import enable_checkpointing
    from flip.train.objective import PretrainObjective

    results = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = FLIPModel(tiny_config(text_config=dict(TINY_TEXT["bert"], hidden_dropout_prob=0.0,
                                                       attention_probs_dropout_prob=0.0)))
        if checkpointing:
            enable_checkpointing(model)
            assert model.vision_model.encoder.gradient_checkpointing and model.text_model.encoder.layer[0].gradient_checkpointing
        objective = PretrainObjective(model, LossSection()).train()
        out = objective(**_batch())
        out.loss.backward()
        results.append((out.loss.detach(), model.vision_model.encoder.layers[0].mlp.fc1.weight.grad.clone()))
    torch.testing.assert_close(results[0], results[1])


def test_bf16_autocast_and_gradient_accumulation_run(dataset, tmp_path):
    from flip.train import train
    from flip.train.metric_log import read_metrics

    settings = tiny_settings(dataset, tmp_path / "run", data={"batch_size": 2, "eval_size": 4},
                             optim={"accumulate": 3}, run={"precision": "bf16"})
    result = train(load_config(None, settings))
    assert result.status == "finished" and result.step == 4  # 24 pairs / (2 x 3) per step
    assert all(math.isfinite(x) for x in result.losses)
    assert [r["step"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "loss" in r] == [1, 2, 3, 4]


def test_tensorboard_is_optional(tmp_path):
    from flip.train.metric_log import MetricWriter

    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install tensorboard"):
            MetricWriter(tmp_path, tensorboard=True)
    else:
        writer = MetricWriter(tmp_path, tensorboard=True)
        writer.write(1, {"loss": 1.0})
        writer.close()
        assert list((tmp_path / "tensorboard").iterdir())
    writer = MetricWriter(tmp_path)
    writer.write(3, {"loss": float("nan"), "lr": torch.tensor(0.5)})
    assert (tmp_path / "metrics.jsonl").read_text().strip() == '{"step": 3, "loss": "nan", "lr": 0.5}'


def test_resume_refuses_a_different_data_order(dataset, tmp_path):
    from flip.train import train

    settings = tiny_settings(dataset, tmp_path / "run", run={"max_steps": 2})
    assert train(load_config(None, settings)).step == 2
    with pytest.raises(ValueError, match="would change the data order"):
        train(load_config(None, {**settings, "data": {**settings["data"], "batch_size": 2},
                                 "run": {**settings["run"], "resume": "auto"}}))
    with pytest.raises(FileNotFoundError, match="run.resume"):
        train(load_config(None, {**settings, "run": {**settings["run"], "resume": str(tmp_path / "nothing.pt")}}))


def test_dataloader_workers_ignore_sigterm_so_the_main_process_can_save():
    """A scheduler's SIGTERM reaches every process; a worker that died of it would crash the loop
    before the main process could save its checkpoint."""
    import subprocess
    import sys

    code = ("import os, signal; from flip.train.loop import ignore_sigterm; ignore_sigterm(0); "
            "os.kill(os.getpid(), signal.SIGTERM); print('alive')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "alive"
