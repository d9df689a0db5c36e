"""The demonstration behind ``attribkit demo``: the figures of Gradients of Counterfactuals
(Sundararajan, Taly & Yan) on a real network.

``run_demo(task="vision")`` explains EfficientNet-Lite0 on sample photos from the wheels and
writes ``out/report.html`` with the image report's sections (``attribkit.demo.vision.SECTIONS``,
one module each): Integrated Gradients against gradients at the image (Figure 4), saturation
curves (Figure 2), interior gradients as a strip and an animation (Figure 3), a comparison of
every registered method on one photo, AOPC curves (Figure 5) and the papers' experiments.
``task="toy"`` runs the same sections on a tiny seeded CNN and synthetic images in a few seconds
(for tests). The other tasks (:data:`TASKS`) write the report of another model, one module each:
text, tabular, chem, language (Gradients of Counterfactuals, section 3.2) and gbm (a black
box); each task takes ``(out, quiet, photos)``.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable

from attribkit.core.errors import InputError
from attribkit.demo.chem import chem_task
from attribkit.demo.gbm import gbm_task
from attribkit.demo.language import language_task
from attribkit.demo.result import DemoResult, print_summary
from attribkit.demo.setups import VisionSetup
from attribkit.demo.tabular import tabular_task
from attribkit.demo.text import text_task
from attribkit.demo.vision import toy_task, vision_task

__all__ = ["TASKS", "DemoResult", "VisionSetup", "run_demo"]

_RUNS: dict[str, Callable[[pathlib.Path, bool, int], DemoResult]] = {
    "vision": vision_task,  # EfficientNet-Lite0 (demo/vision.py and its sections)
    "text": text_task,  # MiniLM sentiment
    "tabular": tabular_task,  # breast-cancer MLP
    "chem": chem_task,  # TPSA graph network and the chemistry experiments
    "toy": toy_task,  # the image report on a tiny CNN, seconds
    "language": language_task,  # Gradients of Counterfactuals section 3.2 and explain_generation
    "gbm": gbm_task,  # a black box: gradient-boosted trees
}
TASKS = tuple(_RUNS)
"""The demo tasks, each writing its own ``report.html``."""


def run_demo(out: str | pathlib.Path = "out", *, task: str = "vision", quiet: bool = False,
             photos: int = 3, summary: bool = True) -> DemoResult:
    """Run the demonstration and write ``<out>/report.html``.

    Parameters
    ----------
    out : str or pathlib.Path, default "out"
        Output folder (created).
    task : str, default "vision"
        ``"vision"`` (EfficientNet-Lite0), ``"toy"`` (a tiny CNN, seconds; for tests), or
        ``"text"`` / ``"tabular"`` / ``"chem"`` where those zoo models are installed, or
        ``"gbm"`` (gradient-boosted trees explained as a black box; scikit-learn).
    quiet : bool, default False
        No progress bars or step messages.
    photos : int, default 3
        How many photos the vision task explains.
    summary : bool, default True
        Print the summary table.

    Returns
    -------
    DemoResult
        The report path, the summary rows and notes.
    """
    if task not in TASKS:
        raise InputError(f"unknown demo task {task!r}; choose from {', '.join(TASKS)}.")
    outdir = pathlib.Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    result = _RUNS[task](outdir, quiet, photos)
    if summary:
        print_summary(result)
    return result
