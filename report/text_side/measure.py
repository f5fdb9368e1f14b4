"""Held-out phrasing: is the loss on the text side (the trained projection) or the image side?

    python report/text_side/measure.py --out report/text_side/results.json

Three probes, all on the embedded default with its image tower fixed (deterministic, seed 0):
- translated captions: the held-out-phrasing test captions (`data/synth-heldout`, cues only, in the held-out
  family) with each held-out phrase replaced by the first training phrase of its cue
  (`flip.data.synthetic.cues.CUE_PHRASES`): the same facts in words the model was trained on. Text-to-image
  R@5 of both, among the same 1,000 images. If the translated captions retrieve well, the words are the loss.
- cue phrases: each cue's held-out phrase ("a hairless pate") against all training phrases of all cues, each in
  "A person with ...": how many of the 46 find a phrase of their own cue nearest, pooled and projected.
- paraphrase recognition: each held-out caption against the 1,000 translations; R@1/R@5 of finding its own
  translation, in the text tower's pooled space (centred on the training captions) and after the projection.
- refitted projections: `text_proj` refitted against the frozen image embeddings of the first `--train-n`
  training pairs (`data/synth-captions`, symmetric InfoNCE at the model's own temperature, AdamW, 8 epochs of
  batch 512), once free (a fresh `nn.Linear`) and once constrained orthogonal (rows orthonormal, so the text
  tower's geometry is kept up to the bias and the dropped directions). Each is scored on retrieval (fresh and
  held-out captions) and on the 13 attributes' zero-shot variants (`eval.tasks.attributes`).
A diagnostic for the README, not a benchmark.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.parametrizations import orthogonal

import flip
from eval.tasks.attributes import VARIANTS, evaluate_attributes, summarise
from eval.tasks.attributes import load_examples as attribute_examples
from flip.data.formats import read_dataset
from flip.data.synthetic.cues import CUE_PHRASES, HELDOUT
from flip.probe import extract_features

normalize = nn.functional.normalize


def pairs(data: str, split: str, n: int, live_only: bool) -> tuple[list, list[str]]:
    images, captions = [], []
    for record in read_dataset(data, split=split):
        if live_only and record.live is False:
            continue
        images.append(record.image)
        captions.append(record.caption)
        if len(images) >= n:
            break
    return images, captions


@torch.no_grad()
def pooled(model, processor, texts: list[str], batch_size: int = 256) -> torch.Tensor:
    """The text tower's pooled output before the projection."""
    out = []
    for start in range(0, len(texts), batch_size):
        batch = processor.texts(texts[start:start + batch_size])
        out.append(model.pool_text(batch["input_ids"], batch["attention_mask"]).float())
    return torch.cat(out)


def recall_at(queries: torch.Tensor, keys: torch.Tensor, k: int) -> float:
    """Share of queries i whose key i is among their k most similar keys."""
    top = (normalize(queries, dim=-1) @ normalize(keys, dim=-1).T).topk(k, dim=1).indices
    return float((top == torch.arange(len(queries))[:, None]).any(1).float().mean())


def translate(caption: str) -> str:
    """The caption with each held-out cue phrase replaced by its cue's first training phrase."""
    swaps = sorted(((fams[HELDOUT][0], fams[0][0]) for fams in CUE_PHRASES.values()), key=lambda s: -len(s[0]))
    for held, train in swaps:
        caption = caption.replace(held, train)
    return caption


def cue_phrases(model, processor, centre: torch.Tensor) -> dict:
    """How many held-out cue phrases have a training phrase of their own cue as nearest neighbour."""
    train = [(cue, phrase) for cue, fams in CUE_PHRASES.items() for fam in fams[:HELDOUT] for phrase in fam]
    held = [(cue, fams[HELDOUT][0]) for cue, fams in CUE_PHRASES.items()]
    sentences = [f"A person with {phrase}." for _, phrase in train + held]
    feats = pooled(model, processor, sentences)
    out = {"phrases": len(held)}
    for space, f in (("pooled", lambda x: x - centre), ("projected", model.text_proj)):
        with torch.no_grad():
            e = normalize(f(feats), dim=-1)
        nearest = (e[len(train):] @ e[:len(train)].T).argmax(1).tolist()
        out[f"own_cue_nearest_{space}"] = sum(train[j][0] == cue for j, (cue, _) in zip(nearest, held))
    return out


def refit(proj: nn.Module, texts: torch.Tensor, images: torch.Tensor, scale: float, epochs: int = 8,
          batch_size: int = 512, lr: float = 2e-3) -> nn.Module:
    """`proj` fitted so that normalize(proj(text)) matches the fixed image embeddings (symmetric InfoNCE)."""
    images = normalize(images, dim=-1)
    opt = torch.optim.AdamW(proj.parameters(), lr=lr, weight_decay=0.0)
    for _ in range(epochs):
        order = torch.randperm(len(texts))
        for start in range(0, len(texts) - batch_size + 1, batch_size):
            i = order[start:start + batch_size]
            logits = scale * normalize(proj(texts[i]), dim=-1) @ images[i].T
            target = torch.arange(len(i))
            loss = (nn.functional.cross_entropy(logits, target) + nn.functional.cross_entropy(logits.T, target)) / 2
            opt.zero_grad()
            loss.backward()
            opt.step()
    return proj.eval()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="flip-tiny-synth")
    p.add_argument("--train", default="data/synth-captions")
    p.add_argument("--fresh", default="data/synth-fresh")
    p.add_argument("--heldout", default="data/synth-heldout")
    p.add_argument("--train-n", type=int, default=20000)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.manual_seed(0)
    model, processor = flip.load(args.model)
    model.eval()
    scale = float(model.scale().detach())

    def side(data, split, n, live_only):
        images, captions = pairs(data, split, n, live_only)
        return extract_features(model, processor, images, 128), pooled(model, processor, captions), captions

    train_img, train_txt, _ = side(args.train, "train", args.train_n, False)
    fresh_img, fresh_txt, _ = side(args.fresh, "test", 1000, True)
    held_img, held_txt, held_captions = side(args.heldout, "test", 1000, True)
    translated = pooled(model, processor, [translate(c) for c in held_captions])

    with torch.no_grad():
        words = {"t2i_r5_as_written": recall_at(model.text_proj(held_txt), held_img, 5),
                 "t2i_r5_translated": recall_at(model.text_proj(translated), held_img, 5)}
        centre = train_txt.mean(0)
        paraphrase = {space: {f"r{k}": recall_at(f(held_txt), f(translated), k) for k in (1, 5)}
                      for space, f in (("pooled", lambda x: x - centre), ("projected", model.text_proj))}

    phrases = cue_phrases(model, processor, centre)

    face_images, labels = attribute_examples(args.fresh, "test")
    face_embeds = extract_features(model, processor, face_images, 128)
    projections = {"shipped": model.text_proj,
                   "refit_free": refit(nn.Linear(train_txt.shape[1], fresh_img.shape[1]), train_txt, train_img, scale),
                   "refit_orthogonal": refit(orthogonal(nn.Linear(train_txt.shape[1], fresh_img.shape[1])),
                                             train_txt, train_img, scale)}
    variants = {}
    for name, proj in projections.items():
        probe = copy.deepcopy(model)
        probe.text_proj = proj
        rows, _ = evaluate_attributes(probe, processor, face_images, labels, variants=VARIANTS, embeds=face_embeds)
        with torch.no_grad():
            variants[name] = {"t2i_r5_fresh": recall_at(proj(fresh_txt), fresh_img, 5),
                              "t2i_r5_heldout": recall_at(proj(held_txt), held_img, 5),
                              "attributes": summarise(rows, VARIANTS)}
    commit = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], capture_output=True, text=True).stdout.strip()
    result = {"commit": commit, "command": f"python report/text_side/measure.py --out {args.out}", "model": args.model,
              "train_pairs": len(train_txt), "heldout_words": words, "cue_phrases": phrases, "paraphrase_recognition": paraphrase,
              "projections": variants}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
