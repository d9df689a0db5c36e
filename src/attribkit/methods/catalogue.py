"""The method catalogue: the registry as a markdown table, for ``docs/methods.md`` and the CLI.

``python -m attribkit.methods.catalogue --out docs/methods.md`` rewrites the table between the
``<!-- catalogue:start -->`` and ``<!-- catalogue:end -->`` markers of the page, leaving the prose
around it alone; a test checks that the committed page matches the registry.
"""

from __future__ import annotations

import argparse
import inspect
import pathlib

from attribkit.core.pages import write_section
from attribkit.methods.registry import MethodInfo, methods

__all__ = ["COMMON_PARAMETERS", "markdown_table", "method_parameters", "update_page"]

#: Keyword arguments every method takes; the table lists the others.
COMMON_PARAMETERS = ("model", "inputs", "target", "baseline", "batch_size", "progress",
                     "forward_args")


def method_parameters(info: MethodInfo) -> list[str]:
    """The method's own keyword arguments (those beyond :data:`COMMON_PARAMETERS`)."""
    sig = inspect.signature(info.fn)
    return [p for p in sig.parameters if p not in COMMON_PARAMETERS]


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def markdown_table() -> str:
    """One row per registered method: names, properties, declared axioms, own parameters."""
    lines = ["| method (aliases) | family | baseline | complete | needs `nn.Module` | random | "
             "declared axioms | own parameters | what it computes |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, info in methods().items():
        alias = f" ({', '.join(f'`{a}`' for a in info.aliases if a != name)})" if any(
            a != name for a in info.aliases) else ""
        params = ", ".join(f"`{p}`" for p in method_parameters(info)) or "none"
        lines.append(
            f"| `{name}`{alias} | {info.family} | {_yes(info.needs_baseline)} | "
            f"{_yes(info.complete)} | {_yes(info.needs_module)} | {_yes(info.stochastic)} | "
            f"{', '.join(sorted(info.axioms)) or 'none'} | {params} | {info.summary} |")
    return "\n".join(lines)


def update_page(path: str | pathlib.Path) -> pathlib.Path:
    """Rewrite the catalogue block of the page at ``path`` (appended if it has none)."""
    return write_section(path, "catalogue", markdown_table(), title="# Methods")


def main(argv: list[str] | None = None) -> int:
    """Print the table, or write it into ``--out``."""
    ap = argparse.ArgumentParser(prog="python -m attribkit.methods.catalogue",
                                 description="The method registry as a markdown table.")
    ap.add_argument("--out", help="page whose catalogue block to rewrite (docs/methods.md)")
    args = ap.parse_args(argv)
    if args.out:
        update_page(args.out)
    else:
        print(markdown_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
