"""The mechanics of experiments.llm_ig_gap on a tiny random model (SmolLM2: its page)."""

from __future__ import annotations

import torch

from attribkit.experiments.llm_ig_gap import gap_table, measure
from attribkit.sequences import explain_generation
from attribkit.sequences.tiny import tiny_model, tiny_tokenizer


def test_measure_reports_the_largest_gap_of_each_setting() -> None:
    tok = tiny_tokenizer()
    model = tiny_model("tiny-gpt2", dtype=torch.float64)
    prompts = (("cat", "the cat sat on the", "happy dog"),)
    settings = (("gl8", {"rule": "gauss_legendre", "steps": 8, "keep_first": False}),
                ("refine12", {"steps": 12}))
    gaps = measure(model, tok, prompts, settings, progress=False)
    direct = explain_generation(model, tok, "the cat sat on the", "happy dog",
                                rule="gauss_legendre", steps=8, keep_first=False)
    totals = direct.matrix.sum(dim=1)
    assert direct.baseline_logprobs is not None
    change = direct.logprobs - direct.baseline_logprobs
    assert gaps["cat"]["gl8"] == float(((totals - change) / change).abs().max())
    table = gap_table(gaps).splitlines()
    assert table[0] == "| prompt | gl8 | refine12 |" and table[2].startswith("| cat | ")
    assert f"{100 * gaps['cat']['refine12']:.2f} %" in table[2]
