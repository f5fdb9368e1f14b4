"""Generating the synthetic world as `FaceRecord`s, split by identity, and writing it to disk.

Four kinds of data, each a stream of `flip.data.records.FaceRecord` (``image`` a PIL image):
- ``captions``: one portrait per record with a FaceCaption-15M-style caption and all 13 labels;
- ``spoof``: live portraits and the eight presentation attacks of `spoof.ATTACKS` (``live``,
  ``attack``), with a caption that says which;
- ``scenes``: 1-4 people per image, ``faces`` = [{box, name}] and the ``names`` in a news caption;
- ``qa``: a portrait with one question about a visible attribute and its short answer.

Design choices
- Splits are by identity: the people are drawn once, then partitioned into train/val/test pools,
  and every record of a split shows (and, for scenes, names) only people of that split's pool.
  No identity or name crosses splits, so a test set measures generalisation to new people.
  The one exception is asked for by name: ``test_seen`` (`SAME_PEOPLE`) draws new images of the
  train split's people (its own seeds, the train pool), for tasks measured on people training
  saw (face naming, issue 7). It is empty unless `split_fractions` gives it a share.
- Every record is a pure function of (seed, kind, split, index): its generator is seeded with
  exactly those numbers. Output is identical whatever the number of worker processes, and any
  record can be regenerated alone.
- Workers (a `multiprocessing` pool) render and optionally encode the images; the parent only
  writes. All writing goes through `flip.data.formats.write_dataset`, in one place
  (`write_synthetic`), which also writes the dataset card and the resolved config.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from flip.data.records import ATTRIBUTES, FaceRecord
from flip.data.synthetic.attributes import AttributeSampler, describe_couplings
from flip.data.synthetic.captions import article, attack_caption, build_caption, describe, join
from flip.data.synthetic.cues import celeba_labels, rendered_cues
from flip.data.synthetic.faces import Identity, make_identities, sample_face
from flip.data.synthetic.qa import sample_qa
from flip.data.synthetic.render import render_face, sample_nuisance
from flip.data.synthetic.scenes import sample_scene
from flip.data.synthetic.spoof import ATTACKS, render_spoof

#: bump when a change makes the same seed draw different data
#: 2: bolder earrings and makeup, larger irises and mouth, blur relative to size
#: 3: cues (CelebA's attributes drawn, class attributes built from cues that vary within a class),
#:    captions that name cues in paraphrased words with a held-out phrasing family, attacks in the
#:    caption corpus (all but the unseen one)
GENERATOR_VERSION = "3"
#: the attack category kept out of every training caption: liveness measures it as the unseen attack
UNSEEN_ATTACK = "3d_mask"
PHRASINGS = ("train", "heldout")
KINDS = ("captions", "spoof", "scenes", "qa")
SPLITS = ("train", "val", "test", "test_seen")
#: splits that show new images of another split's people instead of owning a pool of their own
SAME_PEOPLE = {"test_seen": "train"}
_KIND_CODE = {k: i for i, k in enumerate(KINDS)}
_SPLIT_CODE = {s: i for i, s in enumerate(SPLITS)}
#: a scene needs up to 4 people in the picture and 2 more to name, all from one split
_MIN_POOL = {"captions": 1, "spoof": 1, "scenes": 6, "qa": 1}


@dataclass
class SynthConfig:
    """What to generate. Round-trips through JSON (`asdict` / `SynthConfig(**d)`)."""

    kind: str = "captions"  # captions | spoof | scenes | qa
    n: int = 1000  # records over all splits
    size: int = 112  # image side in pixels (64-224 typical)
    seed: int = 0
    images_per_identity: float = 8.0  # average records per person (scenes: appearances per person)
    split_fractions: dict[str, float] = field(default_factory=lambda: {"train": 0.8, "val": 0.1, "test": 0.1})
    live_fraction: float = 0.5  # spoof: share of live images; attacks share the rest equally
    nuisance: float = 1.0  # 0 = clean studio shots, 1 = the full range of nuisances
    p_mention: float = 0.5  # captions: chance that a visible attribute is mentioned
    p_cue: float = 0.4  # captions: chance that a rendered cue is named
    p_cues_only: float = 0.3  # captions: chance that a caption names cues and no class word
    attack_fraction: float = 0.15  # captions: share of presentation attacks, captioned as what they show
    unseen_attack: str | None = UNSEEN_ATTACK  # captions: the attack category never shown (None: all shown)
    phrasing: str = "train"  # captions: "heldout" = cues only, in the held-out phrasing family
    distributions: dict[str, dict] | None = None  # AttributeSampler overrides {attribute: {value: weight}}

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r}: expected one of {list(KINDS)}")
        if int(self.n) < 1:
            raise ValueError(f"n={self.n}: expected at least 1 record")
        if not 16 <= int(self.size) <= 1024:
            raise ValueError(f"size={self.size}: expected 16..1024 pixels (64-224 typical)")
        if self.images_per_identity <= 0:
            raise ValueError(f"images_per_identity={self.images_per_identity}: expected > 0")
        unknown = set(self.split_fractions) - set(SPLITS)
        if unknown or any(v < 0 for v in self.split_fractions.values()) or sum(self.split_fractions.values()) <= 0:
            raise ValueError(f"split_fractions={self.split_fractions}: expected non-negative weights for "
                             f"{list(SPLITS)}, not all zero")
        for split, owner in SAME_PEOPLE.items():
            if self.split_fractions.get(split, 0) > 0 and not self.split_fractions.get(owner, 0) > 0:
                raise ValueError(f"split_fractions: {split!r} shows the {owner!r} split's people; give {owner!r} "
                                 "a share too")
        if not 0 <= self.live_fraction <= 1:
            raise ValueError(f"live_fraction={self.live_fraction}: expected a value in [0, 1]")
        if not 0 <= self.nuisance <= 1:
            raise ValueError(f"nuisance={self.nuisance}: expected a value in [0, 1]")
        for name in ("p_mention", "p_cue", "p_cues_only", "attack_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name}={getattr(self, name)}: expected a value in [0, 1]")
        if self.unseen_attack is not None and self.unseen_attack not in ATTACKS:
            raise ValueError(f"unseen_attack={self.unseen_attack!r}: expected one of {list(ATTACKS)} or null")
        if self.phrasing not in PHRASINGS:
            raise ValueError(f"phrasing={self.phrasing!r}: expected one of {list(PHRASINGS)}")
        self.sampler()  # validates `distributions`

    def sampler(self) -> AttributeSampler:
        return AttributeSampler(self.distributions)

    def split_counts(self) -> dict[str, int]:
        """Records per split: `n` shared by the fractions (largest remainder), empty splits left out."""
        total = sum(self.split_fractions.values())
        raw = {s: self.n * self.split_fractions.get(s, 0) / total for s in SPLITS}
        counts = {s: int(math.floor(v)) for s, v in raw.items()}
        for s in sorted(SPLITS, key=lambda s: raw[s] - counts[s], reverse=True)[: self.n - sum(counts.values())]:
            counts[s] += 1
        return {s: c for s, c in counts.items() if c > 0}


def identity_pools(cfg: SynthConfig) -> dict[str, list[Identity]]:
    """The people of each split, disjoint. Each split gets about count / images_per_identity people
    (scenes: faces per image counted), and at least enough for one record of its kind; a split of
    `SAME_PEOPLE` shares its owner's pool (the owner's size is counted from the owner's records)."""
    appearances = 2.5 if cfg.kind == "scenes" else 1.0  # mean faces per scene
    counts = cfg.split_counts()
    sizes = {s: max(_MIN_POOL[cfg.kind], math.ceil(c * appearances / cfg.images_per_identity))
             for s, c in counts.items() if s not in SAME_PEOPLE}
    people = make_identities(sum(sizes.values()), cfg.seed, cfg.sampler())
    pools, start = {}, 0
    for s, k in sizes.items():
        pools[s] = people[start:start + k]
        start += k
    for s, owner in SAME_PEOPLE.items():
        if s in counts:
            if owner not in pools:
                raise ValueError(f"split_fractions: {s!r} shows the {owner!r} split's people, but n={cfg.n} leaves "
                                 f"{owner!r} no records; raise n or its share")
            pools[s] = pools[owner]
    return pools


def _spoof_caption(labels: dict, attack: str | None, rng: np.random.Generator, p_mention: float) -> str:
    subject, parts, _ = describe(labels, rng, p_mention=p_mention * 0.6, min_mentions=1)
    who = article(subject) + (f" with {join([p[1] for p in parts])}" if parts else "")
    if attack is None:
        lead = ("A live photo of", "A real, live capture of", "A genuine photo of")[int(rng.integers(3))]
        return f"{lead} {who}."
    return f"{ATTACKS[attack][0][0].upper()}{ATTACKS[attack][0][1:]}, showing {who}."


def make_record(cfg: SynthConfig, split: str, index: int, pools: dict[str, list[Identity]]) -> FaceRecord:
    """Record `index` of `split`: a pure function of (cfg.seed, cfg.kind, split, index)."""
    rng = np.random.default_rng([cfg.seed, _KIND_CODE[cfg.kind], _SPLIT_CODE[split], index])
    pool = pools[split]
    sampler = cfg.sampler()
    name = f"{index:07d}.png"
    if cfg.kind == "scenes":
        n_faces = int(rng.integers(1, min(4, len(pool)) + 1))
        chosen = rng.choice(len(pool), size=min(len(pool), n_faces + 2), replace=False)
        people = [pool[i] for i in chosen[:n_faces]]
        others = [pool[i] for i in chosen[n_faces:]]
        faces = [sample_face(rng, p, sampler) for p in people]
        scene = sample_scene(people, others, faces, cfg.size, rng)
        return FaceRecord(
            file_name=name, image=scene.image, caption=scene.caption,
            faces=[{"box": [round(v, 2) for v in box], "name": n} for box, n in zip(scene.boxes, scene.face_names)],
            names=scene.names,
            extra={"identities": [p.identity for p in people], "face_labels": [f.labels() for f in faces]},
        )
    person = pool[index % len(pool)]
    face = sample_face(rng, person, sampler)
    labels = face.labels()
    record = FaceRecord(file_name=name, identity=person.identity, name=person.name, **labels)
    record.extra["cues"] = rendered_cues(face)
    heldout = cfg.phrasing == "heldout"
    shown_attacks = [a for a in ATTACKS if a != cfg.unseen_attack]
    if cfg.kind == "captions" and shown_attacks and rng.random() < cfg.attack_fraction:
        # a presentation attack, captioned as what it shows (CLIPC8 trains on such pairs)
        attack = shown_attacks[int(rng.integers(len(shown_attacks)))]
        record.image = render_spoof(face, attack, cfg.size, rng)
        record.live, record.attack = False, attack
        record.caption = attack_caption(attack, labels, rng, heldout=heldout)
        record.extra["mentioned"] = []
        return record
    if cfg.kind == "spoof":
        live = rng.random() < cfg.live_fraction
        attack = None if live else list(ATTACKS)[int(rng.integers(len(ATTACKS)))]
        record.image = render_spoof(face, attack, cfg.size, rng)
        record.live, record.attack = live, attack
        record.caption = _spoof_caption(labels, attack, rng, cfg.p_mention)
        return record
    nuisance = sample_nuisance(rng, cfg.nuisance)
    record.image, _ = render_face(face, cfg.size, nuisance)
    record.extra["celeba"] = celeba_labels(face, nuisance)
    caption = build_caption(labels, rng, p_mention=cfg.p_mention, cues=record.extra["cues"], p_cue=cfg.p_cue,
                            p_cues_only=cfg.p_cues_only, heldout=heldout)
    record.caption = caption.text
    # which labels and cues the caption states: retrieval's ceiling counts the images a caption fits
    record.extra["mentioned"] = sorted(caption.mentioned)
    record.extra["mentioned_cues"] = caption.cues
    if cfg.kind == "qa":
        qa = sample_qa(labels, rng)
        record.question, record.answer, record.attribute = qa.question, qa.answer, qa.attribute
    return record


# --------------------------------------------------------------------------- parallel generation

def _render(cfg: SynthConfig, split: str, index: int, pools: dict, encode: str | None) -> FaceRecord:
    record = make_record(cfg, split, index, pools)
    if encode:
        from flip.data.formats import encode_image

        record.image = encode_image(record.image, ".png" if encode == "png" else ".jpg")
    return record


_WORKER: dict[str, Any] = {}  # a pool worker's (cfg, split, pools, encode), set once by its initializer


def _init_worker(*state) -> None:
    _WORKER["state"] = state


def _work(index: int) -> FaceRecord:
    cfg, split, pools, encode = _WORKER["state"]
    return _render(cfg, split, index, pools, encode)


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def generate(cfg: SynthConfig, split: str, workers: int = 1, pools: dict | None = None,
             encode: str | None = None) -> Iterator[FaceRecord]:
    """The records of `split`, in index order, rendered by `workers` processes (1 = in this one).

    `encode` ("png"/"jpeg") makes workers return encoded bytes instead of PIL images, which moves
    the encoding off the writing process.
    """
    pools = pools if pools is not None else identity_pools(cfg)
    count = cfg.split_counts().get(split, 0)
    if workers <= 1 or count < 64:  # a pool costs more than it saves on a few records
        yield from (_render(cfg, split, i, pools, encode) for i in range(count))
        return
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    with ctx.Pool(workers, initializer=_init_worker, initargs=(cfg, split, pools, encode)) as pool:
        yield from pool.imap(_work, range(count), chunksize=16)


# --------------------------------------------------------------------------- writing and the card


class _Tally:
    """Counts labels while records stream past, for the dataset card."""

    def __init__(self):
        self.values: dict[str, Counter] = {a: Counter() for a in (*ATTRIBUTES, "live", "attack", "attribute")}
        self.records = 0
        self.faces = Counter()
        self.unnamed_faces = 0
        self.faceless_names = 0

    def __call__(self, records):
        for r in records:
            self.records += 1
            for labels in [r.attributes()] if r.faces is None else r.extra.get("face_labels", []):
                for a, v in labels.items():
                    self.values[a][str(v)] += 1
            if r.live is not None:
                self.values["live"][str(r.live)] += 1
                self.values["attack"][str(r.attack)] += 1
            if r.attribute is not None:
                self.values["attribute"][r.attribute] += 1
            if r.faces is not None:
                self.faces[len(r.faces)] += 1
                self.unnamed_faces += sum(f["name"] is None for f in r.faces)
                face_names = {f["name"] for f in r.faces}
                self.faceless_names += sum(n not in face_names for n in r.names or [])
            yield r


def write_synthetic(cfg: SynthConfig, out_dir: str | Path, format: str = "imagefolder",
                    image_format: str = "png", workers: int | None = None, progress: bool = True,
                    overwrite: bool = False, command: str | None = None) -> dict:
    """Generate every split of `cfg` and write it under `out_dir` in `format`, with a dataset card
    (README.md) and the resolved config (synth_config.json). Returns the summary the card shows."""
    from flip.data.formats import FORMATS, write_dataset

    if format not in FORMATS:
        raise ValueError(f"format={format!r}: expected one of {list(FORMATS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    workers = default_workers() if workers is None else workers
    pools = identity_pools(cfg)
    summary: dict[str, Any] = {"generator_version": GENERATOR_VERSION, "config": asdict(cfg), "format": format,
                               "image_format": image_format, "splits": {}}
    for split, count in cfg.split_counts().items():
        tally = _Tally()
        records = tally(generate(cfg, split, workers, pools, encode=image_format))
        if progress:
            from tqdm.auto import tqdm

            records = tqdm(records, total=count, desc=f"{cfg.kind}/{split}", unit="img")
        path = write_dataset(records, out_dir, format, split, image_format=image_format, overwrite=overwrite)
        summary["splits"][split] = {
            "path": str(Path(path).relative_to(out_dir)),
            "records": tally.records,
            "identities": len(pools[split]),
            "distributions": {a: dict(sorted(c.items())) for a, c in tally.values.items() if c},
            **({"faces_per_image": dict(sorted(tally.faces.items())), "unnamed_faces": tally.unnamed_faces,
                "names_without_face": tally.faceless_names} if cfg.kind == "scenes" else {}),
        }
    (out_dir / "synth_config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n", encoding="utf-8")
    (out_dir / "README.md").write_text(dataset_card(summary, command), encoding="utf-8")
    return summary


def dataset_card(summary: dict, command: str | None = None) -> str:
    """The dataset card (Markdown) of a written synthetic dataset."""
    cfg = summary["config"]
    lines = [
        f"# flip synthetic faces: {cfg['kind']}",
        "",
        "Procedurally drawn faces from `flip.data.synthetic` (no real person is depicted; names are",
        "random pairs from a committed list). Regenerate byte for byte with the same generator version,",
        "config and seed.",
        "",
        f"- generator version: {summary['generator_version']}",
        f"- seed: {cfg['seed']}; image size: {cfg['size']} px; format: {summary['format']} "
        f"({summary['image_format']})",
    ]
    if command:
        lines.append(f"- command: `{command}`")
    lines += ["", "## Splits", "",
              "Split by identity: people are drawn once and partitioned into disjoint train/val/test pools; "
              "a record shows (scenes: shows and names) only people of its split's pool."
              + ("".join(f" `{s}` is the exception: new images of the `{o}` split's people."
                         for s, o in SAME_PEOPLE.items() if s in summary["splits"]))
              + " People come from the seed alone (person i from (seed, i), whatever the kind): datasets "
              "with the same seed show the same people, so a test set of new people needs a seed of its own.", "",
              "| split | records | identities | path |", "|---|---|---|---|"]
    for split, s in summary["splits"].items():
        lines.append(f"| {split} | {s['records']} | {s['identities']} | `{s['path']}` |")
    lines += ["", "## Couplings", "", "Attributes are sampled independently except:", ""]
    lines += [f"- {c}" for c in describe_couplings()]
    lines += ["- labels hidden in the image (eye colour behind sunglasses or closed lids, eyes open/closed "
              "behind sunglasses) are kept as labels but never captioned or asked about"]
    if cfg["distributions"]:
        lines += ["", f"Sampling overrides: `{json.dumps(cfg['distributions'])}`"]
    if cfg["kind"] == "spoof":
        lines += ["", "## Attack categories", "", f"Live share: {cfg['live_fraction']}; attacks equally likely.", "",
                  "| attack | what | drawn cue |", "|---|---|---|"]
        lines += [f"| `{k}` | {d} | {c} |" for k, (d, c) in ATTACKS.items()]
    if cfg["kind"] == "scenes":
        lines += ["", "## Scenes", "", "1-4 faces per image; each face is named in the caption with probability 0.7, "
                  "and 0-2 people of the same split who are not in the picture are named too.", ""]
        for split, s in summary["splits"].items():
            lines.append(f"- {split}: faces per image {s['faces_per_image']}, unnamed faces {s['unnamed_faces']}, "
                         f"names without a face {s['names_without_face']}")
    lines += ["", "## Label distributions", ""]
    for split, s in summary["splits"].items():
        lines += [f"### {split}", ""]
        lines += [f"- `{a}`: " + ", ".join(f"{v} {n}" for v, n in c.items()) for a, c in s["distributions"].items()]
        lines.append("")
    return "\n".join(lines)


__all__ = ["GENERATOR_VERSION", "KINDS", "SAME_PEOPLE", "SPLITS", "SynthConfig", "dataset_card", "generate",
           "identity_pools", "make_record", "write_synthetic"]
