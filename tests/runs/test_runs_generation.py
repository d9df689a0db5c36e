"""Runs of a language model: each prompt's answer stored with its token x token matrix.

The stand-in is a seeded random GPT-2 with a word-level tokenizer (``tests.runs._models:
tiny_generation``), so the whole file takes seconds. The stored matrix is checked against
gradient x input recomputed here with plain autograd, and its labels against the tokenizer.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import numpy as np
import pytest
import torch

import attribkit.runs as runs
from attribkit.runs.work import generation_extra
from attribkit.sequences import explain_generation
from attribkit.sequences.tiny import tiny_model, tiny_tokenizer

SPEC = "tests.runs._models:tiny_generation"
PROMPTS = ("the cat sat on the", "paris is the capital of", "one two three four five six seven")


def _prompts(folder: pathlib.Path) -> pathlib.Path:
    path = folder / "prompts.txt"
    path.write_text("# prompts\n" + "\n".join(PROMPTS) + "\n")
    return path


def _oracle_gxi(model: Any, tok: Any, prompt: str, answer: list[int]) -> np.ndarray[Any, Any]:
    """Gradient x input of each answer token's log-probability, summed over the embedding axis,
    by plain autograd (no attribkit code)."""
    ids = tok(prompt, return_tensors="pt")["input_ids"][0].tolist()
    full = torch.tensor([ids + answer[:-1]])
    emb = model.get_input_embeddings()(full).detach()
    lp = len(ids)
    emb.requires_grad_(True)
    logp = torch.log_softmax(model(inputs_embeds=emb).logits[0], dim=-1)
    rows = []
    for t, y in enumerate(answer):
        (g,) = torch.autograd.grad(logp[lp - 1 + t, y], emb, retain_graph=True)
        rows.append((g[0, :lp] * emb[0, :lp]).sum(-1).detach().numpy())
    return np.stack(rows)


def test_run_stores_tokens_and_matrix(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "store"
    result = runs.run(SPEC, _prompts(tmp_path), ["gradient_x_input", "occlusion"], out=out,
                      progress=False)
    assert result.failed == 0
    store = runs.open(out)
    assert store.manifest["kind"] == "generation"
    assert set(store.items["kind"]) == {"generation"}
    assert len(store.results) == 2 * len(PROMPTS)
    model, tok = tiny_model("tiny-gpt2", dtype=torch.float64), tiny_tokenizer()
    for i, prompt in enumerate(PROMPTS):
        row = store.results[(store.results["item"] == i)
                            & (store.results["method"] == "gradient_x_input")].iloc[0]
        extra = json.loads(row["extra"])
        ids = tok(prompt)["input_ids"]
        assert extra["prompt_tokens"] == tok.convert_ids_to_tokens(ids)
        assert len(extra["generated_tokens"]) == 4 == len(extra["logprobs"])
        answer = tok.convert_tokens_to_ids(extra["generated_tokens"])
        values = store.values(i, "gradient_x_input")
        assert values.shape == (4, len(ids))  # generated x prompt
        np.testing.assert_allclose(values, _oracle_gxi(model, tok, prompt, answer),
                                   rtol=1e-5, atol=1e-6)
        # the stored log-probabilities are the model's own (teacher forcing, plain forward)
        with torch.no_grad():
            logits = model(torch.tensor([ids + answer[:-1]])).logits[0]
        ref = torch.log_softmax(logits, -1)[len(ids) - 1 + torch.arange(4), answer]
        np.testing.assert_allclose(extra["logprobs"], ref.numpy(), rtol=1e-9)
        assert row["output"] == pytest.approx(float(ref.sum()), rel=1e-9)
        occ = store.results[(store.results["item"] == i)
                            & (store.results["method"] == "occlusion")].iloc[0]
        assert json.loads(occ["extra"])["generated_tokens"] == extra["generated_tokens"]
        assert store.values(i, "occlusion").shape == (4, len(ids))


def test_generation_extra_labels_and_numbers() -> None:
    model, tok = tiny_model("tiny-llama", dtype=torch.float64), tiny_tokenizer()
    res = explain_generation(model, tok, "the dog ran to the", " house . the", method="ig",
                             steps=8)
    data = json.loads(generation_extra(res))
    assert data["prompt_tokens"] == ["the", "dog", "ran", "to", "the"]
    assert data["generated_tokens"] == ["house", ".", "the"]
    np.testing.assert_allclose(data["logprobs"], res.logprobs.numpy(), rtol=1e-12)
    assert res.relative_gap is not None and res.baseline_logprobs is not None
    np.testing.assert_allclose(data["relative_gap"], res.relative_gap.numpy(), rtol=1e-12)
    np.testing.assert_allclose(data["baseline_logprobs"], res.baseline_logprobs.numpy())
    sal = explain_generation(model, tok, "the dog ran to the", " house", method="saliency")
    assert json.loads(generation_extra(sal))["relative_gap"] is None
    occ = explain_generation(model, tok, "the dog ran to the", " house", method="occlusion",
                             groups=[[0, 1], [2, 3, 4]])  # one column per group
    labels = json.loads(generation_extra(occ))["prompt_tokens"]
    assert labels == list(occ.prompt_tokens) and len(labels) == 2 == occ.matrix.shape[1]


def test_report_shows_each_answer_token_by_token(tmp_path: pathlib.Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from attribkit.cli import main
    from attribkit.cli.report_generation import store_answers

    out = tmp_path / "store"
    runs.run(SPEC, _prompts(tmp_path), ["saliency", "gradient_x_input"], out=out,
             progress=False)
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "Answers, token by token" in page
    for method in ("saliency", "gradient_x_input"):  # one heat map per answer and method
        assert page.count(f'alt="{method}: ') == len(PROMPTS)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kind"] == "generation"
    answers, left = store_answers(runs.open(out), max_items=2)
    assert left == 1 and [(a.heading.split(" (")[0], a.method) for a in answers] == [
        ("item 0", "saliency"), ("item 0", "gradient_x_input"),
        ("item 1", "saliency"), ("item 1", "gradient_x_input")]
    store = runs.open(out)
    for a in answers:
        item = int(a.heading.split()[1])
        np.testing.assert_array_equal(a.matrix, store.values(item, a.method))
        tok = tiny_tokenizer()
        assert list(a.prompt_tokens) == tok.tokenize(PROMPTS[item])
        assert a.logprobs is not None and a.logprobs.shape == (4,)
