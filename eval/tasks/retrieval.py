"""Image-text retrieval on held-out pairs, against the ceiling that ambiguous captions set.

    python -m eval.tasks.retrieval --model flip-tiny-synth --data data/synth-captions --split val --n 1000

Recall@k both ways (`flip.train.evaluate.retrieval_recall`, the trainer's own function). Synthetic
captions are deliberately incomplete: "The kid has golden hair." fits every blond child among the
held-out images, and no model can tell which of them the caption was written for. So beside the
measured recall stands the ceiling: for text i, the images that agree with i's image on every
attribute and cue the caption states (`extra["mentioned"]` and `extra["mentioned_cues"]`, recorded by
the synthetic world) are equally
right; with m_i of them, a perfect model finds i's own image within its top k with probability
min(1, k / m_i), and the text-to-image ceiling is the mean of that over texts.

`--heldout-data` measures the same on captions written in the held-out phrasing family (world v3,
`flip data synth --phrasing heldout`: cues only, in words no training caption uses). Presentation
attacks in a v3 caption corpus are left out (their captions state no face labels).

Data written before generator version 2 has no `mentioned` field; `--mentioned FILE` (a JSON
mapping file_name -> list of attributes) supplies it. Writes `retrieval.json` under --out, with the
recall@k curves (both ways, and the text-to-image ceiling) at k = 1, 2, 5, 10, 20, ... for the report.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import torch

from eval.tasks.attributes import embed_images


def load_examples(data: str | Path, split: str | None = None, n: int = 1000, mentioned_file: str | None = None):
    """The first `n` records of the split: images, captions, labels and the labels each caption states."""
    from flip.data.formats import read_dataset

    override = json.loads(Path(mentioned_file).read_text()) if mentioned_file else None
    images, captions, labels, mentioned = [], [], [], []
    for record in read_dataset(data, split=split):
        if record.live is False:  # a presentation attack in a world-v3 caption corpus: no face labels to fit
            continue
        stated = override.get(record.file_name) if override is not None else record.extra.get("mentioned")
        if stated is None:
            raise ValueError(f"{data} ({split}) {record.file_name}: no 'mentioned' attributes; "
                             "regenerate the data with the current `flip data synth` or pass --mentioned")
        # world v3: captions also name rendered cues; a cue counts as a stated fact like a label
        cue_labels = {f"cue:{c}": True for c in record.extra.get("cues", ())}
        images.append(record.image)
        captions.append(record.caption)
        labels.append({**record.attributes(), **cue_labels})
        mentioned.append(list(stated) + [f"cue:{c}" for c in record.extra.get("mentioned_cues", ())])
        if len(images) >= n:
            break
    if not images:
        raise ValueError(f"{data}: no examples (split {split!r})")
    return images, captions, labels, mentioned


def ambiguity_ceiling(labels: Sequence[dict], mentioned: Sequence[Sequence[str]], ks: Sequence[int] = (1, 5, 10)) -> dict:
    """Text-to-image recall@k of a perfect model that cannot tell apart images its caption fits.

    labels[j]: image j's attribute labels; mentioned[i]: the attributes caption i states (about image i).
    Returns {"t2i_r{k}": ceiling} and the mean number of images a caption fits.
    """
    fits = []
    for i, stated in enumerate(mentioned):
        own = labels[i]
        fits.append(sum(all(other.get(a) == own.get(a) for a in stated) for other in labels))
    out = {f"t2i_r{k}": sum(min(1.0, k / m) for m in fits) / len(fits) for k in ks}
    out["mean_images_per_caption"] = sum(fits) / len(fits)
    return out


def curve_ks(n: int) -> list[int]:
    """The k of a recall@k curve over n candidates: 1, 2, 5, 10, 20, 50, ... below n, then n."""
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k = k * 5 // 2 if str(k)[0] == "2" else k * 2  # 1, 2, 5, 10, 20, 50, ...
    return ks + [n]


def predict(model, processor, images: Sequence, captions: Sequence[str], batch_size: int = 64) -> torch.Tensor:
    """(N_images, N_texts) cosine similarities."""
    from flip.zeroshot import encode_texts

    image_embeds = embed_images(model, processor, images, batch_size)
    text_embeds = encode_texts(model, processor, list(captions)).float().cpu()
    return image_embeds @ text_embeds.t()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.tasks.retrieval", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="any model flip.load accepts (default: the embedded one)")
    parser.add_argument("--data", required=True, help="a dataset flip.data reads (captions kind)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--n", type=int, default=1000, help="held-out pairs (default 1000)")
    parser.add_argument("--mentioned", default=None, help="JSON file_name -> stated attributes (older data)")
    parser.add_argument("--heldout-data", default=None,
                        help="captions in the held-out phrasing (flip data synth --phrasing heldout), same split")
    parser.add_argument("--out", default=None, help="folder for retrieval.json")
    args = parser.parse_args(argv)

    import flip
    from flip.train.evaluate import retrieval_recall

    model, processor = flip.load(args.model)
    images, captions, labels, mentioned = load_examples(args.data, args.split, args.n, args.mentioned)
    similarity = predict(model, processor, images, captions)
    measured = retrieval_recall(similarity)
    ceiling = ambiguity_ceiling(labels, mentioned)
    ks = curve_ks(len(images))
    result = {"model": args.model or "flip-tiny-synth", "data": args.data, "split": args.split, "pairs": len(images),
              "recall": measured, "t2i_ceiling": ceiling,
              "t2i_r5_of_ceiling": measured["t2i_r5"] / ceiling["t2i_r5"]}
    if args.heldout_data:
        h_images, h_captions, h_labels, h_mentioned = load_examples(args.heldout_data, args.split, args.n)
        h_measured = retrieval_recall(predict(model, processor, h_images, h_captions))
        h_ceiling = ambiguity_ceiling(h_labels, h_mentioned)
        result["heldout"] = {"data": args.heldout_data, "pairs": len(h_images), "recall": h_measured,
                             "t2i_ceiling": h_ceiling, "t2i_r5_of_ceiling": h_measured["t2i_r5"] / h_ceiling["t2i_r5"]}
    recall_at, ceiling_at = retrieval_recall(similarity, ks=ks), ambiguity_ceiling(labels, mentioned, ks)
    result["curve"] = {"k": ks, **{name: [recall_at[f"{name}_r{k}"] for k in ks] for name in ("i2t", "t2i")},
                       "t2i_ceiling": [ceiling_at[f"t2i_r{k}"] for k in ks]}
    print(f"{len(images)} pairs; a caption fits {ceiling['mean_images_per_caption']:.1f} images on average")
    print("            R@1    R@5    R@10")
    for name in ("i2t", "t2i"):
        print(f"{name:<10}" + "".join(f"  {measured[f'{name}_r{k}']:.3f}" for k in (1, 5, 10)))
    print("t2i ceiling" + "".join(f"  {ceiling[f't2i_r{k}']:.3f}" for k in (1, 5, 10)).lstrip(" ").rjust(21))
    print(f"t2i R@5 is {result['t2i_r5_of_ceiling']:.2f} of its ceiling")
    if "heldout" in result:
        h = result["heldout"]
        print(f"held-out phrasing ({h['pairs']} pairs): t2i R@5 {h['recall']['t2i_r5']:.3f}, ceiling "
              f"{h['t2i_ceiling']['t2i_r5']:.3f}: {h['t2i_r5_of_ceiling']:.2f} of its ceiling")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "retrieval.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
