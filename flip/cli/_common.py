"""What several commands share: the partial-failure exit code and argument checks that name the flag."""

from __future__ import annotations

import argparse


def add_skip_bad(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--skip-bad", action="store_true",
                        help="unreadable inputs are expected: exit 0 when some were skipped (default: exit 1)")


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
