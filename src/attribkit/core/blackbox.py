"""Black-box models: any callable from a batch (tensor or NumPy array) to scores.

The perturbation family (occlusion, Shapley values, prediction difference, LIME, KernelSHAP)
only needs forward passes, so it explains models without gradients: a scikit-learn
``predict_proba``, a gradient-boosted ensemble, a NumPy function. :class:`BlackBox` presents such
a callable to the engine as a tensor-to-tensor function evaluated without gradients:

* a method of a scikit-learn-like estimator (``clf.predict_proba``) always gets NumPy arrays;
* ``numpy=None`` (the default when a method wraps another plain callable) decides at the first
  call: the function gets the tensor batch; if it returns a tensor it is used as it is (a torch
  function), if it returns an array (NumPy, a list) the output is converted, and if the call with
  a tensor raises, the batch is passed again as a NumPy array. A NumPy function that happens to
  accept tensors would get tensors: wrap it with :func:`black_box` to be sure it gets arrays;
* ``numpy=True`` always passes NumPy arrays (``float64`` stays ``float64``);
* outputs are converted to the inputs' dtype and device; integer outputs (class labels from
  ``predict``) are refused with a hint to pass ``predict_proba``.

:func:`admit` is the engine's one hook: methods that use forward passes only admit a black box;
the gradient family refuses one before any work, with a one-line reason.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from attribkit.core.errors import InputError, ModelOutputError, UnsupportedModelError

__all__ = ["FORWARD_ONLY_METHODS", "BlackBox", "admit", "black_box", "is_black_box"]

#: The methods that explain a model from forward passes alone (named in refusals).
FORWARD_ONLY_METHODS = ("occlusion", "shapley_values", "prediction_difference", "lime",
                        "kernel_shap")
#: Packages whose estimators have no input gradients.
_NO_GRADIENT_PACKAGES = frozenset({"sklearn", "xgboost", "lightgbm", "catboost", "numpy", "scipy"})


class BlackBox:
    """A callable without gradients, seen as a tensor-to-tensor model.

    Parameters
    ----------
    fn
        ``fn(batch, *extra) -> scores``: the batch is ``(B, ...)``, the scores ``(B,)`` or
        ``(B, C)`` (a NumPy array, a tensor or anything ``numpy.asarray`` accepts).
    numpy
        ``True``: always pass NumPy arrays; ``False``: always pass tensors; ``None``: decide at
        the first call (see the module docstring).
    """

    def __init__(self, fn: Callable[..., Any], *, numpy: bool | None = None) -> None:
        if isinstance(fn, BlackBox):
            numpy = fn.mode if numpy is None else numpy
            fn = fn.function
        if not callable(fn):
            raise UnsupportedModelError(_not_callable(fn))
        self.fn: Callable[..., Any] = fn
        self.numpy: bool | None = numpy
        self.calls = 0
        self.rows = 0

    def __call__(self, x: Tensor, *extra: Tensor) -> Tensor:
        x = x.detach()
        self.calls += 1
        self.rows += int(x.shape[0]) if x.dim() else 1
        if self.numpy is None:
            try:
                out = self.fn(x, *extra)
            except Exception as tensor_err:
                try:
                    out = self.fn(*_to_numpy(x, *extra))
                except Exception:
                    raise tensor_err from None
                self.numpy = True
            else:
                self.numpy = not isinstance(out, Tensor)
        elif self.numpy:
            out = self.fn(*_to_numpy(x, *extra))
        else:
            out = self.fn(x, *extra)
        return _to_tensor(out, x)

    @property
    def function(self) -> Callable[..., Any]:
        """The wrapped callable."""
        return self.fn

    @property
    def mode(self) -> bool | None:
        """``True``: NumPy calls, ``False``: tensor calls, ``None``: not decided yet."""
        return self.numpy

    def __repr__(self) -> str:
        mode = {None: "auto", True: "numpy", False: "tensor"}[self.numpy]
        return f"BlackBox({getattr(self.fn, '__qualname__', type(self.fn).__name__)}, {mode})"


def black_box(fn: Callable[..., Any], *, numpy: bool | None = True) -> BlackBox:
    """Mark ``fn`` as a black-box model (NumPy in and out by default).

    Perturbation methods wrap plain callables on their own; this makes the choice explicit, and
    the gradient family then refuses the model up front instead of failing inside it.

    Parameters
    ----------
    fn
        ``fn(batch) -> scores``, e.g. ``clf.predict_proba``.
    numpy
        Pass NumPy arrays (default), tensors (``False``) or decide at the first call (``None``).
    """
    return BlackBox(fn, numpy=numpy)


def is_black_box(model: object) -> bool:
    """Whether ``model`` is known to have no input gradients (a :class:`BlackBox`, or a method
    of a scikit-learn-like estimator)."""
    if isinstance(model, BlackBox):
        return True
    if isinstance(model, nn.Module) or not inspect.ismethod(model):
        return False
    owner = type(model.__self__).__module__.split(".")[0]
    return owner in _NO_GRADIENT_PACKAGES


def admit(model: Any, inputs: Any, *, black_box: bool,
          layer: object = None) -> tuple[Callable[..., Tensor], Any]:
    """The model and inputs a method works with (the engine's black-box hook).

    Parameters
    ----------
    model
        The user's model.
    inputs
        The user's inputs; with ``black_box`` a NumPy array is converted to a tensor.
    black_box
        Whether the method needs forward passes only. Then a plain callable (not an
        ``nn.Module``) is wrapped in a :class:`BlackBox`. Otherwise a known black box is refused.
    layer
        The layer the method attributes at, if any (a black box has none).

    Raises
    ------
    UnsupportedModelError
        A gradient method was given a black box, or a black box was given a layer.
    """
    if not black_box:
        if is_black_box(model):
            raise UnsupportedModelError(
                f"{_name(model)} is a black-box model (no gradients): this method needs a "
                f"differentiable torch model; use a perturbation method "
                f"({', '.join(FORWARD_ONLY_METHODS)}).")
        if not callable(model):
            raise UnsupportedModelError(_not_callable(model))
        return model, inputs
    if isinstance(model, nn.Module):  # NumPy inputs: converted to the model's dtype later
        return model, inputs
    if isinstance(inputs, np.ndarray):
        inputs = torch.from_numpy(np.ascontiguousarray(inputs))
    wrapped = model if isinstance(model, BlackBox) else BlackBox(
        model, numpy=True if is_black_box(model) else None)
    if layer is not None:
        raise UnsupportedModelError(f"{_name(wrapped)} is a black box: it has no layers to "
                                    "attribute at; drop layer=.")
    return wrapped, inputs


def _name(model: object) -> str:
    fn = model.fn if isinstance(model, BlackBox) else model
    return str(getattr(fn, "__qualname__", type(fn).__name__))


def _not_callable(model: object) -> str:
    hint = ""
    for attr in ("predict_proba", "decision_function", "predict"):
        if hasattr(model, attr):
            hint = f"; pass model.{attr} (scores, not labels)"
            break
    return f"the model must be callable from a batch to scores, got {type(model).__name__}{hint}."


def _to_numpy(*ts: Tensor) -> tuple[np.ndarray[Any, Any], ...]:
    return tuple(t.detach().cpu().numpy() for t in ts)


def _to_tensor(out: Any, like: Tensor) -> Tensor:
    if isinstance(out, Tensor):
        return out
    try:
        arr = np.asarray(out)
    except Exception as err:
        raise ModelOutputError(f"the black-box model returned {type(out).__name__}, which is not "
                               "an array of scores.") from err
    if arr.dtype.kind not in "fc":
        kind = "class labels?" if arr.dtype.kind in "iub" else str(arr.dtype)
        raise ModelOutputError(
            f"the black-box model returned {arr.dtype} values ({kind}); give a function that "
            "returns scores, e.g. clf.predict_proba instead of clf.predict.")
    if arr.dtype.kind == "c":
        raise InputError("the black-box model returned complex values; return real scores.")
    t = torch.from_numpy(np.ascontiguousarray(arr))
    dtype = like.dtype if like.is_floating_point() else t.dtype
    return t.to(device=like.device, dtype=dtype)
