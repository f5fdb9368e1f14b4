"""Image-caption pairs for training: reading, the held-out split, batching and a resumable order.

Design choices:
- Records come from `flip.data.loaders.load_records` (flip's imagefolder + metadata.jsonl, Parquet
  and webdataset shards; FaceCaption-15M's Parquet and the authors' annotation folders; tables) and
  are held in memory as `FaceRecord`s whose `image` is a path or the encoded file; the DataLoader's
  workers decode and preprocess them with the model's `FLIPProcessor`.
- Pairs that show the same image (the same `file_name`) share an image id: they are positives of each
  other for image-text matching and for retrieval, and the held-out split never separates them.
- The order is torch's `DistributedSampler` (a permutation drawn from seed + epoch, one strided share
  per rank) cut into batches: the union of the ranks' batches at step k is exactly the batch a
  single process with the whole global batch sees at step k. The data position is (epoch, batch
  within the epoch): `set_epoch(epoch, start=k)` skips the first k batches without loading them.
- The DataLoader gets its own `torch.Generator`, so creating an iterator (at each epoch, or on
  resume) never draws from the global RNG that dropout uses: a resumed run repeats the uninterrupted
  one exactly.
- The one augmentation, `data.low_res`: a share of each batch's images shrunk (to a side between
  `data.low_res_min` and the model's size) and scaled back up, because faces in group photos are
  15-25 px wide and a convolutional tower trained on sharp 112-px crops stops telling people apart at
  that size (`report/naming_faces`). Its draws come from the run's seed and the batch's image ids,
  so they do not depend on workers or resumption.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import BatchSampler, Dataset, DistributedSampler, Sampler

from ..data.records import FaceRecord


def read_pairs(path: str, dataset: str = "auto", split: str | None = None, check_images: bool = True,
               max_samples: int | None = None, **options) -> list[FaceRecord]:
    """The records of a dataset (any layout `flip.data.loaders.load_records` reads), at most `max_samples`;
    every one must have an image and a caption."""
    from ..data.loaders import load_records

    try:
        source = load_records(path, dataset=dataset, split=split, check_images=check_images, **options)
    except TypeError as err:  # an option the loader does not take
        raise ValueError(f"data.options: {err}") from None
    records = []
    for index, record in enumerate(source):
        if not record.caption or record.image is None:
            what = "caption" if not record.caption else "image (download the images first, or set image_root)"
            name = record.file_name or f"row {index}"
            raise ValueError(f"{path}: {name} has no {what}; training needs an image and a caption in every row")
        records.append(record)
        if max_samples is not None and len(records) >= max_samples:
            break
    if not records:
        raise ValueError(f"{path}: no image-caption pairs to train on")
    return records


def image_ids(records: Sequence[FaceRecord]) -> list[int]:
    """An integer id per record; records with the same `file_name` (the same image) share it."""
    ids: dict[str, int] = {}
    out = []
    for index, record in enumerate(records):
        key = record.file_name if record.file_name else f"#{index}"
        out.append(ids.setdefault(key, len(ids)))
    return out


def split_held_out(records: Sequence[FaceRecord], size: int, seed: int) -> tuple[list[FaceRecord], list[FaceRecord]]:
    """(train, held_out): about `size` records held out, whole images at a time, drawn with `seed`."""
    if size == 0:
        return list(records), []
    ids = image_ids(records)
    n_images = max(ids) + 1
    if size >= len(records):
        raise ValueError(f"data.eval_size ({size}) must be smaller than the dataset ({len(records)} pairs)")
    order = torch.randperm(n_images, generator=torch.Generator().manual_seed(seed)).tolist()
    counts = torch.bincount(torch.tensor(ids), minlength=n_images).tolist()
    held, total = set(), 0
    for image in order:
        if total >= size:
            break
        held.add(image)
        total += counts[image]
    train = [r for r, i in zip(records, ids) if i not in held]
    return train, [r for r, i in zip(records, ids) if i in held]


class PairDataset(Dataset):
    """Records -> (image, caption, image id); decoding happens in the collate function.

    Encoded images are packed into one numpy buffer with offsets: DataLoader workers forked from the
    main process then share it for good, where a list of 100,000 `bytes` objects would be copied page
    by page into every worker as their reference counts change.
    text_features (N, W): a locked text tower's output per record (`pool_captions`), given in place
    of the caption.
    """

    def __init__(self, records: Sequence[FaceRecord], text_features: torch.Tensor | None = None):
        self.ids = np.asarray(image_ids(records), dtype=np.int64)
        self.texts = [r.caption for r in records]  # or, for a locked text tower, its rows
        if text_features is not None:
            if len(text_features) != len(records):
                raise ValueError(f"text_features has {len(text_features)} rows for {len(records)} records")
            self.texts = text_features
        images = [r.image for r in records]
        self._images, self._blob, self._offsets = images, None, None
        if images and all(isinstance(i, (bytes, bytearray)) for i in images):
            self._offsets = np.cumsum([0] + [len(i) for i in images])
            self._blob = np.frombuffer(b"".join(images), dtype=np.uint8)
            self._images = None

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int):
        if self._blob is not None:
            image = self._blob[self._offsets[index]:self._offsets[index + 1]].tobytes()
        else:
            image = self._images[index]
        return image, self.texts[index], int(self.ids[index])


class PairCollator:
    """A list of (image, caption, id) -> dict of pixel_values (N, 3, S, S), input_ids and
    attention_mask (N, L), ids (N,); captions given as text features (W,) become `text_pooled` (N, W).
    `padding="max_length"` gives every batch the same length (needed when token ids are gathered
    across ranks, for image-text matching)."""

    def __init__(self, processor, padding: str = "longest", low_res: float = 0.0, low_res_min: int = 16,
                 seed: int = 0):
        self.processor = processor
        self.padding = padding
        self.low_res, self.low_res_min, self.seed = low_res, low_res_min, seed

    def __call__(self, items):
        images, captions, ids = zip(*items)
        pixels = self.processor.pixels(list(images))
        if self.low_res > 0:
            rng = np.random.default_rng([self.seed, *ids])
            pixels = lower_resolution(pixels, self.low_res, self.low_res_min, rng)
        batch = {"pixel_values": self.processor.normalize(pixels), "ids": torch.tensor(ids, dtype=torch.long)}
        if isinstance(captions[0], torch.Tensor):
            batch["text_pooled"] = torch.stack(captions)
        else:
            text = self.processor.texts(list(captions), padding=self.padding)
            batch.update(input_ids=text["input_ids"], attention_mask=text["attention_mask"])
        return batch


def lower_resolution(pixels: torch.Tensor, share: float, min_side: int, rng: np.random.Generator) -> torch.Tensor:
    """uint8 (N, 3, S, S) -> the same, with each image drawn with probability `share` shrunk to a side
    drawn uniformly from [min_side, S) (antialiased) and scaled back up to S (bilinear)."""
    size = pixels.shape[-1]
    out = pixels.clone()
    for i in np.flatnonzero(rng.random(len(pixels)) < share):
        side = int(rng.integers(min(min_side, size - 1), size))
        small = torch.nn.functional.interpolate(pixels[i:i + 1].float(), size=(side, side), mode="bilinear",
                                                antialias=True, align_corners=False)
        back = torch.nn.functional.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)
        out[i] = back.round_().clamp_(0, 255).to(torch.uint8)[0]
    return out


class ResumableBatchSampler(Sampler[list[int]]):
    """One rank's batches of a seeded per-epoch permutation, restartable at any batch of an epoch.

    size: dataset length; batch_size: per rank; batches_per_epoch is trimmed to a multiple of
    `multiple_of` (the gradient-accumulation steps), so every optimiser step has all its micro-batches.
    """

    def __init__(self, size: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 multiple_of: int = 1):
        self.sampler = DistributedSampler(range(size), num_replicas=world_size, rank=rank, shuffle=True, seed=seed,
                                          drop_last=True)
        self.batches = BatchSampler(self.sampler, batch_size, drop_last=True)
        self.batches_per_epoch = len(self.batches) // multiple_of * multiple_of
        if self.batches_per_epoch == 0:
            raise ValueError(
                f"the training set ({size} pairs) is smaller than one optimiser step "
                f"({batch_size} pairs x {world_size} processes x {multiple_of} accumulation steps)"
            )
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Use epoch `epoch`'s permutation and begin at its batch `start`."""
        if not 0 <= start <= self.batches_per_epoch:
            raise ValueError(f"start batch {start} outside the epoch's {self.batches_per_epoch} batches")
        self.sampler.set_epoch(epoch)
        self.start = start

    def __iter__(self):
        return itertools.islice(iter(self.batches), self.start, self.batches_per_epoch)

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start


def captions_key(model, processor, distinct: Sequence[str], precision: str) -> str:
    """The cache key of a locked tower's pooled rows (`flip.textside.cache_key`, as for prompt
    sentences): its weights, config and tokenizer (`text_fingerprint` of `text_model` alone), the
    autocast precision and the captions."""
    from ..textside import cache_key
    from ..zeroshot import text_fingerprint

    return "captions-" + cache_key(f"{text_fingerprint(model, processor, parts=('text_model',))}:pooled:{precision}",
                                   distinct)


@torch.no_grad()  # not inference_mode: the rows feed the trained projection
def pool_captions(model, processor, captions: Sequence[str], device: torch.device, autocast,
                  batch_size: int = 256, progress: bool = False, cache=None, precision: str = "") -> torch.Tensor:
    """The text tower's pooled output for every caption, (N, W), on the CPU.

    For a locked tower (LiT) this never changes, so training computes it once instead of every epoch:
    each distinct caption is encoded once, in batches of similar length (little padding). `cache`: a
    `flip.zeroshot.TextCache` that keeps the rows between runs (a resume, another run on the same
    captions and tower), keyed by `captions_key` with `precision`, the autocast dtype's name.
    """
    distinct = sorted(set(captions), key=len)
    position = {caption: i for i, caption in enumerate(distinct)}
    order = torch.tensor([position[c] for c in captions])
    key = captions_key(model, processor, distinct, precision) if cache is not None else None
    found = cache.get(key) if key is not None else None
    if found is not None and found.shape[0] == len(distinct):
        return found[order]
    rows = []
    steps = range(0, len(distinct), batch_size)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="encoding captions (locked text tower)", unit="batch", dynamic_ncols=True)
    tower = model.text_model
    was_training = tower.training
    tower.eval()  # as a locked tower runs in training: no dropout
    for start in steps:
        text = processor.texts(distinct[start:start + batch_size], padding="longest")
        with autocast():
            pooled = model.pool_text(text["input_ids"].to(device), text["attention_mask"].to(device))
        rows.append(pooled.float().cpu())
    tower.train(was_training)
    pooled = torch.cat(rows)
    if key is not None:
        cache.put(key, pooled, {"captions": str(len(distinct)), "precision": precision})
    return pooled[order]
