"""Two CPU processes (gloo) against one: the loss and the gradients of the global batch are the same.

The workers are spawned with torch.multiprocessing; each writes what it computed to a file that the
test compares with a single process on the concatenated batch. Models are tiny, without dropout, fp32.
"""

import socket

import pytest
import torch
from conftest import TINY_TEXT, TINY_VISION, tiny_config

from flip.model import FLIPModel
from flip.train.config import LossSection

WORLD = 2
GLOBAL_BATCH = 8
CASES = {
    "itc": dict(loss=LossSection()),
    "sigmoid": dict(loss=LossSection(kind="sigmoid"), model=dict(logit_bias_init=-10.0, temperature_init=0.1)),
    "flip": dict(loss=LossSection(momentum=0.9, queue_size=12, alpha=0.4)),
}


def _model(case):
    torch.manual_seed(0)
    text = dict(TINY_TEXT["bert"], hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return FLIPModel(tiny_config(text_config=text, **CASES[case].get("model", {})))


def _batch(step):
    g = torch.Generator().manual_seed(100 + step)
    lengths = torch.randint(3, 9, (GLOBAL_BATCH,), generator=g)
    mask = (torch.arange(8)[None, :] < lengths[:, None]).long()
    return dict(pixel_values=torch.randn(GLOBAL_BATCH, 3, 32, 32, generator=g),
                input_ids=torch.randint(1000, 2000, (GLOBAL_BATCH, 8), generator=g) * mask,
                attention_mask=mask, ids=torch.arange(GLOBAL_BATCH))


def _run_objective(case, objective, forward, batches):
    """Two steps (forward, backward, a plain SGD update): loss and gradients of each step."""
    results = []
    for batch in batches:
        out = forward(**batch, alpha=0.4)
        out.loss.backward()
        grads = {n: p.grad.clone() for n, p in objective.model.named_parameters() if p.grad is not None}
        results.append((out.loss.detach().clone(), grads))
        with torch.no_grad():
            for p in objective.model.parameters():
                if p.grad is not None:
                    p -= 0.1 * p.grad
                    p.grad = None
    return results


def _worker(rank, port, out_dir, settings):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from flip.train import load_config, train
    from flip.train.objective import PretrainObjective

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        share = GLOBAL_BATCH // WORLD
        local = slice(rank * share, (rank + 1) * share)
        for case in CASES:
            objective = PretrainObjective(_model(case), CASES[case]["loss"])
            ddp = DistributedDataParallel(objective)
            batches = [{k: v[local] for k, v in _batch(step).items()} for step in range(2)]
            torch.save(_run_objective(case, objective, ddp, batches), f"{out_dir}/{case}-rank{rank}.pt")
        # the whole trainer: torch.distributed is already initialised, so train() joins the group
        result = train(load_config(None, settings))
        torch.save(result.losses, f"{out_dir}/train-rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_equal_one_process_on_the_concatenated_batch(tmp_path):
    import torch.multiprocessing as mp

    from flip.data.formats import write_dataset
    from flip.train import load_config, train
    from flip.train.objective import PretrainObjective
    from test_train import _records, tiny_settings

    write_dataset(_records(36), tmp_path / "pairs", "imagefolder", "train")
    text = dict(TINY_TEXT["bert"], hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    common = dict(loss={"momentum": 0.9, "queue_size": 16, "alpha": 0.4}, optim={"accumulate": 2},
                  run={"max_steps": 3, "deterministic": True})
    settings = tiny_settings(tmp_path / "pairs", tmp_path / "ddp", **common)
    settings["model"]["overrides"]["text_config"] = text
    settings["data"].update(batch_size=2, eval_size=0)
    mp.spawn(_worker, args=(_free_port(), str(tmp_path), settings), nprocs=WORLD)

    for case in CASES:
        objective = PretrainObjective(_model(case), CASES[case]["loss"])
        expected = _run_objective(case, objective, objective, [_batch(step) for step in range(2)])
        for rank in range(WORLD):
            got = torch.load(tmp_path / f"{case}-rank{rank}.pt", weights_only=True)
            for (loss, grads), (want_loss, want_grads) in zip(got, expected):
                torch.testing.assert_close(loss, want_loss, atol=1e-5, rtol=1e-5)
                assert grads.keys() == want_grads.keys() and len(grads) > 10
                for name in grads:
                    torch.testing.assert_close(grads[name], want_grads[name], atol=1e-5, rtol=1e-5, msg=name)

    # the trainer on 2 processes x batch 2 follows the trainer on 1 process x batch 4, step by step
    # (2 micro-batches per step: DDP synchronises on the second only)
    single = dict(settings, run={**settings["run"], "output_dir": str(tmp_path / "single")})
    single["data"] = dict(settings["data"], batch_size=4)
    want = train(load_config(None, single)).losses
    assert len(want) == 3
    for rank in range(WORLD):
        got = torch.load(tmp_path / f"train-rank{rank}.pt", weights_only=True)
        assert got == pytest.approx(want, rel=1e-5, abs=1e-5)
