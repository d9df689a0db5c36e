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
import resource
import signal
import time
from pathlib import Path
from types import FrameType

import torch

from attribkit.zoo import chem

#: Options per method: bigger batches for the perturbation methods, a few Shapley permutations.
OPTIONS: dict[str, dict[str, object]] = {
    "occlusion": {"batch_size": 1024},
    "prediction_difference": {"batch_size": 1024},
    "shapley_values": {"mode": "sampling", "n_samples": 16, "batch_size": 1024},
    "expected_gradients": {"n_samples": 64},
}


def _alarm(_sig: int, _frame: FrameType | None) -> None:
    raise TimeoutError("over the per-method time budget")


def _run(trained: chem.TrainedModel, test: chem.MoleculeSet, prop: str, steps: int,
         time_limit: float, budget: int, names: list[str]) -> list[chem.FaithfulnessResult]:
    """Every registered method, each under a wall-time budget (SIGALRM)."""
    from attribkit.methods.registry import methods

    out = []
    signal.signal(signal.SIGALRM, _alarm)
    for name in names or list(methods()):
        signal.alarm(budget)
        try:
            out += chem.faithfulness(trained.model, test, prop, methods=[name], steps=steps,
                                     time_limit=time_limit, options=OPTIONS)
        finally:
            signal.alarm(0)
        r = out[-1]
        print(f"  {prop} {name}: {r.corr_with_pairs:.3f} {r.error} ({r.seconds:.0f} s)",
              flush=True)
    return sorted(out, key=lambda r: (math.isnan(r.corr_with_pairs),
                                      -(0.0 if math.isnan(r.corr_with_pairs)
                                        else r.corr_with_pairs)))


def table(prop: str, n_molecules: int, steps: int, time_limit: float, budget: int,
          names: list[str]) -> str:
    """Markdown: model fit, the methods ranked, and the shares of bonded and other pairs."""
    trained = chem.train_property_model(prop)
    test = chem.load_molecules(prop, "test", n=n_molecules)
    t0 = time.perf_counter()
    res = _run(trained, test, prop, steps, time_limit, budget, names)
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
    ap.add_argument("--budget", type=int, default=300,
                    help="wall-time budget per method and property (seconds)")
    ap.add_argument("--memory-gb", type=float, default=6.0,
                    help="address-space limit, so that a method that explodes fails alone")
    ap.add_argument("--props", nargs="+", default=list(chem.PROPERTIES))
    ap.add_argument("--methods", nargs="*", default=[], help="default: every registered one")
    ap.add_argument("--out", type=Path, default=Path("out/chem_faithfulness.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)  # small tensors: one thread is fastest
    limit = int(args.memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    text = "\n".join(table(p, args.molecules, args.steps, args.time_limit, args.budget,
                           args.methods) for p in args.props)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
