"""Entry point of the ``initlab`` command."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ..errors import InitlabError

# Subcommand modules under initlab.cli, in the order --help lists them.
COMMANDS = ("catalog", "init", "doctor", "lab", "demo")

DESCRIPTION = """\
initlab: initialize neural networks well, and see why an initialization works or fails.

  initlab catalog                  every initialization scheme, its formula and origin
  initlab describe he_normal       one scheme in full
  initlab init FILE.py:FACTORY     initialize a model and print what was done
  initlab doctor FILE.py:FACTORY   diagnose signal propagation, dead/saturated units, symmetry
  initlab lab list | run NAME      reproducible experiments on the classic questions
  initlab demo                     the quick tour (90-120 s on a busy 2-core machine)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="initlab", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"initlab {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"initlab.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"initlab.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def _version() -> str:
    from initlab import __version__

    return __version__


def _preload_rich() -> None:
    """``rich.style`` draws from Python's global ``random`` when first imported (an id counter); import it
    here with the state put back, so that running the CLI in-process leaves ``random`` as it was."""
    import random

    state = random.getstate()
    try:
        import rich.console  # noqa: F401
    finally:
        random.setstate(state)


def main(argv: Sequence[str] | None = None) -> int:
    _preload_rich()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (InitlabError, ValueError, TypeError, OSError) as exc:  # user mistakes: one line, no traceback
        text = " ".join(str(exc).split()) or type(exc).__name__
        print(f"initlab {args.command}: error: {text}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"initlab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
