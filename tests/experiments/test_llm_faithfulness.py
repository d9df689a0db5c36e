"""The token-faithfulness experiment's mechanics on a tiny Llama: curves against a hand loop of
direct forward passes (``inputs_embeds``, no hooks), the score against NumPy's trapezoid, the
cache, and the page it writes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from attribkit.experiments import llm_faithfulness as lf
from attribkit.experiments.llm_prompts import PROMPTS, FaithPrompt
from attribkit.sequences.tiny import tiny_model, tiny_tokenizer

pytest.importorskip("transformers")

PROMPT = FaithPrompt("tiny", "fact", "the cat sat on the old red", " dog")
SETTINGS = lf.Settings(sink="[BOS]", curve_steps=3, model="tiny-llama")


@pytest.fixture(scope="module")
def lm():
    return tiny_model("tiny-llama", layers=2, dtype=torch.float64), tiny_tokenizer()


def _logp(model, ids, answer, zeroed):
    """log p(answer | prompt) with the embeddings of the prompt positions ``zeroed`` at 0."""
    emb = model.get_input_embeddings()
    with torch.no_grad():
        x = emb(ids).clone()
        x[list(zeroed)] = 0
        full = torch.cat([x, emb(answer[:-1])])
        logp = torch.log_softmax(model(inputs_embeds=full[None]).logits[0], -1)
    lp = ids.shape[0]
    return float(sum(logp[lp - 1 + t, a] for t, a in enumerate(answer.tolist())))


def test_curves_and_score_match_the_definition(lm):
    model, tok = lm
    res = lf.run_prompt(model, tok, PROMPT, "occlusion", SETTINGS)
    ids = torch.tensor(tok("[BOS] " + PROMPT.text)["input_ids"])
    answer = torch.tensor(tok(PROMPT.answer, add_special_tokens=False)["input_ids"])
    assert ids[0] == tok.bos_token_id and len(res.importance) == ids.shape[0] - 1 == 7
    f_x = _logp(model, ids, answer, [])
    # occlusion's importance: the drop when one token (never the sink) is zeroed
    hand = [f_x - _logp(model, ids, answer, [j]) for j in range(1, ids.shape[0])]
    np.testing.assert_allclose(res.importance, hand, rtol=1e-9, atol=1e-12)
    order = [1 + j for j in np.argsort(-np.asarray(hand), kind="stable")]
    counts = np.round(np.linspace(0, 7, 4)).astype(int)                 # 3 steps over 7 tokens
    np.testing.assert_allclose(res.fractions, counts / 7)
    everything = list(range(1, 8))
    dele = [_logp(model, ids, answer, order[:c]) for c in counts]
    ins = [_logp(model, ids, answer, [j for j in everything if j not in order[:c]])
           for c in counts]
    np.testing.assert_allclose(res.deletion, dele, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res.insertion, ins, rtol=1e-9, atol=1e-12)
    assert res.logp == pytest.approx(f_x) and res.logp_removed == pytest.approx(ins[0])
    span = f_x - ins[0]
    assert res.valid == (span > 0)
    area = [np.trapezoid((np.asarray(c) - ins[0]) / span, counts / 7) for c in (ins, dele)]
    assert res.score == pytest.approx(area[0] - area[1], abs=1e-12)
    with torch.no_grad():
        logits = model(input_ids=torch.cat([ids, answer[:-1]])[None]).logits[0]
    assert res.greedy == bool(logits[ids.shape[0] - 1:].argmax(-1).eq(answer).all())


def test_random_ranking_is_seeded_and_results_come_back_from_the_cache(lm, tmp_path,
                                                                       monkeypatch):
    model, tok = lm
    first = lf.run_prompt(model, tok, PROMPT, "random", SETTINGS, tmp_path)
    again = lf.run_prompt(model, tok, PROMPT, "random", SETTINGS)
    assert dataclasses.replace(again, seconds=first.seconds) == first
    other = lf.run_prompt(model, tok, PROMPT, "random",
                          lf.Settings(sink="[BOS]", curve_steps=3, seed=1))
    assert other.importance != first.importance
    assert (tmp_path / "tiny.random.json").is_file()

    def boom(*_a, **_k):
        raise AssertionError("recomputed instead of read from the cache")

    monkeypatch.setattr(lf, "_curves", boom)
    assert lf.run_prompt(model, tok, PROMPT, "random", SETTINGS, tmp_path) == first


def test_summary_rows_average_the_valid_prompts():
    def result(name, method, deletion, insertion):
        return lf.PromptResult(prompt=name, kind="fact", method=method, importance=[1.0],
                               fractions=[0.0, 0.5, 1.0], deletion=deletion,
                               insertion=insertion, greedy=True, seconds=1.0)

    rs = [result("a", "occlusion", [0.0, -2.0, -4.0], [-4.0, -1.0, 0.0]),
          result("b", "occlusion", [0.0, -3.0, -4.0], [-4.0, -2.0, 0.0]),
          result("c", "occlusion", [0.0, 1.0, 1.0], [1.0, 1.0, 0.0])]  # zeroing raises it
    # a: insertion area 0.5 * (0 + 2 * 0.75 + 1) / 2 = 0.625, deletion 0.5 * (1 + 1 + 0) / 2
    assert rs[0].score == pytest.approx(0.625 - 0.5)
    assert rs[1].score == pytest.approx((0.25 * (2 * 0.5 + 1)) - 0.25 * (1 + 2 * 0.25))
    assert not rs[2].valid
    row = lf.summary_rows(rs, ["occlusion"])[0]
    mean = (rs[0].score + rs[1].score) / 2
    assert row[0] == "occlusion" and row[1].startswith(f"**{mean:+.3f}**")


def test_main_writes_its_section(tmp_path, capsys):
    page = tmp_path / "page.md"
    page.write_text("# page\n\ntext\n", encoding="utf-8")
    lf.main(["--model", "tiny-llama", "--sink", "[BOS]", "--limit", "2", "--methods",
             "occlusion", "random", "--curve-steps", "2", "--cache", str(tmp_path / "c"),
             "--out", str(page)])
    text = page.read_text(encoding="utf-8")
    assert text.startswith("# page\n\ntext\n") and "<!-- faithfulness:start -->" in text
    assert f"2 of {len(PROMPTS)} prompts" in text
    assert "| occlusion | **" in text and "| random | **" in text
    assert "`python -m attribkit.experiments.llm_faithfulness`" in text
    assert len(list((tmp_path / "c").glob("*/*.json"))) == 4
    table = [line for line in text.splitlines() if line.startswith("| ")]
    capsys.readouterr()
    # the cached-only table loads no model and computes nothing: the same rows
    lf.main(["--model", "tiny-llama", "--sink", "[BOS]", "--methods", "occlusion", "random",
             "--curve-steps", "2", "--cache", str(tmp_path / "c"), "--cached-only",
             "--no-write"])
    printed = capsys.readouterr().out
    assert [line for line in printed.splitlines() if line.startswith("| ")] == table


def test_the_prompts_are_enough_and_distinct():
    names = [p.name for p in PROMPTS]
    assert len(PROMPTS) >= 30 and len(set(names)) == len(names)
    assert {p.kind for p in PROMPTS} == {"fact", "arithmetic", "needle"}
    assert all(p.answer.startswith(" ") for p in PROMPTS)
    for p in PROMPTS:
        if p.kind == "needle":
            assert "The secret password for the vault is pineapple." in p.text


def test_ig_runs_with_the_default_or_a_named_quadrature_each_cached_apart(lm, tmp_path):
    model, tok = lm
    rule, steps = lf.ig_defaults()
    default = lf.run_prompt(model, tok, PROMPT, "integrated_gradients", SETTINGS, tmp_path)
    named = lf.run_prompt(model, tok, PROMPT, "integrated_gradients-gauss_legendre-6",
                          SETTINGS, tmp_path)
    assert (default.info["rule"], default.info["steps"]) == (rule, steps)
    assert (named.info["rule"], named.info["steps"]) == ("gauss_legendre", 6)
    assert {p.name for p in tmp_path.iterdir()} == {
        f"tiny.integrated_gradients-{rule}-{steps}.json",
        "tiny.integrated_gradients-gauss_legendre-6.json"}
    again = lf.cached([PROMPT], ["integrated_gradients-gauss_legendre-6"], tmp_path)
    assert [r.method for r in again] == ["integrated_gradients-gauss_legendre-6"]
    assert again[0].importance == named.importance


def test_recency_deletes_the_last_token_first(lm):
    model, tok = lm
    res = lf.run_prompt(model, tok, PROMPT, "recency", SETTINGS)
    assert res.importance == [float(j) for j in range(7)]
    ids = torch.tensor(tok("[BOS] " + PROMPT.text)["input_ids"])
    answer = torch.tensor(tok(PROMPT.answer, add_special_tokens=False)["input_ids"])
    # 3 steps over 7 tokens: 2, then 5 tokens (round(7/3), round(14/3)), latest first
    assert res.deletion[1] == pytest.approx(_logp(model, ids, answer, [6, 7]), abs=1e-9)
    assert res.insertion[2] == pytest.approx(_logp(model, ids, answer, [1, 2]), abs=1e-9)


def test_the_recency_column_is_the_paired_mean_difference():
    def result(name, method, deletion):
        return lf.PromptResult(prompt=name, kind="fact", method=method, importance=[1.0],
                               fractions=[0.0, 0.5, 1.0], deletion=deletion,
                               insertion=[-4.0, -2.0, 0.0], greedy=True, seconds=1.0)

    rs = [result("a", "occlusion", [0.0, -2.0, -4.0]), result("b", "occlusion", [0.0, -1.0, -4.0]),
          result("a", "recency", [0.0, -3.0, -4.0]), result("b", "recency", [0.0, -4.0, -4.0])]
    # deletion areas 0.5, 0.625 (occlusion) and 0.375, 0.25 (recency); the insertions are equal
    rows = lf.summary_rows(rs, ["occlusion", "recency"])
    assert rows[0][2].startswith(f"{-((0.5 - 0.375) + (0.625 - 0.25)) / 2:+.3f} [")
    assert rows[1][2] == ""
    page = lf.markdown(rs, ["occlusion", "recency"], lf.Settings(), 2)
    assert "| method | insertion - deletion [95 % CI] | minus recency (paired) |" in page
