"""One keyword for the sign of attributions, shared by the pictures and the evaluations.

``sign="absolute"`` (the default everywhere) uses magnitudes ``sum |a|``, the Gradients of
Counterfactuals paper's pixel importance (eq. 1); ``"all"`` keeps the signed sum; ``"positive"`` /
``"negative"`` keep only the evidence for / against the target (the negative part as positive
numbers).
"""

from __future__ import annotations

import warnings

from torch import Tensor

from attribkit.core.errors import InputError

__all__ = ["DEFAULT_SIGN", "SIGNS", "apply_sign", "check_sign", "reduce_sign", "resolve_sign"]

#: The accepted values of ``sign``.
SIGNS = ("absolute", "positive", "negative", "all")
#: The default of every ``sign=`` keyword in attribkit.
DEFAULT_SIGN = "absolute"


def check_sign(sign: str, allowed: tuple[str, ...] = SIGNS) -> str:
    """Return ``sign`` if it is one of ``allowed``, else raise a one-line :class:`InputError`."""
    if sign not in allowed:
        raise InputError(f"sign must be one of {', '.join(map(repr, allowed))}; got {sign!r}.")
    return sign


def resolve_sign(sign: str, absolute: bool | None, *, where: str,
                 when_false: str = "all") -> str:
    """The ``sign`` to use, honouring the deprecated boolean ``absolute=`` keyword.

    Parameters
    ----------
    sign
        The ``sign=`` argument.
    absolute
        The old keyword (``None`` when not given); ``True`` means ``"absolute"``, ``False``
        means ``when_false``. Giving it warns with a :class:`DeprecationWarning`.
    where
        The function's name, for the warning.
    when_false
        What ``absolute=False`` meant for this function.
    """
    if absolute is None:
        return check_sign(sign)
    new = "absolute" if absolute else when_false
    warnings.warn(f"{where}(absolute={absolute}) is deprecated; use sign={new!r} (sign= is the "
                  "same keyword in attribkit.viz and attribkit.evaluate).", DeprecationWarning,
                  stacklevel=3)
    return new


def reduce_sign(values: Tensor, dim: int | tuple[int, ...], sign: str) -> Tensor:
    """Sum ``values`` over ``dim`` under a sign convention.

    ``"absolute"`` sums magnitudes; the others sum the signed values, then keep all of the sum,
    its positive part or its negative part (as a positive number).
    """
    check_sign(sign)
    if sign == "absolute":
        return values.abs().sum(dim=dim)
    s = values.sum(dim=dim)
    if sign == "positive":
        return s.clamp_min(0)
    if sign == "negative":
        return (-s).clamp_min(0)
    return s


def apply_sign(values: Tensor, sign: str) -> Tensor:
    """Element-wise version of :func:`reduce_sign` (no summation)."""
    return reduce_sign(values.unsqueeze(0), 0, sign)
