"""The interaction indices as allocations of dividends: a generated section of docs/unification.md.

Each Shapley interaction index of order ``k`` passes the Harsanyi dividend ``J(T)`` of a
coalition ``T`` to each sub-coalition ``S`` (``|S| <= k``) with a share ``W[t, s]`` that depends
only on the sizes (:mod:`attribkit.core.interaction_indices`); the attributions of Table 2 are
the case ``k = 1``. :func:`interaction_section` renders the weight table of every index, what
each keeps and how it splits the rest, and checks it on the polynomials of Table 2
(:func:`~attribkit.theory.suite.default_suite`): the index computed by
:func:`attribkit.interactions` from the model's ``2^n`` evaluations equals the weight table
applied to the exact Taylor effects (:func:`~attribkit.theory.taylor.polynomial_terms`), whose
groups by support are the dividends.

Run ``python -m attribkit.theory.interaction_page --out docs/unification.md`` to splice the
section (between ``interaction-indices`` markers) into the page; regenerating the whole page
with :mod:`attribkit.theory.unification` keeps it.
"""

from __future__ import annotations

import argparse
import math
import pathlib
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import torch

from attribkit.core.interaction_indices import INDICES, index_weight, indices_from_sparse
from attribkit.core.pages import write_section
from attribkit.methods.interactions import interactions
from attribkit.theory.suite import TestFunction, default_suite
from attribkit.theory.taylor import polynomial_terms
from attribkit.toys import Polynomial

__all__ = ["SECTION", "IndexCheck", "check_polynomials", "interaction_section", "main"]

#: The marker name of the section in docs/unification.md.
SECTION = "interaction-indices"

#: The agreement demanded between the two computations (float64).
TOLERANCE = 1e-10

_RULES = {
    "Moebius": ("orders <= k as they are", "dropped", "no (loses orders > k)"),
    "SII": ("no: a pair also receives shares of every larger dividend",
            "1 / (t - s + 1) to each s-subset: every order s <= k gets a share", "no"),
    "BII": ("no: a pair also receives shares of every larger dividend",
            "2^-(t - s) to each s-subset", "no"),
    "STII": ("orders < k as they are", "split equally over its C(t, k) subsets of size k",
             "yes"),
    "FSII": ("orders <= k as they are",
             "projected onto the orders <= k (best k-additive fit under the Shapley kernel): "
             "signed shares to every order", "yes"),
    "k-SII": ("orders <= k after the Bernoulli correction of SII",
              "Bernoulli-weighted SII shares to every order s <= k", "yes"),
}


@dataclass(frozen=True)
class IndexCheck:
    """One polynomial and one index: the two computations and the totals.

    Attributes
    ----------
    function
        The suite function's name.
    index
        The interaction index.
    difference
        The largest ``|index from evaluations - table applied to the Taylor effects|``.
    total
        The sum of the index over the coalitions of orders ``1 .. k``.
    change
        ``F(x) - F(b)``.
    """

    function: str
    index: str
    difference: float
    total: float
    change: float


def _fmt(w: Fraction) -> str:
    return str(w) if w.denominator != 1 else str(w.numerator)


def _polynomials() -> list[TestFunction]:
    return [fn for fn in default_suite(relu=False) if fn.kind == "taylor"]


def check_polynomials(order: int = 2) -> list[IndexCheck]:
    """Every index of every Table 2 polynomial, from evaluations and from the Taylor effects.

    Parameters
    ----------
    order
        The order ``k`` of the indices.
    """
    out = []
    for fn in _polynomials():
        assert isinstance(fn.model, Polynomial)
        n = int(fn.inputs.shape[1])
        k = min(order, n)
        dec = polynomial_terms(fn.model, fn.inputs, fn.baseline)
        effects = dec.effects()
        supports = list(effects)
        div = torch.tensor([effects[s] for s in supports], dtype=torch.float64)
        for index in INDICES:
            got = interactions(fn.model, fn.inputs, index=index, order=k,
                               baseline=fn.baseline, target=0)
            ref = indices_from_sparse(supports, div, n, index, k) if supports else \
                torch.zeros(len(got.coalitions), dtype=torch.float64)
            vals = got.values.reshape(-1)
            nonempty = torch.tensor([len(c) > 0 for c in got.coalitions])
            out.append(IndexCheck(fn.name, index,
                                  float((vals - ref)[nonempty].abs().max()),
                                  float(vals[nonempty].sum()),
                                  dec.output - dec.baseline_output))
    return out


def _weight_table(index: str, order: int, max_t: int) -> list[str]:
    head = ["dividend order t"]
    head += [f"to each {s}-subset" for s in range(1, order + 1)]
    head += [f"order {s} in all" for s in range(1, order + 1)] + ["kept in all"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in range(1, max_t + 1):
        each = [index_weight(index, t, s, order) for s in range(1, order + 1)]
        alls = [math.comb(t, s) * w for s, w in zip(range(1, order + 1), each, strict=True)]
        cells = [str(t)] + [_fmt(w) for w in each] + [_fmt(a) for a in alls]
        cells.append(_fmt(sum(alls, Fraction(0))))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _triple_example(order: int) -> list[str]:
    fn = next(f for f in _polynomials() if f.name.startswith("x1 x2 x3"))
    lines = ["| index | x1 (each of x1, x2, x3) | x1 x2 (each pair of them) | x4 and its pairs |",
             "|---|---|---|---|"]
    for index in INDICES:
        got = interactions(fn.model, fn.inputs, index=index, order=order, baseline=fn.baseline,
                           target=0)
        one, pair = float(got.value((0,)).reshape(-1)[0]), float(got.value((0, 1)).reshape(-1)[0])
        dummy = max(abs(float(got.value(c).reshape(-1)[0])) for c in ((3,), (0, 3), (2, 3)))
        lines.append(f"| {index} | {one:.4g} | {pair:.4g} | {dummy:.3g} |")
    return lines


def interaction_section(order: int = 2, max_t: int = 5) -> str:
    """The markdown section (without markers), checked on the polynomials.

    Parameters
    ----------
    order
        The order ``k`` the tables show.
    max_t
        The largest dividend order in the weight tables.
    """
    checks = check_polynomials(order)
    lines = [
        "## Interaction indices: allocations of the same dividends",
        "",
        "Generated by `python -m attribkit.theory.interaction_page --out docs/unification.md` "
        "(attribkit.theory.interaction_page); `python -m attribkit.theory.unification` keeps "
        "this section. An attribution gives each feature one number; an interaction index of "
        f"order k gives one to every coalition of at most k features (`attribkit.interactions`, "
        "docs/interactions.md). Both are allocations of the same effects: the dividend `J(T)` "
        "of the game `v(S) = F(x_S, b_rest)` (on a polynomial, the Taylor terms with support "
        "`T`, as in the table above) goes to each sub-coalition `S` of `T` with `|S| = s <= k` "
        "with a share `W[t, s]` that depends only on the sizes. The Shapley value is SII of "
        "order 1 (`W[t, 1] = 1/t`, Table 1's Shapley rule) and the Banzhaf value BII of order 1 "
        f"(`2^-(t-1)`). The tables below are for k = {order}, in exact fractions; 'order s in "
        "all' is `C(t, s) W[t, s]`, the part of one dividend that lands on order s, and 'kept "
        "in all' their sum (1 for every t exactly when the index is efficient: its values of "
        "orders 1..k add up to `F(x) - F(b)`).",
        "",
        "| index | keeps | a dividend of order t > k is | efficient |",
        "|---|---|---|---|",
    ]
    lines += [f"| {ix} | {_RULES[ix][0]} | {_RULES[ix][1]} | {_RULES[ix][2]} |"
              for ix in INDICES]
    for index in INDICES:
        lines += ["", f"### {index}", "", *_weight_table(index, order, max_t)]
    lines += [
        "", "### On the polynomials of Table 2", "",
        f"For each polynomial of the suite and each index, `attribkit.interactions` (order {order},"
        " from the model's 2^n evaluations at the function's baseline, fast Moebius transform "
        "and the index's weights) is set against the weight table applied to the exact Taylor "
        f"effects (`polynomial_terms(...).effects()`). 'agree' means every coalition of orders "
        f"1..{order} agrees to {TOLERANCE:g}; the columns give the sum of the index over those "
        "coalitions next to `F(x) - F(b)`.",
        "",
        "| function | F(x) - F(b) | " + " | ".join(INDICES) + " | agree |",
        "|---|---|" + "---|" * len(INDICES) + "---|",
    ]
    for name in dict.fromkeys(c.function for c in checks):
        mine = [c for c in checks if c.function == name]
        ok = all(c.difference <= TOLERANCE for c in mine)
        cells = [f"{c.total:.4g}" for c in mine]
        lines.append(f"| {name} | {mine[0].change:.4g} | " + " | ".join(cells)
                     + f" | {'yes' if ok else 'NO'} |")
    lines += [
        "", "**One effect, six allocations.** `x1 x2 x3 (x4 dummy)` has a single dividend, "
        "`J(x1 x2 x3) = -1.5` (order 3). At order 2 each index shares it as follows (x4 is a "
        "dummy: it receives nothing under any index):", "", *_triple_example(order), "",
        "Moebius drops the triple (it keeps orders <= k as they are); STII gives it to the three"
        " pairs equally; FSII gives the pairs more than the whole and takes it back from the "
        "single players (signed shares, the best additive fit); SII and BII pass shares to "
        "both orders without adding up to -1.5; k-SII corrects SII so that they do.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: splice the section into the page."""
    ap = argparse.ArgumentParser(prog="python -m attribkit.theory.interaction_page",
                                 description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--out", default="docs/unification.md", help="the page to splice into")
    args = ap.parse_args(argv)
    write_section(pathlib.Path(args.out), SECTION, interaction_section())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
