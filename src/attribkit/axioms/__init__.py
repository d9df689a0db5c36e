"""Axiom checks for any registered attribution method (Sundararajan et al. 2017, section 2-4).

Each check runs a method by name on constructed cases (and, where the axiom allows, on your own
model and inputs) and returns an :class:`AxiomReport` with the measured numbers:

>>> from attribkit import axioms
>>> print(axioms.check_sensitivity_a("saliency"))          # fails on 1 - ReLU(1 - x)
>>> axioms.check_completeness("integrated_gradients", model, x, baseline=b).worst
>>> axioms.audit(out="docs/axioms.md")                        # the method x axiom table
"""

from __future__ import annotations

from attribkit.axioms._report import AxiomReport, CaseResult, run_method
from attribkit.axioms.audit import AXIOM_CHECKS, AuditTable, audit
from attribkit.axioms.completeness import check_completeness
from attribkit.axioms.invariance import check_implementation_invariance
from attribkit.axioms.linearity import check_linearity
from attribkit.axioms.sensitivity import check_dummy, check_sensitivity_a, check_sensitivity_b
from attribkit.axioms.symmetry import check_symmetry

__all__ = [
    "AXIOM_CHECKS",
    "AuditTable",
    "AxiomReport",
    "CaseResult",
    "audit",
    "check_completeness",
    "check_dummy",
    "check_implementation_invariance",
    "check_linearity",
    "check_sensitivity_a",
    "check_sensitivity_b",
    "check_symmetry",
    "run_method",
]
