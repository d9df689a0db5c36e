"""``explain_generation(method="attnlrp")``: each row equals AttnLRP of that token's logit
computed directly on the model with the prompt embeddings as input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attribkit.core.guard import hook_state
from attribkit.methods.propagation import attnlrp
from attribkit.sequences import explain_generation
from attribkit.sequences.tiny import tiny_model, tiny_tokenizer


class PositionLogit(nn.Module):
    """Prompt embeddings -> the logits at one position of ``prompt + rest``."""

    def __init__(self, lm: nn.Module, rest: torch.Tensor, position: int) -> None:
        super().__init__()
        self.lm, self.rest, self.position = lm, rest, position

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        emb = self.lm.get_input_embeddings()  # type: ignore[operator]
        full = torch.cat([embeds, emb(self.rest)[None].expand(embeds.shape[0], -1, -1)], 1)
        out: torch.Tensor = self.lm(inputs_embeds=full, use_cache=False).logits[:, self.position]
        return out


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gpt2"])
def test_rows_equal_attnlrp_of_each_logit(name: str) -> None:
    tok = tiny_tokenizer()
    model = tiny_model(name, dtype=torch.float64)
    before = hook_state(model)
    res = explain_generation(model, tok, "the cat sat on", " the mat", method="attnlrp")
    assert hook_state(model) == before
    prompt = tok("the cat sat on", return_tensors="pt")["input_ids"][0]
    gen = res.generated_ids
    x = model.get_input_embeddings()(prompt)[None].detach()
    lp = prompt.shape[0]
    assert res.values is not None
    for t in range(gen.shape[0]):
        direct = attnlrp(PositionLogit(model, gen[:t], lp - 1 + t), x, target=int(gen[t]))
        torch.testing.assert_close(res.values[t], direct.values[0], rtol=1e-7, atol=1e-10)
        torch.testing.assert_close(res.extras["logits"][t], direct.output[0])
    torch.testing.assert_close(res.matrix, res.values.sum(-1))
    assert res.extras["conservation"].shape == (gen.shape[0],)
