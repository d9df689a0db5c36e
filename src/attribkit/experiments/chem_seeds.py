"""The activity-classifier findings over several training seeds, with the paper's numbers beside.

Retraining the activity classifier of :mod:`attribkit.experiments.chem_activity` (CHEMBL2321810,
active when pIC50 >= 6.5) gives a different network whenever anything about training changes:
the seed (split, initialisation, batch order), and also the machine, because float32 kernels pick
their vector instructions (and so their rounding) by processor, and 25 epochs of Adam amplify a
last-bit difference into a different model. A finding about "the" network is therefore a
finding about one draw; this module measures each finding of Sundararajan, Taly & Yan (2016),
"Gradients of Counterfactuals", section 3.1 on several seeds and reports the mean, the standard
deviation and the range, so that what holds for every draw can be told from what holds for one.

``python -m attribkit.experiments.chem_seeds`` trains (or loads) the classifier for seeds 0-4,
runs the full protocol of :mod:`attribkit.experiments.chem_activity` on each (all 200 held-out
molecules of that seed's split, 25 actives for saturation), caches each seed's numbers as JSON
beside the weights, and rewrites the ``activity-seeds`` section of docs/zoo-chem.md.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from attribkit.core.pages import write_section

__all__ = ["PAPER", "QUANTITIES", "aggregate", "main", "markdown", "run", "seed_numbers"]

_SUMMARY_VERSION = "1"
_MOST = 0.9
_PARTS = (("atoms", "atom features"), ("bonded_pairs", "bonded pairs"),
          ("other_pairs", "non-bonded pairs"))

#: The quantities reported per seed, in table order: key -> (label, format).
QUANTITIES: dict[str, tuple[str, str]] = {
    "test_auc": ("held-out ROC AUC", "{:.3f}"),
    "test_accuracy": ("held-out accuracy", "{:.3f}"),
    "train_accuracy": ("train accuracy", "{:.3f}"),
    "score_atoms": ("atom features, share of Σ F(x)", "{:+.1%}"),
    "score_bonded_pairs": ("bonded pairs, share of Σ F(x)", "{:+.1%}"),
    "score_other_pairs": ("non-bonded pairs, share of Σ F(x)", "{:+.1%}"),
    "delta_atoms": ("atom features, share of Σ F(x) - F(0)", "{:+.1%}"),
    "delta_bonded_pairs": ("bonded pairs, share of Σ F(x) - F(0)", "{:+.1%}"),
    "delta_other_pairs": ("non-bonded pairs, share of Σ F(x) - F(0)", "{:+.1%}"),
    "f0_min": ("F(0), smallest over the held-out molecules", "{:.3f}"),
    "f0_max": ("F(0), largest over the held-out molecules", "{:.3f}"),
    "max_gap": ("largest completeness gap (probability)", "{:.1e}"),
    "dead": ("dead features (present, dead on >= 90 % of their molecules)", "{:.0f}"),
    "never_present": ("feature columns never present (0 by construction)", "{:.0f}"),
    "least_share": ("smallest mean share of a present feature", "{:.4f}"),
    "twins_two_layers": ("look-alike atoms with identical IG, trained 2 layers", "{:.0f}"),
    "twins_one_layer": ("look-alike atoms with identical IG, untrained 1 layer", "{:.0f}"),
    "lookalike": ("look-alike atom pairs (non-symmetric)", "{:.0f}"),
    "alpha_90": ("median α from which F(αx) stays within 10 % of its rise", "{:.2f}"),
    "last_tenth": ("median share of the rise gained on 0.9 <= α <= 1 (line: 0.10)", "{:.3f}"),
    "grad_ratio": ("median x·∇F(x) / (F(x) - F(0))", "{:.3f}"),
    "grad_sum_min": ("Σ_i ∂F/∂x_i along the path, smallest", "{:+.1f}"),
    "grad_sum_max": ("Σ_i ∂F/∂x_i along the path, largest", "{:+.1f}"),
    "sign_change": ("actives whose gradient sum changes sign along the path", "{:.0f}"),
    "misses": ("actives scored below 0.5", "{:.0f}"),
    "n_actives": ("actives on the saturation path", "{:.0f}"),
}

#: The paper's number or statement beside each quantity (section 3.1 and Figure 13).
PAPER: dict[str, str] = {
    "score_bonded_pairs": "+46 %",
    "score_other_pairs": "-3 %",
    "twins_two_layers": "0 (\"not the case for two or more layers\")",
    "twins_one_layer": "several (W1N2: carbons 2, 3, 14, 15, 16 at 0.0043)",
    "last_tenth": "saturation \"near the vicinity of the input (0.9 <= α <= 1)\"",
    "grad_sum_min": "\"varies significantly along the scaling path\" (Fig. 13b)",
}


def seed_numbers(f: Any) -> dict[str, float]:
    """Flatten one seed's :class:`~attribkit.experiments.chem_activity.ActivityFindings`.

    Parameters
    ----------
    f : ActivityFindings
        One run of :func:`attribkit.experiments.chem_activity.run`.

    Returns
    -------
    dict of str to float
        One number per key of :data:`QUANTITIES`.
    """
    out = {"test_auc": f.quality["held-out ROC AUC"],
           "test_accuracy": f.quality["held-out accuracy"],
           "train_accuracy": f.quality["train accuracy"]}
    for of in ("score", "delta"):
        shares = f.split.shares(of)
        out.update({f"{of}_{key}": shares[key] for key, _ in _PARTS})
    out["f0_min"], out["f0_max"] = float(np.min(f.f0)), float(np.max(f.f0))
    out["max_gap"] = f.max_gap
    present = [d for d in f.dead if d.n_present]
    out["dead"] = float(sum(d.dead_rate >= _MOST for d in present))
    out["never_present"] = float(sum(not d.n_present for d in f.dead))
    out["least_share"] = min((d.mean_share for d in present), default=math.nan)
    two, one = f.twins["trained classifier, 2 layers"], f.twins["seeded untrained net, 1 layer"]
    out["twins_two_layers"], out["twins_one_layer"] = float(two.identical), float(one.identical)
    out["lookalike"] = float(two.lookalike - two.symmetric)
    s = f.saturation
    out.update(alpha_90=s.alpha_90, last_tenth=s.last_tenth, grad_ratio=s.grad_ratio)
    g = np.asarray(f.path_grads, dtype=np.float64)
    out["grad_sum_min"], out["grad_sum_max"] = float(g.min()), float(g.max())
    out["sign_change"] = float(((g.min(axis=1) < 0) & (g.max(axis=1) > 0)).sum())
    out["misses"] = float((np.asarray(f.path_scores)[:, -1] < 0.5).sum())
    out["n_actives"] = float(len(g))
    return {k: float(out[k]) for k in QUANTITIES}


def _cache_file(seed: int, steps: int | None) -> Any:
    from attribkit.zoo._cache import cache_dir
    from attribkit.zoo.chem.activity import ACTIVITY_VERSION

    return cache_dir("chem") / (f"findings_v{ACTIVITY_VERSION}.{_SUMMARY_VERSION}_e25_s{seed}"
                                f"_k{steps or 128}.json")


def run(seeds: Sequence[int] = (0, 1, 2, 3, 4), *, progress: bool = False, cache: bool = True,
        runner: Callable[[int], Any] | None = None) -> dict[int, dict[str, float]]:
    """Each seed's numbers (:func:`seed_numbers`) of the full protocol, cached per seed.

    Parameters
    ----------
    seeds : sequence of int
        Training and split seeds.
    progress : bool
        Show progress bars.
    cache : bool
        Read and write each seed's numbers as JSON in ``cache_dir("chem")`` (keyed by the
        classifier's version, the seed and the protocol).
    runner : callable, optional
        ``runner(seed) -> ActivityFindings``; default the full protocol of
        :func:`attribkit.experiments.chem_activity.run` (tests pass a small one, uncached).

    Returns
    -------
    dict of int to dict
        Seed -> numbers.
    """
    from attribkit.experiments import chem_activity

    out: dict[int, dict[str, float]] = {}
    for seed in seeds:
        path = _cache_file(seed, None) if runner is None and cache else None
        if path is not None and path.is_file():
            out[seed] = {k: float(v) for k, v in json.loads(path.read_text()).items()}
            continue
        f = (runner(seed) if runner is not None
             else chem_activity.run(quick=False, progress=progress, seed=seed))
        out[seed] = seed_numbers(f)
        if progress:
            print(f"seed {seed}: " + ", ".join(f"{k}={v:.4g}" for k, v in out[seed].items()),
                  flush=True)
        if path is not None:
            path.write_text(json.dumps(out[seed], indent=1))
    return out


def aggregate(per_seed: dict[int, dict[str, float]]) -> list[list[str]]:
    """Rows ``[quantity, mean, sd, min, max, per seed, paper]`` over the seeds.

    Parameters
    ----------
    per_seed : dict
        From :func:`run`.

    Returns
    -------
    list of list of str
        One row per key of :data:`QUANTITIES`; the standard deviation is the sample one
        (``ddof=1``; 0 for a single seed).
    """
    rows = []
    seeds = sorted(per_seed)
    for key, (label, fmt) in QUANTITIES.items():
        v = np.array([per_seed[s][key] for s in seeds], dtype=np.float64)
        sd = float(v.std(ddof=1)) if len(v) > 1 else 0.0
        sdf = fmt.replace("+", "")
        rows.append([label, fmt.format(v.mean()), sdf.format(sd), fmt.format(v.min()),
                     fmt.format(v.max()), " / ".join(fmt.format(x) for x in v),
                     PAPER.get(key, "-")])
    return rows


def markdown(per_seed: dict[int, dict[str, float]]) -> str:
    """The docs section: the protocol in one line, then the table of :func:`aggregate`."""
    seeds = sorted(per_seed)
    head = ["quantity", "mean", "sd", "min", "max", f"seeds {', '.join(map(str, seeds))}",
            "the paper"]
    out = [f"{len(seeds)} training seeds (each its own split, initialisation and batch order), "
           "each measured on its 200 held-out molecules with 128 Gauss-Legendre IG steps and "
           "25 held-out actives on the saturation path. Regenerate with: "
           "`python -m attribkit.experiments.chem_seeds`.", "",
           "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in aggregate(per_seed)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Run (or load) every seed and rewrite the ``activity-seeds`` section of the page."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--page", default="docs/zoo-chem.md")
    ap.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated training seeds")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    per_seed = run(seeds, progress=True)
    text = markdown(per_seed)
    write_section(args.page, "activity-seeds", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
