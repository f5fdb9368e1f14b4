"""flip checkpoints in transformers' `pipeline`: the stock zero-shot task and flip's by-description task."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import tiny_config

IMAGE = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def pil_checkpoint(tmp_path_factory):
    """A tiny checkpoint whose processor resizes with PIL, as the pipeline's image processor does."""
    from flip.hub import save
    from flip.model import FLIPModel
    from flip.processor import FLIPProcessor

    torch.manual_seed(0)
    model = FLIPModel(tiny_config()).eval()
    processor = FLIPProcessor.from_settings(tokenizer="minilm", image_size=32, max_length=32, resize_backend="pil")
    return model, processor, str(save(model, processor, tmp_path_factory.mktemp("pipe") / "ckpt"))


def test_stock_zero_shot_pipeline_gives_the_models_probabilities(pil_checkpoint):
    from transformers import pipeline

    from flip.hf_pipeline import register

    register()
    model, processor, path = pil_checkpoint
    labels = ["a happy person", "a sad person", "a surprised person"]
    pipe = pipeline("zero-shot-image-classification", model=path)
    got = {r["label"]: r["score"] for r in pipe(IMAGE, candidate_labels=labels, hypothesis_template="{}")}
    with torch.no_grad():
        logits = model.logits(model.encode_image(processor.images([IMAGE])),
                              model.encode_text(processor.texts(labels)))
    want = dict(zip(labels, logits.softmax(-1)[0].tolist()))
    assert got.keys() == want.keys()
    for label in labels:
        assert got[label] == pytest.approx(want[label], abs=1e-4)


def test_by_description_pipeline_answers_as_flip_classifier(pil_checkpoint):
    from transformers import pipeline

    from flip.hf_pipeline import BY_DESCRIPTION_TASK, register
    from flip.zeroshot import FLIPClassifier, TextCache

    register()
    model, processor, path = pil_checkpoint
    pipe = pipeline(BY_DESCRIPTION_TASK, model=path)
    got = pipe(IMAGE, task="age_group", top_k_descriptors=2)
    want = FLIPClassifier(model, processor, ["age_group"], cache=TextCache()).classify([IMAGE])["age_group"]
    assert [r["label"] for r in got][0] == want.predictions[0]
    assert sorted(r["label"] for r in got) == sorted(want.classes)
    for r in got:
        assert r["score"] == pytest.approx(float(want.scores[0, want.classes.index(r["label"])]), abs=1e-4)
        assert [d["text"] for d in r["descriptors"]] == [t for t, _ in want.top_descriptors(0, 2, cls=r["label"])]


def test_import_flip_registers_the_pipelines_lazily(pil_checkpoint, tmp_path):
    """In a fresh process: `import flip` loads no transformers, then `pipeline(...)` on a flip folder works."""
    _, _, path = pil_checkpoint
    script = (
        "import sys, json; import flip; light = 'transformers' not in sys.modules; "
        "from transformers import pipeline; from PIL import Image; "
        f"pipe = pipeline('zero-shot-image-classification', model={path!r}); "
        "out = pipe(Image.new('RGB', (40, 40), (200, 150, 120)), candidate_labels=['a smiling face', 'a frown']); "
        f"by = pipeline('zero-shot-image-classification-by-description', model={path!r}); "
        "desc = by(Image.new('RGB', (40, 40)), task='emotion'); "
        "print(json.dumps({'light': light, 'labels': sorted(r['label'] for r in out), 'n': len(desc)}))"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "FLIP_CACHE": str(tmp_path / "cache")}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    from flip.prompts import load_prompts

    assert result == {"light": True, "labels": ["a frown", "a smiling face"], "n": load_prompts("emotion").num_classes}
