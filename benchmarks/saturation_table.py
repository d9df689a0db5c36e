"""The saturation table of docs/evaluation.md: the top-class probability along the path from black.

``saturation_curves(SoftmaxModel(model), x, baseline=BLACK_BASELINE, alphas=linspace(0, 1, 26))``
on the six default sample photos (forward passes only). Rewrites the ``saturation-table``
section of docs/evaluation.md::

    python benchmarks/saturation_table.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from attribkit.core.pages import write_section
from attribkit.evaluate import saturation_curves
from attribkit.zoo import vision

DOC = Path(__file__).resolve().parent.parent / "docs" / "evaluation.md"


def table(alphas: int = 26) -> str:
    """The markdown table, one row per default photo."""
    model = vision.SoftmaxModel(vision.load_efficientnet_lite0()).eval()
    photos = vision.sample_photos()
    x = torch.cat(list(photos.values()))
    grid = torch.linspace(0, 1, alphas, dtype=torch.float64)
    t0 = time.perf_counter()
    s = saturation_curves(model, x, baseline=vision.BLACK_BASELINE, alphas=grid.tolist())
    dt = time.perf_counter() - t0
    at = {a: int(torch.argmin((s.alphas - a).abs())) for a in (0.0, 0.2, 0.4, 1.0)}
    r50, r90 = s.reach_alpha(0.5), s.reach_alpha(0.9)
    head = ["photo", "F(0)", "F(0.2)", "F(0.4)", "F(1)", "reach 50 %", "reach 90 %",
            "stays within 5 % from", "max / F(1)"]
    out = [f"Regenerate with: `python benchmarks/saturation_table.py` ({len(photos)} photos, "
           f"{alphas} alphas, forward passes only, {dt:.0f} s).", "",
           "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, name in enumerate(photos):
        sc = s.scores[i]
        out.append("| " + " | ".join(
            [name, *(f"{float(sc[at[a]]):.3f}" for a in (0.0, 0.2, 0.4, 1.0)),
             f"{float(r50[i]):.2f}", f"{float(r90[i]):.2f}", f"{float(s.saturation_alpha[i]):.2f}",
             f"{float(sc.max() / sc[-1]):.2f}"]) + " |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--alphas", type=int, default=26)
    args = ap.parse_args()
    text = table(args.alphas)
    write_section(DOC, "saturation-table", text)
    print(text)


if __name__ == "__main__":
    main()
