"""The training loop: `train(config)` from a TrainConfig to a trained, saved model.

Design choices:
- One function reads top to bottom: set up (processes, seeds, model, data, optimiser), resume, loop
  over epochs and optimiser steps, evaluate each epoch, save the final model with its card. The
  pieces it calls each live in their own module of `flip.train`.
- A step is one optimiser step of `optim.accumulate` micro-batches; DDP synchronises gradients on
  the last micro-batch only (`no_sync`). Checkpoints are written between steps, so a resume starts
  on a step boundary: the data position is (epoch, micro-batch within the epoch).
- Deterministic mode seeds python, numpy and torch (seed + rank) and turns on
  `torch.use_deterministic_algorithms`; with the checkpoint's RNG states and data position, a run
  resumed on the CPU repeats the uninterrupted run's losses exactly.
- SIGTERM (what schedulers and torchrun send) sets a flag; the loop saves a checkpoint after the
  current step and returns with status "interrupted". A non-finite loss on any rank stops every rank
  before the optimiser step, with the last good checkpoint untouched (`NonFiniteLossError`).
- Only the first process writes (checkpoints, metrics, the final model) and evaluates.
- A locked text tower (LiT) gives every caption the same output in every epoch, so by default its
  pooled output is computed once before the loop (`pool_captions`) and the workers hand those rows to
  the objective instead of tokens: a step then runs only the text projection, not the tower's
  forward. Image-text matching needs the tokens: no cache then.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import distributed
from ..state_file import load_checkpoint, save_checkpoint
from .checkpoint import (
    ADAPTER_DIR,
    LAST,
    claim_output_dir,
    find_resume,
    remove_stale_temp_files,
    rng_state,
    set_rng_state,
    truncate_metrics,
)
from .config import TrainConfig, save_config


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stopped before applying that step."""


@dataclass
class StepInfo:
    """Passed to `on_step` after every optimiser step."""

    step: int  # global optimiser steps done
    epoch: int
    loss: float
    lr: float


@dataclass
class TrainResult:
    status: str  # "finished" or "interrupted" (SIGTERM)
    step: int  # global optimiser steps done
    losses: list[float] = field(default_factory=list)  # the loss of each step run by this call
    metrics: dict = field(default_factory=dict)  # the last held-out evaluation
    checkpoint: Path | None = None
    final_dir: Path | None = None


class _StopOnSignal:
    """Turns SIGTERM into a flag the loop reads between steps (main thread only)."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
        return False


def ignore_sigterm(worker_id: int) -> None:
    """DataLoader workers ignore SIGTERM: a scheduler (or `kill` on the process group) signals every
    process, and the main process must be the one to save a checkpoint and shut the workers down."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def enable_checkpointing(model) -> None:
    """Recompute the towers' layer activations in backward (transformers' activation checkpointing)."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.2x; the old name warns
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def _autocast_factory(precision: str, device: torch.device) -> Callable:
    if precision == "auto":
        use_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    else:
        use_bf16 = precision == "bf16"
    if not use_bf16:
        return contextlib.nullcontext
    return lambda: torch.autocast(device.type, dtype=torch.bfloat16)


def train(config: TrainConfig, on_step: Callable[[StepInfo], None] | None = None) -> TrainResult:
    """Train as configured; returns what happened. See the module docstring."""
    from torch.utils.data import DataLoader

    from .pairs import PairCollator, PairDataset, ResumableBatchSampler, pool_captions, read_pairs, split_held_out
    from .evaluate import evaluate
    from .metric_log import MetricWriter
    from .modeling import build_model, count_parameters, setup_towers
    from .objective import PretrainObjective, freeze_unused
    from .optim import build_optimizer, build_scheduler

    run, cfg_data, optim = config.run, config.data, config.optim
    ctx = distributed.setup(run.device)
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        seed_everything(run.seed)  # model and LoRA initialisation: the same on every rank
        output_dir = Path(run.output_dir)
        resume_from = _claim_output_dir(ctx, output_dir, run)
        if run.deterministic:
            if ctx.device.type == "cuda":
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        autocast = _autocast_factory(run.precision, ctx.device)

        # -- model ---------------------------------------------------------------------------------
        model, processor = build_model(config.model, seed=run.seed)
        freeze_unused(model, config.loss)
        trainable = setup_towers(model, processor, config.towers, source=config.model.name)
        model = trainable.model
        if run.gradient_checkpointing:
            enable_checkpointing(model)
        objective = PretrainObjective(model, config.loss, processor.settings.enc_token_id, trainable.locked)
        objective.to(ctx.device)
        if run.compile:
            model.vision_model.compile()
            model.text_model.compile()
        n_trainable, n_total = count_parameters(model)

        # -- data ----------------------------------------------------------------------------------
        records = read_pairs(cfg_data.train, cfg_data.dataset, cfg_data.split, cfg_data.check_images,
                             cfg_data.max_samples, **cfg_data.options)
        if cfg_data.eval:
            held_out = []
            if cfg_data.eval_size:
                held_out = read_pairs(cfg_data.eval, cfg_data.dataset, cfg_data.eval_split, cfg_data.check_images,
                                      cfg_data.eval_size, **cfg_data.options)
        else:
            records, held_out = split_held_out(records, cfg_data.eval_size, run.seed)
        collate = PairCollator(processor, padding="max_length" if config.loss.itm_weight > 0 else "longest",
                               low_res=cfg_data.low_res, low_res_min=cfg_data.low_res_min, seed=run.seed)
        sampler = ResumableBatchSampler(len(records), cfg_data.batch_size, run.seed, ctx.rank, ctx.world_size,
                                        multiple_of=optim.accumulate)
        loader_kwargs = dict(collate_fn=collate, num_workers=cfg_data.num_workers, worker_init_fn=ignore_sigterm,
                             persistent_workers=cfg_data.num_workers > 0, pin_memory=ctx.device.type == "cuda")
        text_features = None
        if "text_model" in trainable.locked and config.towers.cache_locked_text and config.loss.itm_weight == 0:
            from ..zeroshot import TextCache

            where = config.towers.text_cache_dir
            where = Path(run.output_dir) / "text-cache" if where is None else (Path(where) if where else None)
            text_features = pool_captions(model, processor, [r.caption for r in records], ctx.device, autocast,
                                          batch_size=max(cfg_data.batch_size, 256), progress=run.progress and ctx.is_main,
                                          cache=TextCache(where) if where is not None else None,
                                          precision="float32" if autocast is contextlib.nullcontext else "bfloat16")
        # the loaders' own generators: making an iterator never draws from the global RNG
        loader = DataLoader(PairDataset(records, text_features), batch_sampler=sampler, generator=torch.Generator(),
                            **loader_kwargs)
        n_train, records = len(records), None  # the dataset holds the images now, packed
        eval_loader = None
        if held_out and ctx.is_main:
            eval_loader = DataLoader(PairDataset(held_out), batch_size=cfg_data.batch_size, shuffle=False,
                                     generator=torch.Generator(), **loader_kwargs)
        steps_per_epoch = sampler.batches_per_epoch // optim.accumulate
        total_steps = run.max_steps or run.epochs * steps_per_epoch
        epochs = math.ceil(total_steps / steps_per_epoch)
        global_batch = cfg_data.batch_size * ctx.world_size * optim.accumulate

        # -- optimiser -----------------------------------------------------------------------------
        optimizer = build_optimizer(model, optim)
        scheduler = build_scheduler(optimizer, optim, total_steps)
        params = [p for group in optimizer.param_groups for p in group["params"]]

        # -- resume or start -----------------------------------------------------------------------
        step, epoch, batch_in_epoch = 0, 0, 0
        rng_states, evaluated = None, (-1, {})  # the step of the last evaluation, and its figures
        if resume_from is not None:
            state = load_checkpoint(resume_from)
            saved = (state["global_batch"], state["world_size"], state["train_pairs"], state["seed"])
            if saved != (global_batch, ctx.world_size, n_train, run.seed):
                raise ValueError(
                    f"{resume_from}: saved with global batch {saved[0]} on {saved[1]} process(es), {saved[2]} training "
                    f"pairs and seed {saved[3]}; this run has {global_batch} on {ctx.world_size}, {n_train} pairs "
                    f"and seed {run.seed}, which would change the data order"
                )
            objective.load_state_dict(state["objective"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            step, epoch, batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
            rng_states = state["rng"]
            evaluated = (state.get("evaluated_at", -1), state.get("metrics", {}))  # not evaluated twice
            if ctx.is_main:  # the steps after the checkpoint are replayed: their metric rows go
                truncate_metrics(output_dir, state)
                remove_stale_temp_files(output_dir)
        seed_everything(run.seed + ctx.rank)
        if rng_states is not None:
            set_rng_state(rng_states[ctx.rank])
        if ctx.is_main:  # the recipe, without the resume request (reproducing starts from scratch)
            recipe = dataclasses.replace(run, resume=None, overwrite=False)
            save_config(dataclasses.replace(config, run=recipe), output_dir / "config.yaml")
        distributed.barrier(ctx)

        net = objective
        if ctx.enabled:
            import inspect

            from torch.nn.parallel import DistributedDataParallel

            # the queue is updated identically on every rank: no buffer broadcast before each forward
            # (torch 2.14 renamed the option; older versions know only the first name)
            no_sync_buffers = ({"forward_sync_buffers": False}
                               if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
                               else {"broadcast_buffers": False})
            net = DistributedDataParallel(
                objective,
                device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
                find_unused_parameters=run.find_unused_parameters,
                **no_sync_buffers,
            )

        writer = MetricWriter(output_dir, tensorboard=run.tensorboard, enabled=ctx.is_main)
        progress = None
        if run.progress and ctx.is_main:
            from tqdm.auto import tqdm

            progress = tqdm(total=total_steps, initial=step, desc="flip train", unit="step", dynamic_ncols=True)

        saved_at = -1

        def checkpoint() -> Path | None:
            nonlocal saved_at
            saved_at = step
            states = distributed.gather_objects(ctx, rng_state())
            if not ctx.is_main:
                return None
            return save_checkpoint(
                {
                    "objective": objective.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "step": step,
                    "epoch": epoch,
                    "batch_in_epoch": batch_in_epoch,
                    "seed": run.seed,
                    "world_size": ctx.world_size,
                    "global_batch": global_batch,
                    "train_pairs": n_train,
                    "rng": states,
                    "metrics_bytes": writer.size(),
                    "evaluated_at": evaluated_at,
                    "metrics": metrics,
                    "config": config.to_dict(),
                },
                output_dir / LAST,
            )

        # -- loop ----------------------------------------------------------------------------------
        losses, status, last_checkpoint = [], "finished", None
        evaluated_at, metrics = evaluated
        started, samples_done = time.perf_counter(), 0
        objective.train()
        with _StopOnSignal() as stop:
            while step < total_steps and epoch < epochs:
                sampler.set_epoch(epoch, batch_in_epoch)
                batches = iter(loader)
                while step < total_steps and batch_in_epoch < sampler.batches_per_epoch:
                    step_start = time.perf_counter()
                    alpha = _alpha(config, step, steps_per_epoch)
                    step_loss, parts = 0.0, {}
                    for micro in range(optim.accumulate):
                        batch = {k: v.to(ctx.device, non_blocking=True) for k, v in next(batches).items()}
                        sync = micro == optim.accumulate - 1 or not ctx.enabled
                        with contextlib.nullcontext() if sync else net.no_sync():
                            with autocast():
                                out = net(**batch, alpha=alpha)
                            (out.loss / optim.accumulate).backward()
                        step_loss += out.loss.item() / optim.accumulate
                        for key, value in out.parts.items():
                            parts[key] = parts.get(key, 0.0) + value.item() / optim.accumulate
                        batch_in_epoch += 1
                    bad, stop_now = distributed.any_flag(ctx, not math.isfinite(step_loss), stop.requested)
                    if bad:
                        raise NonFiniteLossError(
                            f"the loss became {step_loss if not math.isfinite(step_loss) else 'non-finite on another rank'} "
                            f"at step {step + 1} (epoch {epoch}); training stopped before applying it. "
                            f"The last good checkpoint is {last_checkpoint or 'none (no checkpoint saved yet)'}. "
                            "Try a lower optim.lr, more optim.warmup_steps or optim.clip_grad_norm."
                        )
                    grad_norm = None
                    if optim.clip_grad_norm is not None:
                        grad_norm = torch.nn.utils.clip_grad_norm_(params, optim.clip_grad_norm).item()
                    lr = optimizer.param_groups[0]["lr"]
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    step += 1
                    losses.append(step_loss)
                    samples_done += global_batch
                    rate = global_batch / max(time.perf_counter() - step_start, 1e-9)
                    if progress is not None:
                        progress.set_postfix(loss=f"{step_loss:.4f}", samples_s=f"{rate:.1f}", refresh=False)
                        progress.update(1)
                    if step % run.log_every == 0 or step == total_steps:
                        row = {"epoch": epoch, "loss": step_loss, **{f"loss/{k}": v for k, v in parts.items()},
                               "lr": lr, "temperature": float(model.temperature), "samples_per_s": rate}
                        if alpha:
                            row["alpha"] = alpha
                        if grad_norm is not None:
                            row["grad_norm"] = grad_norm
                        writer.write(step, row)
                    if on_step is not None:
                        on_step(StepInfo(step=step, epoch=epoch, loss=step_loss, lr=lr))
                    if stop_now:
                        last_checkpoint = checkpoint()
                        status = "interrupted"
                        break
                    if run.save_every and step % run.save_every == 0:
                        last_checkpoint = checkpoint()
                if status == "interrupted":
                    break
                if batch_in_epoch >= sampler.batches_per_epoch:  # the epoch is complete
                    epoch, batch_in_epoch = epoch + 1, 0
                    if eval_loader is not None and run.eval_every_epoch:
                        metrics = evaluate(model, processor, held_out, eval_loader, ctx.device, autocast)
                        writer.write(step, {"epoch": epoch - 1, **metrics})
                        evaluated_at = step
                        objective.train()  # back to training mode, locked towers staying in eval mode
                    distributed.barrier(ctx)
                    last_checkpoint = checkpoint()
        if progress is not None:
            progress.close()
        if status == "finished":  # also when run.max_steps ended the run inside an epoch
            if eval_loader is not None and evaluated_at != step:
                metrics = evaluate(model, processor, held_out, eval_loader, ctx.device, autocast)
                writer.write(step, {"epoch": epoch, **metrics})
            if saved_at != step:
                last_checkpoint = checkpoint()
        writer.close()

        final_dir = None
        if status == "finished" and ctx.is_main:
            final_dir = _save_final(trainable, processor, config, output_dir, metrics, {
                "train_pairs": n_train, "eval_pairs": len(held_out), "steps": step,
                "epochs": round(step / steps_per_epoch, 2), "global_batch": global_batch,
                "trainable_parameters": n_trainable, "total_parameters": n_total,
                "seconds": time.perf_counter() - started,
                "samples_per_s": samples_done / max(time.perf_counter() - started, 1e-9),
                "device": str(ctx.device) + (f" x {ctx.world_size}" if ctx.enabled else ""),
                "config_path": str(output_dir / "config.yaml"),
            })
        distributed.barrier(ctx)
        return TrainResult(status, step, losses, metrics, last_checkpoint, final_dir)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
        distributed.shutdown(ctx)


def _claim_output_dir(ctx, output_dir: Path, run) -> Path | None:
    """The first process checks (and with run.overwrite clears) the output folder; every process
    learns whether it refused, so none waits for the others at a barrier."""
    problem, resume_from = None, None
    if ctx.is_main:
        try:
            resume_from = claim_output_dir(output_dir, run.resume, run.overwrite)
        except (ValueError, OSError) as err:
            problem = err
    (refused,) = distributed.any_flag(ctx, problem is not None)
    if problem is not None:
        raise problem
    if refused:
        raise ValueError(f"run.output_dir {output_dir}: refused by the first process (see its message)")
    return resume_from if ctx.is_main else find_resume(run.resume, output_dir)


def _alpha(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """FLIP's soft-target weight: ramped linearly from 0 over `alpha_ramp_epochs`."""
    loss = config.loss
    if loss.alpha == 0 or loss.alpha_ramp_epochs == 0:
        return loss.alpha
    return loss.alpha * min(1.0, step / (loss.alpha_ramp_epochs * steps_per_epoch))


def _save_final(trainable, processor, config: TrainConfig, output_dir: Path, metrics: dict, summary: dict) -> Path:
    """The merged model to `final/`; a LoRA run whose adapter is the whole fine-tune (`adapter_is_whole`)
    also writes the adapter alone to `adapter/` (a few hundred KB, loaded on its base by `flip.load`)."""
    from ..hub import save, save_adapter
    from .card import write_model_card

    if trainable.adapter_is_whole:  # before merging, which unwraps the peft model
        adapter_dir = save_adapter(trainable.peft_model, output_dir / ADAPTER_DIR, base=trainable.source,
                                   overwrite=config.run.overwrite)
        write_model_card(adapter_dir, config, summary, metrics)
    model = trainable.final_model()
    final_dir = save(model, processor, output_dir / "final", overwrite=config.run.overwrite)
    write_model_card(final_dir, config, summary, metrics)
    return final_dir
