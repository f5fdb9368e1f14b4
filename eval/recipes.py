"""Evaluation trains the way a user does: it runs a training recipe through its `flip` command and
reads what the run saved (the resolved `config.yaml`, the trained model), never importing the
recipe's module.

The command runs in this process (`flip.cli.main`, the console script's entry point), its standard
output sent to standard error so that an evaluation's own output stays its table. A recipe that
refuses its config or fails has already said why on standard error, in one line; here it becomes a
ValueError that names the command.
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

RESOLVED_CONFIG = "config.yaml"  # what every recipe writes to its output folder


def _flip(command: str, argv: list[str], stdout) -> int:
    from flip.cli import main

    with contextlib.redirect_stdout(stdout):
        try:
            return main([command, *argv])
        except SystemExit as err:  # argparse: a bad argument
            return err.code if isinstance(err.code, int) else 2


def resolved_config(command: str, argv: list[str]) -> dict:
    """The config `flip <command> argv` would run (its `--print-config`), checked without running it."""
    import yaml

    text = io.StringIO()
    status = _flip(command, [*argv, "--print-config"], text)
    if status:
        raise ValueError(f"flip {command} refused its config (exit {status}; its message is above)")
    return yaml.safe_load(text.getvalue())


def run_recipe(command: str, argv: list[str], output_dir: str | Path) -> dict:
    """Run `flip <command> argv`, whose output folder is `output_dir`; returns the resolved config
    the run saved there."""
    import yaml

    status = _flip(command, argv, sys.stderr)
    if status:
        raise ValueError(f"flip {command} failed (exit {status}; its message is above)")
    path = Path(output_dir) / RESOLVED_CONFIG
    if not path.is_file():
        raise ValueError(f"flip {command} wrote no {RESOLVED_CONFIG} to {output_dir}")
    return yaml.safe_load(path.read_text())
