"""What the recipe commands share: `--config YAML` plus `--section.key value` overrides, one recipe
config dataclass, its `run(config)`, and bad input reported in one line."""

from __future__ import annotations

import argparse
import sys


def recipe_command(prog: str, doc: str, config_cls, run, config_help: str, argv: list[str] | None = None) -> int:
    """Parse `--config`, load `config_cls` with the overrides (flip train's rules), call `run(config)`."""
    p = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0], allow_abbrev=False,
                                epilog="Any config field can be overridden: --section.key value",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None, help=config_help)
    args, overrides = p.parse_known_args(argv)
    from flip.train.config import load_config

    try:
        run(load_config(args.config, overrides, cls=config_cls))
    except (ValueError, FileNotFoundError) as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    return 0
