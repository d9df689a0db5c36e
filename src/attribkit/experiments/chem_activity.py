"""Gradients of Counterfactuals section 3.1 on an activity classifier: atoms and pairs, dead
features, saturation.

The classifier is :func:`attribkit.zoo.chem.activity.train_activity_model` (CHEMBL2321810 from
RDKit's contrib data, active when pIC50 >= 6.5). On held-out molecules Integrated Gradients with
the paper's counterfactual (all atom and pair features scaled to zero) gives:

* the split of the attribution between atom features, bonded pairs and non-bonded pairs
  (the paper: bonded pairs 46 %, other pairs -3 % of the prediction score);
* dead features: feature columns present in a molecule yet given no attribution, and the
  paper's W1N2 check (look-alike atoms given identical attributions) on one and two layers;
* saturation (Figure 13): ``F(alpha x)`` and the sum of the feature gradients along alpha.

``python -m attribkit.experiments.chem_activity`` runs the full protocol (all 200 held-out
molecules, 25 actives for saturation) and rewrites the ``activity`` section of docs/zoo-chem.md;
``--out DIR`` also saves the pictures there. The chem demo runs the quick protocol.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import time
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image

from attribkit.core.pages import write_section
from attribkit.core.progress import progress_bar
from attribkit.experiments import experiment

__all__ = ["ActivityFindings", "activity_section", "main", "markdown", "run"]

_ALPHAS = np.linspace(0.0, 1.0, 51)
_MOST = 0.9
_REL_TOL = 1e-3


@dataclasses.dataclass
class ActivityFindings:
    """Everything the experiment measured (see :func:`run`).

    ``f0`` holds ``F(0)`` of every held-out molecule (the score of the all-zero counterfactual),
    ``path_scores`` and ``path_grads`` the ``(actives, alphas)`` scores ``F(alpha x)`` and sums of
    the feature gradients along the saturation path (Figure 13 a and b; ``alphas`` from 0 to 1 in
    51 steps).
    """

    quality: dict[str, float]
    n_molecules: int
    steps: int
    split: Any  # PairSplit
    split_median: dict[str, float]
    max_gap: float
    dead: list[Any]  # DeadFeature
    twins: dict[str, Any]  # network -> TwinAtoms
    saturation: Any  # SaturationSummary
    figure: Figure
    drawings: list[tuple[Image.Image, str]]
    seconds: float
    f0: np.ndarray[Any, Any] = dataclasses.field(default_factory=lambda: np.zeros(0))
    path_scores: np.ndarray[Any, Any] = dataclasses.field(default_factory=lambda: np.zeros(0))
    path_grads: np.ndarray[Any, Any] = dataclasses.field(default_factory=lambda: np.zeros(0))


def _explain(model: torch.nn.Module, feats: Any, steps: int) -> tuple[Any, Any, float]:
    from attribkit.methods.registry import explain
    from attribkit.zoo import chem

    x = chem.pack(feats.atoms.double(), feats.pairs.double())
    attr = explain(model, x, method="integrated_gradients", baseline=None, steps=steps)
    delta = float(attr.delta[0]) if attr.delta is not None else float("nan")
    expl = chem.split_attribution(attr.values[0], feats.bonded, delta=delta, method="ig")
    with torch.no_grad():
        score = float(model(x)[0])
    return expl, attr.values[0], score


def _figure(scores: np.ndarray[Any, Any], grads: np.ndarray[Any, Any]) -> Figure:
    fig = Figure(figsize=(10.0, 3.8), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    for row_s, row_g in zip(scores, grads, strict=True):
        ax1.plot(_ALPHAS, row_s, lw=1.2, alpha=0.8)
        ax2.plot(_ALPHAS, row_g, lw=1.2, alpha=0.8)
    ax1.set(xlabel="scaling parameter α", ylabel="P(active) at αx",
            title=f"(a) score along the path, {len(scores)} held-out actives")
    ax2.set(xlabel="scaling parameter α", ylabel="Σ_i ∂F/∂x_i at αx",
            title="(b) sum of the feature gradients")
    for ax in (ax1, ax2):
        ax.axvspan(0.9, 1.0, color="0.85", zorder=0)
        ax.grid(alpha=0.3)
        ax.title.set_fontsize(10)
    return fig


def _drawing(smiles: str, expl: Any, legend: str) -> Image.Image:
    from attribkit.viz import molecule_image
    from attribkit.zoo import chem

    mol = chem.mol_from_smiles(smiles)
    pm = expl.pair_matrix()
    bonds = [float(pm[b.GetBeginAtomIdx(), b.GetEndAtomIdx()]) for b in mol.GetBonds()]
    return molecule_image(mol, expl.per_atom(include_pairs=True), bonds, size=(460, 340),
                          legend=legend)


def run(quick: bool = True, progress: bool = False, seed: int = 0, *, epochs: int = 25,
        n_train: int | None = None, n_test: int | None = None, n_actives: int | None = None,
        steps: int | None = None) -> ActivityFindings:
    """Train or load the classifier and measure the pair split, dead features and saturation.

    Parameters
    ----------
    quick : bool
        24 held-out molecules and 8 actives with 64 IG steps (the demo) instead of all 200
        held-out molecules and 25 actives with 128 steps.
    progress : bool
        Show progress bars.
    seed : int
        Training and split seed.
    epochs : int
        Training epochs (25 for the documented classifier).
    n_train : int, optional
        Train on the first ``n_train`` training molecules only, uncached (tests).
    n_test, n_actives, steps : int, optional
        Override the held-out molecules, saturation actives and IG steps that ``quick`` sets.

    Returns
    -------
    ActivityFindings
        The numbers, the saturation figure and three molecule drawings.
    """
    start = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small graphs: one thread is faster on a shared machine
    try:
        return _run(quick, progress, seed, start,
                    dict(epochs=epochs, n_train=n_train, n_test=n_test, n_actives=n_actives,
                         steps=steps))
    finally:
        torch.set_num_threads(threads)


def _run(quick: bool, progress: bool, seed: int, start: float,
         opts: dict[str, int | None]) -> ActivityFindings:
    from attribkit.zoo.chem import activity as chem_activity
    from attribkit.zoo.chem import findings as chem_findings
    from attribkit.zoo.chem.model import GraphConvNet

    epochs = int(opts["epochs"] or 25)
    clf = chem_activity.train_activity_model(epochs=epochs, seed=seed, n_train=opts["n_train"])
    model = clf.model
    n_test = opts["n_test"] if opts["n_test"] is not None else 24 if quick else None
    test = chem_activity.load_activity("test", seed, n_test)
    steps = opts["steps"] or (64 if quick else 128)
    n_act = opts["n_actives"] or (8 if quick else 25)
    expls, scores, cols, present = [], [], [], []
    with progress_bar(len(test), "IG on held-out molecules", progress, unit="mol") as bar:
        for feats in test.features:
            expl, values, score = _explain(model, feats, steps)
            a, p = chem_findings.feature_columns(values, feats)
            expls.append(expl)
            scores.append(score)
            cols.append(a)
            present.append(p)
            bar.update(1)
    split = chem_findings.pair_split(expls, scores)
    per_mol = np.array([[e.atoms.sum().item(), e.pairs[e.bonded].sum().item(),
                         e.pairs[~e.bonded].sum().item()] for e in expls])
    deltas = np.array([e.delta for e in expls])
    med = np.median(per_mol / deltas[:, None], axis=0)
    gaps = np.abs(per_mol.sum(axis=1) - deltas)  # probability units
    dead = chem_findings.dead_features(np.array(cols), np.array(present), rel_tol=_REL_TOL)
    with torch.random.fork_rng(devices=[]):  # the W1N2 check: one layer, any weights will do
        torch.manual_seed(seed)
        one = chem_activity.ActivityModel(GraphConvNet(n_layers=1)).double().eval()
    one_expls = [_explain(one, feats, steps)[0] for feats in test.features]
    twins = {"trained classifier, 2 layers": chem_findings.twin_atoms(expls, test.smiles),
             "seeded untrained net, 1 layer": chem_findings.twin_atoms(one_expls, test.smiles)}
    actives = [i for i in range(len(test)) if test.labels[i] > 0.5][:n_act]
    paths = [chem_findings.saturation_path(model, test.features[i], _ALPHAS) for i in actives]
    sat_s = np.array([p[0] for p in paths])
    sat_g = np.array([p[1] for p in paths])
    sat_gx = np.array([p[2] for p in paths])
    best = sorted(actives, key=lambda i: -scores[i])[:3]
    drawings = [(_drawing(test.smiles[i], expls[i],
                          f"CHEMBL {test.names[i]}  pIC50 {test.pic50[i]:.2f}  "
                          f"P(active) {scores[i]:.2f}"),
                 f"IG per atom (its features + half of each of its pairs; red +, blue -) and "
                 f"per bond (the bonded pair), "
                 f"held-out molecule {test.names[i]}") for i in best]
    quality = {"train accuracy": clf.train_accuracy, "held-out accuracy": clf.test_accuracy,
               "held-out ROC AUC": clf.test_auc, "held-out active rate": clf.test_active_rate,
               "training molecules": float(clf.n_train), "held-out molecules": float(clf.n_test),
               "epochs": float(clf.epochs),
               "training seconds (2 shared cores, when it was trained)": clf.seconds}
    return ActivityFindings(
        quality=quality, n_molecules=len(test), steps=steps, split=split,
        split_median={"atoms": float(med[0]), "bonded_pairs": float(med[1]),
                      "other_pairs": float(med[2])},
        max_gap=float(gaps.max()), dead=dead, twins=twins,
        saturation=chem_findings.saturation_summary(_ALPHAS, sat_s, sat_gx),
        figure=_figure(sat_s, sat_g), drawings=drawings, seconds=time.perf_counter() - start,
        f0=np.asarray(scores) - deltas, path_scores=sat_s, path_grads=sat_g)


def _pct(v: float) -> str:
    return f"{100 * v:+.1f} %"


def _tables(f: ActivityFindings) -> list[tuple[str, list[str], list[list[Any]]]]:
    q = f.quality
    qual = [[k, "not recorded" if np.isnan(v) else f"{v:.3f}" if v < 2 else f"{v:.0f}"]
            for k, v in q.items()]
    sd, ss = f.split.shares("delta"), f.split.shares("score")
    split = [[part, _pct(sd[key]), _pct(ss[key]), _pct(f.split_median[key])]
             for part, key in (("atom features", "atoms"), ("bonded pairs", "bonded_pairs"),
                               ("non-bonded pairs", "other_pairs"))]
    dead = [[d.name, d.n_present, d.n_dead, f"{d.dead_rate:.2f}", f"{d.mean_share:.4f}"]
            for d in f.dead if d.n_present and d.dead_rate >= _MOST]
    never = [d.name for d in f.dead if not d.n_present]
    if never:
        dead.append([", ".join(never), 0, "-", "-", "never present: 0 by construction"])
    alive = sorted((d for d in f.dead if d.n_present), key=lambda d: d.mean_share)[:4]
    least = [[d.name, d.n_present, d.n_dead, f"{d.mean_share:.4f}"] for d in alive]
    twins = [[k, t.lookalike, t.symmetric, t.identical] for k, t in f.twins.items()]
    s = f.saturation
    sat = [["median α from which F(αx) stays within 10 % of its final rise", f"{s.alpha_90:.2f}"],
           ["median share of the rise F(x) - F(0) gained on 0.9 <= α <= 1 (straight line: 0.10)",
            f"{s.last_tenth:.3f}"],
           ["median x·∇F(x) / (F(x) - F(0)) (linear: 1; saturated: ~0)", f"{s.grad_ratio:.3f}"],
           ["active molecules", str(s.n_molecules)]]
    return [("Classifier", ["quantity", "value"], qual),
            ("Where IG puts the attribution (sums over molecules)",
             ["part", "share of Σ F(x) - F(0)", "share of Σ F(x)", "per-molecule median"],
             split),
            (f"Dead features (present, attribution <= {_REL_TOL:g} of the molecule's, on >= "
             f"{_MOST:.0%} of the molecules where present)",
             ["feature", "molecules present", "dead on", "rate", "mean share"], dead),
            ("The present features with the smallest attribution (mean share of the molecule's "
             "absolute attribution)", ["feature", "molecules present", "dead on", "mean share"],
             least),
            ("Look-alike atoms (same atom features, same bonds of each type): the paper's W1N2 "
             "check", ["network", "look-alike pairs", "symmetry-equivalent",
                       "others with identical attribution"], twins),
            ("Saturation (Figure 13)", ["quantity", "value"], sat)]


def markdown(f: ActivityFindings) -> str:
    """The docs section: the protocol in one paragraph, then the tables."""
    out = [f"{f.n_molecules} held-out molecules, IG with the zero counterfactual, {f.steps} "
           f"Gauss-Legendre steps; largest completeness gap |Σ attributions - (F(x) - F(0))| = "
           f"{f.max_gap:.1e} (probability units). Generated by `python -m "
           f"attribkit.experiments.chem_activity` in {f.seconds:.0f} s (2 shared cores)."]
    for title, header, rows in _tables(f):
        out += ["", f"**{title}**", "", "| " + " | ".join(header) + " |",
                "|" + "---|" * len(header)]
        out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
        if not rows:
            out.append("| none |" + " |" * (len(header) - 1))
    return "\n".join(out)


@experiment("chem_activity", "Activity classifier: atoms, atom pairs, dead features and "
            "saturation (Gradients of Counterfactuals, section 3.1)", task="chem")
def activity_section(rep: Any, setup: Any, *, quick: bool, progress: bool) -> list[str]:
    """Add the experiment to a demo report (see :mod:`attribkit.experiments`)."""
    f = run(quick=quick, progress=progress)
    sd = f.split.shares("delta")
    rep.text(f"CHEMBL2321810 (RDKit contrib), active when pIC50 >= 6.5; {f.n_molecules} "
             f"held-out molecules, IG with all atom and pair features scaled to zero. "
             f"Bonded pairs carry {_pct(sd['bonded_pairs'])} and non-bonded pairs "
             f"{_pct(sd['other_pairs'])} of F(x) - F(0) (the paper: 46 % and -3 %).")
    for title, header, rows in _tables(f):
        rep.table(header, rows or [["none"] + [""] * (len(header) - 1)], caption=title)
    rep.image(f.figure, "Figure 13 on the activity classifier: the shaded band is 0.9 <= α <= 1",
              wide=True)
    for img, caption in f.drawings:
        rep.image(img, caption)
    s = f.saturation
    return [f"chem_activity: held-out AUC {f.quality['held-out ROC AUC']:.3f}, bonded "
            f"{_pct(sd['bonded_pairs'])}, non-bonded {_pct(sd['other_pairs'])}, last tenth "
            f"of the path {s.last_tenth:.3f} ({f.seconds:.0f} s)"]


def main(argv: list[str] | None = None) -> int:
    """Run the full protocol, rewrite docs/zoo-chem.md's section, optionally save pictures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--page", default="docs/zoo-chem.md")
    ap.add_argument("--out", default="", help="folder for the PNG pictures (optional)")
    ap.add_argument("--quick", action="store_true", help="the demo's budget")
    args = ap.parse_args(argv)
    f = run(quick=args.quick, progress=True)
    write_section(args.page, "activity", markdown(f))
    if args.out:
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        f.figure.savefig(out / "saturation.png", dpi=110)
        for k, (img, _) in enumerate(f.drawings):
            img.save(out / f"molecule_{k}.png")
    print(markdown(f))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
