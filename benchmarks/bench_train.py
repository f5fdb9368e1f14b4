"""Training speed: flip's trainer step against open_clip's, same model, data and optimiser (issue 4:
flip must not be slower, ratio >= 1.0).

    python benchmarks/bench_train.py                         # 64 pairs a step, 10 steps a round, 5 rounds
    python benchmarks/bench_train.py --steps 20 --rounds 7 --threads 2
    python benchmarks/bench_train.py --quick                 # 2 steps of 4 pairs: a smoke test, no figure

The two sides:
- open_clip: an open_clip `CLIP` built from a config equal to flip-tiny's image tower (112 px,
  patch 16, width 256, 6 layers, 4 heads, GELU) and a CLIP text transformer (width 384, 6 layers,
  6 heads, 64 tokens), trained with `open_clip.loss.ClipLoss` in the loop of
  `open_clip_train.train.train_one_epoch` (scheduler call, forward, loss, backward, gradient
  clipping, AdamW step, logit-scale clamp), with open_clip_train's parameter groups and its
  `cosine_lr` schedule.
- flip: the same model converted by `flip.convert.open_clip.convert_model` (so both start from
  identical weights, checked by their first losses), trained by what `flip.train.loop.train` runs
  per step: `PretrainObjective` (InfoNCE, the trainer's default loss) after `freeze_unused`,
  AdamW from `flip.train.optim.build_optimizer` with its schedule, the loss and its parts read back
  (the non-finite check), gradient clipping, step, schedule, `zero_grad(set_to_none=True)`.
Both use the same AdamW settings (lr, betas, eps, weight decay), the same clipping norm and the same
temperature clamp ([0.01, 1], open_clip's); data are random pixel tensors and token ids made once
(no decoding), identical for both. flip's trainer runs torch's fused AdamW kernel where the device
has one, open_clip_train torch's default implementation, and part of the ratio comes from that
(the ratio itself is in report/results.json and the README, not here).
Text is padded at random lengths; flip gets the attention mask its collator would make, open_clip
(causal mask, end-of-text pooling) needs none; the pooled outputs are the same.

Measurement: after one warm-up step each (which allocates AdamW's state), `--rounds` rounds, each
timing `--steps` steps of both sides back to back, the order alternating between rounds so that a
busy shared machine penalises neither; samples per second are the median over rounds. Peak memory
is measured in a fresh subprocess per side running warm-up plus `--steps` steps: on Linux the peak
resident set size (VmHWM) above the resident size at the start of training, after resetting the
high-water mark through /proc/self/clear_refs; elsewhere the growth of getrusage's ru_maxrss (a
lower bound, since setup's own peak is included in the baseline); on CUDA,
torch.cuda.max_memory_allocated above the memory allocated at the start.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from flip.runtime import cpu_model  # noqa: E402

#: flip-tiny's image tower, and a CLIP text transformer of MiniLM's width and depth.
VISION = dict(image_size=112, patch_size=16, width=256, layers=6, head_width=64, mlp_ratio=4.0)  # 4 heads
TEXT = dict(context_length=64, vocab_size=49408, width=384, heads=6, layers=6, mlp_ratio=4.0)
EMBED_DIM = 256
#: The tiny variant `--quick` uses (the smoke test checks the plumbing, not the figure).
QUICK_VISION = dict(image_size=32, patch_size=16, width=32, layers=2, head_width=8, mlp_ratio=4.0)
QUICK_TEXT = dict(context_length=16, vocab_size=1000, width=32, heads=4, layers=2, mlp_ratio=4.0)
#: open_clip's clamp of logit_scale, [0, ln 100]: temperatures in [0.01, 1].
TEMPERATURE_MIN, TEMPERATURE_MAX = 0.01, 1.0


@dataclass
class Hyper:
    lr: float = 5e-4
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    warmup_steps: int = 10
    clip_grad_norm: float = 1.0


# -- model and data -------------------------------------------------------------------------------
def build_open_clip(quick: bool, seed: int = 0):
    from open_clip.model import CLIP

    torch.manual_seed(seed)
    return CLIP(embed_dim=16 if quick else EMBED_DIM, vision_cfg=dict(QUICK_VISION if quick else VISION),
                text_cfg=dict(QUICK_TEXT if quick else TEXT), output_dict=True)


def convert_to_flip(open_clip_model):
    """The same weights as a FLIPModel, with open_clip's temperature clamp."""
    from flip.convert import build_model
    from flip.convert.open_clip import convert_model

    config, state_dict, _ = convert_model(open_clip_model)
    config.temperature_min, config.temperature_max = TEMPERATURE_MIN, TEMPERATURE_MAX
    return build_model(config, state_dict, source="open_clip CLIP")


def make_batch(batch_size: int, quick: bool, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random pixels (N, 3, S, S) and token ids (N, L): start token, random words, end-of-text (the
    largest id, so open_clip's argmax pooling and transformers' eos pooling pick the same position),
    zero padding; and the attention mask flip's collator would give."""
    vision, text = (QUICK_VISION, QUICK_TEXT) if quick else (VISION, TEXT)
    g = torch.Generator().manual_seed(seed)
    size, length, vocab = vision["image_size"], text["context_length"], text["vocab_size"]
    pixels = torch.randn(batch_size, 3, size, size, generator=g)
    input_ids = torch.zeros(batch_size, length, dtype=torch.long)
    attention_mask = torch.zeros(batch_size, length, dtype=torch.long)
    for i in range(batch_size):
        n = int(torch.randint(3, length + 1, (1,), generator=g))
        input_ids[i, 0] = vocab - 2
        input_ids[i, 1:n - 1] = torch.randint(1, vocab - 2, (n - 2,), generator=g)
        input_ids[i, n - 1] = vocab - 1
        attention_mask[i, :n] = 1
    return {"pixel_values": pixels, "input_ids": input_ids, "attention_mask": attention_mask,
            "ids": torch.arange(batch_size)}


def autocast_factory(precision: str, device: torch.device):
    if precision == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


# -- the two training steps -----------------------------------------------------------------------
class OpenClipSide:
    """open_clip_train's step on an open_clip CLIP (train.py, `accum_freq == 1`, no scaler)."""

    name = "open_clip"

    def __init__(self, model, batch, hyper: Hyper, total_steps: int, autocast):
        from open_clip.loss import ClipLoss
        from open_clip_train.scheduler import cosine_lr

        self.model, self.autocast, self.hyper = model.train(), autocast, hyper
        self.images, self.texts = batch["pixel_values"], batch["input_ids"]
        self.loss = ClipLoss()
        # open_clip_train/main.py's groups: no decay for gains, biases and the logit scale
        exclude = lambda n, p: p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n  # noqa: E731
        named = list(model.named_parameters())
        self.optimizer = torch.optim.AdamW(
            [{"params": [p for n, p in named if exclude(n, p) and p.requires_grad], "weight_decay": 0.0},
             {"params": [p for n, p in named if not exclude(n, p) and p.requires_grad],
              "weight_decay": hyper.weight_decay}],
            lr=hyper.lr, betas=hyper.betas, eps=hyper.eps)
        self.scheduler = cosine_lr(self.optimizer, hyper.lr, hyper.warmup_steps, total_steps)
        self.step_count = 0

    def step(self) -> torch.Tensor:
        self.scheduler(self.step_count)
        self.optimizer.zero_grad()
        with self.autocast():
            model_out = self.model(self.images, self.texts)
            losses = self.loss(**model_out, output_dict=True)
            total_loss = sum(losses.values())
        total_loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.hyper.clip_grad_norm, norm_type=2.0)
        self.optimizer.step()
        with torch.no_grad():
            self.model.logit_scale.clamp_(0, math.log(100))
        self.step_count += 1
        return total_loss.detach()


class FlipSide:
    """What flip.train.loop.train does per optimiser step (accumulate 1, one process)."""

    name = "flip"

    def __init__(self, model, batch, hyper: Hyper, total_steps: int, autocast):
        from flip.train.config import LossSection, OptimSection
        from flip.train.objective import PretrainObjective, freeze_unused
        from flip.train.optim import build_optimizer, build_scheduler

        loss = LossSection()  # the trainer's default: InfoNCE, no momentum, no ITM
        freeze_unused(model, loss)
        self.objective = PretrainObjective(model, loss).train()
        self.batch, self.autocast = batch, autocast
        optim = OptimSection(lr=hyper.lr, weight_decay=hyper.weight_decay, betas=hyper.betas, eps=hyper.eps,
                             warmup_steps=hyper.warmup_steps, clip_grad_norm=hyper.clip_grad_norm)
        self.optim = optim
        self.optimizer = build_optimizer(model, optim)
        self.scheduler = build_scheduler(self.optimizer, optim, total_steps)
        self.params = [p for group in self.optimizer.param_groups for p in group["params"]]

    def step(self) -> torch.Tensor:
        with self.autocast():
            out = self.objective(**self.batch, alpha=0.0)
        out.loss.backward()
        step_loss = out.loss.item()  # the loop's non-finite check and log row read these every step
        parts = {key: value.item() for key, value in out.parts.items()}
        if not math.isfinite(step_loss) or not parts:
            raise RuntimeError(f"flip's loss became {step_loss}")
        torch.nn.utils.clip_grad_norm_(self.params, self.optim.clip_grad_norm).item()
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return out.loss.detach()


def build_sides(args, device: torch.device, total_steps: int):
    """(open_clip side, flip side), identical initial weights and data, on `device`."""
    quick = args.quick
    open_clip_model = build_open_clip(quick)
    flip_model = convert_to_flip(open_clip_model)  # converted before any training: the same weights
    batch = {k: v.to(device) for k, v in make_batch(args.batch_size, quick).items()}
    autocast = autocast_factory(args.precision, device)
    hyper = Hyper(warmup_steps=min(10, total_steps))
    return (OpenClipSide(open_clip_model.to(device), batch, hyper, total_steps, autocast),
            FlipSide(flip_model.to(device), batch, hyper, total_steps, autocast))


# -- measurement ----------------------------------------------------------------------------------
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(side, steps: int, device: torch.device) -> float:
    """Seconds for `steps` training steps."""
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        side.step()
    sync(device)
    return time.perf_counter() - start


def _proc_status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def measure_memory(args, side_name: str) -> dict:
    """Peak memory of warm-up + `args.steps` steps of one side, in this (fresh) process; MiB."""
    import gc
    import resource

    device = torch.device(args.device)
    sides = dict(zip(("open_clip", "flip"), build_sides(args, device, args.steps + 1)))
    side = sides.pop(side_name)
    sides.clear()  # the other side's model is freed before the baseline is read
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        time_steps(side, args.steps + 1, device)
        return {"peak_mib": (torch.cuda.max_memory_allocated(device) - start) / 2**20,
                "method": "torch.cuda.max_memory_allocated above the allocation at the start of training"}
    start = _proc_status_kb("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        reset = True
    except OSError:
        reset = False
    if reset and start is not None:
        time_steps(side, args.steps + 1, device)
        return {"peak_mib": (_proc_status_kb("VmHWM") - start) / 1024,
                "method": "peak RSS (VmHWM, reset through /proc/self/clear_refs) above the RSS at the start "
                          "of training"}
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB elsewhere
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    time_steps(side, args.steps + 1, device)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    return {"peak_mib": (after - before) / 2**20,
            "method": "growth of getrusage ru_maxrss during training (a lower bound)"}


def memory_in_subprocess(args, side_name: str) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--measure-memory", side_name,
               "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--precision", args.precision,
               "--device", args.device, *(["--quick"] if args.quick else []),
               *(["--threads", str(args.threads)] if args.threads else [])]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"memory measurement of {side_name} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    p.add_argument("--steps", type=int, default=10, help="timed steps per side and round (default: 10)")
    p.add_argument("--batch-size", type=int, default=64, help="pairs per step (default: 64)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the median is reported (default: 5)")
    p.add_argument("--quick", action="store_true", help="a smoke test: 2 steps of 4 pairs, 2 rounds, tiny towers")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="both sides (bf16: autocast)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--measure-memory", choices=("open_clip", "flip"), help=argparse.SUPPRESS)
    p.add_argument("--json", default=None, help="also write the figures to this JSON file (eval.run's speed suite)")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.batch_size, args.rounds = 2, 4, 2
    for name in ("steps", "batch_size", "rounds"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def run(args: argparse.Namespace) -> dict:
    """Print the table and return the figures (what --json writes; eval.run's speed suite reads them)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    total_steps = 1 + args.rounds * args.steps
    open_clip_side, flip_side = build_sides(args, device, total_steps)
    n_params = sum(p.numel() for p in open_clip_side.model.parameters())
    gpu = f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPU cores, torch {torch.__version__} with "
          f"{torch.get_num_threads()} threads, device {device}{gpu}, {args.precision}")
    print(f"model: {'tiny (--quick)' if args.quick else 'flip-tiny image tower + CLIP text transformer'}, "
          f"{n_params / 1e6:.1f}M parameters; batch {args.batch_size}, {args.steps} steps x {args.rounds} rounds")

    first = {side.name: float(side.step()) for side in (open_clip_side, flip_side)}  # warm-up: AdamW state
    same = abs(first["open_clip"] - first["flip"]) < 1e-3 * max(1.0, abs(first["open_clip"]))
    print(f"first loss: open_clip {first['open_clip']:.6f}, flip {first['flip']:.6f} "
          f"({'the same computation' if same else 'DIFFERENT: check the conversion'})")

    rates = {"open_clip": [], "flip": []}
    for r in range(args.rounds):
        order = (open_clip_side, flip_side) if r % 2 == 0 else (flip_side, open_clip_side)
        for side in order:
            rates[side.name].append(args.steps * args.batch_size / time_steps(side, args.steps, device))
    median = {name: statistics.median(values) for name, values in rates.items()}

    memory = {}
    if not args.no_memory:
        memory = {name: memory_in_subprocess(args, name) for name in ("open_clip", "flip")}
    print(f"\n{'side':<10}  {'samples/s':>9}  {'rounds (samples/s)':<40}  {'peak MiB':>8}")
    for name in ("open_clip", "flip"):
        rounds = " ".join(f"{v:.1f}" for v in rates[name])
        peak = f"{memory[name]['peak_mib']:.0f}" if memory else "-"
        print(f"{name:<10}  {median[name]:>9.2f}  {rounds:<40}  {peak:>8}")
    if memory:
        print(f"peak memory: {memory['flip']['method']}")
    ratio = median["flip"] / median["open_clip"]
    verdict = "meets" if ratio >= 1.0 else "misses"
    print(f"\nratio flip / open_clip samples/s: {ratio:.3f} ({verdict} the goal of >= 1.0)")
    return {"benchmark": "train", "quick": args.quick, "device": str(device), "precision": args.precision,
            "batch_size": args.batch_size, "steps": args.steps, "rounds": args.rounds, "parameters": n_params,
            "first_loss": first, "samples_per_s": median, "rounds_samples_per_s": rates,
            "peak_mib": {name: memory[name]["peak_mib"] for name in memory} or None,
            "headline": {"name": "training samples/s, flip / open_clip", "ratio": ratio, "goal": 1.0}}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.measure_memory:
        if args.threads:
            torch.set_num_threads(args.threads)
        print(json.dumps(measure_memory(args, args.measure_memory)))
        return 0
    figures = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
