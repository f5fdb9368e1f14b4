"""What an open_clip user writes to classify face images by description: the baseline of bench_onnx.py.

    python benchmarks/open_clip_user.py ViT-S-32 weights.pt descriptors.json faces/ answers.jsonl

Written as open_clip's README would: `create_model_and_transforms`, a DataLoader with one worker, and
per class the mean of its descriptor embeddings (Menon & Vondrick's score: the mean cosine similarity).
descriptors.json: {"task": {"class": ["sentence", ...]}}. Writes one JSON line per image with the
scores of every class of every task.
"""

import json
import sys
from pathlib import Path

import open_clip
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset


class Images(Dataset):
    def __init__(self, paths, preprocess):
        self.paths, self.preprocess = paths, preprocess

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return self.preprocess(Image.open(self.paths[i]))


def main(arch, weights, descriptors_file, image_dir, out_file):
    model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=weights)
    model.eval()
    tokenizer = open_clip.get_tokenizer(arch)
    descriptors = json.loads(Path(descriptors_file).read_text())
    heads = {}
    with torch.no_grad():
        for task, classes in descriptors.items():
            means = []
            for sentences in classes.values():
                emb = model.encode_text(tokenizer(sentences))
                means.append((emb / emb.norm(dim=-1, keepdim=True)).mean(0))
            heads[task] = (list(classes), torch.stack(means))
    paths = sorted(str(p) for p in Path(image_dir).iterdir() if p.suffix.lower() in (".jpg", ".png"))
    loader = DataLoader(Images(paths, preprocess), batch_size=64, num_workers=1)
    done = 0
    with torch.no_grad(), open(out_file, "w") as out:
        for pixels in loader:
            emb = model.encode_image(pixels)
            emb = emb / emb.norm(dim=-1, keepdim=True)
            scores = {task: emb @ weights.T for task, (_, weights) in heads.items()}
            for i in range(len(pixels)):
                row = {"path": paths[done + i]}
                for task, (names, _) in heads.items():
                    row[task] = dict(zip(names, scores[task][i].tolist()))
                out.write(json.dumps(row) + "\n")
            done += len(pixels)


if __name__ == "__main__":
    main(*sys.argv[1:6])
