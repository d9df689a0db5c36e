"""attribkit.zoo.llm: SmolLM2-135M-Instruct (dequantised GGUF) explained by explain_generation.

SmolLM2 is loaded once per test run (session fixture; the float32 conversion is cached), and
every test keeps its prompts short: the whole file is meant to take a few minutes on two cores.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
import pytest
import torch

from attribkit.core.errors import InputError
from attribkit.core.guard import hook_state
from attribkit.sequences import explain_generation

pytestmark = pytest.mark.slow
llm = pytest.importorskip("attribkit.zoo.llm")
pytest.importorskip("gguf")

PARIS = "The capital of France is"


@pytest.fixture(scope="session")
def smollm2() -> tuple[Any, Any]:
    """SmolLM2 and its tokenizer, loaded once (the conversion is cached across runs)."""
    if llm.is_cached():
        return llm.load_smollm2(progress=False)
    try:
        llm.wheel_folder()
    except ImportError as err:  # the extra is not installed here
        pytest.skip(str(err))
    return llm.load_smollm2(progress=False)


def _state(model: Any) -> tuple[Any, ...]:
    return (hook_state(model), [m.training for m in model.modules()],
            [p.requires_grad for p in model.parameters()])


def test_loads_dequantised_copy_from_cache(smollm2: tuple[Any, Any]) -> None:
    model, tok = smollm2
    assert llm.is_cached() and (llm.cached_copy() / "model.safetensors").is_file()
    assert not model.training and model.config.model_type == "llama"
    assert model.config.num_hidden_layers == 30 and model.config.tie_word_embeddings
    assert model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert next(model.parameters()).dtype == torch.float32
    assert not any(p.requires_grad for p in model.parameters())
    text = llm.chat_prompt(tok, [{"role": "user", "content": "Hi"}])
    assert text.startswith("<|im_start|>system") and text.endswith("<|im_start|>assistant\n")
    ids = tok(PARIS, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=1, do_sample=False)
    assert tok.decode(out[0, -1:]) == " Paris"


def test_paris_ig_gap_under_one_percent_at_the_defaults(smollm2: tuple[Any, Any]) -> None:
    """IG at the defaults on "Paris" (refined panels, first token kept as the attention sink):
    F(x) and F(x') checked against plain forward passes (no hooks), the gap under 1 %."""
    model, tok = smollm2
    before = _state(model)
    res = explain_generation(model, tok, PARIS, " Paris")
    assert res.shape == (1, 5) and res.generated_tokens == ("ĠParis",)
    assert res.params["rule"] == "refine" and res.params["steps"] == 100
    ids = tok(PARIS, return_tensors="pt")["input_ids"]
    emb = model.get_input_embeddings()(ids).detach()
    base = torch.cat([emb[:, :1], torch.zeros_like(emb[:, 1:])], dim=1)
    with torch.no_grad():
        f_x = model(inputs_embeds=emb, use_cache=False).logits[0, -1].log_softmax(-1)[7042]
        f_b = model(inputs_embeds=base, use_cache=False).logits[0, -1].log_softmax(-1)[7042]
    torch.testing.assert_close(res.logprobs[0], f_x, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(res.baseline_logprobs[0], f_b, rtol=1e-4, atol=1e-5)
    assert float(f_x) > -0.5  # SmolLM2 is confident: p(" Paris") ~ 0.77
    gap = float(res.matrix.sum() - (f_x - f_b))
    assert abs(gap) < 0.01 * abs(float(f_x - f_b))
    assert res.gap is not None and abs(float(res.gap[0]) - gap) < 1e-3 * max(1.0, abs(gap))
    assert float(res.matrix[0, 0]) == 0.0  # the kept first token
    assert _state(model) == before


def test_ig_and_saliency_equal_captum(smollm2: tuple[Any, Any]) -> None:
    from captum.attr import (
        LayerGradientXActivation,
        LayerIntegratedGradients,
        LLMGradientAttribution,
        TextTokenInput,
    )

    model, tok = smollm2
    emb = model.get_input_embeddings()
    inp = TextTokenInput(PARIS, tok)  # Captum's baseline: token id 0 at every position
    ours = explain_generation(model, tok, PARIS, " Paris is", baseline=0, steps=8,
                              keep_first=False, rule="gauss_legendre")
    theirs = LLMGradientAttribution(LayerIntegratedGradients(model, emb), tok).attribute(
        inp, target=" Paris is", n_steps=8)
    # float32, different batch shapes (Captum: full logits, one target per pass)
    scale = float(ours.matrix.abs().max())
    torch.testing.assert_close(ours.matrix, theirs.token_attr, rtol=2e-3, atol=2e-3 * scale)
    ours = explain_generation(model, tok, PARIS, " Paris is", method="saliency",
                              aggregate_by="sum")
    lga = LayerGradientXActivation(model, emb, multiply_by_inputs=False)
    theirs = LLMGradientAttribution(lga, tok).attribute(inp, target=" Paris is")
    scale = float(ours.matrix.abs().max())
    torch.testing.assert_close(ours.matrix, theirs.token_attr, rtol=1e-3, atol=1e-3 * scale)


def test_bad_input_gets_one_clear_line(smollm2: tuple[Any, Any]) -> None:
    model, tok = smollm2
    before = _state(model)
    cases = [
        (dict(prompt="   "), "prompt is empty"),
        (dict(prompt=[{"role": "user", "content": ""}]), "chat has no content"),
        (dict(prompt="word " * 8200), "longer than the model's context of 8192"),
        (dict(prompt=PARIS, target=[7042, 49152]), "token id 49152 outside the vocabulary"),
        (dict(prompt=PARIS, target=[-1]), "token id -1 outside"),
        (dict(prompt=PARIS, target=0.5), "got float"),
        (dict(prompt=PARIS, target=[7042.0]), "must be ints, got float"),
        (dict(prompt=PARIS, target=torch.tensor([1.0])), "must be integers"),
        (dict(prompt=PARIS, target=""), "empty string"),
    ]
    for kwargs, message in cases:
        with pytest.raises(InputError, match=message) as err:
            explain_generation(model, tok, method="saliency", **kwargs)
        assert "\n" not in str(err.value)
    word = "Antananarivo"
    pieces = tok.tokenize(word)
    assert len(pieces) > 1
    with pytest.warns(UserWarning, match=re.escape(f"{word!r} is {len(pieces)} tokens "
                                                   f"{pieces}")):
        res = explain_generation(model, tok, PARIS, word, method="saliency")
    assert res.generated_tokens == tuple(pieces)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one token, or several words: no warning
        explain_generation(model, tok, PARIS, " Paris", method="saliency")
        explain_generation(model, tok, PARIS, " Paris is", method="saliency")
    assert _state(model) == before


def test_needle_sentence_carries_the_answer(smollm2: tuple[Any, Any]) -> None:
    """A ~500-token context: occluding the needle sentence costs the answer most of its
    log-probability. The other sentences are occluded in blocks of five (cheaper); no block comes
    near the one needle sentence."""
    model, tok = smollm2
    hay = llm.haystack()
    sentences = hay.token_groups(tok)
    assert all(sentences) and len(tok(hay.prompt)["input_ids"]) > 480
    others = [k for k in range(len(sentences)) if k != hay.needle]
    blocks = [[j for k in others[i:i + 5] for j in sentences[k]]
              for i in range(0, len(others), 5)]
    groups = [sentences[hay.needle], *blocks]
    res = explain_generation(model, tok, hay.prompt, hay.answer, method="occlusion",
                             groups=groups)
    scores = res.matrix[0]
    share = float(scores[0].abs() / scores.abs().sum())
    assert float(res.logprobs[0]) > -1.0  # the model does find " pineapple"
    assert share > 0.5, (share, scores)
    assert float(scores[0]) > 2 * float(scores[1:].abs().max()), scores
    # the first block holds token 0, the attention sink: zeroing it disturbs every position
    # (measured: 4.95 against the needle's 12.2); the other blocks are content only
    assert 0 in groups[1]
    assert float(scores[0]) > 10 * float(scores[2:].abs().max()), scores


def test_cli_explain_generation_and_run(smollm2: tuple[Any, Any], tmp_path: Any,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    import json

    import attribkit.runs as runs
    from attribkit.cli import main

    code = main(["explain-generation", "smollm2", PARIS, "--target", " Paris", "--steps", "8",
                 "-q", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["generated_tokens"] == ["ĠParis"]
    assert len(data["matrix"][0]) == 5
    code = main(["explain-generation", "smollm2", "What is the capital of France?", "--chat",
                 "--max-new-tokens", "3", "-m", "saliency", "-q"])
    out = capsys.readouterr().out
    assert code == 0 and "<|im_start|>" in out and "Ġassistant" in out
    assert main(["explain-generation", "smollm2", "", "-q"]) == 1
    assert capsys.readouterr().err.strip() == ("attribkit: error: the prompt is "
                                               "empty: give some text to explain the "
                                               "continuation of.")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(f"{PARIS}\nThe opposite of hot is\n")
    code = main(["run", "smollm2", str(prompts), "-m", "saliency", "--out",
                 str(tmp_path / "store"), "-q"])
    assert code == 0, capsys.readouterr().err
    store = runs.open(tmp_path / "store")
    assert len(store.failed) == 0 and len(store.results) == 2
    first = store.results.sort_values("item").iloc[0]
    assert first["target_name"].startswith("ĠParis")
    values = store.values(0, "saliency")
    assert values.shape[1] == 5 and np.isfinite(values).all()



def test_run_store_and_explorer_show_the_matrix(smollm2: tuple[Any, Any],
                                                tmp_path: Any) -> None:
    """A run of SmolLM2 -> the store -> /api/items/0/generation: the matrix of the run is the
    method's own (rows summing as its result's), with the tokenizer's labels. The run is given
    the loaded model (``zoo.specs.generation``, what ``run smollm2`` builds) to load it once."""
    from fastapi.testclient import TestClient

    import attribkit.runs as runs
    from attribkit.serve import create_app
    from attribkit.zoo.specs import generation

    model, tok = smollm2
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(f"{PARIS}\n")
    runs.run(generation(model, tok, "smollm2"), prompts, ["gradient_x_input"],
             out=tmp_path / "store", progress=False)
    body = TestClient(create_app(tmp_path / "store", hosts=["testserver"])).get(
        "/api/items/0/generation").json()
    ref = explain_generation(model, tok, PARIS, method="gradient_x_input")  # 20 greedy tokens
    (m,) = body["methods"]
    assert m["method"] == "gradient_x_input" and m["status"] == "ok"
    assert m["generated_tokens"] == list(ref.generated_tokens) and m["generated_tokens"][0] == (
        "ĠParis")
    assert m["prompt_tokens"] == tok.convert_ids_to_tokens(tok(PARIS)["input_ids"])
    matrix = np.asarray(m["matrix"])
    assert matrix.shape == (len(ref.generated_tokens), 5)
    np.testing.assert_allclose(matrix.sum(axis=1), ref.totals.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(m["totals"], ref.totals.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(m["logprobs"], ref.logprobs.numpy(), rtol=1e-5)


def test_attention_rollout_runs_eager_and_leaves_the_model_as_given(
        smollm2: tuple[Any, Any]) -> None:
    """Rollout rows of SmolLM2 sum to one over the prompt for the first generated token; the
    attention implementation is back to what it was; the first token, the attention sink,
    takes almost all of the flow (the reason rollout ranks prompt tokens poorly here)."""
    model, tok = smollm2
    before = (_state(model), model.config._attn_implementation)
    res = explain_generation(model, tok, "<|endoftext|>" + PARIS, " Paris",
                             method="attention_rollout")
    assert (_state(model), model.config._attn_implementation) == before
    row = res.matrix[0]
    assert row.shape == (6,) and bool((row >= 0).all())
    assert float(row.sum()) == pytest.approx(1.0, abs=1e-6)
    assert float(row[0]) > 0.9
    ids = tok("<|endoftext|>" + PARIS, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        direct = torch.log_softmax(model(input_ids=ids).logits[0, -1], -1)[tok(" Paris")[
            "input_ids"][0]]
    assert float(res.logprobs[0]) == pytest.approx(float(direct), abs=1e-4)
