"""The attribution methods of :func:`attribkit.explain_generation`, on a :class:`Scorer`.

Every method evaluates all ``T`` generated tokens' log-probabilities in one forward pass per row
of prompt embeddings (teacher forcing: see :mod:`attribkit.sequences.scoring`), so the prompt's
work is shared by every generated token:

* gradient methods (Integrated Gradients, saliency, gradient x input): the path points of IG are
  rows of one batch; after one forward pass of a chunk of rows, the ``T`` quadrature-weighted
  gradient sums come from one vectorised backward pass (``is_grads_batched``) on small problems
  (``T x rows x positions x parameters / D <= BATCHED_BACKWARD_LIMIT``: :func:`batched_fits`),
  and from a loop of ``T`` backward passes
  through the same retained graph on larger ones or where an operation has no batching rule
  (see ``docs/benchmarks-generation.md`` for what each costs).
* perturbation methods (occlusion, Shapley values): each coalition of prompt tokens is one row;
  every row scores all ``T`` tokens at once.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from attribkit.core import coalitions, paths
from attribkit.core.errors import InputError, NonFiniteError
from attribkit.core.progress import progress_bar
from attribkit.sequences.scoring import Scorer

__all__ = ["AGGREGATES", "batched_fits", "check_finite", "forward_values", "gradient_matrix",
           "gradient_sum", "integrated_matrix", "perturbation_matrix", "weighted_gradients"]

#: How gradient methods reduce the embedding axis to one score per token.
AGGREGATES = ("sum", "l2", "abs_sum")


def check_finite(t: Tensor, what: str) -> None:
    """Refuse NaN or inf in ``t`` (``what`` names it in the error)."""
    if not bool(torch.isfinite(t).all()):
        raise NonFiniteError(f"{what} contain NaN or inf; try a float64 model "
                             "(model.double()) or another baseline.")


def aggregate(values: Tensor, how: str) -> Tensor:
    """Reduce ``(T, Lp, D)`` to ``(T, Lp)``: signed sum, L2 norm or sum of absolute values."""
    if how == "sum":
        return values.sum(dim=-1)
    if how == "l2":
        norm: Tensor = torch.linalg.vector_norm(values, dim=-1)
        return norm
    if how == "abs_sum":
        return values.abs().sum(dim=-1)
    raise InputError(f"unknown aggregate {how!r}; choose one of {AGGREGATES}.")


#: Largest ``T * rows * Lp * D`` for the vectorised backward: beyond it, the vectorised pass
#: carries ``T`` copies of every activation's gradient and was measured slower than a loop of
#: ``T`` backward passes (5 M-parameter GPT-2, 50 rows, T = 20: 300 s against Captum's 178 s).
#: The largest ``T x rows x positions x (parameters / width)`` given to the vectorised backward.
BATCHED_BACKWARD_LIMIT = 1 << 26


def batched_fits(scorer: Scorer, sc: Tensor, x: Tensor) -> bool:
    """Whether one vectorised backward pass beats a loop of ``T`` for rows ``x`` ``(b, Lp, D)``.

    The vectorised pass carries ``T`` copies of every activation gradient at once, so it pays
    only while those stay small: ``T x rows x positions`` times the model's parameters per unit
    of width (a proxy of the activations per position summed over the layers). A 2-layer GPT-2 of
    width 128 with 10 targets and 16 rows is under the limit (the vectorised pass is faster); on
    SmolLM2-135M with 20 targets and 4 rows of 80 tokens the loop is faster and holds 2.4x less
    memory (``docs/benchmarks-llm.md``).
    """
    t, (b, lp, d) = int(sc.shape[1]), x.shape
    params = getattr(getattr(scorer, "model", None), "parameters", None)
    count = sum(p.numel() for p in params()) if callable(params) else 0
    per_position = count / max(1, int(d))
    return t * b * (int(lp) + t) * per_position <= BATCHED_BACKWARD_LIMIT  # positions: Lp + T


def weighted_gradients(scorer: Scorer, x: Tensor, weight: Tensor, state: dict[str, bool],
                       segments: Tensor | None = None,
                       n_segments: int = 1) -> tuple[Tensor, Tensor]:
    """Scores ``(b, T)`` and ``sum_rows weight * grad F_t`` for rows ``x`` ``(b, Lp, D)``.

    Parameters
    ----------
    scorer
        The target log-probabilities.
    x
        The rows (prompt embeddings) at which to take gradients.
    weight
        ``(b,)`` the weight of each row in the sum.
    state
        Remembers, across calls, that the vectorised backward pass failed (``"batched"``).
    segments
        ``(b,)`` which of ``n_segments`` sums each row goes to; ``None``: one sum.
    n_segments
        The number of sums.

    Returns
    -------
    scores, sums
        ``(b, T)`` and ``(T, Lp, D)``, or ``(T, n_segments, Lp, D)`` with ``segments``.
    """
    x = x.detach().requires_grad_(True)
    seg = torch.zeros(x.shape[0], dtype=torch.long) if segments is None else segments
    k = 1 if segments is None else n_segments
    with torch.enable_grad():
        sc = scorer(x)
        t = sc.shape[1]
        w = weight.to(sc.dtype)
        g: Tensor | None = None
        if state.get("batched", batched_fits(scorer, sc, x)):
            eye = torch.eye(t, dtype=sc.dtype, device=sc.device)
            cot = eye[:, None, :] * w[None, :, None]          # (T, b, T)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    (full,) = torch.autograd.grad(sc, x, cot, is_grads_batched=True,
                                                  retain_graph=True)
                g = full.new_zeros(t, k, *x.shape[1:]).index_add_(1, seg.to(x.device), full)
            except (RuntimeError, NotImplementedError):
                state["batched"] = False  # some operation has no batching rule: loop instead
        if g is None:
            rows = [torch.autograd.grad(sc[:, j], x, w, retain_graph=j < t - 1)[0]
                    for j in range(t)]
            g = torch.stack([r.new_zeros(k, *x.shape[1:]).index_add_(0, seg.to(x.device), r)
                             for r in rows])
    check_finite(sc, "the log-probabilities")
    return sc.detach(), (g[:, 0] if segments is None else g)


def gradient_sum(scorer: Scorer, make: Callable[[slice], Tensor], weights: Tensor,
                 batch_size: int, bar: Any, *, segments: Tensor | None = None,
                 n_segments: int = 1,
                 state: dict[str, bool] | None = None) -> tuple[Tensor, Tensor]:
    """Weighted gradient sums over rows ``make(slice)``, ``batch_size`` rows per pass.

    Parameters
    ----------
    scorer
        The target log-probabilities.
    make
        The rows of a slice of ``0 .. len(weights)``.
    weights
        ``(m,)`` the weight of each row.
    batch_size
        Rows per forward / backward pass.
    bar
        A progress bar (:func:`attribkit.core.progress.progress_bar`) advanced by the rows done.
    segments, n_segments
        As in :func:`weighted_gradients`: which of ``n_segments`` sums each row goes to.
    state
        As in :func:`weighted_gradients`; kept across calls by a caller that makes several.

    Returns
    -------
    scores, sums
        ``(m, T)`` and the sums (:func:`weighted_gradients`' shapes).
    """
    m = int(weights.shape[0])
    state = {} if state is None else state
    total: Tensor | None = None
    scores = []
    for s in range(0, m, batch_size):
        sl = slice(s, min(m, s + batch_size))
        sc, g = weighted_gradients(scorer, make(sl), weights[sl], state,
                                   None if segments is None else segments[sl], n_segments)
        total = g if total is None else total + g
        scores.append(sc)
        bar.update(sl.stop - sl.start)
    assert total is not None
    check_finite(total, "the gradients")
    return torch.cat(scores), total


def integrated_matrix(scorer: Scorer, baseline: Tensor, *, steps: int, rule: str,
                      batch_size: int, progress: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Integrated Gradients of every target at the prompt embeddings.

    Returns
    -------
    values
        ``(T, Lp, D)`` ``(x - x') * sum_k w_k grad F_t(x' + alpha_k (x - x'))``.
    f_x, f_b
        ``(T,)`` the targets at the input and at the baseline.
    """
    x = scorer.prompt_embeds.to(baseline.dtype)
    alpha, w = paths.nodes(rule, steps)
    a = torch.as_tensor(alpha, dtype=x.dtype)
    wt = torch.as_tensor(w, dtype=x.dtype)
    diff = x - baseline

    def make(sl: slice) -> Tensor:
        return baseline + a[sl, None, None] * diff

    with torch.no_grad():
        ends = scorer(torch.stack([x, baseline]))
    check_finite(ends, "the log-probabilities")
    with progress_bar(len(wt), "integrated gradients (all generated tokens)", progress) as bar:
        _, sums = gradient_sum(scorer, make, wt, batch_size, bar)
    return diff * sums, ends[0], ends[1]


def gradient_matrix(scorer: Scorer, times_input: bool) -> tuple[Tensor, Tensor]:
    """Gradients ``(T, Lp, D)`` of every target at the prompt embeddings (times them if asked)."""
    x = scorer.prompt_embeds
    sc, g = weighted_gradients(scorer, x[None], x.new_ones(1), {})
    return (g * x if times_input else g), sc[0]


def forward_values(scorer: Scorer, make: Callable[[slice], Tensor], m: int, batch_size: int,
                   progress: bool, desc: str) -> Tensor:
    """The targets ``(m, T)`` at rows ``make(slice)`` of ``0 .. m``, without gradients."""
    out = []
    with torch.no_grad(), progress_bar(m, desc, progress) as bar:
        for s in range(0, m, batch_size):
            sl = slice(s, min(m, s + batch_size))
            out.append(scorer(make(sl)))
            bar.update(sl.stop - sl.start)
    res = torch.cat(out)
    check_finite(res, "the log-probabilities")
    return res


def _member_rows(x: Tensor, baseline: Tensor, groups: Sequence[Sequence[int]],
                 masks: Tensor) -> Tensor:
    """Rows with the prompt tokens of the groups in each mask ``(b, G)`` at the input."""
    lp = x.shape[0]
    keep = torch.zeros(masks.shape[0], lp, dtype=torch.bool)
    for gi, members in enumerate(groups):
        keep[:, list(members)] |= masks[:, gi:gi + 1]
    grouped = torch.zeros(lp, dtype=torch.bool)
    for members in groups:
        grouped[list(members)] = True
    keep |= ~grouped  # tokens in no group keep the input's value
    return torch.where(keep[:, :, None], x, baseline)


def perturbation_matrix(scorer: Scorer, baseline: Tensor, groups: Sequence[Sequence[int]], *,
                        method: str, batch_size: int, progress: bool, samples: int,
                        seed: int, max_exact: int) -> tuple[Tensor, Tensor, Tensor, dict[str, Any]]:
    """Occlusion or Shapley values of token groups for every target.

    Returns
    -------
    matrix
        ``(T, G)``.
    f_x, f_b
        ``(T,)`` all groups at the input / at the baseline.
    info
        ``{"exact": bool, "permutations": int}`` for Shapley.
    """
    x = scorer.prompt_embeds.to(baseline.dtype)
    g = len(groups)
    ends = forward_values(scorer, lambda sl: torch.stack([x, baseline])[sl], 2, 2, False, "ends")
    f_x, f_b = ends[0], ends[1]
    if method == "occlusion":
        masks = ~torch.eye(g, dtype=torch.bool)
        vals = forward_values(scorer, lambda sl: _member_rows(x, baseline, groups, masks[sl]), g,
                       batch_size, progress, "occlusion")
        return (f_x[None] - vals).T, f_x, f_b, {}
    if g <= max_exact:
        n = 1 << g
        bits = torch.arange(g)

        def coalition(sl: slice) -> Tensor:
            ids = torch.arange(sl.start, sl.stop)
            return _member_rows(x, baseline, groups, ((ids[:, None] >> bits) & 1).bool())

        v = forward_values(scorer, coalition, n, batch_size, progress, "shapley (all coalitions)")
        phi = coalitions.shapley_from_dividends(coalitions.moebius(v.T.contiguous()))
        return phi, f_x, f_b, {"exact": True, "permutations": 0}
    if samples < 1:
        raise InputError(f"samples must be at least 1, got {samples}.")
    gen = torch.Generator().manual_seed(seed)
    perms = torch.stack([torch.randperm(g, generator=gen) for _ in range(samples)])
    # row (p, k): the first k players of permutation p are present (k = 0 .. G)
    steps = torch.arange(g + 1)

    def prefix(sl: slice) -> Tensor:
        ids = torch.arange(sl.start, sl.stop)
        p, k = ids // (g + 1), ids % (g + 1)
        rank = torch.empty_like(perms)
        rank.scatter_(1, perms, steps[:g].expand(samples, g))
        return _member_rows(x, baseline, groups, rank[p] < k[:, None])

    v = forward_values(scorer, prefix, samples * (g + 1), batch_size, progress,
                "shapley (permutations)").reshape(samples, g + 1, -1)
    marg = v[:, 1:] - v[:, :-1]                                  # (S, G, T) by position
    phi = torch.zeros(g, v.shape[-1], dtype=v.dtype)
    for s in range(samples):
        phi.index_add_(0, perms[s], marg[s])
    return (phi / samples).T, f_x, f_b, {"exact": False, "permutations": samples}
