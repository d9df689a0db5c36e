"""explain_generation against Captum's LLMGradientAttribution, inseq, closed forms and axioms."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from attribkit.core.errors import InputError
from attribkit.core.guard import hook_state
from attribkit.sequences import explain_generation
from attribkit.sequences.tiny import tiny_model, tiny_tokenizer

pytest.importorskip("transformers")

PROMPT, TARGET = "the cat sat on the", "happy dog ran"


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def gpt2():
    return tiny_model("tiny-gpt2", dtype=torch.float64)


def _ids(tok, text):
    return torch.tensor(tok(text, add_special_tokens=False)["input_ids"])


def _direct_logprobs(model, tok, embeds):
    """log p(y_t | prefix) with the prompt's embeddings replaced: no hooks, inputs_embeds."""
    y = _ids(tok, TARGET)
    rest = model.get_input_embeddings()(y[:-1])
    with torch.no_grad():
        logits = model(inputs_embeds=torch.cat([embeds, rest])[None]).logits[0]
    lp = logits.log_softmax(-1)[embeds.shape[0] - 1:]
    return lp.gather(1, y[:, None])[:, 0]


def test_ig_and_gradients_match_captum(tok, gpt2):
    from captum.attr import (
        LayerGradientXActivation,
        LayerIntegratedGradients,
        LLMGradientAttribution,
        TextTokenInput,
    )

    emb = gpt2.get_input_embeddings()
    inp = TextTokenInput(PROMPT, tok)
    ours = explain_generation(gpt2, tok, PROMPT, TARGET, baseline=0, steps=20, keep_first=False,
                              rule="gauss_legendre")
    theirs = LLMGradientAttribution(LayerIntegratedGradients(gpt2, emb), tok).attribute(
        inp, target=TARGET, n_steps=20)
    torch.testing.assert_close(ours.matrix, theirs.token_attr.double(), rtol=1e-7, atol=1e-10)
    torch.testing.assert_close(ours.sequence_attribution, theirs.seq_attr.double())
    for method, mult in (("saliency", False), ("gradient_x_input", True)):
        ours = explain_generation(gpt2, tok, PROMPT, TARGET, method=method, aggregate_by="sum")
        lga = LayerGradientXActivation(gpt2, emb, multiply_by_inputs=mult)
        theirs = LLMGradientAttribution(lga, tok).attribute(inp, target=TARGET)
        torch.testing.assert_close(ours.matrix, theirs.token_attr.double(), rtol=1e-7,
                                   atol=1e-12)


def test_saliency_and_first_ig_row_match_inseq(tok, gpt2):
    inseq = pytest.importorskip("inseq")
    full = f"{PROMPT} {TARGET}"
    lp = len(_ids(tok, PROMPT))
    res = inseq.load_model(gpt2, "saliency", tokenizer=tok).attribute(
        PROMPT, full, attributed_fn="probability", logprob=True, show_progress=False)
    theirs = res.sequence_attributions[0].target_attributions[:lp].norm(dim=-1).T
    ours = explain_generation(gpt2, tok, PROMPT, TARGET, method="saliency")
    torch.testing.assert_close(ours.matrix, theirs.double(), rtol=1e-7, atol=1e-12)
    # inseq interpolates the generated prefix too, so only the first row (no prefix) is shared
    res = inseq.load_model(gpt2, "integrated_gradients", tokenizer=tok).attribute(
        PROMPT, full, n_steps=16, attributed_fn="probability", logprob=True,
        show_progress=False)
    theirs = res.sequence_attributions[0].target_attributions[:lp, 0].sum(dim=-1)
    ours = explain_generation(gpt2, tok, PROMPT, TARGET, baseline="unk", steps=16,
                              keep_first=False, rule="gauss_legendre")
    # inseq keeps float32 attributions: compare to float32 precision
    torch.testing.assert_close(ours.matrix[0], theirs.double(), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize(("name", "baseline", "steps", "tol"), [
    ("tiny-gpt2", None, 50, 1e-3),
    ("tiny-llama", "unk", 50, 1e-3),
    ("tiny-t5", "pad", 128, 0.02),
])
def test_ig_completeness_per_generated_token(tok, name, baseline, steps, tol):
    model = tiny_model(name, dtype=torch.float64)
    res = explain_generation(model, tok, PROMPT, TARGET, baseline=baseline, steps=steps)
    assert res.shape == (3, 5)
    assert res.relative_gap is not None and float(res.relative_gap.max()) < tol
    # the reported gap is the row sum minus F(x) - F(x')
    assert res.baseline_logprobs is not None and res.gap is not None
    torch.testing.assert_close(res.gap, res.totals - (res.logprobs - res.baseline_logprobs))
    assert "largest relative gap" in res.completeness()


def test_logprobs_are_teacher_forced(tok, gpt2):
    res = explain_generation(gpt2, tok, PROMPT, TARGET, method="saliency")
    x = gpt2.get_input_embeddings()(_ids(tok, PROMPT))
    torch.testing.assert_close(res.logprobs, _direct_logprobs(gpt2, tok, x))
    t5 = tiny_model("tiny-t5", dtype=torch.float64)
    res = explain_generation(t5, tok, PROMPT, TARGET, method="saliency")
    with torch.no_grad():
        out = t5(input_ids=_ids(tok, PROMPT)[None], labels=_ids(tok, TARGET)[None])
    # T5's mean cross-entropy over the target tokens is -mean(log p)
    assert math.isclose(float(out.loss), -float(res.logprobs.mean()), rel_tol=1e-9)


def _shapley_oracle(v, n):
    """Shapley values from the permutation definition (n! orders)."""
    phi = torch.zeros(n, v[frozenset()].shape[0], dtype=torch.float64)
    perms = list(itertools.permutations(range(n)))
    for order in perms:
        seen: set[int] = set()
        for i in order:
            phi[i] += v[frozenset(seen | {i})] - v[frozenset(seen)]
            seen.add(i)
    return phi / len(perms)


def test_shapley_and_occlusion_against_direct_evaluation(tok, gpt2):
    ids = _ids(tok, PROMPT)
    x = gpt2.get_input_embeddings()(ids).detach()
    base = gpt2.get_input_embeddings()(torch.full_like(ids, 1)).detach()  # [UNK]
    groups = [[0], [1, 2], [3], [4]]
    v = {}
    for r in range(5):
        for s in itertools.combinations(range(4), r):
            keep = torch.zeros(5, dtype=torch.bool)
            for g in s:
                keep[groups[g]] = True
            v[frozenset(s)] = _direct_logprobs(gpt2, tok, torch.where(keep[:, None], x, base))
    res = explain_generation(gpt2, tok, PROMPT, TARGET, method="shapley", baseline="unk",
                             groups=groups)
    torch.testing.assert_close(res.matrix, _shapley_oracle(v, 4).T)
    assert res.prompt_tokens == ("the", "cat sat", "on", "the")
    assert res.gap is not None and float(res.gap.abs().max()) < 1e-12  # efficiency
    occ = explain_generation(gpt2, tok, PROMPT, TARGET, method="occlusion", baseline="unk",
                             groups=groups)
    full = v[frozenset(range(4))]
    for g in range(4):
        torch.testing.assert_close(occ.matrix[:, g], full - v[frozenset(set(range(4)) - {g})])
    # permutation sampling (forced with max_exact=2) is efficient exactly and close to exact
    est = explain_generation(gpt2, tok, PROMPT, TARGET, method="shapley", baseline="unk",
                             groups=groups, max_exact=2, samples=200, seed=3)
    assert est.gap is not None and float(est.gap.abs().max()) < 1e-12
    assert float((est.matrix - res.matrix).abs().max()) < 0.25 * float(res.matrix.abs().max())
    assert est.params["exact"] is False


def test_generation_when_no_target(tok):
    model = tiny_model("tiny-llama", dtype=torch.float64)
    res = explain_generation(model, tok, PROMPT, None, max_new_tokens=4, method="saliency")
    ids = torch.tensor([tok(PROMPT)["input_ids"]])
    out = model.generate(ids, max_new_tokens=4, do_sample=False,
                         attention_mask=torch.ones_like(ids))
    assert res.generated_ids is not None
    assert res.generated_ids.tolist() == out[0, ids.shape[1]:].tolist()
    assert res.shape == (4, 5)


@pytest.mark.filterwarnings("ignore:the model is in training mode")
def test_model_left_as_given_and_errors(tok, gpt2):
    model = tiny_model("tiny-gpt2", dtype=torch.float64)
    model.transformer.h[0].train()
    model.lm_head.weight.requires_grad_(True)
    before = hook_state(model)
    flags = [(m.training) for m in model.modules()]
    grads = [p.requires_grad for p in model.parameters()]
    explain_generation(model, tok, PROMPT, TARGET, steps=6)
    with pytest.raises(InputError, match="no tokens"):
        explain_generation(model, tok, PROMPT, [], steps=4)
    with pytest.raises(InputError, match="unknown generation method"):
        explain_generation(model, tok, PROMPT, TARGET, method="lrp")
    with pytest.raises(InputError, match="groups"):
        explain_generation(model, tok, PROMPT, TARGET, method="occlusion", groups=[[0], [0, 1]])
    assert hook_state(model) == before
    assert [(m.training) for m in model.modules()] == flags
    assert [p.requires_grad for p in model.parameters()] == grads


def test_loop_and_vectorised_backward_agree(tok, gpt2, monkeypatch):
    from attribkit.sequences import methods

    kw = {"steps": 8, "batch_size": 3, "rule": "gauss_legendre"}
    batched = explain_generation(gpt2, tok, PROMPT, TARGET, **kw)
    monkeypatch.setattr(methods, "BATCHED_BACKWARD_LIMIT", 0)
    looped = explain_generation(gpt2, tok, PROMPT, TARGET, **kw)
    torch.testing.assert_close(batched.matrix, looped.matrix, rtol=1e-10, atol=1e-13)
    assert batched.model_calls == looped.model_calls == 1 + 3  # ends, then 3 chunks of rows


def test_vectorised_backward_only_where_the_model_is_small(tok, gpt2, monkeypatch):
    """The tiny GPT-2 takes the vectorised backward; a model of SmolLM2-135M's size (135 M
    parameters, width 576) with 20 targets, 4 rows and 80 positions takes the loop, and so does
    the tiny model when the limit is below its size."""
    import types

    from attribkit.sequences import methods

    seen: list[bool] = []
    real = methods.batched_fits
    monkeypatch.setattr(methods, "batched_fits", lambda *a: seen.append(real(*a)) or seen[-1])
    explain_generation(gpt2, tok, PROMPT, TARGET, steps=4, rule="gauss_legendre")
    assert seen and all(seen)

    big = torch.nn.Linear(576, 234_375, bias=False)  # 576 x 234,375 = 135 M parameters
    scorer = types.SimpleNamespace(model=big)
    assert not real(scorer, torch.zeros(4, 20), torch.zeros(4, 60, 576))
    assert real(scorer, torch.zeros(1, 1), torch.zeros(1, 60, 576))  # 1 x 1 x 61 x 234,375
    small = types.SimpleNamespace(model=gpt2)
    width = gpt2.get_input_embeddings().weight.shape[1]
    count = sum(p.numel() for p in gpt2.parameters())
    monkeypatch.setattr(methods, "BATCHED_BACKWARD_LIMIT", 3 * 2 * 8 * count // width - 1)
    assert not real(small, torch.zeros(2, 3), torch.zeros(2, 5, width))
