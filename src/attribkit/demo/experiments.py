"""The image report's experiments section: the papers' experiments in the demo's budget.

Runs the experiments registered for the vision task (:mod:`attribkit.experiments`: saturation
before the softmax, a misclassification, localisation, AOPC with intervals) on the photos the
report already loaded, when the setup asks for them (EfficientNet-Lite0, not the toy CNN).
"""

from __future__ import annotations

from attribkit.demo.result import log
from attribkit.demo.state import VisionRun

__all__ = ["experiments_section"]


def experiments_section(run: VisionRun) -> None:
    """Add the papers' vision experiments (quick protocol) when ``run.setup.experiments``."""
    if not run.setup.experiments:
        return
    run.stages.start("experiments")
    log("[+] the papers' experiments", run.quiet)
    from attribkit.experiments import add_to_report

    run.result.notes.extend(add_to_report(run.rep, "vision", run.setup, quick=True,
                                          progress=run.progress))
