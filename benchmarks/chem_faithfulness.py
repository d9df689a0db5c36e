"""Faithfulness of attribution methods against RDKit's exact per-atom TPSA and logP contributions.

For each property, the cached (or freshly trained) graph network of ``attribkit.zoo.chem`` is
explained on held-out NCI molecules by every registered method (zero baseline, the seed's
scaled-to-zero counterfactual); the per-molecule Pearson correlation between per-atom
attributions (with and without half of each pair's attribution) and the exact contributions is
averaged. Methods that cannot handle the model are listed with their error.

Run: ``nice -n 10 python benchmarks/chem_faithfulness.py --molecules 100``. Prints markdown
tables (paste them into ``docs/zoo-chem.md``) and writes them to ``--out``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from attribkit.zoo import chem


def table(prop: str, n_molecules: int, steps: int, time_limit: float) -> str:
    """Markdown: model fit, the methods ranked, and the shares of bonded and other pairs."""
    trained = chem.train_property_model(prop)
    test = chem.load_molecules(prop, "test", n=n_molecules)
    t0 = time.perf_counter()
    res = chem.faithfulness(trained.model, test, prop, steps=steps, time_limit=time_limit)
    lines = [
        f"### {prop}: {trained.n_train} training molecules, {trained.epochs} epochs; held-out "
        f"RMSE {trained.test_rmse:.3g}, R^2 {trained.test_r2:.3f}",
        "",
        f"{len(test)} held-out molecules (molecules whose exact contributions are all equal are "
        f"left out of the mean), {steps} steps for path methods, "
        f"{time.perf_counter() - t0:.0f} s in all.",
        "",
        "| rank | method | corr. atoms + half pairs | corr. atoms only | molecules | share atoms "
        "| share bonded pairs | share other pairs | s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rank = 0
    for r in res:
        if r.error:
            continue
        rank += 1
        sh = r.shares
        lines.append(
            f"| {rank} | {r.method} | {r.corr_with_pairs:.3f} | {r.corr_atoms_only:.3f} | "
            f"{r.n_molecules} | {sh.get('atoms', math.nan):.2f} | "
            f"{sh.get('bonded_pairs', math.nan):.2f} | {sh.get('other_pairs', math.nan):.2f} | "
            f"{r.seconds:.0f} |")
    skipped = [r for r in res if r.error]
    if skipped:
        lines += ["", "Not ranked:", ""]
        lines += [f"* `{r.method}`: {r.error}" for r in skipped]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Parse arguments, run both properties, print and write the tables."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--molecules", type=int, default=100)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--time-limit", type=float, default=10.0,
                    help="skip a method whose first molecule takes longer (seconds)")
    ap.add_argument("--props", nargs="+", default=list(chem.PROPERTIES))
    ap.add_argument("--out", type=Path, default=Path("out/chem_faithfulness.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)  # small tensors: one thread is fastest
    text = "\n".join(table(p, args.molecules, args.steps, args.time_limit) for p in args.props)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
