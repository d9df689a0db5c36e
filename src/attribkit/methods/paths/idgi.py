"""IDGI (Yang, Wang & Bilen 2023, "IDGI: a framework to eliminate explanation noise from
integrated gradients"), on the straight (IG), guided (Guided IG) or blur (Blur IG) path.

Each step of a discrete path ``z_0 = x' , ..., z_m = x`` is replaced by a move along the gradient
``g_k`` at its start that produces the same change of ``F``: step ``k`` gives feature ``i``
``(F(z_{k+1}) - F(z_k)) * g_{k,i}^2 / ||g_k||^2``. The shares of a step add up to its rise, so the
attributions add up to ``F(x) - F(x')`` exactly for the discrete path (no quadrature error). The
gradient component orthogonal to the direction in which ``F`` changes, which moves along the
level set and only adds noise, is dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor

from attribkit.core.attribution import Attribution
from attribkit.core.docstrings import shared_parameters
from attribkit.core.engine import prepare
from attribkit.core.errors import InputError, OptionError
from attribkit.methods.paths._walk import straight_walk
from attribkit.methods.paths.blur_ig import blur_sigmas, blur_walk, set_blur_baseline
from attribkit.methods.paths.blur_ig import check_options as check_blur
from attribkit.methods.paths.guided_ig import check_options as check_guided
from attribkit.methods.paths.guided_ig import guided_walk
from attribkit.methods.registry import get, register

__all__ = ["PATHS", "idgi"]

#: The paths IDGI can follow (registered names).
PATHS = ("integrated_gradients", "guided_ig", "blur_ig")


@register(
    "idgi",
    aliases=("idgi_ig",),
    family="path",
    needs_baseline=True,
    complete=True,
    axioms={"completeness", "sensitivity_a", "sensitivity_b", "implementation_invariance"},
    summary="IDGI: each path step's rise of F shared by the squared gradient (exactly complete).",
)
@shared_parameters("model", "target:single", "batch_size:rows", "progress", "forward_args")
def idgi(
    model: Callable[..., Tensor],
    inputs: Tensor,
    *,
    target: Any = None,
    baseline: Any = None,
    path_method: str = "integrated_gradients",
    steps: int | None = None,
    batch_size: int | None = None,
    progress: bool = False,
    forward_args: Sequence[Tensor] | None = None,
    **path_options: Any,
) -> Attribution:
    """IDGI along the path of ``path_method``.

    Parameters
    ----------
    inputs
        ``(N, ...)`` examples (``(N, C, H, W)`` or ``(N, C, L)`` for the blur path).
    baseline
        The straight and guided paths' start (``None``: zeros); the blur path starts at the
        blurred input and takes none.
    path_method
        ``"integrated_gradients"`` (or ``"ig"``), ``"guided_ig"`` or ``"blur_ig"``.
    steps
        Steps of the path (one gradient each per example); default 50 for IG and the path
        method's own default otherwise (200 for Guided IG, 100 for Blur IG).
    **path_options
        The path's own options: ``fraction``, ``max_dist`` (Guided IG); ``max_sigma``,
        ``grad_step``, ``sqrt`` (Blur IG).

    Returns
    -------
    Attribution
        IDGI's values; ``extras["path_attribution"]`` the path method's own attribution on the
        same gradients (``sum_k g_k * (z_{k+1} - z_k)``) and ``extras["path_scores"]`` ``F`` at
        the path's points ``z_0 .. z_m``.
    """
    path = get(path_method).name
    if path not in PATHS:
        raise InputError(f"idgi follows the path of one of {', '.join(PATHS)}; got "
                         f"{path_method!r}.")
    allowed = {"guided_ig": {"fraction", "max_dist"},
               "blur_ig": {"max_sigma", "grad_step", "sqrt"}}.get(path, set())
    unknown = set(path_options) - allowed
    if unknown:
        raise OptionError(f"unknown option(s) {sorted(unknown)} for idgi on the {path} path; "
                         f"it takes {sorted(allowed) or 'none'}.")
    m = steps if steps is not None else {"integrated_gradients": 50, "guided_ig": 200,
                                         "blur_ig": 100}[path]
    if path == "blur_ig":
        if baseline is not None:
            raise InputError("the blur path starts at the blurred input; leave baseline=None.")
        max_sigma = float(path_options.get("max_sigma", 50.0))
        grad_step = float(path_options.get("grad_step", 0.01))
        check_blur(inputs, m, max_sigma, grad_step)
    elif path == "guided_ig":
        check_guided(m, float(path_options.get("fraction", 0.25)),
                                 float(path_options.get("max_dist", 0.02)))
    elif not isinstance(m, int) or m < 1:
        raise InputError(f"steps must be a positive int, got {m!r}.")
    with prepare(model, inputs, target=target, baseline=baseline,
                 needs_baseline=path != "blur_ig", batch_size=batch_size, progress=progress,
                 forward_args=forward_args, allow_multi_target=False) as p:
        if path == "integrated_gradients":
            base, values, scores = straight_walk(p, m, idgi=True)
        elif path == "guided_ig":
            base, values, scores = guided_walk(
                p, m, float(path_options.get("fraction", 0.25)),
                float(path_options.get("max_dist", 0.02)), idgi=True)
        else:
            sigmas = blur_sigmas(max_sigma, m, bool(path_options.get("sqrt", False)))
            set_blur_baseline(p, sigmas[-1])
            base, values, scores = blur_walk(p, sigmas, grad_step, idgi=True)
        assert values is not None
        shape, dtype = p.inputs.shape, p.inputs.dtype
        params = {"path_method": path, "steps": m, **path_options,
                  "gradient_evaluations": p.gradient_evaluations}
        return p.result(values.reshape(shape).to(dtype), "idgi", params,
                        extras={"path_attribution": base.reshape(shape).to(dtype),
                                "path_scores": scores})
