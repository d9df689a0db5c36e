"""AttnLRP for :func:`attribkit.explain_generation`: each generated token's logit, explained.

One forward pass over ``prompt + generated[:-1]`` under AttnLRP's rules
(:func:`attribkit.methods.propagation.attnlrp_rules`), then one modified backward pass per
generated token through the retained graph: ``values[t] = prompt_embeds * g_t``, where ``g_t`` is
the modified gradient of the logit of token ``t``. LRP explains the logit (the log-softmax has
no LRP rule); the log-probabilities are reported beside it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from attribkit.core.errors import NonFiniteError
from attribkit.core.progress import progress_bar
from attribkit.methods.propagation.attnlrp import attnlrp_rules, check_graph
from attribkit.sequences.scoring import Scorer

__all__ = ["attnlrp_matrix"]


def attnlrp_matrix(scorer: Scorer, *, epsilon: float = 0.0,
                   progress: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """AttnLRP relevance of the prompt embeddings for every generated token.

    Parameters
    ----------
    scorer
        The generation's scorer (its guard removes the rules' hooks if this raises).
    epsilon
        The epsilon rule's stabiliser on linear layers (0: the plain gradient).
    progress
        Show a progress bar over the generated tokens.

    Returns
    -------
    values
        ``(T, Lp, D)`` relevance of each prompt embedding entry for each generated token.
    logprobs
        ``(T,)`` the tokens' log-probabilities.
    logits
        ``(T,)`` the explained logits (``values[t].sum()`` is close to ``logits[t]`` where
        relevance is conserved).
    """
    x = scorer.prompt_embeds.detach().requires_grad_(True)
    t = scorer.n_target
    with torch.no_grad():
        logprobs = scorer(x.detach()[None])[0]
    ids = scorer.target_ids
    rows: list[Tensor] = []
    rules = attnlrp_rules(scorer.model, epsilon=epsilon, add_handle=scorer.guard.add_handle)
    with rules as sc, torch.enable_grad():
        full = scorer.logits(x[None])[0]
        logits = full.gather(-1, ids[:, None])[:, 0]
        check_graph(logits.sum(), x, sc)
        with progress_bar(t, "attnlrp (generated tokens)", progress) as bar:
            for j in range(t):
                (g,) = torch.autograd.grad(logits[j], x, retain_graph=j < t - 1,
                                           allow_unused=True)
                rows.append(torch.zeros_like(x) if g is None else (x * g).detach())
                bar.update(1)
    values = torch.stack(rows)
    if not bool(torch.isfinite(values).all()):
        raise NonFiniteError("AttnLRP relevances contain NaN or inf; try a float64 model "
                             "(model.double()) or epsilon > 0.")
    return values, logprobs.detach(), logits.detach().to(values.dtype)
