"""The target of generation attribution: each generated token's log-probability given its prefix.

:class:`Scorer` turns a batch of prompt embeddings ``(B, Lp, D)`` into the log-probabilities
``(B, T)`` of the ``T`` generated (or given) tokens under teacher forcing, for a Hugging Face
causal LM (GPT-2, Llama, ...) or an encoder-decoder (T5, Marian, ...):

* causal: one forward over ``prompt + generated[:-1]``; the output at position ``Lp - 1 + t``
  scores generated token ``t``. Causal attention makes each score depend on its own prefix only,
  so all ``T`` targets come from one forward pass, and only the ``T`` positions that score a
  token go through the output head (``logits_to_keep``).
* encoder-decoder: the prompt is the encoder's input; one decoder pass over
  ``[start] + generated[:-1]`` scores all ``T`` tokens.

The prompt embeddings enter through a forward hook on the model's input embedding module that
replaces its output (so any scaling or position embedding the model adds afterwards still
applies); the generated tokens keep their own embeddings. The hook lives only during the call.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.core.errors import InputError, UnsupportedModelError
from attribkit.core.guard import ModelGuard

__all__ = ["Scorer", "build_scorer"]


@dataclass
class Scorer:
    """Log-probabilities ``(B, T)`` of the target tokens for a batch of prompt embeddings.

    Build it with :func:`build_scorer`. ``prompt_embeds`` ``(Lp, D)`` are the prompt's own
    embeddings (the input ``x`` of attribution).
    """

    model: Any
    guard: ModelGuard
    encoder_decoder: bool
    embedding: nn.Module
    prompt_ids: Tensor
    target_ids: Tensor
    prompt_embeds: Tensor
    calls: int = 0
    rows: int = 0

    @property
    def n_prompt(self) -> int:
        """``Lp``, the prompt's length in tokens."""
        return int(self.prompt_ids.shape[0])

    @property
    def n_target(self) -> int:
        """``T``, the number of scored tokens."""
        return int(self.target_ids.shape[0])

    def embed_ids(self, ids: Tensor) -> Tensor:
        """The embedding module's output for token ids ``(L,)`` -> ``(L, D)``, without gradients."""
        with torch.no_grad():
            out: Tensor = self.embedding(ids[None])[0]
        return out.detach()

    def _replace(self, points: Tensor, rest: Tensor | None) -> Any:
        b, lp = points.shape[0], self.n_prompt

        def hook(_m: nn.Module, _a: Any, out: Any) -> Tensor:
            if not isinstance(out, Tensor) or out.dim() != 3 or out.shape[0] != b:
                raise UnsupportedModelError("the input embedding module returned an unexpected "
                                            "output; generation attribution needs (B, L, D).")
            if rest is None:
                if out.shape[1] != lp:
                    raise InputError("the encoder saw a different number of tokens than the "
                                     "prompt has.")
                return points
            return torch.cat([points, rest.expand(b, -1, -1)], dim=1)

        return self.guard.add_handle(self.embedding.register_forward_hook(hook))

    def __call__(self, points: Tensor) -> Tensor:
        """Log-probabilities ``(B, T)`` of the targets with the prompt embeddings ``points``."""
        if points.dim() != 3 or points.shape[1] != self.n_prompt:
            raise InputError(f"points must be (B, {self.n_prompt}, D), got {tuple(points.shape)}.")
        b, t = points.shape[0], self.n_target
        self.calls += 1
        self.rows += b
        logits = self.logits(points)
        logp = torch.log_softmax(logits.to(points.dtype), dim=-1)
        return logp.gather(-1, self.target_ids.expand(b, t)[..., None])[..., 0]

    def logits(self, points: Tensor) -> Tensor:
        """The full logits ``(B, T, V)`` at the ``T`` scoring positions (not counted as a call)."""
        if self.encoder_decoder:
            return self._seq2seq_logits(points)
        return self._causal_logits(points)

    def _causal_logits(self, points: Tensor) -> Tensor:
        b, lp, t = points.shape[0], self.n_prompt, self.n_target
        full = torch.cat([self.prompt_ids, self.target_ids[:-1]])
        rest = self.embed_ids(full[lp:]).to(points.dtype) if t > 1 else None
        handle = self._replace(points, rest)
        try:
            kwargs: dict[str, Any] = {"use_cache": False}
            if _accepts(self.model, "logits_to_keep"):
                kwargs["logits_to_keep"] = t
            out = self.model(input_ids=full.expand(b, -1), **kwargs)
        finally:
            handle.remove()
        logits: Tensor = out.logits
        return logits[:, -t:] if logits.shape[1] != t else logits

    def _seq2seq_logits(self, points: Tensor) -> Tensor:
        b = points.shape[0]
        encoder = self.model.get_encoder()
        handle = self._replace(points, None)
        try:
            enc = encoder(input_ids=self.prompt_ids.expand(b, -1), return_dict=True)
        finally:
            handle.remove()
        start = _decoder_start(self.model)
        dec = torch.cat([self.target_ids.new_tensor([start]), self.target_ids[:-1]])
        out = self.model(encoder_outputs=enc, decoder_input_ids=dec.expand(b, -1),
                         use_cache=False)
        logits: Tensor = out.logits
        return logits


def _accepts(model: Any, name: str) -> bool:
    try:
        return name in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover - exotic callables
        return False


def _decoder_start(model: Any) -> int:
    cfg = model.config
    start = getattr(cfg, "decoder_start_token_id", None)
    if start is None:
        start = getattr(getattr(model, "generation_config", None), "decoder_start_token_id", None)
    if start is None:
        raise UnsupportedModelError("the encoder-decoder has no decoder_start_token_id in its "
                                    "config; set model.config.decoder_start_token_id.")
    return int(start)


def is_encoder_decoder(model: Any) -> bool:
    """Whether a Hugging Face model is an encoder-decoder (T5, Marian, BART, ...)."""
    return bool(getattr(getattr(model, "config", None), "is_encoder_decoder", False))


def build_scorer(model: Any, guard: ModelGuard, prompt_ids: Tensor,
                 target_ids: Tensor) -> Scorer:
    """A :class:`Scorer` for ``model`` (already guarded by ``guard``).

    Parameters
    ----------
    model
        A Hugging Face ``PreTrainedModel`` with a language-model head.
    guard
        The entered guard of ``model`` (hooks go through it).
    prompt_ids
        ``(Lp,)`` the prompt's token ids (the encoder input for an encoder-decoder).
    target_ids
        ``(T,)`` the tokens to score, in order.
    """
    if not isinstance(model, nn.Module) or not hasattr(model, "get_input_embeddings"):
        raise UnsupportedModelError("explain_generation needs a Hugging Face model with a "
                                    "language-model head (AutoModelForCausalLM or "
                                    "AutoModelForSeq2SeqLM).")
    if target_ids.numel() == 0:
        raise InputError("there is nothing to explain: the target has no tokens.")
    enc_dec = is_encoder_decoder(model)
    hf: Any = model
    embedding = (hf.get_encoder() if enc_dec else hf).get_input_embeddings()
    if not isinstance(embedding, nn.Module):
        raise UnsupportedModelError("the model has no input embedding module.")
    scorer = Scorer(model=model, guard=guard, encoder_decoder=enc_dec, embedding=embedding,
                    prompt_ids=prompt_ids, target_ids=target_ids,
                    prompt_embeds=torch.empty(0))
    scorer.prompt_embeds = scorer.embed_ids(prompt_ids)
    return scorer
