"""The chemistry report (``attribkit demo --task chem``): atom attributions of a TPSA model."""

from __future__ import annotations

import math
import pathlib
import time

from attribkit.core.errors import InputError
from attribkit.demo.result import DemoResult, log

__all__ = ["DEMO_SMILES", "chem_task"]

DEMO_SMILES = ("OC(=O)c1ccccc1N", "CC(=O)Oc1ccccc1C(=O)O", "c1ccccc1O")
"""The molecules the report explains."""


def chem_task(out: pathlib.Path, quiet: bool, photos: int = 3) -> DemoResult:
    """IG per atom of :data:`DEMO_SMILES` against exact TPSA, then the chemistry experiments.

    ``photos`` is not used.
    """
    from attribkit.report import Report
    from attribkit.viz import molecule_image

    del photos
    try:
        from attribkit.zoo import chem
    except ImportError as err:
        raise InputError(f"the chem task needs attribkit.zoo.chem and RDKit ({err}).") from err
    t0 = time.perf_counter()
    result = DemoResult(report=out / "report.html")
    rep = Report("attribkit demo: molecules, atom attributions (TPSA model)")
    log("[1/1] loading the TPSA graph-convolution model (trained once, then cached)", quiet)
    model = chem.load_property_model("tpsa")
    for smi in DEMO_SMILES:
        expl = chem.explain_molecule(model, smi, steps=32)
        per_atom = expl.per_atom(include_pairs=True)
        exact = chem.exact_contributions(smi, "tpsa")
        r = chem.pearson(per_atom, exact)
        rep.heading(smi, 3)
        rep.image(molecule_image(smi, per_atom, legend="IG per atom"), "IG per atom")
        rep.image(molecule_image(smi, exact, legend="exact TPSA contributions"), "exact")
        result.rows.append({"smiles": smi, "sum": float(expl.total),
                            "gap": float(expl.total) - float(getattr(expl, "delta", math.nan)),
                            "pearson vs exact": float(r)})
    from attribkit.experiments import add_to_report  # the papers' chemistry experiments

    result.notes.extend(add_to_report(rep, "chem", None, quick=True, progress=not quiet))
    result.seconds = time.perf_counter() - t0
    rep.save(result.report)
    return result
