"""``python -m attribkit.axioms [--out docs/axioms.md] [--methods ...]``: the axiom audit."""

from __future__ import annotations

import argparse

from attribkit.axioms.audit import audit


def main(argv: list[str] | None = None) -> int:
    """Run the audit, print the table, and write the page if ``--out`` is given."""
    ap = argparse.ArgumentParser(prog="python -m attribkit.axioms",
                                 description="Put every registered method through the axioms.")
    ap.add_argument("--out", help="write the markdown page here (e.g. docs/axioms.md)")
    ap.add_argument("--methods", nargs="*", help="method names (default: all registered)")
    ap.add_argument("--progress", action="store_true", help="show a progress bar")
    args = ap.parse_args(argv)
    table = audit(args.methods or None, out=args.out, progress=args.progress)
    print(table.to_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
