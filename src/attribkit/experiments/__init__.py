"""The papers' experiments that go beyond one explanation: each is a registered function that adds
its section to a demo report, and a module whose ``main`` regenerates its docs page.

An experiment module decorates one function with :func:`experiment`::

    @experiment("localisation", "Localisation (Gradients of Counterfactuals, section 2.5)",
    task="vision") def localisation_section(rep: Report, setup: Any, *, quick: bool, progress: bool)
    -> list[str]:
        ...  # add headings, images and tables to ``rep``; return notes (may be empty)

``quick=True`` is the demo's budget (seconds on two cores); the docs page runs the full protocol.
:func:`add_to_report` runs every experiment of a task; one that fails is noted, not fatal.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["EXPERIMENTS", "ExperimentInfo", "add_to_report", "experiment", "experiments"]

#: Modules holding registered experiments, imported on first use (one line per experiment).
_MODULES: tuple[str, ...] = (
    "saturation",
    "misclassification",
    "misclassification_top5",
    "chem_activity",
    "localisation",
    "ablation_offbox",
    "aopc_photos",
    "language_lm",
)

Section = Callable[..., list[str]]


@dataclass(frozen=True)
class ExperimentInfo:
    """One registered experiment.

    Attributes
    ----------
    name
        Short identifier.
    title
        The report heading.
    task
        The demo task whose report shows it (``"vision"``, ``"chem"`` or ``"language"``).
    fn
        ``fn(rep, setup, *, quick, progress) -> notes``.
    """

    name: str
    title: str
    task: str
    fn: Section


EXPERIMENTS: dict[str, ExperimentInfo] = {}


def experiment(name: str, title: str, *, task: str) -> Callable[[Section], Section]:
    """Register a report section; see the module docstring for the function's signature."""
    def deco(fn: Section) -> Section:
        EXPERIMENTS[name] = ExperimentInfo(name=name, title=title, task=task, fn=fn)
        return fn
    return deco


def experiments(task: str | None = None) -> dict[str, ExperimentInfo]:
    """The registered experiments (of one demo task when ``task`` is given), in import order."""
    for mod in _MODULES:
        importlib.import_module(f"attribkit.experiments.{mod}")
    return {k: v for k, v in EXPERIMENTS.items() if task is None or v.task == task}


def add_to_report(rep: Any, task: str, setup: Any, *, quick: bool = True,
                  progress: bool = False) -> list[str]:
    """Add every experiment of ``task`` to ``rep``; returns notes, one per failed experiment too.

    Parameters
    ----------
    rep
        An :class:`attribkit.report.Report`.
    task
        The demo task (``"vision"`` or ``"chem"``).
    setup
        What the task's pipeline already loaded (the vision demo's ``VisionSetup``), or ``None``.
    quick
        Use the demo's budget rather than the full protocol.
    progress
        Show progress bars.
    """
    notes: list[str] = []
    for info in experiments(task).values():
        rep.heading(info.title)
        try:
            notes.extend(info.fn(rep, setup, quick=quick, progress=progress))
        except Exception as err:  # one experiment that cannot run is noted, the report goes on
            msg = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
            rep.text(f"not run: {type(err).__name__}: {msg}", note=True)
            notes.append(f"{info.name}: not run ({type(err).__name__}: {msg})")
    return notes
