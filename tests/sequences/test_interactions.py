"""prompt_interactions on the tiny models: against a brute-force span game scored here and
shapiq 1.4.1's exact computer; the estimate beyond max_exact; bad input."""

from __future__ import annotations

import numpy as np
import pytest
import shapiq
import torch

from attribkit.core.errors import InputError
from attribkit.core.interaction_indices import coalitions_up_to
from attribkit.sequences.interactions import prompt_interactions, sentence_spans
from attribkit.sequences.tiny import tiny_model, tiny_tokenizer

PROMPT = "the cat sat on the road . paris is the capital . the dog ran ."


@pytest.fixture(scope="module")
def tok():  # type: ignore[no-untyped-def]
    return tiny_tokenizer()


def _brute_force_game(model, tok, prompt: str, target: str, spans: list[list[int]],
                      fill: torch.Tensor | None = None) -> np.ndarray:
    """v(S) for every mask, by calling the model on inputs_embeds directly (no Scorer)."""
    ids = tok(prompt, return_tensors="pt")["input_ids"][0]
    tgt = tok(target, add_special_tokens=False, return_tensors="pt")["input_ids"][0]
    emb = model.get_input_embeddings()
    n = len(spans)
    out = np.zeros(1 << n)
    with torch.no_grad():
        x = emb(ids[None])[0]
        rest = emb(tgt[None])[0][:-1]
        for mask in range(1 << n):
            row = x.clone()
            for i, s in enumerate(spans):
                if not (mask >> i) & 1:
                    row[s] = 0.0 if fill is None else fill
            logits = model(inputs_embeds=torch.cat([row, rest])[None]).logits[0]
            logp = torch.log_softmax(logits[len(ids) - 1:], dim=-1)
            out[mask] = float(logp.gather(1, tgt[:, None]).sum())
    return out


def _lookup(values: np.ndarray):  # type: ignore[no-untyped-def]
    def game(c: np.ndarray) -> np.ndarray:
        c = np.atleast_2d(np.asarray(c, dtype=bool))
        return values[(c.astype(np.int64) << np.arange(c.shape[1])).sum(axis=1)]
    return game


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-llama"])
def test_sentence_pairs_match_a_brute_force_game_and_shapiq(tok, name: str) -> None:
    model = tiny_model(name, dtype=torch.float64, seed=3)
    ids = tok(PROMPT, return_tensors="pt")["input_ids"][0]
    spans = sentence_spans(tok, ids)
    assert len(spans) == 3 and spans[0][-1] == 6  # "the cat sat on the road ."
    values = _brute_force_game(model, tok, PROMPT, "france", spans)
    computer = shapiq.ExactComputer(_lookup(values), n_players=3)
    for index in ("FSII", "SII", "Moebius", "STII"):
        got = prompt_interactions(model, tok, PROMPT, "france", index=index, order=2)
        ref = computer("Moebius") if index == "Moebius" else computer(index, order=2)
        for i, c in enumerate(got.coalitions):
            if c:
                assert float(got.values[0, i]) == pytest.approx(ref[c], abs=1e-10), (index, c)
        assert got.exact and got.evaluations == 8
        assert float(got.output[0]) == pytest.approx(values[-1], abs=1e-10)
        assert float(got.baseline_output[0]) == pytest.approx(values[0], abs=1e-10)
    assert got.names == ("the cat sat on the road .", "paris is the capital .",
                         "the dog ran .")
    # FSII is efficient: the singles and pairs add up to log p(full) - log p(empty)
    fsii = prompt_interactions(model, tok, PROMPT, "france", index="FSII")
    assert float(fsii.values[0, 1:].sum()) == pytest.approx(values[-1] - values[0], abs=1e-10)


def test_string_spans_context_and_a_token_baseline(tok) -> None:
    model = tiny_model("tiny-gpt2", dtype=torch.float64, seed=1)
    pieces = ["the cat sat on the road .", "the dog ran ."]  # "paris is the capital ." is context
    got = prompt_interactions(model, tok, PROMPT, "france", spans=pieces, index="Moebius",
                              baseline="pad")
    spans = [[0, 1, 2, 3, 4, 5, 6], [12, 13, 14, 15]]
    assert got.params["spans"] == spans
    pad = model.get_input_embeddings()(torch.tensor([tok.pad_token_id]))[0].detach()
    values = _brute_force_game(model, tok, PROMPT, "france", spans, fill=pad)
    div = {(0,): values[1] - values[0], (1,): values[2] - values[0],
           (0, 1): values[3] - values[2] - values[1] + values[0]}
    for c, v in div.items():
        assert float(got.value(c)[0]) == pytest.approx(v, abs=1e-10)
    assert got.top(1)[0][0] == (0, 1)


def test_estimate_beyond_max_exact_is_close_with_its_errors(tok) -> None:
    model = tiny_model("tiny-gpt2", dtype=torch.float64, seed=2)
    prompt = "the cat sat on the road and the dog ran"
    exact = prompt_interactions(model, tok, prompt, "home", spans="tokens", max_exact=12)
    assert exact.n_players == 10 and exact.exact
    est = prompt_interactions(model, tok, prompt, "home", spans="tokens", max_exact=6,
                              budget=700, seed=0)
    assert not est.exact and est.stderr is not None and est.evaluations <= 700
    z = (est.values - exact.values)[0, 1:].abs() / est.stderr[0, 1:].clamp_min(1e-12)
    assert float((z < 3).double().mean()) > 0.9
    assert len(est.coalitions) == len(coalitions_up_to(10, 2))


def test_bad_input_is_refused_in_one_line(tok) -> None:
    model = tiny_model("tiny-gpt2")
    with pytest.raises(InputError, match="unknown spans 'paragraphs'"):
        prompt_interactions(model, tok, PROMPT, "france", spans="paragraphs")
    with pytest.raises(InputError, match="is not in the prompt"):
        prompt_interactions(model, tok, PROMPT, "france", spans=["the moon"])
    with pytest.raises(InputError, match="order=4 is above the number of spans"):
        prompt_interactions(model, tok, PROMPT, "france", order=4)
    with pytest.raises(InputError, match="disjoint"):
        prompt_interactions(model, tok, PROMPT, "france", spans=[[0, 1], [1, 2]])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prompt_interactions(model, tok, PROMPT, None, order=1)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model.training
