"""The registry: the single list of attribution methods, with each method's properties.

A method is registered with :func:`register`; :func:`explain` dispatches to it by name or alias;
the CLI, the report and the parametrised tests read :func:`methods`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from torch import Tensor

from attribkit.core.attribution import Attribution
from attribkit.core.errors import InputError
from attribkit.methods.calls import shape_call

__all__ = ["AXIOMS", "FAMILIES", "MethodInfo", "explain", "get", "methods", "register"]

#: The axioms a method may declare (REFERENCE.md section 3).
AXIOMS = frozenset({"completeness", "sensitivity_a", "sensitivity_b", "implementation_invariance",
                    "linearity", "symmetry"})
FAMILIES = frozenset({"gradient", "path", "perturbation", "propagation", "cam"})

F = TypeVar("F", bound=Callable[..., Attribution])


@dataclass(frozen=True)
class MethodInfo:
    """What the registry knows of a method.

    Attributes
    ----------
    name
        The canonical name (also the function name).
    fn
        The function ``fn(model, inputs, *, target=None, baseline=None, ...) -> Attribution``.
    family
        One of :data:`FAMILIES`.
    needs_baseline
        Whether the method uses a baseline ``x'``.
    complete
        Whether completeness (``sum(a) = F(x) - F(x')``) is expected to hold.
    axioms
        The axioms the method satisfies (subset of :data:`AXIOMS`), as the literature says.
    needs_module
        Whether the model must be an ``nn.Module`` (hooks, layers).
    stochastic
        Whether the method draws random numbers (takes ``seed``).
    aliases
        Other names :func:`explain` accepts.
    summary
        One line for listings.
    example_rank
        The fewest axes one example must have (2 for ``(C, L)`` sequences, 3 for ``(C, H, W)``
        images; 0: any shape). Callers such as the CLI refuse other inputs before any work.
    """

    name: str
    fn: Callable[..., Attribution]
    family: str
    needs_baseline: bool
    complete: bool
    axioms: frozenset[str]
    needs_module: bool = False
    stochastic: bool = False
    aliases: tuple[str, ...] = ()
    summary: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    example_rank: int = 0


_REGISTRY: dict[str, MethodInfo] = {}
_ALIASES: dict[str, str] = {}


def _key(name: str) -> str:
    return name.lower().replace("-", "_").replace(" ", "_")


def register(
    name: str,
    *,
    family: str,
    needs_baseline: bool,
    complete: bool,
    axioms: frozenset[str] | set[str] = frozenset(),
    needs_module: bool = False,
    stochastic: bool = False,
    aliases: tuple[str, ...] = (),
    summary: str = "",
    example_rank: int = 0,
) -> Callable[[F], F]:
    """Register an attribution method under ``name`` (a decorator). See :class:`MethodInfo`."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; use one of {sorted(FAMILIES)}")
    unknown = set(axioms) - AXIOMS
    if unknown:
        raise ValueError(f"unknown axioms {sorted(unknown)}; use names from {sorted(AXIOMS)}")

    def deco(fn: F) -> F:
        key = _key(name)
        if key in _REGISTRY or key in _ALIASES:
            raise ValueError(f"method {name!r} is registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()
        info = MethodInfo(name=key, fn=fn, family=family, needs_baseline=needs_baseline,
                          complete=complete, axioms=frozenset(axioms), needs_module=needs_module,
                          stochastic=stochastic, aliases=tuple(_key(a) for a in aliases),
                          summary=summary or (doc[0] if doc else ""),
                          example_rank=example_rank)
        _REGISTRY[key] = info
        for a in info.aliases:
            _ALIASES[a] = key
        return fn

    return deco


def get(name: str) -> MethodInfo:
    """The registered method called ``name`` (or one of its aliases)."""
    key = _key(name)
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise InputError(
            f"unknown attribution method {name!r}. Known methods: {', '.join(sorted(_REGISTRY))} "
            "(see `attribkit methods`)."
        )
    return _REGISTRY[key]


def methods() -> dict[str, MethodInfo]:
    """Every registered method by canonical name, in registration order."""
    return dict(_REGISTRY)


def explain(model: Callable[..., Tensor], inputs: Tensor, method: str = "integrated_gradients",
            **options: Any) -> Attribution:
    """Attribute ``model``'s output at ``inputs`` with the registered ``method``.

    Parameters
    ----------
    model
        The model (any callable from a batch to ``(N,)`` or ``(N, C)``).
    inputs
        The inputs ``(N, ...)``.
    method
        A registered name or alias (``"ig"``, ``"saliency"``, ...); see :func:`methods`.
    **options
        Passed to the method (``target``, ``baseline``, ``steps``, ...). A keyword the method
        does not take is refused with one line; a method that needs ``layer=`` and is given none
        uses the model's last convolution, with a note (:mod:`attribkit.methods.calls`).

    Returns
    -------
    Attribution
        The method's result.
    """
    info = get(method)
    return info.fn(model, inputs, **shape_call(info, model, options))
