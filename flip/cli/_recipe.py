"""What the recipe commands share: `--config YAML` plus `--section.key value` overrides, one recipe
config dataclass, its `run(config)`, `--print-config`, and bad input reported in one line."""

from __future__ import annotations

import argparse
import sys
from typing import Callable


def recipe_command(prog: str, doc: str, config_cls, run, config_help: str, argv: list[str] | None = None,
                   report: Callable[[object], str] | None = None, run_section: str | None = None) -> int:
    """Parse `--config`, load `config_cls` with the overrides (flip train's rules), call `run(config)`;
    `report(result)` gives the line printed when it is done. Bad input: one line, exit 2; a loss that
    stopped being finite: exit 1. With `run_section` (the prefix of the config's resume/overwrite
    fields: "run." or ""), `--resume [CHECKPOINT]` and `--overwrite` set them, as in `flip train`."""
    p = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0], allow_abbrev=False,
                                epilog="Any config field can be overridden: --section.key value",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None, help=config_help)
    p.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    if run_section is not None:
        p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CHECKPOINT",
                       help="continue from a checkpoint (default: the last one in the output folder)")
        p.add_argument("--overwrite", action="store_true",
                       help="start afresh in an output folder holding a previous run (its run files are removed)")
    args, overrides = p.parse_known_args(argv)
    if run_section is not None and args.resume is not None:
        overrides += [f"--{run_section}resume", args.resume]
    if run_section is not None and args.overwrite:
        overrides += [f"--{run_section}overwrite", "true"]
    from flip.train.config import config_yaml, load_config
    from flip.train.loop import NonFiniteLossError

    try:
        config = load_config(args.config, overrides, cls=config_cls)
        if args.print_config:
            print(config_yaml(config), end="")
            return 0
        result = run(config)
    except (ValueError, OSError, TypeError, ImportError, NonFiniteLossError) as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 1 if isinstance(err, NonFiniteLossError) else 2
    if report is not None:
        print(f"{prog}: {report(result)}", file=sys.stderr)
    return 0
