"""Training SECLA / SECLA-B heads over a corpus of image-caption pairs (`flip name-faces-train`).

Design choices:
- Features are computed once (`flip.naming.corpus.featurize`): the towers are frozen, so every
  step after that only runs the small heads on cached tensors, which is what makes this a CPU job.
- Faces come from the records' boxes (the synthetic scenes carry them; a user's corpus may run a
  detector first) through the `faces` embedder (FLIP's image tower or dlib's descriptor, recorded
  in the heads' config); names come from the caption by `RuleNameExtractor`, never from the face
  labels: training sees only which names a caption mentions (weak supervision).
- SECLA: `steps` steps of `secla_loss` on random batches of pairs.
  SECLA-B: `stage1_steps` on the easy pairs only (one face, one name), then the rest of the steps
  on all pairs, with `prototype_weight` x `prototype_loss` towards the prototypes (mean projected
  face per name) of the faces the stage-1 heads label (bootstrapping: the pairs learned so far).
- The result is one atomic checkpoint (`heads.pt`, flip.state_file's format, kind
  `flip-secla-heads`) plus the resolved config (`config.yaml`). While training,
  `checkpoint-last.pt` (heads, optimiser, step, batch-order generator, SECLA-B's memory) is
  rewritten every `save_every` steps; `resume` continues from it to the same result as an
  uninterrupted run. A new run refuses an output folder holding another run's files unless
  `overwrite` (as `flip train` does: `flip.train.checkpoint.claim_output_dir`).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from flip.naming.corpus import PairFeatures, evaluate_pairs, featurize, label_pairs, name_embeddings
from flip.naming.secla import (SECLAConfig, SECLAHeads, easy_pairs, face_prototypes, prototype_loss, secla_loss,
                               secla_scores)

__all__ = ["NameFacesTrainConfig", "pad_batch", "build_heads", "train_heads", "save_heads", "run"]

METHODS = ("secla", "secla-b")
#: What a run writes into its output folder (a folder holding any of them holds a previous run).
RUN_FILES = ("checkpoint-last.pt", "config.yaml", "heads.pt", "metrics.json")


@dataclass
class NameFacesTrainConfig:
    """`flip name-faces-train`'s config: one flat section, every field overridable as `--key value`."""

    data: str = ""  # a scenes dataset (any format `flip.data.read_dataset` reads): records with faces and captions
    split: str | None = "train"  # the split to read (None: the path holds one split)
    format: str | None = None  # the dataset's format: imagefolder | parquet | webdataset (None: detected)
    model: str | None = None  # FLIP model name or path for the frozen features (None: the embedded default)
    output_dir: str = "runs/name-faces"  # heads.pt and config.yaml go here
    method: str = "secla"  # secla | secla-b
    names: str = "text"  # text: names through the text tower; table: a learned embedding per name
    steps: int = 300  # optimisation steps in all (SECLA-B: both stages)
    stage1_steps: int = 100  # SECLA-B: steps on the easy pairs before the rest join
    batch_size: int = 32  # pairs per step
    lr: float = 1e-3  # AdamW learning rate
    weight_decay: float = 0.0  # AdamW weight decay
    #: SECLAConfig fields: dim, hidden, temperature, symmetry_weight, prototype_weight
    heads: dict = field(default_factory=lambda: {"dim": 128, "hidden": 256})
    margin: float = 0.0  # grow face boxes by this fraction before cropping
    faces: str = "flip"  # face features: flip (the image tower) | dlib (dlib's 128-d descriptor; flip.naming.embed)
    max_records: int | None = None  # read at most this many records (None: all)
    seed: int = 0  # batch order and head initialisation
    save_every: int = 100  # write checkpoint-last.pt every this many steps (0: only at the end)
    resume: str | None = None  # "auto" (output_dir's last checkpoint) or a checkpoint path; an error if there is none
    overwrite: bool = False  # start afresh in an output_dir holding a previous run (its run files are removed)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r}: expected one of {list(METHODS)}")
        from flip.naming.embed import FACE_EMBEDDERS

        if self.faces not in FACE_EMBEDDERS:
            raise ValueError(f"faces={self.faces!r}: expected one of {list(FACE_EMBEDDERS)}")
        if self.names not in ("text", "table"):
            raise ValueError(f"names={self.names!r}: expected 'text' or 'table'")
        for key in ("steps", "batch_size"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"{key}={getattr(self, key)}: expected at least 1")
        if self.method == "secla-b" and not 0 <= self.stage1_steps < self.steps:
            raise ValueError(f"stage1_steps={self.stage1_steps}: expected 0 <= stage1_steps < steps ({self.steps})")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr}: expected > 0")
        unknown = set(self.heads) - {"dim", "hidden", "temperature", "symmetry_weight", "prototype_weight"}
        if unknown:
            raise ValueError(f"heads: unknown key(s) {sorted(unknown)}")
        if self.save_every < 0:
            raise ValueError(f"save_every={self.save_every}: expected >= 0")
        from flip.data.formats import FORMATS

        if self.format is not None and self.format not in FORMATS:
            raise ValueError(f"format={self.format!r}: expected one of {list(FORMATS)} or null (detected)")
        if self.max_records is not None and self.max_records < 1:
            raise ValueError(f"max_records={self.max_records}: expected at least 1 or null")

    def to_dict(self) -> dict:
        return asdict(self)


def pad_batch(tensors: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_i, D) tensors -> padded (B, max L, D) and a (B, max L) mask."""
    longest = max(len(t) for t in tensors)
    out = torch.zeros(len(tensors), longest, tensors[0].shape[1])
    mask = torch.zeros(len(tensors), longest, dtype=torch.bool)
    for i, t in enumerate(tensors):
        out[i, : len(t)] = t
        mask[i, : len(t)] = True
    return out, mask


def _batch_loss(heads: SECLAHeads, batch: list[PairFeatures]) -> torch.Tensor:
    faces, face_mask = pad_batch([heads.faces(p.faces) for p in batch])
    names, name_mask = pad_batch([name_embeddings(heads, p) for p in batch])
    scores = secla_scores(faces, face_mask, names, name_mask, heads.noname)
    return secla_loss(scores, heads.config.temperature, heads.config.symmetry_weight)


def build_heads(config: NameFacesTrainConfig, pairs: list[PairFeatures]) -> SECLAHeads:
    face_dim, name_dim = pairs[0].faces.shape[1], pairs[0].name_features.shape[1]
    table = sorted({n for p in pairs for n in p.names}) if config.names == "table" else []
    return SECLAHeads(SECLAConfig(face_dim=face_dim, name_dim=name_dim, name_table=table, faces=config.faces,
                                  **config.heads))


def train_heads(config: NameFacesTrainConfig, pairs: list[PairFeatures], log=None,
                checkpoint_dir: str | os.PathLike | None = None) -> SECLAHeads:
    """Train SECLA (or SECLA-B) heads on featurised pairs; `log(step, loss)` is called now and then.

    With `checkpoint_dir`, `checkpoint-last.pt` is written there every `config.save_every` steps
    and `config.resume` is honoured.
    """
    from flip.state_file import load_checkpoint
    from flip.train.checkpoint import LAST, find_resume

    if len(pairs) < 2:
        raise ValueError(f"{config.data or 'pairs'}: need at least 2 pairs with faces and names, found {len(pairs)}")
    torch.manual_seed(config.seed)
    heads = build_heads(config, pairs)
    optimizer = torch.optim.AdamW(heads.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    stage1 = config.stage1_steps if config.method == "secla-b" else 0
    easy = easy_pairs([len(p.faces) for p in pairs], [len(p.names) for p in pairs])
    if stage1 and len(easy) < 2:
        raise ValueError(f"method=secla-b: stage 1 needs at least 2 easy pairs (one face, one name), found {len(easy)}")
    memory, start = None, 0
    text_of = {n: f for p in reversed(pairs) for n, f in zip(p.names, p.name_features)}  # name -> text features
    resume = find_resume(config.resume, checkpoint_dir) if checkpoint_dir is not None else None
    if resume is not None:
        state = load_checkpoint(resume)
        heads.load_state_dict(state["heads"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        start = int(state["step"])
        memory = (state["memory"]["names"], state["memory"]["prototypes"]) if state.get("memory") else None
    for step in range(start, config.steps):
        if step == stage1 and stage1:
            memory = _memory(heads, pairs)
        pool = easy if step < stage1 else range(len(pairs))
        chosen = torch.randperm(len(pool), generator=generator)[: config.batch_size]
        heads.train()
        loss = _batch_loss(heads, [pairs[pool[i]] for i in chosen])
        if memory is not None:
            names, prototypes = memory
            embeds = heads.names(names=names) if heads.name_head is None else heads.names(
                torch.stack([text_of[n] for n in names]))
            loss = loss + heads.config.prototype_weight * prototype_loss(embeds, prototypes, heads.config.temperature)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if log is not None and (step % 50 == 0 or step == config.steps - 1):
            log(step, loss.item())
        if checkpoint_dir is not None and config.save_every and (step + 1) % config.save_every == 0:
            save_heads(heads, Path(checkpoint_dir) / LAST, {
                "optimizer": optimizer.state_dict(), "generator": generator.get_state(), "step": step + 1,
                "memory": {"names": memory[0], "prototypes": memory[1]} if memory is not None else None})
    return heads.eval()


@torch.no_grad()
def _memory(heads: SECLAHeads, pairs: list[PairFeatures]) -> tuple[list[str], torch.Tensor] | None:
    """The stage-1 heads' labelling of every pair -> (known names, their face prototypes)."""
    labels = label_pairs(heads.eval(), pairs)
    faces, names = [], []
    for pair, labelled in zip(pairs, labels):
        for f, name in enumerate(labelled):
            if name is not None:
                faces.append(heads.faces(pair.faces[f]))
                names.append(name)
    if not names:
        return None
    known = sorted(set(names))
    index = torch.tensor([known.index(n) for n in names])
    prototypes, _ = face_prototypes(torch.stack(faces), index, len(known))
    return known, prototypes


def save_heads(heads: SECLAHeads, path: str | os.PathLike, extra: dict | None = None) -> Path:
    """Atomic checkpoint that `flip.naming.pipeline.load_heads` reads."""
    from flip.naming.pipeline import HEADS_FORMAT
    from flip.state_file import save_checkpoint

    return save_checkpoint({"kind": HEADS_FORMAT, "config": heads.config.to_dict(), "heads": heads.state_dict(),
                            **(extra or {})}, path)


def run(config: NameFacesTrainConfig, log=None) -> dict:
    """The whole recipe (`flip name-faces-train`): frozen features of `config.data`'s pairs, the heads
    trained and saved beside the resolved `config.yaml`, and, when the records carry their faces'
    names, face-label figures on the training corpus itself (the paper's transductive setting), for
    the heads and the untrained baseline. `log(message)` hears progress (default: stderr).

    Returns {"pairs": count, "heads": path of heads.pt, "metrics": {method: scores}} (the metrics
    also go to metrics.json; empty when the corpus does not know its faces' names)."""
    import json
    import sys
    from itertools import islice

    from flip.data.formats import read_dataset
    from flip.hub import load
    from flip.naming.embed import build_face_embedder
    from flip.train.checkpoint import claim_output_dir
    from flip.train.config import save_config

    log = log or (lambda message: print(message, file=sys.stderr))
    if not config.data:
        raise ValueError("data: give the scenes dataset (--data PATH)")
    claim_output_dir(config.output_dir, config.resume, config.overwrite, RUN_FILES, section="")
    model, processor = load(config.model)
    embedder = build_face_embedder(config.faces, model, processor, config.margin)
    records = islice(read_dataset(config.data, format=config.format, split=config.split), config.max_records)
    pairs = featurize(records, model, processor, face_embedder=embedder)
    log(f"{len(pairs)} pairs with faces and names")
    out = Path(config.output_dir)
    save_config(replace(config, resume=None, overwrite=False), out / "config.yaml")  # the recipe, to reproduce
    heads = train_heads(config, pairs, checkpoint_dir=out, log=lambda step, loss: log(f"step {step}  loss {loss:.4f}"))
    path = save_heads(heads, out / "heads.pt", {"train_config": config.to_dict()})
    log(f"heads in {path}")
    metrics = {}
    if all(p.face_names for p in pairs):  # the corpus knows its faces' names: the transductive figures
        metrics = {config.method: evaluate_pairs(heads, pairs)}
        if config.faces == "flip":  # the baseline compares faces with name text: one space needed
            metrics = {"baseline": evaluate_pairs(None, pairs, threshold=0.0), **metrics}
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        for method, scores in metrics.items():
            log(f"{method:>9}: " + "  ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    return {"pairs": len(pairs), "heads": path, "metrics": metrics}
