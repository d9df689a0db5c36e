"""IG's ``rule="refine"`` (panels halved where completeness fails) and ``keep_first``."""

from __future__ import annotations

import math

import pytest
import torch

from attribkit.sequences import explain_generation
from attribkit.sequences import methods as seq_methods
from attribkit.sequences.methods import integrated_matrix
from attribkit.sequences.refine import refined_matrix
from attribkit.sequences.tiny import tiny_model, tiny_tokenizer

pytest.importorskip("transformers")

PROMPT, TARGET = "the cat sat on the", "happy dog ran"


class SteepScorer:
    """F(e) = tanh(40 (mean(e) - 0.6)): one steep step on the path from 0 to ones.

    F depends on the embeddings only through their mean, so every element has the same gradient
    and IG gives each of the 6 elements exactly (F(1) - F(0)) / 6 (a closed form).
    """

    prompt_embeds = torch.ones(2, 3, dtype=torch.float64)

    def __call__(self, rows: torch.Tensor) -> torch.Tensor:
        return torch.tanh(40 * (rows.mean(dim=(1, 2)) - 0.6))[:, None]


def test_refine_matches_the_closed_form_where_a_fixed_rule_misses() -> None:
    sc = SteepScorer()
    base = torch.zeros(2, 3, dtype=torch.float64)
    exact = (math.tanh(40 * 0.4) - math.tanh(-40 * 0.6)) / 6
    values, f_x, f_b, info = refined_matrix(sc, base, steps=60,  # type: ignore[arg-type]
                                            batch_size=7, progress=False)
    torch.testing.assert_close(values, torch.full((1, 2, 3), exact, dtype=torch.float64),
                               rtol=1e-4, atol=0)
    assert float(f_x[0] - f_b[0]) == pytest.approx(6 * exact, rel=1e-12)
    assert info == {"panels": 15, "forward_passes": 11 + 5}  # 10 panels, then 5 halvings
    # the fixed rule it replaces as the default, at the same 60 gradients: 10 times the error
    fixed, _, _ = integrated_matrix(sc, base, steps=60,  # type: ignore[arg-type]
                                    rule="gauss_legendre", batch_size=7, progress=False)
    assert abs(float(fixed[0, 0, 0]) / exact - 1) > 10 * abs(float(values[0, 0, 0]) / exact - 1)


def test_refine_converges_to_a_high_order_fixed_rule_on_a_smooth_model() -> None:
    tok = tiny_tokenizer()
    gpt2 = tiny_model("tiny-gpt2", dtype=torch.float64)
    ours = explain_generation(gpt2, tok, PROMPT, TARGET, steps=60)
    ref = explain_generation(gpt2, tok, PROMPT, TARGET, steps=256, rule="gauss_legendre")
    assert ours.params["rule"] == "refine" and ours.params["keep_first"] is True
    torch.testing.assert_close(ours.matrix, ref.matrix, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(ours.baseline_logprobs, ref.baseline_logprobs)
    # gradient rows: exactly the 60 steps; forward rows: the 11 panel edges, 5 midpoints, and
    # the 2 rows (input, baseline) the fixed rule's reference does not share
    assert ours.extras["rows"] == 60 + 16


def test_refine_loop_and_vectorised_backward_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    tok = tiny_tokenizer()
    gpt2 = tiny_model("tiny-gpt2", dtype=torch.float64)
    batched = explain_generation(gpt2, tok, PROMPT, TARGET, steps=12, batch_size=4)
    monkeypatch.setattr(seq_methods, "BATCHED_BACKWARD_LIMIT", 0)
    looped = explain_generation(gpt2, tok, PROMPT, TARGET, steps=12, batch_size=4)
    torch.testing.assert_close(batched.matrix, looped.matrix, rtol=1e-10, atol=1e-13)


def test_keep_first_holds_the_attention_sink_for_causal_models_only() -> None:
    tok = tiny_tokenizer()
    gpt2 = tiny_model("tiny-gpt2", dtype=torch.float64)
    res = explain_generation(gpt2, tok, PROMPT, TARGET, steps=12)
    assert torch.all(res.matrix[:, 0] == 0) and bool((res.matrix[:, 1:] != 0).all())
    off = explain_generation(gpt2, tok, PROMPT, TARGET, steps=12, keep_first=False)
    assert bool((off.matrix[:, 0] != 0).all()) and off.params["keep_first"] is False
    t5 = explain_generation(tiny_model("tiny-t5", dtype=torch.float64), tok, PROMPT, TARGET,
                            steps=12)
    assert t5.params["keep_first"] is False and bool((t5.matrix[:, 0] != 0).all())


def test_refine_needs_two_panels_of_steps() -> None:
    from attribkit.core.errors import InputError

    tok = tiny_tokenizer()
    with pytest.raises(InputError, match="steps"):
        explain_generation(tiny_model("tiny-gpt2"), tok, PROMPT, TARGET, steps=5)


def test_keep_first_leaves_a_given_baseline_tensor_unless_asked() -> None:
    tok = tiny_tokenizer()
    gpt2 = tiny_model("tiny-gpt2", dtype=torch.float64)
    base = torch.full((5, gpt2.config.n_embd), 0.1, dtype=torch.float64)
    res = explain_generation(gpt2, tok, PROMPT, TARGET, steps=12, baseline=base)
    assert res.params["keep_first"] is False and bool((res.matrix[:, 0] != 0).all())
    kept = explain_generation(gpt2, tok, PROMPT, TARGET, steps=12, baseline=base,
                              keep_first=True)
    assert kept.params["keep_first"] is True and torch.all(kept.matrix[:, 0] == 0)
