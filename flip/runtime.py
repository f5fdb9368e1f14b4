"""Process-level helpers: the OpenMP wait policy, a filter for a warning users cannot act on, and
where a figure was measured (flip's version and the machine: CPU model, cores, torch, GPU).

A leaf: it imports nothing of flip at module level, so the command line, the evaluation harness and
the benchmarks can all call it without reaching into each other. Every figure of the harness carries
the package version; speed figures also carry the machine, since a ratio measured on 2 shared CPU
cores says little about a GPU server.
"""

from __future__ import annotations

import contextlib
import os
import platform
import warnings
from pathlib import Path


def sleep_idle_openmp_threads() -> None:
    """Let idle OpenMP threads sleep instead of spin (`OMP_WAIT_POLICY=PASSIVE`, unless already set), so
    that DataLoader workers decoding images get a core when a model thread waits. libgomp reads it when
    torch loads: call this first. `benchmarks/bench_classify.py` measures what it changes."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@contextlib.contextmanager
def peft_quiet():
    """Around peft calls: peft reads transformers' deprecated `is_gradient_checkpointing`, and the
    FutureWarning that follows is about peft's code, not the user's."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
        yield


def package_version() -> str:
    """flip's installed version (the distribution `flip-face`), else the source tree's."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("flip-face")
    except PackageNotFoundError:
        from flip import __version__

        return __version__


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_machine() -> dict[str, object]:
    """{"cpu", "cores", "torch", "threads", "gpu", "python", "platform"}: enough to compare two runs."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "gpu": gpu, "python": platform.python_version(),
            "platform": platform.platform()}
