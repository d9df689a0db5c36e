"""prompt_interactions on SmolLM2-135M-Instruct: the span game scored through the Scorer equals
the model called directly on inputs_embeds, the indices agree with shapiq, FSII is efficient,
and the model is left as given."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import shapiq
import torch

from attribkit.core.guard import hook_state
from attribkit.sequences.interactions import prompt_interactions

pytestmark = pytest.mark.slow
llm = pytest.importorskip("attribkit.zoo.llm")
pytest.importorskip("gguf")

PROMPT = ("Anna was born in Rome. Rome is in Italy. Bob likes tea. "
          "Anna was born in the country of")
PIECES = ["Anna was born in Rome.", "Rome is in Italy.", "Bob likes tea."]


@pytest.fixture(scope="module")
def smollm2() -> tuple[Any, Any]:
    if not llm.is_cached():
        try:
            llm.wheel_folder()
        except ImportError as err:  # the extra is not installed here
            pytest.skip(str(err))
    return llm.load_smollm2(progress=False)


def _direct_game(model: Any, tok: Any, spans: list[list[int]]) -> np.ndarray:
    ids = tok(PROMPT, return_tensors="pt")["input_ids"][0]
    tgt = tok(" Italy", add_special_tokens=False, return_tensors="pt")["input_ids"][0]
    emb = model.get_input_embeddings()
    out = np.zeros(1 << len(spans))
    with torch.no_grad():
        x, rest = emb(ids[None])[0], emb(tgt[None])[0][:-1]
        for mask in range(1 << len(spans)):
            row = x.clone()
            for i, s in enumerate(spans):
                if not (mask >> i) & 1:
                    row[s] = 0.0
            logits = model(inputs_embeds=torch.cat([row, rest])[None]).logits[0]
            logp = torch.log_softmax(logits[len(ids) - 1:].double(), dim=-1)
            out[mask] = float(logp.gather(1, tgt[:, None]).sum())
    return out


def test_sentence_interactions_on_smollm2(smollm2: tuple[Any, Any]) -> None:
    model, tok = smollm2
    state = (hook_state(model), [p.requires_grad for p in model.parameters()], model.training)
    res = prompt_interactions(model, tok, PROMPT, " Italy", spans=PIECES, index="FSII")
    assert res.names == tuple(PIECES) and res.exact and res.evaluations == 8
    values = _direct_game(model, tok, res.params["spans"])
    computer = shapiq.ExactComputer(
        lambda c: values[(np.atleast_2d(c).astype(np.int64) << np.arange(3)).sum(axis=1)],
        n_players=3)
    ref = computer("FSII", order=2)
    for i, c in enumerate(res.coalitions):
        if c:  # float32 model: batched and single forward passes differ in the last bits
            assert float(res.values[0, i]) == pytest.approx(ref[c], abs=2e-3), c
    efficient = float(res.output[0] - res.baseline_output[0])  # FSII adds up to the change
    assert float(res.values[0, 1:].sum()) == pytest.approx(efficient, abs=1e-9)
    assert float(res.output[0]) == pytest.approx(values[-1], abs=2e-3)
    assert (hook_state(model), [p.requires_grad for p in model.parameters()],
            model.training) == state
