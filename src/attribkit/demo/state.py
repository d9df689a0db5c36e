"""What the sections of the image report share: the photos, their predictions and the results."""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from attribkit.demo.result import DemoResult, Stages
from attribkit.demo.setups import VisionSetup

if TYPE_CHECKING:
    from attribkit.core.attribution import Attribution
    from attribkit.methods.integrated import InteriorGradients
    from attribkit.report import Report

__all__ = ["VisionRun", "start_run", "top"]


def top(model: Callable[..., Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """The top class of each row of ``x`` and its score, ``(cls, prob)``."""
    with torch.no_grad():
        p = model(x)
    prob, cls = p.max(dim=1)
    return cls, prob


@dataclass
class VisionRun:
    """The image report being written; each section reads what the earlier ones left here."""

    setup: VisionSetup
    out: pathlib.Path
    quiet: bool
    result: DemoResult
    rep: Report
    stages: Stages
    names: list[str]
    x: Tensor
    baseline: Tensor
    cls: Tensor
    prob: Tensor
    labels: list[str]
    images: list[np.ndarray[Any, Any]]
    ig: Attribution | None = None
    """Integrated Gradients of every photo (the gradients section)."""
    interior: InteriorGradients | None = None
    """Interior gradients of the first photo (the gradients section)."""
    grad: Tensor | None = None
    """The gradient at each photo (the gradients section)."""
    grad_attr: Attribution | None = None
    """Gradient x input of each photo (the gradients section)."""
    rows: list[dict[str, Any]] = field(default_factory=list)
    """The summary row of each photo."""
    gif: bytes | None = None
    """The interior-gradients animation of the first photo (the saturation section)."""
    per_photo: dict[str, Tensor] = field(default_factory=dict)
    """Each attribution's AOPC per photo (the AOPC section)."""

    @property
    def progress(self) -> bool:
        """Show progress bars."""
        return not self.quiet

    def gradients(self) -> tuple[Attribution, InteriorGradients, Tensor, Attribution]:
        """``(ig, interior, grad, grad_attr)``, once the gradients section has run."""
        if self.ig is None or self.interior is None or self.grad is None \
                or self.grad_attr is None:
            raise RuntimeError("the gradients section of the demo report has not run yet.")
        return self.ig, self.interior, self.grad, self.grad_attr


def start_run(setup: VisionSetup, out: pathlib.Path, quiet: bool) -> VisionRun:
    """A new report for ``setup``'s photos: their top classes, labels and pictures."""
    from attribkit.report import Report

    names = list(setup.photos)
    x = torch.cat([setup.photos[n] for n in names])
    baseline = torch.full_like(x, setup.baseline_value)
    cls, prob = top(setup.model, x)
    labels = [f"{setup.class_name(int(c))} {float(p):.3f}" for c, p in zip(cls, prob, strict=True)]
    images = [setup.to_image(x[i:i + 1]) for i in range(len(names))]
    return VisionRun(setup=setup, out=out, quiet=quiet,
                     result=DemoResult(report=out / "report.html"), rep=Report(setup.title),
                     stages=Stages(), names=names, x=x, baseline=baseline, cls=cls, prob=prob,
                     labels=labels, images=images)
