"""Where training figures go: a JSON Lines file, and TensorBoard when asked.

Design choices:
- `metrics.jsonl` in the output folder, one object per line (`{"step": ..., "loss": ...}`), appended
  so that a resumed run continues the same file (cut back to its checkpoint first, so replayed steps
  appear once); only the first process writes.
- TensorBoard is optional: `torch.utils.tensorboard` is imported only when `run.tensorboard` is set,
  with a clear message when the `tensorboard` package is missing.
"""

from __future__ import annotations

import json
import math
from pathlib import Path


class MetricWriter:
    def __init__(self, output_dir: str | Path, tensorboard: bool = False, enabled: bool = True):
        self.enabled = enabled
        self.path = Path(output_dir) / "metrics.jsonl"
        self.board = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as err:
                raise ImportError("run.tensorboard needs the tensorboard package: pip install tensorboard") from err
            self.board = SummaryWriter(log_dir=str(Path(output_dir) / "tensorboard"))

    def write(self, step: int, values: dict) -> None:
        """Append one line {"step": step, **values}; numbers also go to TensorBoard."""
        if not self.enabled:
            return
        row = {"step": step, **{k: _plain(v) for k, v in values.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.board is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.board.add_scalar(key, value, step)

    def size(self) -> int:
        """Bytes written so far (a checkpoint records it, so a resume can cut the file back to it)."""
        return self.path.stat().st_size if self.enabled and self.path.is_file() else 0

    def close(self) -> None:
        if self.board is not None:
            self.board.close()


def _plain(value):
    """JSON-safe numbers (NaN/inf as strings, which json.dumps would write as invalid JSON)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def read_metrics(path: str | Path) -> list[dict]:
    """The rows of a metrics.jsonl file."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
