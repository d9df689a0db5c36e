"""``attribkit audit``: the axiom and unification tables."""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Any

from attribkit.cli._common import UsageError

__all__ = ["register"]


def _cmd_audit(args: argparse.Namespace) -> int:
    from attribkit.methods import get

    methods_: list[str] | None = None
    if args.method:
        try:
            methods_ = [get(m).name for m in args.method]
        except Exception as err:
            raise UsageError(str(err)) from err
    both = not args.axioms and not args.unification
    parts: list[str] = []
    notes: list[str] = []
    if args.axioms or both:
        try:
            from attribkit import axioms
        except ImportError:
            notes.append("axiom audit: attribkit.axioms is not available in this build")
        else:
            table = axioms.audit(methods_, progress=not args.quiet)
            parts.append(table.to_markdown())
    if args.unification or both:
        try:
            from attribkit.theory import unification
        except ImportError:
            notes.append("unification: attribkit.theory.unification is not available")
        else:
            res = unification.run_unification(methods_)
            parts.append(unification.render_markdown(res, command="attribkit audit"))
    text = "\n\n".join(parts)
    if args.out:
        out = pathlib.Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
        print(f"wrote {out}")
    else:
        print(text)
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    return 0


def register(sub: Any) -> None:
    """Add this command to the ``attribkit`` sub-parsers."""
    a = sub.add_parser("audit", help="axiom and unification tables",
                       description="Print the axiom audit (attribkit.axioms) and the unification "
                                   "table (attribkit.theory.unification) as markdown; both by "
                                   "default.")
    a.add_argument("--axioms", action="store_true", help="only the method x axiom table")
    a.add_argument("--unification", action="store_true", help="only the unification table")
    a.add_argument("--method", "-m", action="append", default=None,
                   help="audit only this method (repeatable; default all registered)")
    a.add_argument("--out", "-o", default=None, help="write the markdown to this file")
    a.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    a.set_defaults(func=_cmd_audit)
