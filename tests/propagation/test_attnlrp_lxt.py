"""AttnLRP against lxt 2.1 (the authors' implementation) on small random Llama and GPT-2 models
in float64: the same weights and input embeddings on both sides, relevances equal to 1e-5
relative.

lxt needs transformers < 5, so it runs in its own virtual environment, built once per machine
by ``benchmarks/lxt_env.py`` (cached under ``.cache/``, keyed by its requirements; PyPI is
needed for the first build, a few minutes) and called in a subprocess.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from torch import nn

from attribkit.methods.propagation import attnlrp

pytestmark = pytest.mark.slow

_SPECS: dict[str, dict[str, Any]] = {
    "llama (GQA, rotary)": {"arch": "llama", "seed": 0, "vocab_size": 40, "hidden_size": 32,
                            "intermediate_size": 48, "num_hidden_layers": 2,
                            "num_attention_heads": 4, "num_key_value_heads": 2},
    "gpt2 (LayerNorm, GELU, biases)": {"arch": "gpt2", "seed": 1, "vocab_size": 40,
                                       "n_embd": 32, "n_layer": 2, "n_head": 4,
                                       "n_positions": 16},
}


def _env() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "lxt_env.py"
    spec = importlib.util.spec_from_file_location("lxt_env", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class LastLogit(nn.Module):
    def __init__(self, lm: nn.Module) -> None:
        super().__init__()
        self.lm = lm

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.lm(inputs_embeds=embeds, use_cache=False).logits[:, -1]
        return out


def _case(env: ModuleType, spec: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
    model = env.build(spec)
    g = torch.Generator().manual_seed(int(spec["seed"]) + 100)
    with torch.no_grad():  # move every parameter off its initial value (norm weights, biases)
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    ids = torch.randint(0, int(spec["vocab_size"]), (2, 7), generator=g)
    embeds = model.get_input_embeddings()(ids).detach()
    with torch.no_grad():
        target = env.last_logits(model, embeds).argmax(1)
    return model, {"spec": spec, "state": model.state_dict(), "embeds": embeds,
                   "target": target}


@pytest.fixture(scope="module")
def compared() -> list[tuple[str, nn.Module, dict[str, Any], dict[str, Any]]]:
    env = _env()
    built = {name: _case(env, spec) for name, spec in _SPECS.items()}
    results = env.run_lxt([case for _, case in built.values()])
    return [(name, m, case, res)
            for (name, (m, case)), res in zip(built.items(), results, strict=True)]


@pytest.mark.parametrize("which", list(_SPECS))
def test_attnlrp_equals_lxt(compared: list[Any], which: str) -> None:
    _, model, case, ref = next(c for c in compared if c[0] == which)
    ours = attnlrp(LastLogit(model), case["embeds"], target=case["target"])
    # the same model on both sides: the logits agree to float64 rounding
    torch.testing.assert_close(ours.output, ref["logit"], rtol=1e-9, atol=1e-12)
    r = ref["relevance"]
    scale = float(r.abs().max())
    torch.testing.assert_close(ours.values, r, rtol=1e-5, atol=1e-5 * scale)
    # and the comparison can fail: plain gradient x input is far from both
    x = case["embeds"].clone().requires_grad_(True)
    LastLogit(model)(x).gather(1, case["target"][:, None]).sum().backward()
    assert x.grad is not None
    assert float((x.detach() * x.grad - r).abs().max()) > 100 * 1e-5 * scale
