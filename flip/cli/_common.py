"""What several commands share: the partial-failure exit code, the line that reports a skipped input,
and argument checks that name the flag.

The contract for inputs (README, "Errors and exit codes"): an image that is missing or cannot be read
is reported on one line, `skipped <file>: <why>`, and the other inputs are processed; the run then
exits 1 (`--skip-bad`: 0 when some input was read), also when no input could be read. Exit 2 is kept
for what the user must fix before anything can run: arguments, configs, prompt files, checkpoints.
"""

from __future__ import annotations

import argparse
import re


def add_skip_bad(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--skip-bad", action="store_true",
                        help="unreadable inputs are expected: exit 0 when some were skipped (default: exit 1)")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ERROR_NAME = re.compile(r"^(ValueError|OSError|FileNotFoundError): ")


def printable(text: str) -> str:
    """`text` on one line: control characters (a newline in a file name) written as escapes (`\\n`)."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(text))


def skipped_line(path, why) -> str:
    """`skipped <path>: <why>` on one line; the reason's own copy of the path and the name of a user
    error's type (the workers report `ValueError: <path>: ...`) are dropped."""
    path, why = str(path), _ERROR_NAME.sub("", str(why).strip())
    if why.startswith(f"{path}: "):
        why = why[len(path) + 2:]
    return printable(f"skipped {path}: {why or 'unreadable'}")


def partial_exit(done: int, skipped: int, skip_bad: bool) -> int:
    """0 when everything was read; 1 when some inputs were skipped (0 with --skip-bad) or none was read."""
    if not done:
        return 1
    return 1 if skipped and not skip_bad else 0


def nonnegative_int(value: str) -> int:
    """argparse type of a count such as --workers or --explain: an integer >= 0."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {n}")
    return n


def add_device_arguments(parser, batch_size: int = 64) -> None:
    """--batch-size, --workers (DataLoader workers decoding images, >= 0) and --device, as every
    image-batch command spells them."""
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--workers", type=nonnegative_int, default=None,
                        help="DataLoader workers decoding images (default: cores - 1)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
