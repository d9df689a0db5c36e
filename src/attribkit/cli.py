"""The ``attribkit`` command: a thin layer over the public API.

Exit codes: 0 success, 2 bad usage, 1 failure (one-line reason on stderr).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _cmd_methods(args: argparse.Namespace) -> int:
    from attribkit.methods import methods

    for name, info in methods().items():
        print(f"{name:28s} {info.family:13s} baseline={info.needs_baseline!s:5s} "
              f"complete={info.complete!s:5s} {info.summary}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from attribkit.demo import run_demo

    run_demo(out=args.out, task=args.task, quiet=args.quiet, photos=args.photos)
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="attribkit", description="Attribution methods for PyTorch.")
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("methods", help="list the registered attribution methods")
    m.set_defaults(func=_cmd_methods)
    d = sub.add_parser("demo", help="run the demonstration and write out/report.html")
    d.add_argument("--out", default="out", help="output folder (default: out)")
    d.add_argument("--quiet", action="store_true", help="no progress bars")
    d.add_argument("--task", default="vision", help="vision (default), toy, text, tabular, chem")
    d.add_argument("--photos", type=int, default=3, help="photos explained (vision)")
    d.set_defaults(func=_cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    try:
        return int(args.func(args))
    except Exception as e:
        print(f"attribkit: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
