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
                      progress=False, max_new_tokens=4)
    assert result.failed == 0
    store = runs.open(out)
    assert store.manifest["kind"] == "generation" and store.manifest["max_new_tokens"] == 4
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
             progress=False, max_new_tokens=4)
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


def _greedy(model: Any, tok: Any, prompt: str, n: int) -> list[str]:
    """The model's ``n`` greedy tokens after ``prompt``, by a plain argmax loop."""
    ids = tok(prompt)["input_ids"]
    out: list[int] = []
    with torch.no_grad():
        for _ in range(n):
            out.append(int(model(torch.tensor([ids + out])).logits[0, -1].argmax()))
    return list(tok.convert_ids_to_tokens(out))


def test_max_new_tokens_sets_each_answer_and_is_recorded(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "store"
    prompts = _prompts(tmp_path)
    runs.run(SPEC, prompts, ["saliency", "occlusion"], out=out,
             progress=False, max_new_tokens=6)
    store = runs.open(out)
    assert store.manifest["max_new_tokens"] == 6 and store.manifest["kind"] == "generation"
    model, tok = tiny_model("tiny-gpt2", dtype=torch.float64), tiny_tokenizer()
    for i, prompt in enumerate(PROMPTS):
        want = _greedy(model, tok, prompt, 6)
        for method in ("saliency", "occlusion"):
            row = store.results[(store.results["item"] == i)
                                & (store.results["method"] == method)].iloc[0]
            assert json.loads(row["extra"])["generated_tokens"] == want
            assert store.values(i, method).shape == (6, len(tok.tokenize(prompt)))
    # the same setting resumes (nothing to do); another one is refused, naming it
    assert runs.run(SPEC, prompts, ["saliency", "occlusion"],
                    out=out, progress=False, max_new_tokens=6).computed == 0
    with pytest.raises(runs.ConfigMismatch,
                       match=r"its max_new_tokens is 6, this run's is 5"):
        runs.run(SPEC, prompts, ["saliency", "occlusion"], out=out,
                 progress=False, max_new_tokens=5)
    # a generation store written before the key existed is not resumed, and says why
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["max_new_tokens"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(runs.ConfigMismatch, match="written before runs recorded max_new_tokens"):
        runs.run(SPEC, prompts, ["saliency", "occlusion"], out=out, progress=False,
                 max_new_tokens=6)


def test_default_is_explain_generations_and_resumes_as_given(tmp_path: pathlib.Path) -> None:
    """Without the setting an answer has 20 tokens (explain_generation's default), recorded as
    such: the same run with max_new_tokens=20 resumes it, with 3 it is refused."""
    out = tmp_path / "store"
    prompts = tmp_path / "one.txt"
    prompts.write_text(PROMPTS[0] + "\n")
    runs.run(SPEC, prompts, ["saliency"], out=out, progress=False)
    store = runs.open(out)
    assert store.manifest["max_new_tokens"] == 20
    extra = json.loads(store.results.iloc[0]["extra"])
    model, tok = tiny_model("tiny-gpt2", dtype=torch.float64), tiny_tokenizer()
    assert extra["generated_tokens"] == _greedy(model, tok, PROMPTS[0], 20)
    assert runs.run(SPEC, prompts, ["saliency"], out=out, progress=False,
                    max_new_tokens=20).computed == 0
    with pytest.raises(runs.ConfigMismatch, match="max_new_tokens is 20, this run's is 3"):
        runs.run(SPEC, prompts, ["saliency"], out=out, progress=False, max_new_tokens=3)


def test_max_new_tokens_refused_where_nothing_is_generated(tmp_path: pathlib.Path) -> None:
    txt = tmp_path / "s.txt"
    txt.write_text("a good film\n")
    for bad in (0, -2, True, 2.5):
        with pytest.raises(ValueError, match="max_new_tokens must be a positive integer"):
            runs.run(SPEC, txt, ["saliency"], out=tmp_path / "a", progress=False,
                     max_new_tokens=bad)
    # a text classifier (module:callable, built) and a zoo one (refused unbuilt)
    with pytest.raises(runs.MethodError, match=r"max_new_tokens \(--max-new-tokens\) is for "
                                               r"language models; .* reads text items"):
        runs.run("tests.runs._models:tiny_text", txt, ["saliency"], out=tmp_path / "b",
                 progress=False, max_new_tokens=4)
    with pytest.raises(runs.MethodError, match="'minilm' reads text items"):
        runs.run("minilm", txt, ["saliency"], out=tmp_path / "c", progress=False,
                 max_new_tokens=4)
    assert not any((tmp_path / d).exists() for d in ("a", "b", "c"))


def test_cli_max_new_tokens(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    from attribkit.cli import main

    prompts, out = _prompts(tmp_path), tmp_path / "store"
    assert main(["run", SPEC, str(prompts), "-m", "saliency", "--out", str(out), "-q",
                 "--max-new-tokens", "3"]) == 0
    store = runs.open(out)
    assert store.manifest["max_new_tokens"] == 3
    assert {len(json.loads(e)["generated_tokens"]) for e in store.results["extra"]} == {3}
    assert main(["run", SPEC, str(prompts), "-m", "saliency", "--out", str(out), "-q",
                 "--max-new-tokens", "0"]) == 2
    assert "--max-new-tokens must be a positive integer, got 0" in capsys.readouterr().err
    assert main(["run", SPEC, str(prompts), "-m", "saliency", "--out", str(out), "-q",
                 "--max-new-tokens", "4"]) == 2
    assert "its max_new_tokens is 3, this run's is 4" in capsys.readouterr().err
