"""The result of generation attribution: a (generated x prompt) matrix and its bookkeeping."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

__all__ = ["GenerationAttribution"]


@dataclass(frozen=True)
class GenerationAttribution:
    """How much each prompt token (or group of tokens) contributed to each generated token.

    The target of row ``t`` is ``log p(y_t | prompt, y_<t)`` (teacher forcing).

    Attributes
    ----------
    method
        ``"integrated_gradients"``, ``"saliency"``, ``"gradient_x_input"``, ``"occlusion"`` or
        ``"shapley"``.
    prompt_tokens
        The column labels: the prompt's tokens, or one label per group of tokens.
    generated_tokens
        The row labels: the generated (or given) tokens.
    matrix
        ``(T, P)``: row ``t`` attributes generated token ``t``; column ``j`` is prompt token (or
        group) ``j``.
    logprobs
        ``(T,)`` the target ``F_t(x)``: each generated token's log-probability given its prefix.
    baseline_logprobs
        ``(T,)`` ``F_t(x')`` with the prompt at its baseline (methods with a baseline).
    values
        ``(T, Lp, D)`` the attribution of every embedding coordinate (gradient methods), before
        the reduction to ``matrix``.
    prompt_ids, generated_ids
        The token ids.
    params
        The method's parameters, for the record (steps, rule, baseline, aggregate, ...).
    model_calls
        Forward passes made (each may hold many rows); ``extras["rows"]`` counts rows.
    extras
        Further per-method results.
    """

    method: str
    prompt_tokens: tuple[str, ...]
    generated_tokens: tuple[str, ...]
    matrix: Tensor
    logprobs: Tensor
    baseline_logprobs: Tensor | None = None
    values: Tensor | None = None
    prompt_ids: Tensor | None = None
    generated_ids: Tensor | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    model_calls: int = 0
    extras: Mapping[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        """``(T, P)``: generated tokens by prompt tokens (or groups)."""
        return int(self.matrix.shape[0]), int(self.matrix.shape[1])

    @property
    def totals(self) -> Tensor:
        """``(T,)`` the sum of each row: what the prompt contributed to each generated token."""
        return self.matrix.sum(dim=1)

    @property
    def sequence_attribution(self) -> Tensor:
        """``(P,)`` each prompt token's attribution of the whole continuation's log-probability.

        The target is additive (``log p(y) = sum_t log p(y_t | ...)``), so for the additive
        methods this is the sum of the rows.
        """
        return self.matrix.sum(dim=0)

    @property
    def sequence_logprob(self) -> float:
        """``log p(y | prompt)``: the sum of :attr:`logprobs`."""
        return float(self.logprobs.sum())

    @property
    def sequence_total(self) -> float:
        """The sum of the whole matrix (for IG: ``log p(y | x) - log p(y | x')``)."""
        return float(self.matrix.sum())

    @property
    def delta(self) -> Tensor | None:
        """``(T,)`` ``F_t(x) - F_t(x')``, where the method has a baseline."""
        if self.baseline_logprobs is None:
            return None
        return self.logprobs - self.baseline_logprobs

    @property
    def gap(self) -> Tensor | None:
        """``(T,)`` completeness gap of each row: ``sum_j a_tj - (F_t(x) - F_t(x'))``."""
        d = self.delta
        return None if d is None else self.totals - d

    @property
    def relative_gap(self) -> Tensor | None:
        """``(T,)`` ``|gap| / |F_t(x) - F_t(x')|``."""
        d, g = self.delta, self.gap
        if d is None or g is None:
            return None
        return g.abs() / d.abs().clamp_min(torch.finfo(d.dtype).tiny)

    def completeness(self) -> str:
        """A short account of completeness per generated token (for reports and the CLI)."""
        d, g, rg = self.delta, self.gap, self.relative_gap
        if d is None or g is None or rg is None:
            return f"{self.method}: no baseline, completeness does not apply."
        worst = int(rg.argmax())
        return (f"{self.method}: sum of each row vs F_t(x) - F_t(x'): largest relative gap "
                f"{float(rg.max()):.2%} (token {worst} {self.generated_tokens[worst]!r}); "
                f"sequence: sum {self.sequence_total:+.4f} vs "
                f"{float(d.sum()):+.4f}.")

    def to_text(self, digits: int = 3) -> str:
        """The matrix as a plain-text table (rows: generated tokens; columns: prompt tokens)."""
        head = ["", *self.prompt_tokens, "| sum", "log p"]
        rows = [head]
        for t, tok in enumerate(self.generated_tokens):
            vals = [f"{float(v):+.{digits}f}" for v in self.matrix[t]]
            rows.append([tok, *vals, f"| {float(self.totals[t]):+.{digits}f}",
                         f"{float(self.logprobs[t]):+.{digits}f}"])
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True))
                         for r in rows)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (matrix as nested lists)."""
        rg = self.relative_gap
        return {
            "method": self.method,
            "prompt_tokens": list(self.prompt_tokens),
            "generated_tokens": list(self.generated_tokens),
            "matrix": self.matrix.double().tolist(),
            "logprobs": self.logprobs.double().tolist(),
            "baseline_logprobs": None if self.baseline_logprobs is None
            else self.baseline_logprobs.double().tolist(),
            "relative_gap": None if rg is None else rg.double().tolist(),
            "sequence_logprob": self.sequence_logprob,
            "params": {k: v for k, v in self.params.items()
                       if isinstance(v, int | float | str | bool | type(None))},
        }
