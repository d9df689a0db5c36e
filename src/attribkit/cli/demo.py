"""``attribkit demo``: the main job, which writes OUT/report.html."""

from __future__ import annotations

import argparse
from typing import Any

from attribkit.cli._common import UsageError

__all__ = ["register"]


def _cmd_demo(args: argparse.Namespace) -> int:
    from attribkit.demo import TASKS, run_demo

    if args.task not in TASKS:
        raise UsageError(f"unknown demo task {args.task!r}; choose from {', '.join(TASKS)}")
    if args.photos < 1:
        raise UsageError(f"--photos must be at least 1, got {args.photos}")
    run_demo(out=args.out, task=args.task, quiet=args.quiet, photos=args.photos)
    return 0


def register(sub: Any) -> None:
    """Add this command to the ``attribkit`` sub-parsers."""
    d = sub.add_parser("demo", help="run the demonstration and write OUT/report.html",
                       description="the figures of Gradients of Counterfactuals on "
                                   "EfficientNet-Lite0 (or another task): "
                                   "IG vs gradients, saturation, interior gradients, all methods, "
                                   "AOPC. Writes OUT/report.html and prints a summary.")
    d.add_argument("--out", "-o", default="out", help="output folder (default: out)")
    d.add_argument("--task", default="vision",
                   help="vision (default), toy (tiny CNN, seconds), text, tabular, chem, "
                        "language (LSTM LM, Gradients of Counterfactuals section 3.2)")
    d.add_argument("--photos", type=int, default=3, help="photos explained (vision; default 3)")
    d.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    d.set_defaults(func=_cmd_demo)
