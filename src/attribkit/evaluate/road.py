"""ROAD: RemOve And Debias (Rong, Leemann, Borisov, Kasneci & Kasneci 2022).

Removing pixels by setting them to a constant leaks the removed shape to the model (the
"class information leakage" the paper measures). ROAD instead replaces the removed pixels by a
*noisy linear imputation*: each removed pixel becomes the weighted mean of its eight neighbours
(weights 1/6 for the four direct and 1/12 for the four diagonal neighbours, renormalised at the
image border), solved jointly for all removed pixels as one sparse linear system per channel,
plus Gaussian noise of standard deviation ``noise``. The score is the classifier's accuracy (is
the target class still the arg-max?) after removing each percentage of the pixels, most relevant
first (MoRF: a faithful attribution makes it fall fast, lower is better) or least relevant first
(LeRF: higher is better). The imputation follows the reference code of the paper as Quantus 0.6
adapts it; the linear systems are solved with SciPy's sparse solver.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from attribkit.core.attribution import Attribution
from attribkit.core.docstrings import shared_parameters
from attribkit.core.engine import prepare
from attribkit.core.errors import InputError
from attribkit.evaluate._features import default_target
from attribkit.evaluate._metric import MetricResult, as_inputs, broadcast_values, generator

__all__ = ["noisy_linear_imputation", "road"]

#: (row offset, column offset, weight) of the eight neighbours.
_NEIGHBOURS = ((1, 1, 1 / 12), (0, 1, 1 / 6), (-1, 1, 1 / 12), (1, -1, 1 / 12),
               (0, -1, 1 / 6), (-1, -1, 1 / 12), (1, 0, 1 / 6), (-1, 0, 1 / 6))


def noisy_linear_imputation(image: Tensor, removed: Tensor, noise: float = 0.01,
                            generator_: torch.Generator | None = None) -> Tensor:
    """Replace the pixels ``removed`` (flat indices into ``H * W``) of one image ``(C, H, W)``.

    Each removed pixel is the weighted mean of its in-image neighbours (known neighbours enter
    the right-hand side, removed ones are unknowns), plus ``noise * N(0, 1)`` per channel.
    """
    try:
        from scipy.sparse import coo_matrix
        from scipy.sparse.linalg import spsolve
    except ImportError as err:  # pragma: no cover - scipy ships with the vision and dev extras
        raise InputError("ROAD's imputation needs SciPy (pip install scipy).") from err
    c, h, w = image.shape
    flat = image.detach().cpu().to(torch.float64).reshape(c, -1).numpy()
    idx = removed.detach().cpu().numpy().astype(np.int64)
    k = idx.shape[0]
    out = flat.copy()
    if k == 0:
        return image.clone()
    var = np.full(h * w, -1, dtype=np.int64)
    var[idx] = np.arange(k)
    r, col = idx // w, idx % w
    rows, cols, vals = [np.arange(k)], [np.arange(k)], []
    diag = np.zeros(k)
    rhs = np.zeros((k, c))
    for dr, dc, wt in _NEIGHBOURS:
        nr, nc = r + dr, col + dc
        valid = (nr >= 0) & (nr < h) & (nc >= 0) & (nc < w)
        q = nr * w + nc
        diag -= wt * valid
        unknown = valid & (var[np.where(valid, q, 0)] >= 0)
        known = valid & ~unknown
        rows.append(np.nonzero(unknown)[0])
        cols.append(var[q[unknown]])
        vals.append(np.full(int(unknown.sum()), wt))
        rhs[known] -= wt * flat[:, q[known]].T
    data = np.concatenate([diag, *vals])
    a = coo_matrix((data, (np.concatenate(rows), np.concatenate(cols))), shape=(k, k)).tocsc()
    sol = np.asarray(spsolve(a, rhs)).reshape(k, c).T
    if noise:
        g = generator_ if generator_ is not None else torch.Generator().manual_seed(0)
        sol = sol + noise * torch.randn((c, k), generator=g, dtype=torch.float64).numpy()
    out[:, idx] = sol
    return torch.from_numpy(out.reshape(c, h, w)).to(image.dtype).to(image.device)


@shared_parameters("batch_size:rows", "progress")
def road(
    model: Callable[..., Any],
    inputs: Tensor,
    attributions: Attribution | Tensor,
    *,
    target: Any = None,
    percentages: Sequence[float] = tuple(range(1, 100, 2)),
    noise: float = 0.01,
    order: str = "morf",
    seed: int = 0,
    batch_size: int | None = None,
    progress: bool = False,
) -> MetricResult:
    """ROAD accuracy curves on images ``(N, C, H, W)``.

    Parameters
    ----------
    model
        A classifier (torch or black box) returning ``(N, C)`` scores.
    inputs
        ``(N, C, H, W)`` images.
    attributions
        An Attribution or values that broadcast to the inputs; pixels are ranked by their
        channel-summed attribution.
    target
        The class whose survival is checked (default: the attribution's, else the predicted).
    percentages
        Shares of the pixels removed, in percent (Quantus's default ``1, 3, ..., 99``).
    noise
        Standard deviation of the imputation noise.
    order
        ``"morf"`` (most relevant first; lower is better) or ``"lerf"`` (higher is better).
    seed
        Seed of the imputation noise.

    Returns
    -------
    MetricResult
        ``curve`` ``(N, P)`` 1 where the target class is still the arg-max after removing each
        percentage; ``scores`` its mean over the percentages (the area under the curve).
    """
    x = as_inputs(inputs)
    if x.dim() != 4:
        raise InputError(f"ROAD needs images (N, C, H, W), got {tuple(x.shape)}.")
    if order not in ("morf", "lerf"):
        raise InputError(f"order must be 'morf' or 'lerf', got {order!r}.")
    n, _, h, w = x.shape
    a = broadcast_values(attributions, x).sum(1).reshape(n, -1)
    key = -a if order == "morf" else a
    ranked = torch.sort(key, dim=1, stable=True).indices.cpu()
    counts = [int(h * w * float(pc) / 100) for pc in percentages]
    g = generator(seed)
    with prepare(model, x, target=default_target(attributions, target), needs_baseline=False,
                 batch_size=batch_size, progress=progress, black_box=True,
                 allow_multi_target=False) as p:
        if p.target.indices is None:
            raise InputError("ROAD checks a class index: give an int target or one per example "
                             "(the model must return (N, C) scores).")
        pts = torch.stack([noisy_linear_imputation(p.inputs[i], ranked[i, :k], noise, g)
                           for i in range(n) for k in counts])
        example = torch.arange(n, device=x.device).repeat_interleave(len(counts))
        out = p.outputs(pts, example, desc="road")
        correct = out.argmax(-1) == p.target.indices.to(out.device)[example]
    curve = correct.reshape(n, len(counts)).to(torch.float64).cpu()
    return MetricResult("road", curve.mean(1), order == "lerf", curve=curve,
                        params={"percentages": [float(q) for q in percentages], "noise": noise,
                                "order": order, "seed": seed})
