"""Short readings of the report's tables: what the numbers say, in a sentence or two."""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = ["read_aopc", "read_gaps", "read_methods"]


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
