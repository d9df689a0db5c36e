"""``prompt_interactions``: which spans of a prompt act together on a language model's answer.

The players are spans of the prompt (sentences by default, or tokens, given strings, or token
positions); the game is ``v(S) = log p(target | prompt with the spans outside S replaced by the
baseline)``, scored by teacher forcing with :class:`~attribkit.sequences.scoring.Scorer` (one
forward pass per coalition; tokens in no span, and special tokens, keep their own embeddings).
Up to ``max_exact`` spans all ``2^n`` coalitions are scored and the index is exact
(:func:`~attribkit.core.interaction_indices.indices_from_values`); above, it is estimated from
``budget`` coalitions with standard errors (:mod:`attribkit.core.interaction_sampling`).

A pair value of FSII (or the dividend, ``index="Moebius"``) is what two spans do together beyond
what each does alone: two sentences that only give the answer when both are present have a large
positive pair value and small single values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from attribkit.core.checks import count
from attribkit.core.errors import InputError, NonFiniteError, UnsupportedModelError
from attribkit.core.guard import ModelGuard, warn_if_training
from attribkit.core.interaction_indices import (
    coalitions_up_to,
    indices_from_values,
    normalise_index,
)
from attribkit.core.interaction_sampling import minimum_budget, sample_index
from attribkit.core.interactions_result import Interactions
from attribkit.core.progress import progress_bar
from attribkit.sequences.inputs import baseline_embeddings, check_tokenizer, vocab_size
from attribkit.sequences.scoring import Scorer, build_scorer, is_encoder_decoder

__all__ = ["SPAN_MODES", "prompt_interactions", "sentence_spans"]

#: Named ways to cut a prompt into players (or give strings / token positions).
SPAN_MODES = ("sentences", "tokens")
_ENDS = (".", "!", "?", "\n")


def _special(tokenizer: Any) -> set[int]:
    return {int(i) for i in (getattr(tokenizer, "all_special_ids", None) or [])}


def sentence_spans(tokenizer: Any, prompt_ids: Tensor) -> list[list[int]]:
    """Token positions of each sentence: a sentence ends after a token ending in . ! ? or a
    line break; special tokens belong to none.

    Parameters
    ----------
    tokenizer
        The tokenizer (its ``decode`` names each token).
    prompt_ids
        ``(Lp,)`` the prompt's token ids.
    """
    special = _special(tokenizer)
    spans: list[list[int]] = [[]]
    for j, tok in enumerate(prompt_ids.tolist()):
        if int(tok) in special:
            continue
        spans[-1].append(j)
        if str(tokenizer.decode([int(tok)])).rstrip(" ").endswith(_ENDS):
            spans.append([])
    return [s for s in spans if s]


def _string_spans(tokenizer: Any, prompt: str, pieces: Sequence[str]) -> list[list[int]]:
    try:
        enc = tokenizer(prompt, add_special_tokens=True, return_offsets_mapping=True)
    except (NotImplementedError, TypeError, ValueError):
        raise InputError("spans given as strings need a fast tokenizer (offsets); give token "
                         "positions instead, e.g. spans=[[0, 1, 2], [3, 4]].") from None
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    out, cursor = [], 0
    for piece in pieces:
        start = prompt.find(piece, cursor)
        if not piece.strip() or start < 0:
            raise InputError(f"span {piece!r} is not in the prompt after position {cursor}; "
                             "give non-empty pieces of the prompt, in order.")
        end = cursor = start + len(piece)
        toks = [j for j, (a, b) in enumerate(offsets) if b > a and a < end and b > start]
        if not toks:
            raise InputError(f"span {piece!r} covers no token of the prompt.")
        out.append(toks)
    return out


def _spans(spans: Any, tokenizer: Any, prompt: str, prompt_ids: Tensor) -> list[list[int]]:
    lp = int(prompt_ids.shape[0])
    if isinstance(spans, str):
        if spans == "sentences":
            out = sentence_spans(tokenizer, prompt_ids)
        elif spans == "tokens":
            out = [[j] for j, t in enumerate(prompt_ids.tolist()) if int(t) not in
                   _special(tokenizer)]
        else:
            raise InputError(f"unknown spans {spans!r}; choose one of {SPAN_MODES}, a list of "
                             "strings of the prompt or a list of token-position lists.")
    elif spans and all(isinstance(s, str) for s in spans):
        out = _string_spans(tokenizer, prompt, spans)
    else:
        out = [sorted({int(j) for j in s}) for s in spans]
    seen: set[int] = set()
    for s in out:
        if not s or any(j < 0 or j >= lp for j in s) or seen & set(s):
            raise InputError(f"spans must be non-empty, disjoint sets of prompt positions in "
                             f"0..{lp - 1}; got {spans!r}.")
        seen |= set(s)
    if not out:
        raise InputError("the prompt has no span to explain.")
    return out


def _target_ids(model: Any, tokenizer: Any, prompt_ids: Tensor, target: Any) -> Tensor:
    if isinstance(target, str):
        ids = tokenizer(target, add_special_tokens=False, return_tensors="pt")["input_ids"][0]
    elif target is None:
        with torch.no_grad():
            out = model.generate(prompt_ids[None], attention_mask=torch.ones_like(
                prompt_ids[None]), max_new_tokens=1, do_sample=False)
        ids = out[0, 1:] if is_encoder_decoder(model) else out[0, prompt_ids.shape[0]:]
    else:
        ids = torch.as_tensor(target, dtype=torch.long).reshape(-1)
    if ids.numel() == 0:
        raise InputError("the target has no tokens: give a non-empty continuation or let the "
                         "model generate one token (target=None).")
    result: Tensor = torch.as_tensor(ids, dtype=torch.long)
    return result


def _player_game(scorer: Scorer, base: Tensor, spans: list[list[int]], batch_size: int,
                 progress: bool) -> Any:
    """``play(coalitions (B, n)) -> (B,)``: log-probability of the whole target."""
    x = scorer.prompt_embeds.to(base.dtype)
    lp = int(x.shape[0])
    member = torch.zeros((len(spans), lp), dtype=torch.bool)
    for i, s in enumerate(spans):
        member[i, s] = True
    context = ~member.any(dim=0)

    def play(coal: Tensor) -> Tensor:
        out = []
        with torch.no_grad(), progress_bar(int(coal.shape[0]), "coalitions", progress,
                                           unit="row") as bar:
            for lo in range(0, int(coal.shape[0]), batch_size):
                part = coal[lo:lo + batch_size]
                keep = (part.to(torch.float64) @ member.to(torch.float64)) > 0
                keep |= context
                rows = torch.where(keep[:, :, None], x, base)
                out.append(scorer(rows).sum(dim=1).to(torch.float64))
                bar.update(int(part.shape[0]))
        values = torch.cat(out)
        if not bool(torch.isfinite(values).all()):
            raise NonFiniteError("the log-probabilities contain NaN or inf; try a float64 model "
                                 "(model.double()) or another baseline.")
        return values

    return play


def prompt_interactions(
    model: Any,
    tokenizer: Any,
    prompt: str,
    target: str | Sequence[int] | Tensor | None = None,
    *,
    spans: str | Sequence[str] | Sequence[Sequence[int]] = "sentences",
    index: str = "FSII",
    order: int = 2,
    baseline: Any = None,
    max_exact: int = 12,
    budget: int | None = None,
    seed: int = 0,
    batch_size: int = 32,
    progress: bool = False,
) -> Interactions:
    """Interactions between spans of a prompt on the log-probability of a continuation.

    Parameters
    ----------
    model
        A Hugging Face causal LM or encoder-decoder with its language-model head; left exactly
        as given.
    tokenizer
        Its tokenizer.
    prompt
        The prompt (special tokens are added as the tokenizer does).
    target
        The continuation whose log-probability is explained (a string, tokenised without
        special tokens, or token ids; several tokens: the log-probability of all of them), or
        ``None``: the model's own next token.
    spans
        The players: ``"sentences"`` (split after . ! ? and line breaks), ``"tokens"``, a list
        of pieces of the prompt (strings, in order; tokens in none stay as they are), or a list
        of lists of prompt token positions.
    index
        ``"FSII"`` (default), ``"SII"``, ``"STII"``, ``"k-SII"``, ``"BII"`` or ``"Moebius"``
        (docs/interactions.md).
    order
        The largest coalition reported (2: pairs).
    baseline
        What an absent span becomes: ``None`` / ``"zeros"`` (zero embeddings), a token id or
        name (``"pad"``, ``"unk"``, ``"eos"``), whose embedding fills every absent position, or
        a float tensor ``(Lp, D)`` of embeddings.
    max_exact
        Up to this many spans every coalition is scored (``2^n`` forward rows) and the index is
        exact; above, it is estimated.
    budget
        Coalitions scored for an estimate (standard errors come with it); ``None``: four per
        coalition reported (e.g. 844 for 20 spans at order 2). Ignored when exact.
    seed
        Seed of the sampler.
    batch_size
        Coalitions per forward pass.
    progress
        Show a progress bar.

    Returns
    -------
    Interactions
        One value per coalition of spans up to ``order`` (``names``: the spans' text),
        ``output`` = ``log p(target | prompt)``, ``baseline_output`` = with every span absent,
        ``stderr`` when estimated.
    """
    name = normalise_index(index)
    order = count(order, "order", minimum=1, maximum=None)
    max_exact = count(max_exact, "max_exact", minimum=1, maximum=20)
    batch_size = count(batch_size, "batch_size", minimum=1, maximum=None)
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError("prompt must be a non-empty string.")
    if not hasattr(model, "get_input_embeddings"):
        raise UnsupportedModelError("prompt_interactions needs a Hugging Face model with a "
                                    "language-model head (AutoModelForCausalLM or "
                                    "AutoModelForSeq2SeqLM).")
    check_tokenizer(tokenizer, "prompt_interactions")
    warn_if_training(model)
    prompt_ids = tokenizer(prompt, add_special_tokens=True,
                           return_tensors="pt")["input_ids"][0].to(torch.long)
    groups = _spans(spans, tokenizer, prompt, prompt_ids)
    n = len(groups)
    if order > n:
        raise InputError(f"order={order} is above the number of spans ({n}); use order<={n} "
                         "or more spans.")
    with ModelGuard(model) as guard:
        target_ids = _target_ids(model, tokenizer, prompt_ids, target)
        scorer = build_scorer(model, guard, prompt_ids, target_ids)
        base = baseline_embeddings(scorer, tokenizer, baseline, vocab_size(model, tokenizer))
        play = _player_game(scorer, base, groups, batch_size, progress)
        stderr: Tensor | None = None
        if n <= max_exact:
            bits = ((torch.arange(1 << n)[:, None] >> torch.arange(n)) & 1).bool()
            game = play(bits)
            values = indices_from_values(game, name, order)
            empty, full, spent = game[0], game[-1], 1 << n
        else:
            m = len(coalitions_up_to(n, order))
            budget = max(minimum_budget(n), 4 * m) if budget is None else count(
                budget, "budget", minimum=minimum_budget(n), maximum=None)
            est = sample_index(play, n, name, order, budget, seed=seed)
            values, stderr = est.values, est.stderr
            empty, full, spent = est.empty, est.full, est.evaluations
    tokens = tokenizer.convert_ids_to_tokens(prompt_ids.tolist())
    texts = tuple(str(tokenizer.decode([int(prompt_ids[j]) for j in g])).strip() for g in groups)
    params = {"index": name, "order": order, "players": n, "spans": [list(g) for g in groups],
              "target": tokenizer.convert_ids_to_tokens(target_ids.tolist()),
              "prompt_tokens": list(tokens), "budget": None if stderr is None else budget,
              "seed": seed, "forward_rows": scorer.rows,
              "baseline": "zeros" if baseline is None else (
                  "embeddings" if isinstance(baseline, Tensor) else str(baseline))}
    return Interactions(
        values=values[None], coalitions=coalitions_up_to(n, order), index=name, order=order,
        n_players=n, output=full.reshape(1), baseline_output=empty.reshape(1),
        evaluations=spent, exact=stderr is None, stderr=None if stderr is None else stderr[None],
        labels=None, params=params, names=texts)
