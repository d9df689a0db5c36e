"""The report every axiom check returns, and the shared way of running a method on a case."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.core.attribution import Attribution
from attribkit.core.engine import prepare
from attribkit.core.errors import AttribkitError, UnsupportedModelError
from attribkit.core.neurons import neuron
from attribkit.core.summary import summary_repr
from attribkit.methods.registry import get

__all__ = ["AxiomReport", "CaseResult", "Runner", "evaluate_ends", "run_method", "runner"]

#: Errors that mean "this method cannot run on this case" (recorded, not raised).
CANNOT_RUN = (AttribkitError, TypeError, ValueError, RuntimeError, NotImplementedError,
              AttributeError, KeyError, IndexError)


@dataclass(frozen=True)
class CaseResult:
    """One case of an axiom check.

    Attributes
    ----------
    case
        What was tested (model, input, baseline).
    value
        The measured number (see :attr:`AxiomReport.measure`); ``nan`` if the method could not
        run.
    passed
        Whether ``value`` is within the tolerance; ``None`` if the method could not run.
    detail
        Further numbers, or why the case could not run.
    """

    case: str
    value: float
    passed: bool | None
    detail: str = ""


@dataclass(frozen=True)
class AxiomReport:
    """The outcome of checking one axiom on one method.

    Attributes
    ----------
    axiom
        The axiom's name (as in the registry).
    method
        The method's registered name.
    measure
        What :attr:`CaseResult.value` measures, and which side of the tolerance passes.
    tolerance
        The threshold.
    cases
        One :class:`CaseResult` per case.
    """

    axiom: str
    method: str
    measure: str
    tolerance: float
    cases: tuple[CaseResult, ...] = field(default_factory=tuple)

    __repr__ = summary_repr

    def _headline(self) -> list[str]:
        return [f"passed={self.passed}", f"worst={self.worst:.4g}"]

    @property
    def ran(self) -> tuple[CaseResult, ...]:
        """The cases the method could run on."""
        return tuple(c for c in self.cases if c.passed is not None)

    @property
    def passed(self) -> bool | None:
        """All runnable cases pass; ``None`` when the method ran on no case."""
        ran = self.ran
        return None if not ran else all(bool(c.passed) for c in ran)

    @property
    def worst(self) -> float:
        """The worst measured value among the cases that ran (``nan`` if none)."""
        ran = self.ran
        if not ran:
            return float("nan")
        values = [c.value for c in ran]
        return min(values) if self.measure.startswith("min") else max(values)

    @property
    def reason(self) -> str:
        """Why the method ran on no case (the first case's detail), else ``""``."""
        return "" if self.ran or not self.cases else self.cases[0].detail

    def to_dict(self) -> dict[str, Any]:
        """Plain Python objects, for JSON."""
        return {"axiom": self.axiom, "method": self.method, "measure": self.measure,
                "tolerance": self.tolerance, "passed": self.passed, "worst": self.worst,
                "cases": [c.__dict__ for c in self.cases]}

    def __str__(self) -> str:
        verdict = {True: "passes", False: "fails", None: "not run"}[self.passed]
        head = (f"{self.method} {verdict} {self.axiom} ({self.measure}, "
                f"tolerance {self.tolerance:g})")
        lines = [head] + [f"  {c.case}: {c.value:.3g} "
                          f"{'' if c.passed is None else ('ok' if c.passed else 'FAIL')} "
                          f"{c.detail}".rstrip() for c in self.cases]
        return "\n".join(lines)


#: ``runner(model, inputs, baseline, target) -> Attribution`` for one method and its options.
Runner = Callable[[Callable[..., Tensor], Tensor, Tensor | None, Any], Attribution]


def run_method(method: str, model: Callable[..., Tensor], inputs: Tensor, *,
               baseline: Tensor | None = None, target: Any = None,
               options: Mapping[str, Any] | None = None) -> Attribution:
    """Run a registered method, passing the baseline only if it uses one and a seed if it is
    stochastic (so that repeated calls draw the same numbers). A method that requires a
    ``background`` distribution (expected gradients, prediction difference) gets the baseline as
    a one-sample background unless ``options`` give one."""
    info = get(method)
    opts = dict(options or {})
    takes_baseline, _ = _parameter(info.fn, "baseline")
    if info.needs_baseline and takes_baseline and baseline is not None:
        opts.setdefault("baseline", baseline)
    takes, required = _parameter(info.fn, "background")
    if "background" not in opts and (required or (takes and "baseline" not in opts)):
        ref = baseline if baseline is not None else torch.zeros_like(inputs)
        opts["background"] = ref[:1].clone()
    if info.stochastic:
        opts.setdefault("seed", 0)
    _, needs_layer = _parameter(info.fn, "layer")
    if needs_layer and "layer" not in opts:  # a layer method: the first hidden activation
        opts["layer"] = _first_activation(model, method)
    _, needs_neuron = _parameter(info.fn, "neuron")
    if needs_neuron and "neuron" not in opts:  # through unit 0 of the first hidden activation
        opts["neuron"] = neuron(_first_activation(model, method), 0)
    return info.fn(model, inputs, target=target, **opts)


def _first_activation(model: Callable[..., Tensor], method: str) -> nn.Module:
    """The first parameter-free leaf module after a parametrised one (a hidden activation)."""
    seen_weights = False
    if isinstance(model, nn.Module):
        for m in model.modules():
            if next(m.children(), None) is not None:
                continue
            if any(True for _ in m.parameters(recurse=False)):
                seen_weights = True
            elif seen_weights:
                return m
    raise UnsupportedModelError(f"{method} needs a layer and this case has no hidden activation "
                                "module.")


def _parameter(fn: Callable[..., Any], name: str) -> tuple[bool, bool]:
    """Whether ``fn`` takes the keyword ``name``, and whether it is required."""
    try:
        param = inspect.signature(fn).parameters.get(name)
    except (TypeError, ValueError):
        return False, False
    return param is not None, param is not None and param.default is inspect.Parameter.empty


def runner(method: str, options: Mapping[str, Any] | None = None) -> Runner:
    """A :data:`Runner` for ``method`` with fixed ``options``."""
    def run(model: Callable[..., Tensor], inputs: Tensor, baseline: Tensor | None,
            target: Any) -> Attribution:
        return run_method(method, model, inputs, baseline=baseline, target=target,
                          options=options)
    return run


def evaluate_ends(model: Callable[..., Tensor], inputs: Tensor, baseline: Tensor | None,
                  target: Any) -> tuple[Tensor, Tensor, Any]:
    """``F(x)``, ``F(x')`` (zeros baseline if ``None``) and the resolved target indices."""
    with prepare(model, inputs, target=target, baseline=baseline, batch_size=inputs.shape[0]) as p:
        assert p.output is not None and p.baseline_output is not None
        fixed = p.target.indices if p.target.indices is not None else target
        return p.output.to(torch.float64), p.baseline_output.to(torch.float64), fixed
