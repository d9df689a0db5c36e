"""The tokenizer, prompt, target and baseline of :func:`attribkit.explain_generation` (and of
:func:`attribkit.prompt_interactions`), checked.

Every refusal is one :class:`attribkit.core.errors.InputError` line that says what was wrong
and how to fix it: no tokenizer, an empty prompt, a prompt (plus continuation) longer than the
model's context, token ids outside the vocabulary (in the target or the baseline), a float or
boolean target, baseline embeddings of the wrong shape or with NaN. A string target that the
tokenizer maps to the unknown token, or a single word it splits into several tokens, is explained
as given but with a warning that shows the tokens (a target ``"Paris"`` without its leading space
is the usual surprise).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from attribkit.core.errors import InputError

if TYPE_CHECKING:
    from attribkit.sequences.scoring import Scorer

__all__ = ["TOKENS_PER_PASS", "Prompt", "baseline_embeddings", "check_context",
           "check_tokenizer", "context_length", "encode_prompt", "encode_target",
           "rows_per_pass", "vocab_size"]

#: A prompt: text, or chat messages ``[{"role": ..., "content": ...}, ...]``.
Prompt = str | Sequence[Mapping[str, str]]

#: Tokens (rows x sequence length) per forward pass when ``batch_size`` is not given: bounds
#: the activations kept for the backward pass (about 1.4 MB per token for SmolLM2-135M, so at
#: most about 0.5 GB). On SmolLM2, 4 rows of 80 tokens took as long as 8 with 0.6x the memory;
#: 2 rows took 1.25x as long.
TOKENS_PER_PASS = 384


def check_tokenizer(tokenizer: Any, caller: str) -> None:
    """Refuse anything but a Hugging Face tokenizer (``caller`` names the function)."""
    if not callable(tokenizer) or not hasattr(tokenizer, "convert_ids_to_tokens"):
        raise InputError(f"{caller} needs the model's Hugging Face tokenizer as its second "
                         f"argument (AutoTokenizer.from_pretrained(...)), got "
                         f"{type(tokenizer).__name__}.")


def _special_ids(tokenizer: Any) -> set[int]:
    """The tokenizer's special token ids (BOS, EOS, PAD, ...)."""
    return {int(i) for i in (getattr(tokenizer, "all_special_ids", None) or [])}


def _baseline_token(tokenizer: Any, baseline: Any, vocab: int) -> int:
    """The token id a baseline names: an id, a special-token name (``"pad"``, ``"eos"``, ...)
    or a token of the vocabulary; checked against the model's ``vocab``."""
    tid: Any = None
    if isinstance(baseline, int) and not isinstance(baseline, bool):
        tid = baseline
    elif isinstance(baseline, str):
        tid = getattr(tokenizer, f"{baseline}_token_id", None)
        if tid is None:
            tid = tokenizer.convert_tokens_to_ids(baseline)
            unk = getattr(tokenizer, "unk_token_id", None)
            if tid == unk and baseline != getattr(tokenizer, "unk_token", None):
                tid = None
    if not isinstance(tid, int) or isinstance(tid, bool):
        raise InputError(f"baseline {baseline!r} is neither 'zeros', a token id, a special-token "
                         "name ('pad', 'unk', 'eos', 'bos') nor a token of the vocabulary.")
    _check_ids(torch.tensor([tid]), vocab, "the baseline")
    return tid


def _given_embeddings(baseline: Tensor, like: Tensor) -> Tensor:
    """Baseline embeddings given as a float tensor, checked against the prompt's ``like``."""
    if baseline.shape != like.shape:
        raise InputError(f"baseline embeddings must be {tuple(like.shape)}, got "
                         f"{tuple(baseline.shape)}.")
    if not bool(torch.isfinite(baseline).all()):
        raise InputError("the baseline embeddings contain NaN or inf; give finite values.")
    return baseline.to(like.dtype)


def baseline_embeddings(scorer: Scorer, tokenizer: Any, baseline: Any, vocab: int,
                        keep_special: bool = False, keep_first: bool = False) -> Tensor:
    """Baseline prompt embeddings ``(Lp, D)``: zeros, the given embeddings, or one token's
    embedding at each position (``baseline`` an id, a special-token name or a token; checked
    against the model's ``vocab``).

    With ``keep_special`` the prompt's special tokens (BOS, EOS, ...) keep their own embeddings:
    they are context, not features, and get zero attribution from IG. With ``keep_first`` so does
    the prompt's first token (a causal model's attention sink).
    """
    x = scorer.prompt_embeds
    if baseline is None or (isinstance(baseline, str) and baseline in ("zeros", "zero")):
        base = torch.zeros_like(x)
    elif isinstance(baseline, Tensor) and baseline.is_floating_point():
        given = _given_embeddings(baseline, x)
        return torch.cat([x[:1], given[1:]]) if keep_first else given
    else:
        tok_id = _baseline_token(tokenizer, baseline, vocab)
        base = scorer.embed_ids(torch.full_like(scorer.prompt_ids, tok_id)).to(x.dtype)
    if keep_special:
        ids = _special_ids(tokenizer)
        special = torch.tensor([int(i) in ids for i in scorer.prompt_ids.tolist()],
                               dtype=torch.bool)
        base = torch.where(special[:, None], x, base)
    if keep_first:
        base = torch.cat([x[:1], base[1:]])
    return base


def vocab_size(model: Any, tokenizer: Any) -> int:
    """The number of token ids the model's input embedding accepts."""
    emb = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    weight = getattr(emb, "weight", None)
    if isinstance(weight, Tensor):
        return int(weight.shape[0])
    return len(tokenizer)


def context_length(model: Any) -> int | None:
    """The longest sequence the model was built for (``max_position_embeddings``), if known."""
    cfg = getattr(model, "config", None)
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(cfg, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _check_ids(ids: Tensor, vocab: int, what: str) -> None:
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
        bad = [int(i) for i in ids.tolist() if i < 0 or i >= vocab]
        raise InputError(f"{what} has token id {bad[0]} outside the vocabulary (0..{vocab - 1}); "
                         "use ids from this model's tokenizer.")


def encode_prompt(tokenizer: Any, prompt: Prompt, vocab: int) -> Tensor:
    """The prompt's token ids ``(Lp,)``: text with the tokenizer's special tokens, or a chat.

    Parameters
    ----------
    tokenizer
        A Hugging Face tokenizer.
    prompt
        Text, or chat messages (``[{"role": "user", "content": "..."}]``): they go through the
        tokenizer's chat template with the assistant's turn opened, so the explained tokens are
        the answer.
    vocab
        The model's vocabulary size (ids must be below it).
    """
    if isinstance(prompt, str):
        if not prompt.strip():
            raise InputError("the prompt is empty: give some text to explain the continuation "
                             "of.")
        ids: Tensor = tokenizer(prompt, add_special_tokens=True,
                                return_tensors="pt")["input_ids"][0]
    elif isinstance(prompt, Sequence) and prompt and all(isinstance(m, Mapping) for m in prompt):
        messages = [dict(m) for m in prompt if isinstance(m, Mapping)]
        if not any(str(m.get("content", "")).strip() for m in messages):
            raise InputError("the chat has no content: give at least one message with text.")
        if getattr(tokenizer, "chat_template", None) is None:
            raise InputError("this tokenizer has no chat template: give the prompt as text.")
        out = tokenizer.apply_chat_template(messages, tokenize=True,
                                            add_generation_prompt=True, return_dict=True)
        ids = torch.as_tensor(out["input_ids"], dtype=torch.long).reshape(-1)
    else:
        raise InputError("prompt must be a non-empty string or a list of chat messages "
                         "({'role': ..., 'content': ...}).")
    ids = ids.to(torch.long)
    if ids.numel() == 0:
        raise InputError("the prompt has no tokens: give some text to explain the continuation "
                         "of.")
    _check_ids(ids, vocab, "the prompt")
    return ids


def encode_target(tokenizer: Any, target: Any, vocab: int) -> Tensor | None:
    """The target's token ids ``(T,)``, or ``None`` when the model is to generate them.

    A string is tokenised without special tokens; when it becomes several tokens or contains
    the unknown token, a warning shows the tokens.
    """
    if target is None:
        return None
    if isinstance(target, str):
        if not target:
            raise InputError("the target is an empty string: give the continuation to explain, "
                             "or target=None to explain the model's own generation.")
        ids: Tensor = tokenizer(target, add_special_tokens=False,
                                return_tensors="pt")["input_ids"][0]
        ids = ids.to(torch.long)
        _warn_split(tokenizer, target, ids)
    elif isinstance(target, Tensor):
        if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
            raise InputError(f"target token ids must be integers, got a {target.dtype} tensor; "
                             "pass a string, a list of ints or a long tensor.")
        ids = target.detach().to(torch.long).reshape(-1).cpu()
    elif isinstance(target, list | tuple):
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in target):
            kinds = sorted({type(i).__name__ for i in target
                            if not isinstance(i, int) or isinstance(i, bool)})
            raise InputError(f"target token ids must be ints, got {', '.join(kinds)}; pass a "
                             "string to have it tokenised.")
        ids = torch.tensor(list(target), dtype=torch.long)
    else:
        raise InputError(f"target must be None (generate), a string or a sequence of token ids, "
                         f"got {type(target).__name__}.")
    if ids.numel() == 0:
        raise InputError("the target has no tokens: give a non-empty continuation or let the "
                         "model generate (target=None).")
    _check_ids(ids, vocab, "the target")
    return ids


def _warn_split(tokenizer: Any, text: str, ids: Tensor) -> None:
    tokens = tokenizer.convert_ids_to_tokens(ids.tolist())
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is not None and int(unk) in ids.tolist() and text != getattr(tokenizer, "unk_token",
                                                                        None):
        warnings.warn(f"the target {text!r} contains the unknown token {tokenizer.unk_token!r} "
                      f"(tokens: {tokens}): the model cannot write it as given; check the text.",
                      UserWarning, stacklevel=4)
    elif len(tokens) > 1 and len(text.split()) <= 1:
        hint = (f" (with a leading space, {' ' + text!r}, it may be one token)"
                if not text[:1].isspace() else "")
        warnings.warn(f"the target word {text!r} is {len(tokens)} tokens {tokens}: each row "
                      f"explains one of them, given the ones before it{hint}.", UserWarning,
                      stacklevel=4)


def check_context(model: Any, n_prompt: int, n_target: int) -> None:
    """Refuse a prompt plus continuation longer than the model's context."""
    limit = context_length(model)
    if bool(getattr(getattr(model, "config", None), "is_encoder_decoder", False)):
        n_prompt, n_target = max(n_prompt, n_target), 0  # encoder and decoder count apart
    if limit is not None and n_prompt + n_target > limit:
        raise InputError(f"the prompt ({n_prompt} tokens) plus the continuation ({n_target}) is "
                         f"longer than the model's context of {limit} tokens; shorten the "
                         "prompt.")


def rows_per_pass(batch_size: int | None, n_tokens: int) -> int:
    """Rows per forward pass: ``batch_size``, or as many as :data:`TOKENS_PER_PASS` allows."""
    if batch_size is None:
        return max(1, TOKENS_PER_PASS // max(1, n_tokens))
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer or None, got {batch_size!r}.")
    return batch_size
