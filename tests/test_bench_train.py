"""Smoke test of benchmarks/bench_train.py: `--quick` runs both training loops (and the memory
subprocesses) on tiny towers and prints the ratio line. No timing is asserted; what is asserted is
that both sides start from the same weights and data (their first losses agree)."""

from __future__ import annotations

import re

import pytest


def _load():
    from benchmarks import bench_train

    return bench_train


@pytest.mark.slow
def test_quick_run_prints_rates_memory_and_the_ratio(capsys):
    assert _load().main(["--quick"]) == 0
    out = capsys.readouterr().out
    first = re.search(r"first loss: open_clip ([\d.]+), flip ([\d.]+) \(the same computation\)", out)
    assert first and float(first[1]) == pytest.approx(float(first[2]), abs=1e-4)
    for side in ("open_clip", "flip"):
        rate, peak = re.search(rf"^{side}\s+([\d.]+)\s+.*?\s(\d+)$", out, re.M).groups()
        assert float(rate) > 0 and int(peak) >= 0
    assert "peak memory: " in out
    ratio = r"^ratio flip / open_clip samples/s: \d+\.\d{3} \((meets|misses) the goal of >= 1\.0\)$"
    assert re.search(ratio, out, re.M)


def test_batch_is_well_formed_for_both_poolings():
    import torch

    bench = _load()
    batch = bench.make_batch(6, quick=True)
    vocab, length = bench.QUICK_TEXT["vocab_size"], bench.QUICK_TEXT["context_length"]
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert ids.shape == mask.shape == (6, length) and batch["pixel_values"].shape == (6, 3, 32, 32)
    ends = mask.sum(1) - 1
    assert torch.equal(ids.argmax(1), ends) and (ids[torch.arange(6), ends] == vocab - 1).all()
    assert (ids[mask == 0] == 0).all() and (ids[:, 0] == vocab - 2).all()
