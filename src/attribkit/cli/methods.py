"""``attribkit methods``: the registry and what each method promises."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["register"]


def _cmd_methods(args: argparse.Namespace) -> int:
    from attribkit.methods import methods

    rows: list[dict[str, Any]] = []
    for name, info in methods().items():
        rows.append({"name": name, "family": info.family, "needs_baseline": info.needs_baseline,
                     "complete": info.complete, "axioms": sorted(info.axioms),
                     "needs_module": info.needs_module, "stochastic": info.stochastic,
                     "aliases": list(info.aliases), "summary": info.summary})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if args.markdown:
        from attribkit.methods.catalogue import markdown_table

        print(markdown_table())
        return 0
    print(f"{'method':26s} {'family':12s} {'baseline':8s} {'complete':8s} axioms")
    for r in rows:
        print(f"{r['name']:26s} {r['family']:12s} {'yes' if r['needs_baseline'] else 'no':8s} "
              f"{'yes' if r['complete'] else 'no':8s} {', '.join(r['axioms'])}")
        if args.verbose:
            alias = f" (aliases: {', '.join(r['aliases'])})" if r["aliases"] else ""
            print(f"    {r['summary']}{alias}")
    return 0


def register(sub: Any) -> None:
    """Add this command to the ``attribkit`` sub-parsers."""
    m = sub.add_parser("methods", help="list the registered attribution methods",
                       description="The method registry with each method's properties.")
    m.add_argument("--json", action="store_true", help="machine-readable output")
    m.add_argument("--verbose", "-v", action="store_true", help="add summaries and aliases")
    m.add_argument("--markdown", action="store_true",
                   help="the catalogue table of docs/methods.md (parameters included)")
    m.set_defaults(func=_cmd_methods)
