"""Short readings of the report's tables: what the numbers say, in a sentence or two."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["read_aopc", "read_gaps", "read_methods", "read_saturation"]


def read_aopc(aopcs: Mapping[str, float], *, method: str = "integrated gradients",
              random: str = "random", close: float = 0.2) -> str:
    """How ``method``'s AOPC compares with the other rankings, the random one above all.

    Parameters
    ----------
    aopcs : mapping of str to float
        Ranking name to its AOPC.
    method : str, default "integrated gradients"
        The ranking under study.
    random : str, default "random"
        The name of the random ranking (the chance level).
    close : float, default 0.2
        Within this relative distance of the random AOPC, ``method`` is called close to chance.
    """
    if method not in aopcs:
        return ""
    a = float(aopcs[method])
    best = max(aopcs, key=lambda k: aopcs[k])
    parts = [] if best == method else [f"The best ranking here is {best} (AOPC "
                                       f"{aopcs[best]:.3g}), not {method}."]
    if random in aopcs:
        r = float(aopcs[random])
        if a <= r:
            parts.append(
                f"The random ranking ({r:.3g}) does at least as well as {method} ({a:.3g}): at "
                "this number of pixels and photos, the ablation cannot tell this attribution "
                "from chance. Ranking single pixels by |a| can remove strong negative evidence "
                "first, which raises the score; rank by signed attribution (sign=\"all\"), "
                "remove patches (groups=) or use more photos before drawing a conclusion.")
        elif a - r <= close * abs(r) or (r == 0 and a < 1e-12):
            parts.append(
                f"The random ranking ({r:.3g}) comes close to {method} ({a:.3g}, "
                f"{(a - r) / abs(r) if r else math.inf:.0%} above): removing pixels at random "
                "lowers the score almost as much, so this AOPC says little about the "
                "attribution; the difference is within what a few photos can show. Ranking by "
                "signed attribution (sign=\"all\") or by patches (groups=) separates them "
                "better (docs/evaluation.md).")
        else:
            ratio = a / r if r > 0 else math.inf
            parts.append(f"{method[:1].upper()}{method[1:]} ({a:.3g}) is well above the random "
                         f"ranking ({r:.3g}"
                         + (f", {ratio:.1f} times" if math.isfinite(ratio) else "")
                         + "): it found pixels the score depends on.")
    return " ".join(parts)


def read_gaps(relative_gaps: Mapping[str, float], *, tolerance: float = 0.05) -> str:
    """Which results are complete within ``tolerance`` and which gap is largest.

    Parameters
    ----------
    relative_gaps : mapping of str to float
        Row name (a photo, a method) to its relative completeness gap
        ``|sum(a) - (F(x) - F(x'))| / |F(x) - F(x')|``.
    tolerance : float, default 0.05
        The gap below which completeness is called satisfied.
    """
    finite = {k: float(v) for k, v in relative_gaps.items() if math.isfinite(float(v))}
    if not finite:
        return ""
    worst = max(finite, key=lambda k: finite[k])
    ok = [k for k, v in finite.items() if v <= tolerance]
    if len(ok) == len(finite):
        return (f"Completeness holds within {tolerance:.0%} for every row (largest relative gap "
                f"{finite[worst]:.2%}, {worst}): the attributions add up to F(x) - F(x').")
    return (f"{len(ok)} of {len(finite)} rows are complete within {tolerance:.0%}; the largest "
            f"relative gap is {finite[worst]:.1%} ({worst}). Such a row does not add up to "
            "F(x) - F(x'): for a path method (Integrated Gradients) the integral is not yet "
            "resolved, so raise steps or pass tolerance=; a method that is not complete by "
            "design (gradient x input on a non-linear model) shows its own error here.")


def read_methods(ran: int, skipped: Mapping[str, str], complete_gaps: Mapping[str, float], *,
                 tolerance: float = 0.05) -> str:
    """A reading of the every-method table: how many ran, which did not, completeness.

    Parameters
    ----------
    ran : int
        How many methods produced a result.
    skipped : mapping of str to str
        Method to the reason it did not run.
    complete_gaps : mapping of str to float
        The relative completeness gap of each method that claims completeness.
    tolerance : float, default 0.05
        The gap below which completeness is called satisfied.
    """
    parts = [f"{ran} methods ran on this photo."]
    if skipped:
        parts.append(f"{len(skipped)} did not ({', '.join(sorted(skipped))}); the table says "
                     "why.")
    finite = {k: float(v) for k, v in complete_gaps.items() if math.isfinite(float(v))}
    if finite:
        worst = max(finite, key=lambda k: finite[k])
        off = [k for k, v in finite.items() if v > tolerance]
        if not off:
            parts.append(f"Every method that claims completeness adds up to F(x) - F(x') within "
                         f"{tolerance:.0%} (largest relative gap {finite[worst]:.2%}, {worst}).")
        else:
            parts.append(f"Of the methods that claim completeness, {len(off)} miss it by more "
                         f"than {tolerance:.0%} (largest: {worst}, {finite[worst]:.1%}); the "
                         "settings here are cheap (few steps or samples), and more close the "
                         "gap.")
    return " ".join(parts)


def read_saturation(alphas: Sequence[float], scores: Sequence[Sequence[float]],
                    labels: Sequence[str], *, tail: float = 0.1, still: float = 0.05) -> str:
    """What the saturation curves show, computed from them (not fixed prose).

    Parameters
    ----------
    alphas : sequence of float
        The path positions, increasing from 0 to 1.
    scores : sequence of sequences of float
        ``(N, A)``: each curve's score at each alpha.
    labels : sequence of str
        The curves' names.
    tail : float, default 0.1
        The last part of the path examined (``alpha >= 1 - tail``).
    still : float, default 0.05
        A curve whose last ``tail`` of the path adds more than this share of its whole rise
        ``F(1) - F(0)`` still rises near ``alpha = 1``.
    """
    a = np.asarray(alphas, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64).reshape(len(labels), a.size)
    rise = s[:, -1] - s[:, 0]
    j = int(np.searchsorted(a, 1.0 - tail - 1e-12))
    late = s[:, -1] - s[:, j]
    rising = [str(lb) for lb, r, d in zip(labels, rise, late, strict=True)
              if r > 0 and d > still * r]
    falling = [str(lb) for lb, r in zip(labels, rise, strict=True) if r <= 0]
    dropping = [str(lb) for lb, r, d in zip(labels, rise, late, strict=True)
                if r > 0 and d < -still * r]
    reach = []
    for row, r in zip(s, rise, strict=True):
        if r > 0:
            k = int(np.argmax(row - row[0] >= 0.9 * r))
            reach.append(float(a[k]))
    n = len(labels)
    parts = []
    if reach:
        parts.append(f"{len(reach)} of {n} curves reach 90% of their rise F(1) - F(0) by "
                     f"α = {np.median(reach):.2f} (median; earliest {min(reach):.2f}, latest "
                     f"{max(reach):.2f}).")
    if rising:
        parts.append(f"{len(rising)} of {n} still rise near α = 1 (the last {tail:.0%} of the "
                     f"path adds more than {still:.0%} of their rise: {', '.join(rising)}): "
                     "for these the gradient at the image is not yet small.")
    elif not dropping:
        parts.append(f"All {n} flatten before α = 1 (the last {tail:.0%} of the path adds less "
                     f"than {still:.0%} of each rise), so the gradient at the image is small: "
                     "the saturation Integrated Gradients integrates past.")
    if dropping:
        parts.append(f"{len(dropping)} of {n} fall near α = 1 (by more than {still:.0%} of their "
                     f"rise over the last {tail:.0%}: {', '.join(dropping)}).")
    if falling:
        parts.append(f"{len(falling)} end no higher than they start ({', '.join(falling)}).")
    return " ".join(parts)
