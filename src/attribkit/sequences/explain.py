"""``explain_generation``: attribute each generated token of a Hugging Face model to the prompt."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from attribkit.core.errors import InputError, UnsupportedModelError
from attribkit.core.guard import ModelGuard, warn_if_training
from attribkit.sequences.attnlrp import attnlrp_matrix
from attribkit.sequences.inputs import (
    Prompt,
    baseline_embeddings,
    check_context,
    check_tokenizer,
    encode_prompt,
    encode_target,
    rows_per_pass,
    vocab_size,
)
from attribkit.sequences.methods import (
    AGGREGATES,
    aggregate,
    gradient_matrix,
    integrated_matrix,
    perturbation_matrix,
)
from attribkit.sequences.refine import refined_matrix
from attribkit.sequences.result import GenerationAttribution
from attribkit.sequences.rollout import rollout_matrix
from attribkit.sequences.scoring import build_scorer, is_encoder_decoder

__all__ = ["GENERATION_METHODS", "explain_generation"]

#: Methods of :func:`explain_generation` (aliases: ``ig``, ``gradient``, ``grad_x_input``).
GENERATION_METHODS = ("integrated_gradients", "saliency", "gradient_x_input", "occlusion",
                      "shapley", "attnlrp", "attention_rollout")
_ALIASES = {"ig": "integrated_gradients", "gradient": "saliency", "gradients": "saliency",
            "grad_x_input": "gradient_x_input", "gxi": "gradient_x_input",
            "shapley_values": "shapley", "occlusion_1": "occlusion", "attn_lrp": "attnlrp",
            "rollout": "attention_rollout"}


def _canonical(method: str) -> str:
    key = method.lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in GENERATION_METHODS:
        raise InputError(f"unknown generation method {method!r}; choose one of "
                         f"{', '.join(GENERATION_METHODS)}.")
    return key


def _generate(model: Any, prompt_ids: Tensor, max_new_tokens: int) -> Tensor:
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or \
            max_new_tokens < 1:
        raise InputError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}.")
    check_context(model, int(prompt_ids.shape[0]), max_new_tokens)
    with torch.no_grad():
        out = model.generate(prompt_ids[None], attention_mask=torch.ones_like(prompt_ids[None]),
                             max_new_tokens=max_new_tokens, do_sample=False)
    ids: Tensor = out[0, 1:] if is_encoder_decoder(model) else out[0, prompt_ids.shape[0]:]
    if ids.numel() == 0:
        raise InputError("the model generated no tokens; give the continuation as target.")
    return ids


def _groups(groups: Sequence[Sequence[int]] | None, lp: int) -> list[list[int]]:
    if groups is None:
        return [[j] for j in range(lp)]
    out = [sorted({int(j) for j in g}) for g in groups]
    seen: set[int] = set()
    for g in out:
        if not g or any(j < 0 or j >= lp for j in g) or seen & set(g):
            raise InputError(f"groups must be non-empty, disjoint lists of prompt positions in "
                             f"0..{lp - 1}; got {groups!r}.")
        seen |= set(g)
    return out


def explain_generation(
    model: Any,
    tokenizer: Any,
    prompt: Prompt,
    target: str | Sequence[int] | Tensor | None = None,
    *,
    method: str = "integrated_gradients",
    max_new_tokens: int = 20,
    baseline: Any = None,
    keep_special: bool = True,
    keep_first: bool | None = None,
    steps: int = 100,
    rule: str = "refine",
    aggregate_by: str | None = None,
    groups: Sequence[Sequence[int]] | None = None,
    samples: int = 64,
    max_exact: int = 10,
    seed: int = 0,
    batch_size: int | None = None,
    progress: bool = False,
) -> GenerationAttribution:
    """Attribute each generated token's log-probability to the prompt's tokens.

    Row ``t`` of the result explains ``log p(y_t | prompt, y_<t)`` (teacher forcing: the
    tokens before ``y_t`` are the generated or given ones, held fixed); column ``j`` is prompt
    token ``j`` (for an encoder-decoder: the encoder's input token ``j``).

    Parameters
    ----------
    model
        A Hugging Face causal LM (GPT-2, Llama, ...) or encoder-decoder (T5, Marian, ...) with its
        language-model head, e.g. ``AutoModelForCausalLM.from_pretrained(path)``. Left exactly
        as given (training flags, ``requires_grad``, hooks).
    tokenizer
        Its tokenizer.
    prompt
        The prompt (the source sentence for a translation model), or chat messages
        ``[{"role": "user", "content": "..."}]``, which go through the tokenizer's chat template
        with the assistant's turn opened.
    target
        The continuation to explain: a string (tokenised without special tokens; a warning shows
        the tokens when it is several or contains the unknown token), token ids, or ``None`` to
        explain the model's own greedy generation of ``max_new_tokens`` tokens.
    method
        ``"integrated_gradients"`` (``"ig"``), ``"saliency"``, ``"gradient_x_input"``,
        ``"occlusion"``, ``"shapley"``, ``"attnlrp"`` (which explains each token's logit;
        ``extras["logits"]`` and ``extras["conservation"]``, the relevance's sum over the logit)
        or ``"attention_rollout"`` (``"rollout"``, Abnar & Zuidema 2020: the attention flow from
        each prompt token, causal LMs; see :mod:`attribkit.sequences.rollout`).
    max_new_tokens
        Tokens to generate when ``target`` is ``None``.
    baseline
        The prompt's counterfactual: ``None`` / ``"zeros"`` (all-zero embeddings), a token id,
        a special-token name (``"pad"``, ``"unk"``, ``"eos"``, ``"bos"``) or a token, whose
        embedding replaces every prompt token; or a float tensor ``(Lp, D)`` of embeddings. Used
        by IG, occlusion and Shapley.
    keep_special
        Keep the prompt's special tokens (BOS, ...) at their own embeddings in the baseline.
    keep_first
        Keep the prompt's first token at its own embedding in IG's baseline (it then gets zero
        attribution). ``None`` (default): yes for a causal model, no for an encoder-decoder or a
        baseline given as a tensor of embeddings (used as given unless this is ``True``). A
        causal model's first position is its attention sink: interpolating it makes the path
        far rougher (see ``docs/zoo-llm.md``); a BOS token or a chat template's first token is
        kept anyway by ``keep_special``.
    steps
        IG's gradient evaluations (path points) in all.
    rule
        IG's quadrature: ``"refine"`` (default: Gauss-Legendre panels halved where the
        attributions of a panel do not add up to the change of ``F`` across it, measured with
        forward passes; see :mod:`attribkit.sequences.refine`) or a fixed rule of
        :mod:`attribkit.core.paths` (``"gauss_legendre"``, ``"riemann_trapezoid"``, ...).
    aggregate_by
        Reduction of the embedding axis for gradient methods: ``"sum"`` (default for IG and
        gradient x input, keeps completeness), ``"l2"`` (default for saliency) or ``"abs_sum"``.
    groups
        For occlusion and Shapley: lists of prompt positions that act as one player (default
        each token). The matrix then has one column per group.
    samples
        Permutations for Shapley values when there are more than ``max_exact`` groups.
    max_exact
        Up to this many groups, Shapley values are exact (all ``2^G`` coalitions).
    seed
        Seed of the permutations.
    batch_size
        Rows (path points or coalitions) per forward pass. ``None`` (default): as many as keep
        ``rows x (prompt + continuation)`` within 384 tokens, which bounds the activations
        kept for the backward pass (SmolLM2-135M: a 2,000-token context runs in under 4 GB).
    progress
        Show a progress bar.

    Returns
    -------
    GenerationAttribution
        The ``(T, P)`` matrix, the log-probabilities, completeness gaps (IG) and token labels.
    """
    name = _canonical(method)
    if not hasattr(model, "generate") or not hasattr(model, "get_input_embeddings"):
        raise UnsupportedModelError("explain_generation needs a Hugging Face model with a "
                                    "language-model head (AutoModelForCausalLM or "
                                    "AutoModelForSeq2SeqLM).")
    check_tokenizer(tokenizer, "explain_generation")
    how = aggregate_by or ("l2" if name == "saliency" else "sum")
    if how not in AGGREGATES:
        raise InputError(f"unknown aggregate_by {how!r}; choose one of {AGGREGATES}.")
    warn_if_training(model)
    vocab = vocab_size(model, tokenizer)
    prompt_ids = encode_prompt(tokenizer, prompt, vocab)
    given = encode_target(tokenizer, target, vocab)
    if given is not None:
        check_context(model, int(prompt_ids.shape[0]), int(given.shape[0]))
    with ModelGuard(model) as guard:
        target_ids = given if given is not None else _generate(model, prompt_ids,
                                                               max_new_tokens)
        chunk = rows_per_pass(batch_size, int(prompt_ids.shape[0] + target_ids.shape[0]))
        scorer = build_scorer(model, guard, prompt_ids, target_ids)
        labels = tuple(tokenizer.convert_ids_to_tokens(prompt_ids.tolist()))
        params: dict[str, Any] = {"aggregate_by": how}
        values: Tensor | None = None
        f_b: Tensor | None = None
        extras: dict[str, Any] = {}
        if name == "integrated_gradients":
            first = ((not scorer.encoder_decoder and not isinstance(baseline, Tensor))
                     if keep_first is None else bool(keep_first))
            base = baseline_embeddings(scorer, tokenizer, baseline, vocab, keep_special, first)
            if rule == "refine":
                values, f_x, f_b, info = refined_matrix(scorer, base, steps=steps,
                                                        batch_size=chunk, progress=progress)
                extras.update(info)
            else:
                values, f_x, f_b = integrated_matrix(scorer, base, steps=steps, rule=rule,
                                                     batch_size=chunk, progress=progress)
            matrix = aggregate(values, how)
            params.update(steps=steps, rule=rule, baseline=_describe(baseline),
                          keep_first=first)
        elif name == "attnlrp":
            values, f_x, logits = attnlrp_matrix(scorer, progress=progress)
            matrix = aggregate(values, how)
            extras.update(logits=logits, conservation=values.flatten(1).sum(1) / logits)
        elif name == "attention_rollout":
            matrix, f_x = rollout_matrix(scorer)
        elif name in ("saliency", "gradient_x_input"):
            values, f_x = gradient_matrix(scorer, times_input=name == "gradient_x_input")
            matrix = aggregate(values, how)
        else:
            base = baseline_embeddings(scorer, tokenizer, baseline, vocab, keep_special)
            grp = _groups(groups, scorer.n_prompt)
            matrix, f_x, f_b, extras = perturbation_matrix(
                scorer, base, grp, method=name, batch_size=chunk, progress=progress,
                samples=samples, seed=seed, max_exact=max_exact)
            if groups is not None:
                labels = tuple(" ".join(labels[j] for j in g) for g in grp)
            params.update(baseline=_describe(baseline), groups=len(grp))
            if name == "shapley":
                params.update(exact=extras["exact"], samples=extras["permutations"], seed=seed)
        extras["rows"] = scorer.rows
        return GenerationAttribution(
            method=name, prompt_tokens=labels,
            generated_tokens=tuple(tokenizer.convert_ids_to_tokens(target_ids.tolist())),
            matrix=matrix.detach(), logprobs=f_x.detach(),
            baseline_logprobs=None if f_b is None else f_b.detach(),
            values=None if values is None else values.detach(), prompt_ids=prompt_ids,
            generated_ids=target_ids, params=params, model_calls=scorer.calls, extras=extras)


def _describe(baseline: Any) -> str:
    if baseline is None:
        return "zeros"
    if isinstance(baseline, Tensor):
        return "embeddings"
    return str(baseline)
