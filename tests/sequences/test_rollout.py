"""Attention rollout (Abnar & Zuidema 2020) against attention recomputed by hand on a tiny Llama:
queries and keys from the layers' projections, rotary embeddings written out, a causal softmax,
then the paper's ``0.5 W + 0.5 I`` product in NumPy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attribkit.core.errors import UnsupportedModelError
from attribkit.core.guard import hook_state
from attribkit.sequences import explain_generation
from attribkit.sequences.rollout import attention_rollout
from attribkit.sequences.tiny import tiny_model, tiny_tokenizer

pytest.importorskip("transformers")

PROMPT, TARGET = "the cat sat on the", " happy dog ran"


def _rotate(x: torch.Tensor, pos: torch.Tensor, theta: float) -> torch.Tensor:
    """Llama's rotary embedding: pairs (i, i + d/2) rotated by pos * theta^(-2i/d)."""
    d = x.shape[-1]
    freq = theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    ang = pos[:, None].to(torch.float64) * freq[None]              # (L, d/2)
    cos, sin = torch.cos(ang), torch.sin(ang)
    a, b = x[..., : d // 2], x[..., d // 2:]
    return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)


def _hand_attention(model, ids: torch.Tensor) -> list[np.ndarray]:
    """Per layer ``(H, L, L)`` causal softmax(q k^T / sqrt(d)) from each layer's normed input."""
    normed: list[torch.Tensor] = []
    hooks = [layer.input_layernorm.register_forward_hook(
        lambda _m, _i, out: normed.append(out.detach()[0])) for layer in model.model.layers]
    try:
        with torch.no_grad():
            model(input_ids=ids[None], use_cache=False)
    finally:
        for h in hooks:
            h.remove()
    cfg = model.config
    heads, kv, d = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    theta = float(cfg.rope_parameters["rope_theta"])
    n = ids.shape[0]
    pos = torch.arange(n)
    out = []
    for layer, h in zip(model.model.layers, normed, strict=True):
        att = layer.self_attn
        q = (h @ att.q_proj.weight.T).reshape(n, heads, d).transpose(0, 1)
        k = (h @ att.k_proj.weight.T).reshape(n, kv, d).transpose(0, 1)
        q, k = _rotate(q, pos, theta), _rotate(k, pos, theta)
        k = k.repeat_interleave(heads // kv, dim=0)
        s = (q @ k.transpose(1, 2) / np.sqrt(d)).detach().numpy()
        s = np.where(np.tril(np.ones((n, n), dtype=bool)), s, -np.inf)
        e = np.exp(s - s.max(-1, keepdims=True))
        out.append(e / e.sum(-1, keepdims=True))
    return out


def test_rollout_equals_the_hand_computed_product() -> None:
    tok = tiny_tokenizer()
    model = tiny_model("tiny-llama", layers=3, dtype=torch.float64)
    before = (hook_state(model), model.config._attn_implementation)
    res = explain_generation(model, tok, PROMPT, TARGET, method="rollout")
    assert (hook_state(model), model.config._attn_implementation) == before == (before[0], "sdpa")
    prompt = tok(PROMPT, return_tensors="pt")["input_ids"][0]
    target = tok(TARGET, add_special_tokens=False, return_tensors="pt")["input_ids"][0]
    full = torch.cat([prompt, target[:-1]])
    roll = np.eye(full.shape[0])
    for w in _hand_attention(model, full):
        roll = (0.5 * w.mean(0) + 0.5 * np.eye(full.shape[0])) @ roll
    lp, t = prompt.shape[0], target.shape[0]
    expected = roll[lp - 1: lp - 1 + t, :lp]
    assert res.method == "attention_rollout"
    assert res.matrix.shape == (t, lp)
    # transformers' eager attention takes its softmax in float32 and its rotary angles come from a
    # float32 buffer, the hand version is float64 throughout: ~1e-8 relative apart
    np.testing.assert_allclose(res.matrix.numpy(), expected, rtol=1e-6, atol=1e-9)
    # the predicting rows sum to one over prompt + earlier generated tokens, so the prompt part
    # is one for the first token and less after it
    assert abs(float(res.matrix[0].sum()) - 1.0) < 1e-12
    assert bool((res.matrix[1:].sum(1) < 1).all()) and bool((res.matrix >= 0).all())
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=full[None]).logits[0], -1)
    direct = logp[torch.arange(lp - 1, lp - 1 + t), target]
    # the rollout's pass runs eager attention (float32 softmax), the direct one SDPA in float64
    torch.testing.assert_close(res.logprobs, direct, rtol=1e-7, atol=1e-9)


def test_rollout_rows_sum_to_one_and_a_single_layer_is_its_mixed_attention() -> None:
    gen = torch.Generator().manual_seed(0)
    raw = torch.rand(2, 3, 5, 5, generator=gen, dtype=torch.float64).tril()
    att = raw / raw.sum(-1, keepdim=True)
    roll = attention_rollout(list(att))
    torch.testing.assert_close(roll.sum(-1), torch.ones(5, dtype=torch.float64))
    assert bool((roll.triu(1) == 0).all())                    # causal stays causal
    one = attention_rollout([att[0]])
    torch.testing.assert_close(one, 0.5 * att[0].mean(0) + 0.5 * torch.eye(5,
                                                                           dtype=torch.float64))


def test_rollout_keeps_an_eager_model_eager_and_refuses_encoder_decoders() -> None:
    tok = tiny_tokenizer()
    model = tiny_model("tiny-gpt2", dtype=torch.float64)
    model.set_attn_implementation("eager")
    res = explain_generation(model, tok, PROMPT, TARGET, method="attention_rollout")
    assert model.config._attn_implementation == "eager"
    assert res.matrix.shape[1] == len(tok(PROMPT)["input_ids"])
    t5 = tiny_model("tiny-t5", dtype=torch.float64)
    before = t5.config._attn_implementation
    with pytest.raises(UnsupportedModelError, match="causal LMs"):
        explain_generation(t5, tok, PROMPT, TARGET, method="rollout")
    assert t5.config._attn_implementation == before
